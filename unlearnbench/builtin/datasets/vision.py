"""Real image data sets read from a user-given ``root`` through torchvision.

Each set is parsed by torchvision's own dataset class (IDX files, pickled CIFAR
batches, SVHN ``.mat`` files, an ImageFolder tree), pooled (train + test, as
the embedded sets are; the protocol draws its own splits), and held in memory
as float32 tensors of shape ``(n, C, H, W)``.

- ``mnist`` / ``fashionmnist``: ``ROOT/MNIST/raw`` / ``ROOT/FashionMNIST/raw``
  holding the four IDX files, raw (``*-ubyte``) or gzipped (``*-ubyte.gz``;
  extracted next to themselves with torchvision's ``extract_archive``).
- ``cifar10`` / ``cifar100``: ``ROOT/cifar-10-batches-py`` (``data_batch_1..5``,
  ``test_batch``, ``batches.meta``) / ``ROOT/cifar-100-python`` (``train``,
  ``test``, ``meta``). torchvision checks every file's md5 against the official
  release; that check stays on (a corrupted or foreign file is an error).
- ``svhn``: ``ROOT/train_32x32.mat`` and ``ROOT/test_32x32.mat`` (cropped-digit
  format, label 10 means digit 0), plus ``extra_32x32.mat`` with ``extra=true``
  (531,131 more images: about 6.5 GB as float32). md5-checked by torchvision.
- ``imagefolder``: an ImageNet-style tree ``ROOT/<class>/<image>``, every image
  converted to RGB and resized to ``size`` x ``size``. Everything is held in
  memory, so it is meant for small subsets (``max_images`` guards it).

``download=true`` lets torchvision fetch the files into ``root`` (network
needed); it is off by default so nothing is fetched unless the user asks.
``normalise``: ``dataset`` (default) standardises each channel with the usual
published means/stds (ImageNet's for ``imagefolder``), ``pool`` with the
loaded pool's own, ``none`` keeps pixels in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearnbench import DatasetArrays, DatasetSpec, Param, hookimpl

if TYPE_CHECKING:
    import torch

Stats = tuple[tuple[float, ...], tuple[float, ...]]
IMAGENET_STATS: Stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class VisionSet:
    """What differs between the torchvision sets: where files live and their statistics."""

    name: str
    title: str
    classes: int
    stats: Stats
    files: Callable[[Path, Mapping[str, Any]], list[Path]]
    hint: str
    read: Callable[[Path, Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor]]


def _root(name: str, params: Mapping[str, Any]) -> Path:
    if not params["root"]:
        raise ValueError(f"{name}: parameter 'root' is required (the folder holding the files)")
    return Path(params["root"]).expanduser()


def _require(name: str, paths: list[Path], hint: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name}: {missing[0]} not found"
            + (f" (and {len(missing) - 1} more files)" if len(missing) > 1 else "")
            + f"; pass download=true (needs network) or {hint}"
        )


def _corrupt(name: str, root: Path, exc: Exception) -> ValueError:
    return ValueError(
        f"{name}: torchvision could not load the files under {root} ({exc}); if they are "
        "corrupted or not the official release (md5 mismatch), delete them and pass download=true"
    )


# ---- MNIST / Fashion-MNIST -----------------------------------------------------------

_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _mnist_files(folder: str) -> Callable[[Path, Mapping[str, Any]], list[Path]]:
    def files(root: Path, params: Mapping[str, Any]) -> list[Path]:
        return [root / folder / "raw" / f for f in (*_IDX, *_IDX_TEST)]

    return files


def _extract_gz(files: list[Path]) -> None:
    """Decompress ``X.gz`` to ``X`` where only the gzipped IDX file is present."""
    from torchvision.datasets.utils import extract_archive

    for path in files:
        gz = path.with_name(path.name + ".gz")
        if not path.is_file() and gz.is_file():
            extract_archive(str(gz), str(path.parent))


def _mnist_reader(cls_name: str):
    def read(root: Path, params: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch
        from torchvision import datasets

        cls = getattr(datasets, cls_name)
        parts = [cls(str(root), train=t, download=params["download"]) for t in (True, False)]
        x = torch.cat([p.data for p in parts]).unsqueeze(1)
        y = torch.cat([p.targets for p in parts]).long()
        return x, y

    return read


# ---- CIFAR ---------------------------------------------------------------------------


def _cifar_files(cls_name: str) -> Callable[[Path, Mapping[str, Any]], list[Path]]:
    def files(root: Path, params: Mapping[str, Any]) -> list[Path]:
        from torchvision import datasets

        cls = getattr(datasets, cls_name)
        names = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return [root / cls.base_folder / n for n in names]

    return files


def _cifar_reader(cls_name: str):
    def read(root: Path, params: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        import numpy as np
        import torch
        from torchvision import datasets

        cls = getattr(datasets, cls_name)
        parts = [cls(str(root), train=t, download=params["download"]) for t in (True, False)]
        x = torch.from_numpy(np.concatenate([p.data for p in parts])).permute(0, 3, 1, 2)
        y = torch.tensor([t for p in parts for t in p.targets], dtype=torch.long)
        return x, y

    return read


# ---- SVHN ----------------------------------------------------------------------------


def _svhn_splits(params: Mapping[str, Any]) -> list[str]:
    return ["train", "test", "extra"] if params["extra"] else ["train", "test"]


def _svhn_files(root: Path, params: Mapping[str, Any]) -> list[Path]:
    return [root / f"{split}_32x32.mat" for split in _svhn_splits(params)]


def _svhn_read(root: Path, params: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch
    from torchvision import datasets

    parts = [
        datasets.SVHN(str(root), split=s, download=params["download"]) for s in _svhn_splits(params)
    ]
    x = torch.from_numpy(np.concatenate([p.data for p in parts]))
    y = torch.from_numpy(np.concatenate([p.labels for p in parts])).long()
    return x, y


# ---- ImageFolder ---------------------------------------------------------------------


def _folder_files(root: Path, params: Mapping[str, Any]) -> list[Path]:
    return []


def _folder_read(root: Path, params: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch
    from torchvision import datasets, transforms

    if not root.is_dir():
        raise FileNotFoundError(
            f"imagefolder: {root} is not a folder; put images under ROOT/<class>/<image>"
        )
    size = int(params["size"])
    to_tensor = transforms.Compose([transforms.Resize((size, size)), transforms.PILToTensor()])
    try:
        folder = datasets.ImageFolder(str(root), transform=to_tensor)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"imagefolder: {exc}; expected ROOT/<class>/<image> with images in at least one "
            "class folder"
        ) from None
    limit = int(params["max_images"])
    if len(folder) > limit:
        raise ValueError(
            f"imagefolder: {root} holds {len(folder)} images, more than max_images={limit}; "
            "everything is kept in memory: use a subset or raise max_images"
        )
    images = [folder[i][0] for i in range(len(folder))]
    y = torch.tensor(folder.targets, dtype=torch.long)
    return torch.stack(images), y


# ---- shared loading ------------------------------------------------------------------


def _standardise(x: torch.Tensor, mode: str, stats: Stats) -> tuple[torch.Tensor, str]:
    """uint8 images -> float32 in [0, 1] -> per-channel standardised (in place)."""
    import torch

    x = x.to(torch.float32).div_(255.0)
    if mode == "none":
        return x, "pixel / 255"
    if mode == "pool":
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    else:
        mean, std = torch.tensor(stats[0]), torch.tensor(stats[1])
        if mean.numel() != x.shape[1]:
            raise ValueError(f"{mean.numel()} channel means for {x.shape[1]}-channel images")
    x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
    means = ", ".join(f"{v:.4f}" for v in mean.tolist())
    stds = ", ".join(f"{v:.4f}" for v in std.tolist())
    return x, f"per channel (pixel/255 - mean) / std, {mode} mean=({means}) std=({stds})"


def load_vision(info: VisionSet, params: Mapping[str, Any]) -> DatasetArrays:
    """Check the files, parse them with torchvision, and return normalised tensors."""
    root = _root(info.name, params)
    files = info.files(root, params)
    if info.name in ("mnist", "fashionmnist"):
        _extract_gz(files)
    if not params.get("download", False):
        _require(info.name, files, info.hint.replace("ROOT", str(root)))
    try:
        raw, y = info.read(root, params)
    except RuntimeError as exc:
        raise _corrupt(info.name, root, exc) from exc
    x, how = _standardise(raw, params["normalise"], info.stats)
    classes = info.classes or int(y.max()) + 1
    return DatasetArrays(
        x=x,
        y=y,
        num_classes=classes,
        input_shape=tuple(x.shape[1:]),
        description=f"{info.title}: {x.shape[0]} images from {root}",
        normalisation=how,
    )


SETS = (
    VisionSet(
        "mnist",
        "MNIST (1x28x28, 10 classes, 70,000 images)",
        10,
        ((0.1307,), (0.3081,)),
        _mnist_files("MNIST"),
        "put the four IDX files (train-images-idx3-ubyte[.gz], ...) under ROOT/MNIST/raw",
        _mnist_reader("MNIST"),
    ),
    VisionSet(
        "fashionmnist",
        "Fashion-MNIST (1x28x28, 10 classes, 70,000 images)",
        10,
        ((0.2860,), (0.3530,)),
        _mnist_files("FashionMNIST"),
        "put the four IDX files (train-images-idx3-ubyte[.gz], ...) under ROOT/FashionMNIST/raw",
        _mnist_reader("FashionMNIST"),
    ),
    VisionSet(
        "cifar10",
        "CIFAR-10 (3x32x32, 10 classes, 60,000 images)",
        10,
        ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        _cifar_files("CIFAR10"),
        "extract cifar-10-python.tar.gz so that ROOT/cifar-10-batches-py exists",
        _cifar_reader("CIFAR10"),
    ),
    VisionSet(
        "cifar100",
        "CIFAR-100 (3x32x32, 100 fine classes, 60,000 images)",
        100,
        ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
        _cifar_files("CIFAR100"),
        "extract cifar-100-python.tar.gz so that ROOT/cifar-100-python exists",
        _cifar_reader("CIFAR100"),
    ),
    VisionSet(
        "svhn",
        "SVHN cropped digits (3x32x32, 10 classes, 99,289 images; +531,131 with extra)",
        10,
        ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
        _svhn_files,
        "put train_32x32.mat and test_32x32.mat (and extra_32x32.mat for extra=true) in ROOT",
        _svhn_read,
    ),
    VisionSet(
        "imagefolder",
        "ImageFolder tree ROOT/<class>/<image> (3 x size x size, RGB)",
        0,
        IMAGENET_STATS,
        _folder_files,
        "put images under ROOT/<class>/<image>",
        _folder_read,
    ),
)


def _params(info: VisionSet) -> tuple[Param, ...]:
    common: tuple[Param, ...] = (
        Param("root", "", "folder holding the data set files (required)"),
        Param(
            "normalise",
            "dataset",
            "dataset: the usual published per-channel mean/std; pool: the loaded pool's own; "
            "none: pixels in [0, 1]",
            choices=("dataset", "pool", "none"),
        ),
    )
    if info.name == "imagefolder":
        return (
            *common,
            Param("size", 32, "images are resized to size x size pixels", minimum=1),
            Param(
                "max_images",
                20000,
                "refuse trees with more images (all are held in memory)",
                minimum=1,
            ),
        )
    common = (
        *common,
        Param("download", False, "let torchvision download the files into root (network)"),
    )
    if info.name == "svhn":
        return (*common, Param("extra", False, "also pool the 531,131 'extra' images"))
    return common


def _loader(info: VisionSet) -> Callable[[Mapping[str, Any]], DatasetArrays]:
    def load(params: Mapping[str, Any]) -> DatasetArrays:
        return load_vision(info, params)

    return load


@hookimpl
def unlearnbench_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name=info.name,
            load=_loader(info),
            params=_params(info),
            description=f"{info.title}, read by torchvision from a local root.\n"
            f"Expects: {info.hint} (ROOT = the root parameter). Train and test are pooled; "
            "pixels are standardised per channel (see normalise).",
        )
        for info in SETS
    ]
