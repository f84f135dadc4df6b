"""Step 4 of the GPU check: every reproduction's ``suite-gpu.toml`` passes ``run --check``.

``--check`` loads the data set (it validates every split size against the real
pool), so the MNIST / CIFAR-10 files must be there. With ``--data ROOT`` the
suites read the real files under ROOT (torchvision's layout). Without it, this
writes random images in the real on-disk formats, at the real sizes (MNIST:
60,000 + 10,000 IDX images; CIFAR-10: five pickled batches of 10,000 and a test
batch) into a temporary folder, as tests/test_reproductions.py does at a
hundredth of the size, and points torchvision's CIFAR md5 table at those files
(in this process only: its check still runs on every file). Each committed suite
is checked unchanged except for its ``root``. ``--size toy`` (the dry run)
writes a hundredth of the images and scales the suites to match (split sizes
/100, requests of 100 points and more /20, block counts /30, SISA's 50 x 20
shards and slices to 5 x 2), as tests/test_reproductions.py does. Prints a
Markdown table.

    python benchmarks/gpu/repro_check.py --device cuda [--data ROOT]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import pickle
import re
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from unlearnbench.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted((ROOT / "leaderboards" / "reproductions").glob("*/suite-gpu.toml"))


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic 0x0000 08 <ndim>, the dims as big-endian int32, then uint8 data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 60000, n_test: int = 10000) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = np.arange(n_train + n_test) % 10
    write_idx(raw / "train-images-idx3-ubyte", images[:n_train])
    write_idx(raw / "train-labels-idx1-ubyte", labels[:n_train])
    write_idx(raw / "t10k-images-idx3-ubyte", images[n_train:])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[n_train:])


def write_cifar10(root: Path, per_batch: int = 10000) -> None:
    """Pickled batches as in the release, and torchvision told their md5s."""
    from torchvision import datasets

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(i % 10) for i in range(per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    cls = datasets.CIFAR10
    cls.train_list = [[name, md5(name)] for name, _ in cls.train_list]
    cls.test_list = [[name, md5(name)] for name, _ in cls.test_list]
    cls.meta = dict(cls.meta, md5=md5(cls.meta["filename"]))


def toy(text: str) -> str:
    """The suite at a hundredth of its data: what the toy-size files can hold."""
    text = re.sub(
        r"\b(target|shadow_in|shadow_out|nonmember|test|auxiliary) = (\d+)",
        lambda m: f"{m[1]} = {int(m[2]) // 100}",
        text,
    )
    text = re.sub(r"\bcount = (\d+)", lambda m: f"count = {_fewer(int(m[1]), 100, 20)}", text)
    text = re.sub(r"blocks = (\d+)", lambda m: f"blocks = {max(2, int(m[1]) // 30)}", text)
    text = re.sub(
        r"blocks = \[([\d, ]+)\]",
        lambda m: f"blocks = {[max(2, int(b) // 30) for b in m[1].split(',')]}",
        text,
    )
    return text.replace("shards = 50, slices = 20", "shards = 5, slices = 2")


def _fewer(count: int, at_least: int, by: int) -> int:
    return count // by if count >= at_least else count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a root holding the real MNIST / CIFAR-10")
    parser.add_argument("--device", default="cuda", help="the device the plan is checked for")
    parser.add_argument("--size", choices=["full", "toy"], default="full")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-repro-"))
    data = args.data
    if data is None:
        data = work / "data"
        start = time.perf_counter()
        scale = 1 if args.size == "full" else 100
        write_mnist(data, 60000 // scale, 10000 // scale)
        write_cifar10(data, 10000 // scale)
        what = (
            "at the real sizes (MNIST 70,000, CIFAR-10 60,000); each suite checked unchanged "
            "but for its `root`"
            if scale == 1
            else "at a hundredth of the real sizes; each suite scaled down to match (toy size)"
        )
        print(
            f"Data: random images in the real on-disk formats {what}; written in "
            f"{time.perf_counter() - start:.1f} s.\n"
        )
    else:
        print(f"Data: the files under `{data}`; each suite checked unchanged but for its `root`.\n")
    print("| reproduction | `run --check` | seconds | plan |")
    print("|---|---|---:|---|")
    failed = 0
    for suite in SUITES:
        text = suite.read_text(encoding="utf-8").replace('root = "data"', f'root = "{data}"')
        text = toy(text) if args.size == "toy" else text
        copy = work / suite.parent.name / "suite-gpu.toml"
        copy.parent.mkdir(parents=True)
        copy.write_text(text, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli(
                    [
                        "run",
                        str(copy),
                        "--check",
                        "--device",
                        args.device,
                        "--out",
                        str(copy.parent / "out"),
                    ]
                )
            except Exception as exc:  # reported in the table, the other suites still run
                code, err = 1, io.StringIO(f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - start
        lines = [ln for ln in (out.getvalue() + err.getvalue()).splitlines() if ln.strip()]
        summary = (lines[-1] if lines else "").split("; results in")[0].replace("|", "/")
        failed += code != 0
        verdict = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"| {suite.parent.name} | {verdict} | {seconds:.1f} | {summary} |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
