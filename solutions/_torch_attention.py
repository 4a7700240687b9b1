"""Mask shapes shared by the PyTorch chapters' input validation (4-5)."""

from __future__ import annotations

import torch

from ._checks import shape_of


def heads_mask(mask: torch.Tensor) -> torch.Tensor:
    """Lift a mask to broadcast against ``(batch, heads, n_q, n_k)``.

    Accepted: ``(n_q, n_k)``; ``(batch, n_q | 1, n_k)`` (e.g. a padding mask ``(batch, 1, n_k)``), which
    gains a heads axis; ``(batch | 1, heads | 1, n_q | 1, n_k)`` as is.
    """
    if mask.ndim == 3:
        return mask.unsqueeze(1)
    if mask.ndim in (2, 4):
        return mask
    raise ValueError(
        f"mask of shape {shape_of(mask)} must be (n_q, n_k), (batch, n_q, n_k) or (batch, heads, n_q, n_k)"
    )
