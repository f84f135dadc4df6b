"""Stable seeds derived from names, so every random choice is reproducible.

``derive_seed(seed, "splits")`` is the same on every machine and Python run
(unlike ``hash``), and different labels give independent streams.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, stable across processes."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from ``parts`` (draw on CPU, then move: same on every device)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(*parts))
    return gen
