"""Small architectures for the embedded data: an MLP, LeNet-5, a 1-D CNN."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from unlearnbench import ArchitectureSpec, Param, hookimpl


def build_mlp(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    from torch import nn

    widths = [int(w) for w in params["widths"]]
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(input_shape)
    for width in widths:
        layers += [nn.Linear(width_in, width), nn.ReLU()]
        if params["dropout"] > 0:
            layers.append(nn.Dropout(params["dropout"]))
        width_in = width
    layers.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*layers)


def _with_lenet_head(features: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """LeNet-5's fully connected part (120, 84, classes) after ``features``."""
    import torch
    from torch import nn

    with torch.no_grad():
        flat = features(torch.zeros(1, *input_shape)).shape[1]
    return nn.Sequential(
        features,
        nn.Linear(flat, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def build_lenet5(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """LeNet-5 with 'same' padding on inputs under 28 pixels so 8x8 digits fit."""
    from torch import nn

    if len(input_shape) != 3:
        raise ValueError(f"lenet5 needs image inputs (C, H, W); got shape {input_shape}")
    channels, height, _ = input_shape
    pad = 2 if height < 28 else 0
    features = nn.Sequential(
        nn.Conv2d(channels, 6, 5, padding=2 if height <= 28 else 0),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=pad),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return _with_lenet_head(features, input_shape, num_classes)


def build_cnn1d(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """Three strided 1-D convolutions then a linear head (MNIST-1D's ConvBase shape)."""
    import torch
    from torch import nn

    if len(input_shape) != 2:
        raise ValueError(f"cnn1d needs sequence inputs (C, L); got shape {input_shape}")
    ch = int(params["channels"])
    features = nn.Sequential(
        nn.Conv1d(input_shape[0], ch, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(ch, ch, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(ch, ch, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = features(torch.zeros(1, *input_shape)).shape[1]
    return nn.Sequential(features, nn.Linear(flat, num_classes))


def build_lenet5_1d(input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]):
    """LeNet-5's shape in one dimension: two convolutions (6 and 16 channels, kernel 5,
    the first padded by 2 as LeNet pads 28 to 32) each followed by max-pooling by 2, then
    fully connected layers of 120 and 84 units. DeepObliviate's MNIST model, for MNIST-1D."""
    from torch import nn

    if len(input_shape) != 2:
        raise ValueError(f"lenet5_1d needs sequence inputs (C, L); got shape {input_shape}")
    channels, length = input_shape
    if length < 16:
        raise ValueError(f"lenet5_1d needs sequences of at least 16 steps; got {length}")
    features = nn.Sequential(
        nn.Conv1d(channels, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Flatten(),
    )
    return _with_lenet_head(features, input_shape, num_classes)


@hookimpl
def unlearnbench_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="mlp",
            build=build_mlp,
            params=(
                Param(
                    "widths",
                    [128, 64],
                    "hidden layer widths ([]: no hidden layer, multinomial logistic regression)",
                    type=list,
                    minimum=1,
                ),
                Param(
                    "dropout",
                    0.0,
                    "dropout after each hidden layer",
                    minimum=0.0,
                    maximum=1.0,
                    exclusive_maximum=True,
                ),
            ),
            description="Multi-layer perceptron on the flattened input (ReLU).",
        ),
        ArchitectureSpec(
            name="lenet5",
            build=build_lenet5,
            description="LeNet-5 (2 conv + 3 FC), padded to fit small images.",
        ),
        ArchitectureSpec(
            name="cnn1d",
            build=build_cnn1d,
            params=(Param("channels", 32, "channels of each convolution", minimum=1),),
            description="Small 1-D CNN suited to MNIST-1D.",
        ),
        ArchitectureSpec(
            name="lenet5_1d",
            build=build_lenet5_1d,
            description="LeNet-5's layers in one dimension (DeepObliviate's MNIST model, "
            "for MNIST-1D).",
        ),
    ]
