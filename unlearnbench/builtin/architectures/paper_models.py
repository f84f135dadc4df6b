"""The architectures of the seed papers (000 = GAN unlearning, 002 = DeepObliviate).

Sources and choices (the papers name the shapes, rarely the widths):

- ``gan_cnn``: paper 000, Table 1 uses "2xConv+2xFC" for SVHN without widths.
  Default: the classic TensorFlow CIFAR/SVHN tutorial widths, conv 5x5 with 32
  and 64 channels ('same' padding, ReLU, 2x2 max-pool each), then FC 512 and FC
  to the classes. ``channels`` and ``hidden`` change them.
- ``resnet18`` / ``resnet50``: torchvision's models (paper 000 Table 1 uses
  ResNet-18 for CIFAR-10/100; paper 002 ResNet-18 on CIFAR-10 and ResNet-50 on
  ImageNet). ``stem="cifar"`` (default) replaces the 7x7 stride-2 stem and its
  max-pool by a 3x3 stride-1 convolution, the usual CIFAR adaptation;
  ``stem="imagenet"`` keeps torchvision's stem for large (e.g. 224 px) images.
  Paper 000's ResNet-18 parameter count (1.2 M) is a slip: it has about 11 M.
- ``vgg11``: paper 002 trains VGG-11 on SVHN. torchvision's ``vgg11`` /
  ``vgg11_bn`` (``batch_norm``, default true: plain VGG-11 trains poorly from
  scratch with Adam). ``head="linear"`` (default) pools the 1x1x512 map of a
  32x32 input and classifies with one linear layer (the common CIFAR VGG);
  ``head="torchvision"`` keeps the 7x7 pool and 4096-4096 classifier (224 px).
- ``purchase_mlp``: the Purchase-100 DNN used in membership-inference work that
  paper 002 follows ("DNN"): 600-1024-512-256-128-classes with tanh. Paper 002
  itself reports "one hidden layer" on its (UCI online-shoppers) Purchase; set
  ``widths=[128]`` for that, which is also Shokri et al.'s shape.
- ``gan_fc``: paper 000's "3xFC" for Purchase-10/20/50/100 (widths not given).
  Default: two hidden ReLU layers of 256 and 128, then the output layer.

Parameter counts (in each description) are for 10 classes on the input shape
named there; tests rebuild the models and check them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from unlearnbench import ArchitectureSpec, Param, hookimpl

_ACTIVATIONS = ("tanh", "relu")


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"{name} needs image inputs (C, H, W); got shape {input_shape}")
    channels, height, width = (int(v) for v in input_shape)
    return channels, height, width


def build_gan_cnn(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """Two 5x5 conv + max-pool stages, then a hidden FC layer and the output layer."""
    from torch import nn

    channels, height, width = _image_shape("gan_cnn", input_shape)
    widths = [int(c) for c in params["channels"]]
    if len(widths) != 2:
        raise ValueError(f"gan_cnn: channels must be two widths, got {widths}")
    if min(height, width) < 4:
        raise ValueError(f"gan_cnn needs images of at least 4x4 pixels; got {input_shape}")
    layers: list[nn.Module] = []
    c_in = channels
    for c_out in widths:
        layers += [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c_out
    flat = widths[-1] * (height // 4) * (width // 4)
    hidden = int(params["hidden"])
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def _resnet(name: str, input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    from torch import nn
    from torchvision import models

    channels, _, _ = _image_shape(name, input_shape)
    model = getattr(models, name)(weights=None, num_classes=num_classes)
    if params["stem"] == "cifar":
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif channels != 3:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def build_resnet18(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """torchvision ResNet-18; the CIFAR stem (3x3 stride-1 conv, no max-pool) by default."""
    return _resnet("resnet18", input_shape, num_classes, params)


def build_resnet50(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """torchvision ResNet-50; the CIFAR stem (3x3 stride-1 conv, no max-pool) by default."""
    return _resnet("resnet50", input_shape, num_classes, params)


def build_vgg11(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """torchvision VGG-11 (optionally with batch norm), sized for 32x32 inputs by default."""
    from torch import nn
    from torchvision import models

    channels, height, width = _image_shape("vgg11", input_shape)
    if min(height, width) < 32:
        raise ValueError(
            f"vgg11 halves the image five times and needs at least 32x32 pixels; got "
            f"{input_shape} (resize, e.g. imagefolder size=32, or use lenet5/gan_cnn)"
        )
    builder = models.vgg11_bn if params["batch_norm"] else models.vgg11
    model = builder(weights=None, num_classes=num_classes)
    if channels != 3:
        model.features[0] = nn.Conv2d(channels, 64, kernel_size=3, padding=1)
    if params["head"] == "linear":
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Linear(512, num_classes)
    return model


def build_fc(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """Fully connected layers on the flattened input with the chosen activation."""
    from torch import nn

    widths = [int(w) for w in params["widths"]]
    act = nn.Tanh if params["activation"] == "tanh" else nn.ReLU
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(input_shape)
    for width in widths:
        layers += [nn.Linear(width_in, width), act()]
        width_in = width
    layers.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*layers)


_STEM = Param(
    "stem",
    "cifar",
    "cifar: 3x3 stride-1 first conv, no max-pool (32 px inputs); imagenet: torchvision's "
    "7x7 stride-2 conv + max-pool (224 px inputs)",
    choices=("cifar", "imagenet"),
)


@hookimpl
def unlearnbench_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="gan_cnn",
            build=build_gan_cnn,
            params=(
                Param(
                    "channels",
                    [32, 64],
                    "output channels of the two 5x5 convs",
                    type=list,
                    minimum=1,
                ),
                Param("hidden", 512, "width of the hidden fully connected layer", minimum=1),
            ),
            description=(
                "2xConv+2xFC CNN of the GAN-unlearning paper (SVHN): conv5x5 32, 64 + "
                "max-pool, FC 512. 2,156,490 parameters on (3, 32, 32)."
            ),
        ),
        ArchitectureSpec(
            name="resnet18",
            build=build_resnet18,
            params=(_STEM,),
            description=(
                "torchvision ResNet-18 with the CIFAR stem (3x3 conv, no max-pool). "
                "11,173,962 parameters on (3, 32, 32)."
            ),
        ),
        ArchitectureSpec(
            name="resnet50",
            build=build_resnet50,
            params=(_STEM,),
            description=(
                "torchvision ResNet-50 with the CIFAR stem (3x3 conv, no max-pool). "
                "23,520,842 parameters on (3, 32, 32)."
            ),
        ),
        ArchitectureSpec(
            name="vgg11",
            build=build_vgg11,
            params=(
                Param("batch_norm", True, "batch norm after each conv (torchvision vgg11_bn)"),
                Param(
                    "head",
                    "linear",
                    "linear: global pool + one linear layer (32 px); torchvision: 7x7 pool + "
                    "4096-4096 classifier (224 px)",
                    choices=("linear", "torchvision"),
                ),
            ),
            description=(
                "torchvision VGG-11 (batch norm) adapted to 32x32 inputs. "
                "9,231,114 parameters on (3, 32, 32)."
            ),
        ),
        ArchitectureSpec(
            name="purchase_mlp",
            build=build_fc,
            params=(
                Param("widths", [1024, 512, 256, 128], "hidden layer widths", type=list, minimum=1),
                Param("activation", "tanh", "hidden activation", choices=_ACTIVATIONS),
            ),
            description=(
                "Purchase-100 DNN 600-1024-512-256-128-classes with tanh (DeepObliviate / "
                "membership-inference shape). 1,305,738 parameters on (600,)."
            ),
        ),
        ArchitectureSpec(
            name="gan_fc",
            build=build_fc,
            params=(
                Param(
                    "widths",
                    [256, 128],
                    "hidden layer widths (3 FC layers in all)",
                    type=list,
                    minimum=1,
                ),
                Param("activation", "relu", "hidden activation", choices=_ACTIVATIONS),
            ),
            description=(
                "3xFC network of the GAN-unlearning paper (Purchase): 256-128-classes, ReLU. "
                "188,042 parameters on (600,)."
            ),
        ),
    ]
