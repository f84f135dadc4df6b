"""The torchvision data sets, on tiny files written in the real on-disk formats.

torchvision's CIFAR and SVHN classes check each file's md5 against the
official release. The production loaders keep that check; these tests instead
point torchvision's expected md5s (class attributes ``train_list``,
``test_list``, ``meta``, ``split_list``) at the tiny files with ``monkeypatch``,
so the real check still runs on every file, and one test shows that an
unpatched check rejects foreign files.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.suites import suite_toml
from unlearnbench.specs import resolve_params
from unlearnbench.testing import check_dataset_contract, registry


def load(name: str, **params):
    spec = registry().get("dataset", name)
    return spec.load(resolve_params(spec.params, params))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---- writers for the real formats -------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """IDX (big-endian): magic 0x0000 08 <ndim>, the dims as int32, then the uint8 data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def write_mnist(root: Path, folder: str, n_train: int, n_test: int, gz: bool):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = np.arange(n_train + n_test) % 10
    write_idx(raw / "train-images-idx3-ubyte", images[:n_train], gz)
    write_idx(raw / "train-labels-idx1-ubyte", labels[:n_train], gz)
    write_idx(raw / "t10k-images-idx3-ubyte", images[n_train:], gz)
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[n_train:], gz)
    return images, labels


def write_cifar(root: Path, per_batch: int = 4, hundred: bool = False):
    """Pickled batches: dicts with 'data' (n, 3072) uint8 rows (R, G, B planes) and labels."""
    rng = np.random.default_rng(1)
    classes = 100 if hundred else 10
    label_key = "fine_labels" if hundred else "labels"
    names = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    names = names if hundred else [*names, "test_batch"]
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    all_data, all_labels = [], []
    for name in names:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, per_batch)]
        labels[0] = classes - 1
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, label_key: labels, "batch_label": name}, f)
        all_data.append(data)
        all_labels += labels
    meta_name, meta_key = (
        ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    )
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"class{i}" for i in range(classes)]}, f)
    return folder, np.concatenate(all_data), np.array(all_labels)


def trust_cifar(monkeypatch: pytest.MonkeyPatch, folder: Path, hundred: bool = False) -> None:
    """Make torchvision expect the md5s of the tiny files (its check still runs)."""
    from torchvision import datasets

    cls = datasets.CIFAR100 if hundred else datasets.CIFAR10
    for attr in ("train_list", "test_list"):
        entries = [[name, md5(folder / name)] for name, _ in getattr(cls, attr)]
        monkeypatch.setattr(cls, attr, entries)
    meta = dict(cls.meta, md5=md5(folder / cls.meta["filename"]))
    monkeypatch.setattr(cls, "meta", meta)


def write_svhn(root: Path, monkeypatch: pytest.MonkeyPatch, counts: dict[str, int]):
    """``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) in 1..10 (10 = digit 0), as in the release."""
    from scipy.io import savemat
    from torchvision import datasets

    rng = np.random.default_rng(2)
    split_list = dict(datasets.SVHN.split_list)
    out = {}
    for split, n in counts.items():
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1)
        path = root / f"{split}_32x32.mat"
        savemat(path, {"X": x, "y": y})
        url, filename, _ = split_list[split]
        split_list[split] = [url, filename, md5(path)]
        out[split] = (x, y)
    monkeypatch.setattr(datasets.SVHN, "split_list", split_list)
    return out


def write_image_tree(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for cls, sizes in {"cat": [(20, 24), (40, 30)], "dog": [(32, 32)], "emu": [(10, 10)]}.items():
        (root / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")


# ---- MNIST family ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folder", "gz"), [("mnist", "MNIST", True), ("fashionmnist", "FashionMNIST", False)]
)
def test_mnist_idx_files(tmp_path, name, folder, gz):
    images, labels = write_mnist(tmp_path, folder, n_train=12, n_test=5, gz=gz)
    check_dataset_contract(name, {"root": str(tmp_path)})
    data = load(name, root=str(tmp_path), normalise="none")
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert torch.equal(data.y, torch.from_numpy(labels).long())
    torch.testing.assert_close(data.x[:, 0], torch.from_numpy(images).float() / 255)
    std = load(name, root=str(tmp_path))
    mean, sd = (0.1307, 0.3081) if name == "mnist" else (0.2860, 0.3530)
    torch.testing.assert_close(std.x, (data.x - mean) / sd)
    assert f"{mean:.4f}" in std.normalisation


def test_mnist_missing_files_say_where_they_go(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"MNIST/raw/train-images-idx3-ubyte.*download=true"
    ):
        load("mnist", root=str(tmp_path))
    with pytest.raises(ValueError, match="'root' is required"):
        load("fashionmnist")


# ---- CIFAR ----------------------------------------------------------------------------


def test_cifar10_batches(tmp_path, monkeypatch):
    folder, data, labels = write_cifar(tmp_path)
    trust_cifar(monkeypatch, folder)
    check_dataset_contract("cifar10", {"root": str(tmp_path)})
    got = load("cifar10", root=str(tmp_path), normalise="none")
    assert got.x.shape == (24, 3, 32, 32) and got.num_classes == 10
    assert torch.equal(got.y, torch.from_numpy(labels).long())
    # row layout: 1024 red, 1024 green, 1024 blue values, each a 32x32 row-major plane
    expected = torch.from_numpy(data).float().view(24, 3, 32, 32) / 255
    torch.testing.assert_close(got.x, expected)
    pooled = load("cifar10", root=str(tmp_path), normalise="pool")
    torch.testing.assert_close(pooled.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)


def test_cifar100_fine_labels(tmp_path, monkeypatch):
    folder, _, labels = write_cifar(tmp_path, per_batch=6, hundred=True)
    trust_cifar(monkeypatch, folder, hundred=True)
    check_dataset_contract("cifar100", {"root": str(tmp_path)})
    got = load("cifar100", root=str(tmp_path))
    assert got.num_classes == 100 and torch.equal(got.y, torch.from_numpy(labels).long())


def test_cifar_integrity_check_stays_on(tmp_path):
    """Without the test's md5 patch, torchvision's real check rejects the tiny files."""
    write_cifar(tmp_path)
    with pytest.raises(ValueError, match=r"not found or corrupted.*md5 mismatch.*download=true"):
        load("cifar10", root=str(tmp_path))


def test_cifar_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*download=true"):
        load("cifar10", root=str(tmp_path))


# ---- SVHN -----------------------------------------------------------------------------


def test_svhn_mat_files(tmp_path, monkeypatch):
    written = write_svhn(tmp_path, monkeypatch, {"train": 7, "test": 4, "extra": 3})
    check_dataset_contract("svhn", {"root": str(tmp_path)})
    got = load("svhn", root=str(tmp_path), normalise="none")
    assert got.x.shape == (11, 3, 32, 32)
    x_train, y_train = written["train"]
    # X is (H, W, C, N); label 10 stands for the digit 0
    expected = torch.from_numpy(x_train).permute(3, 2, 0, 1).float() / 255
    torch.testing.assert_close(got.x[:7], expected)
    assert got.y[:7].tolist() == [int(v) % 10 for v in y_train.ravel()]
    assert load("svhn", root=str(tmp_path), extra=True).x.shape[0] == 14


def test_svhn_extra_missing(tmp_path, monkeypatch):
    write_svhn(tmp_path, monkeypatch, {"train": 3, "test": 3})
    with pytest.raises(FileNotFoundError, match=r"extra_32x32\.mat"):
        load("svhn", root=str(tmp_path), extra=True)


# ---- ImageFolder ----------------------------------------------------------------------


def test_imagefolder_tree(tmp_path):
    write_image_tree(tmp_path / "tree")
    params = {"root": str(tmp_path / "tree"), "size": 16}
    check_dataset_contract("imagefolder", params)
    got = load("imagefolder", **params)
    assert got.input_shape == (3, 16, 16) and got.num_classes == 3
    assert got.y.tolist() == [0, 0, 1, 2]  # classes sorted by folder name
    assert "0.4850" in got.normalisation  # ImageNet statistics by default
    with pytest.raises(ValueError, match="max_images"):
        load("imagefolder", root=str(tmp_path / "tree"), max_images=3)
    with pytest.raises(FileNotFoundError, match="ROOT/<class>/<image>"):
        load("imagefolder", root=str(tmp_path / "nothing"))


# ---- end to end -----------------------------------------------------------------------


def suite_text(root: str) -> str:
    return suite_toml(
        "tiny-cifar",
        reference=None,
        evaluators=["accuracy", "consistency", "time"],
        splits={"target": 40, "nonmember": 10, "test": 20, "shadow_in": 10, "shadow_out": 10},
        train={"epochs": 2, "batch_size": 16, "lr": 0.003},
        datasets=[{"name": "cifar10", "params": {"root": root}}],
        architectures=[{"name": "gan_cnn", "params": {"channels": [4, 8], "hidden": 16}}],
        requests=[{"kind": "random", "count": 5}],
    )


@pytest.mark.slow
def test_cifar10_suite_runs_end_to_end(tmp_path, monkeypatch):
    from unlearnbench.cli import main

    folder, _, _ = write_cifar(tmp_path / "data", per_batch=20)
    trust_cifar(monkeypatch, folder)
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text((tmp_path / "data").as_posix()))
    out = tmp_path / "out"
    code = main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    board = (out / "leaderboard.csv").read_text()
    assert "cifar10" in board and "retrain" in board and "original" in board
