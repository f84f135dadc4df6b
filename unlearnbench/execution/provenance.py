"""Where a result came from: versions, commit, device, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch


def git_commit(path: Path | None = None) -> str:
    """The commit of the unlearnbench checkout, or '' outside a git work tree."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


# Libraries whose versions can move a result's last digits (data generation, DFA, attacks).
NUMERIC_LIBRARIES = ("numpy", "scipy", "scikit-learn", "nolds", "mnist1d", "torchvision")


def library_versions() -> dict[str, str]:
    """The installed versions of :data:`NUMERIC_LIBRARIES` (absent ones left out): the
    same suite and seed give the same numbers only on the same versions."""
    out = {}
    for name in NUMERIC_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(device: torch.device) -> dict[str, Any]:
    try:
        version = metadata.version("unlearnbench")
    except metadata.PackageNotFoundError:
        version = "unknown"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "unlearnbench_version": version,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "libraries": library_versions(),
        "device": str(device),
        "device_name": name or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": cpu_capability(),
        "host": platform.node(),
    }


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels use here (``AVX2``, ``AVX512``, ...).

    CPU results depend on it as on the thread count: the same commit, configuration,
    libraries and threads gave different models on two hosts of this project whose
    only recorded difference could be this (leaderboards/README.md, 2026-12-06)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # older torch: not exposed
        return "unknown"
