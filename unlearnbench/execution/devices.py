"""Which device and how many cores a run uses.

``resolve_device`` turns ``--device`` into a torch device (CUDA when present
for ``auto``); ``available_cores`` and ``plan_workers`` size the worker pool so
that workers x threads never exceed the cores (oversubscribed runs were 3.6-3.8x
slower on the project's machines) and give each worker its GPU.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def plan_workers(device: torch.device, workers: int, threads: int) -> tuple[int, int, list[str]]:
    """Worker count, torch threads per worker and each worker's device.

    On CUDA: one worker per GPU by default (``cuda:i``); more workers share GPUs
    round-robin. On CPU: ``workers x threads`` never exceeds the cores; with 0
    (auto) the workers get the cores evenly.
    """
    cores = available_cores()
    if device.type == "cuda" and device.index is None:
        gpus = max(1, torch.cuda.device_count())
        workers = workers or gpus
        devices = [f"cuda:{i % gpus}" for i in range(workers)]
    else:
        workers = workers or cores
        if workers > cores and device.type == "cpu":
            log.warning(
                "%d workers on %d cores would oversubscribe; using %d", workers, cores, cores
            )
            workers = cores
        devices = [str(device)] * workers
    max_threads = max(1, cores // workers)
    if threads > max_threads:
        log.warning(
            "%d workers x %d threads exceed %d cores; using %d threads per worker",
            workers,
            threads,
            cores,
            max_threads,
        )
    threads = min(threads, max_threads) if threads else max_threads
    return workers, threads, devices
