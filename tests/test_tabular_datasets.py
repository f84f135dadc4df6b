"""Purchase, CSV and NPZ data sets on tiny files written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnbench.specs import resolve_params
from unlearnbench.testing import check_dataset_contract, registry


def load(name: str, **params):
    spec = registry().get("dataset", name)
    return spec.load(resolve_params(spec.params, params))


def write_purchase(path: Path, rows: int = 60, labels: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The dataset_purchase layout: no header, label (1-based) first, 600 0/1 features."""
    rng = np.random.default_rng(0)
    y = np.arange(rows) % labels + 1
    # two clear groups of customers so k-means has structure to find
    x = (rng.random((rows, 600)) < np.where(np.arange(rows) % 2 == 0, 0.1, 0.6)[:, None]).astype(
        int
    )
    np.savetxt(path, np.column_stack([y, x]), fmt="%d", delimiter=",")
    return x, y


def test_purchase_keeps_file_labels(tmp_path):
    x, y = write_purchase(tmp_path / "dataset_purchase", labels=4)
    params = {"path": str(tmp_path / "dataset_purchase"), "classes": 4}
    check_dataset_contract("purchase", params)
    got = load("purchase", **params)
    assert got.input_shape == (600,) and got.num_classes == 4
    assert torch.equal(got.y, torch.from_numpy(y - 1))
    assert torch.equal(got.x, torch.from_numpy(x).float())
    assert load("purchase", path=params["path"], classes=0).num_classes == 4


def test_purchase_kmeans_relabels_when_classes_differ(tmp_path):
    write_purchase(tmp_path / "p.csv", labels=4)
    params = {"path": str(tmp_path / "p.csv"), "classes": 2, "seed": 3}
    check_dataset_contract("purchase", params)
    got = load("purchase", **params)
    assert got.num_classes == 2 and "k-means" in got.description
    # the two planted groups (even / odd rows) are the two clusters
    even = got.y[::2]
    assert (even == even[0]).all() and (got.y[1::2] != even[0]).all()


def test_purchase_npz_one_hot_and_subset(tmp_path):
    x, y = write_purchase(tmp_path / "raw.csv", labels=3)
    np.savez(tmp_path / "purchase.npz", features=x, labels=np.eye(3)[y - 1])
    params = {"path": str(tmp_path / "purchase.npz"), "classes": 3, "samples": 20}
    check_dataset_contract("purchase", params)
    got = load("purchase", **params)
    assert got.x.shape == (20, 600)
    rows = [int(np.flatnonzero((x == r.numpy()).all(1))[0]) for r in got.x.long()]
    assert got.y.tolist() == [int(y[i]) - 1 for i in rows]


def test_purchase_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load("purchase", path=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="'path' is required"):
        load("purchase")
    np.savetxt(tmp_path / "short.csv", np.ones((5, 19)), fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="expected 600"):
        load("purchase", path=str(tmp_path / "short.csv"))


def test_csv_with_text_columns_and_string_labels(tmp_path):
    path = tmp_path / "shoppers.csv"
    path.write_text(
        "id,Duration,Month,Weekend,Revenue\n"
        "1,10.0,Feb,TRUE,FALSE\n"
        "2,200.0,Mar,FALSE,TRUE\n"
        "3,35.5,Feb,FALSE,FALSE\n"
        "4,0.0,Nov,TRUE,TRUE\n"
        "5,12.0,Mar,FALSE,FALSE\n"
    )
    params = {"path": str(path), "label_column": "Revenue", "drop_columns": ["id"]}
    check_dataset_contract("csv", params)
    got = load("csv", **params)
    # Duration, Weekend, and Month one-hot (Feb, Mar, Nov)
    assert got.input_shape == (5,) and got.num_classes == 2
    assert got.y.tolist() == [0, 1, 0, 1, 0]
    torch.testing.assert_close(got.x.mean(0), torch.zeros(5), atol=1e-6, rtol=0)
    raw = load("csv", **params, standardise=False)
    assert raw.x[:, 0].tolist() == [10.0, 200.0, 35.5, 0.0, 12.0]
    with pytest.raises(ValueError, match=r"non-numeric columns \['Month'\]"):
        load("csv", **params, categorical="error")
    with pytest.raises(ValueError, match="'Label' is not a column"):
        load("csv", path=str(path), label_column="Label")


def test_csv_without_header_by_position(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("1.5\t0.2\tb\n2.5\t0.1\ta\n0.5\t0.9\tb\n")
    params = {"path": str(path), "header": False, "delimiter": "\t", "label_column": "-1"}
    check_dataset_contract("csv", params)
    got = load("csv", **params, standardise=False)
    assert got.y.tolist() == [1, 0, 1]
    torch.testing.assert_close(got.x, torch.tensor([[1.5, 0.2], [2.5, 0.1], [0.5, 0.9]]))


def test_csv_missing_values_are_named(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,label\n1,,0\n2,3,1\n")
    with pytest.raises(ValueError, match=r"missing values in columns \['b'\]"):
        load("csv", path=str(path))


def test_npz_images_and_keys(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.random((12, 1, 4, 4))
    y = np.array([3, 7] * 6)
    np.savez(tmp_path / "set.npz", images=x, targets=y)
    params = {"path": str(tmp_path / "set.npz"), "x_key": "images", "y_key": "targets"}
    check_dataset_contract("npz", params)
    got = load("npz", **params, standardise=False)
    assert got.input_shape == (1, 4, 4) and got.num_classes == 2
    assert got.y.tolist() == [0, 1] * 6
    torch.testing.assert_close(got.x, torch.from_numpy(x).float())
    with pytest.raises(ValueError, match="x_key='x' is not in"):
        load("npz", path=str(tmp_path / "set.npz"))
