"""Data sets that ship with the dependencies: no download, no files.

- ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, scaled to
  [0, 1], shape (1, 8, 8).
- ``mnist1d``: the MNIST-1D benchmark generated offline by the ``mnist1d``
  package with its published arguments; ``samples`` sets the pool size and
  ``data_seed`` the generator's seed. Shape (1, 40), standardised.
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
    ]
