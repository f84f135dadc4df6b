"""Partitions of the target set that methods and forget requests share.

DeepObliviate's blocks and SISA's shards are drawn with :func:`label_balanced_blocks`;
a forget request with a ``position`` picks its points from the same partition,
so "delete a point from block 50 of 100" means the same points for every method.
"""

from __future__ import annotations

import torch

from unlearnbench.seeding import generator


def label_balanced_blocks(
    indices: torch.Tensor, labels: torch.Tensor, blocks: int, seed: int
) -> list[torch.Tensor]:
    """Split ``indices`` into ``blocks`` label-balanced parts.

    After a seeded shuffle, each class is dealt round-robin into the blocks,
    the dealing pointer carrying over from one class to the next, so block
    sizes differ by at most one and every class is spread evenly. ``labels``
    is indexed by the values of ``indices``. Deterministic for ``seed``.
    """
    n = int(indices.numel())
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    if blocks > n:
        raise ValueError(f"cannot split {n} points into {blocks} non-empty blocks")
    cpu_idx = indices.detach().to("cpu")
    shuffled = cpu_idx[torch.randperm(n, generator=generator(seed, "blocks", blocks))]
    shuffled_labels = labels.detach().to("cpu")[shuffled]
    assignment = torch.empty(n, dtype=torch.long)
    pointer = 0
    for cls in torch.unique(shuffled_labels).tolist():
        positions = (shuffled_labels == cls).nonzero().flatten()
        count = int(positions.numel())
        assignment[positions] = (pointer + torch.arange(count)) % blocks
        pointer = (pointer + count) % blocks
    return [shuffled[assignment == b].to(indices.device) for b in range(blocks)]


def block_of(position: float, blocks: int) -> int:
    """The block index at relative ``position`` in [0, 1] (1.0 is the last block)."""
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"position must be in [0, 1], got {position}")
    return min(int(position * blocks), blocks - 1)
