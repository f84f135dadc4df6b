"""The seed papers' architectures, and the recipe's amp / channels_last switches."""

from __future__ import annotations

import re

import pytest
import torch

from unlearnbench.specs import resolve_params
from unlearnbench.task_values import TrainRecipe
from unlearnbench.testing import check_architecture_contract, registry
from unlearnbench.training import predict_logits, train_model

IMAGE = (3, 32, 32)
TABULAR = (600,)
DEFAULT_SHAPES = {
    "gan_cnn": IMAGE,
    "resnet18": IMAGE,
    "resnet50": IMAGE,
    "vgg11": IMAGE,
    "purchase_mlp": TABULAR,
    "gan_fc": TABULAR,
}


def build(name: str, shape: tuple[int, ...], classes: int = 10, **params):
    spec = registry().get("architecture", name)
    torch.manual_seed(0)
    return spec.build(shape, classes, resolve_params(spec.params, params))


@pytest.mark.parametrize(
    ("name", "shape", "params"),
    [
        ("gan_cnn", IMAGE, {}),
        ("gan_cnn", (1, 28, 28), {"channels": [8, 16], "hidden": 32}),
        ("resnet18", IMAGE, {}),
        ("resnet18", (1, 28, 28), {}),
        ("resnet50", (3, 8, 8), {}),
        ("vgg11", IMAGE, {}),
        ("vgg11", (1, 32, 32), {"batch_norm": False}),
        ("purchase_mlp", TABULAR, {}),
        ("purchase_mlp", (18,), {"widths": [128]}),
        ("gan_fc", TABULAR, {"activation": "tanh"}),
    ],
)
def test_contract(name, shape, params):
    check_architecture_contract(name, shape, num_classes=7, params=params)


def test_resnet_imagenet_stem_keeps_torchvision_layers():
    model = build("resnet18", (3, 64, 64), stem="imagenet")
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, torch.nn.MaxPool2d)
    cifar = build("resnet18", IMAGE)
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1)
    assert isinstance(cifar.maxpool, torch.nn.Identity)


@pytest.mark.parametrize("name", sorted(DEFAULT_SHAPES))
def test_description_states_the_parameter_count(name):
    """``unlearnbench show NAME`` prints the description; its count must be true."""
    spec = registry().get("architecture", name)
    match = re.search(r"([\d,]+) parameters on \(([\d, ]+)\)", spec.description)
    assert match, f"{name}: description names no parameter count"
    shape = tuple(int(v) for v in match.group(2).split(",") if v.strip())
    assert shape == DEFAULT_SHAPES[name]
    model = build(name, shape)
    assert sum(p.numel() for p in model.parameters()) == int(match.group(1).replace(",", ""))


def test_purchase_mlp_shape_is_the_papers():
    model = build("purchase_mlp", TABULAR, classes=100)
    linear = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [
        (600, 1024),
        (1024, 512),
        (512, 256),
        (256, 128),
        (128, 100),
    ]
    assert sum(isinstance(m, torch.nn.Tanh) for m in model) == 4


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match=r"vgg11 .*32x32"):
        build("vgg11", (1, 28, 28))
    with pytest.raises(ValueError, match="image inputs"):
        build("gan_cnn", TABULAR)
    with pytest.raises(ValueError, match="channels"):
        build("gan_cnn", IMAGE, channels=[8])


def _train(recipe: TrainRecipe, seed: int = 0):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(96, 3, 16, 16, generator=gen)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    model = build("gan_cnn", (3, 16, 16), classes=2, channels=[4, 8], hidden=16)
    stats = train_model(model, x, y, torch.arange(96), recipe, seed=seed)
    return model, x, y, stats


def test_channels_last_trains_like_the_plain_loop():
    plain, x, _, base = _train(TrainRecipe(epochs=2, batch_size=32))
    nhwc, _, _, stats = _train(TrainRecipe(epochs=2, batch_size=32, channels_last=True))
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert stats.sample_epochs == base.sample_epochs
    assert abs(stats.mean_loss - base.mean_loss) < 1e-4
    torch.testing.assert_close(predict_logits(nhwc, x), predict_logits(plain, x), atol=1e-4, rtol=0)


def test_amp_learns_and_is_reproducible():
    """bfloat16 autocast on CPU (float16 + GradScaler on CUDA); predictions stay float32."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(128, 20, generator=gen)
    y = (x[:, :3].sum(1) > 0).long()

    def fit():
        model = build("gan_fc", (20,), classes=2, widths=[32, 16])
        recipe = TrainRecipe(epochs=10, batch_size=32, lr=0.01, amp=True)
        stats = train_model(model, x, y, torch.arange(128), recipe, seed=0)
        return model, stats

    model, stats = fit()
    again, _ = fit()
    assert torch.isfinite(torch.tensor(stats.mean_loss))
    logits = predict_logits(model, x)
    assert logits.dtype == torch.float32
    assert torch.equal(logits, predict_logits(again, x))
    assert float((logits.argmax(1) == y).float().mean()) > 0.8


def test_lenet5_1d_has_lenet5s_layers_in_one_dimension() -> None:
    """DeepObliviate's MNIST model for MNIST-1D: convolutions of 6 and 16 channels
    (kernel 5), pooling by 2, then 120, 84 and the classes."""
    from torch import nn

    from unlearnbench.builtin.architectures.small import build_lenet5_1d

    model = build_lenet5_1d((1, 40), 10, {})
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(6, 5), (16, 5)]
    assert [m.out_features for m in linears] == [120, 84, 10]
    assert sum(isinstance(m, nn.MaxPool1d) for m in model.modules()) == 2
    assert model(torch.zeros(3, 1, 40)).shape == (3, 10)
    with pytest.raises(ValueError, match="sequence inputs"):
        build_lenet5_1d((1, 28, 28), 10, {})
    with pytest.raises(ValueError, match="at least 16 steps"):
        build_lenet5_1d((1, 8), 10, {})


def test_mlp_without_hidden_layers_is_logistic_regression() -> None:
    """``mlp`` with ``widths = []`` is one linear layer: softmax regression, a convex
    model (the DeepObliviate Fig. 2 regime suite uses it as such)."""
    model = build("mlp", (1, 40), classes=10, widths=[])
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1 and linear[0].in_features == 40 and linear[0].out_features == 10
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    x = torch.randn(5, 1, 40)
    expected = x.flatten(1) @ linear[0].weight.T + linear[0].bias
    assert torch.allclose(model(x), expected, atol=1e-6)
