"""Attention masks of one stage, one per sliding window that the stage's layers use (None: full
attention), built from token positions, never from row order: rows are a subset of the context.

A stage builds its masks once; every layer of the stage reuses the one for its window.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lazybench.engine.adapter import ModelParts


def window_masks(
    parts: ModelParts,
    windows: Sequence[int | None],
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    self_attending: bool,
    max_span: int | None = None,
) -> dict[int | None, torch.Tensor | None]:
    """Masks of queries at `q_pos` over keys at `k_pos`, by window.

    None where SDPA's own causal flag (or no mask, for a single newest query) is exact: an
    explicit mask halves CPU prefill attention (see shared/notes/transformers5_notes.md).
    `max_span` bounds (newest query - oldest key), so whether a window can bind is decided on
    the host; a window mask where it cannot bind is merely redundant. A single query is the
    newest token (always kept), so every key is causally visible to it.
    """
    eager = parts.attn_impl == "eager"
    masks: dict[int | None, torch.Tensor | None] = {}
    single_newest = q_pos.numel() == 1
    for window in windows:
        span = max_span if max_span is not None or window is None else int(q_pos[-1] - k_pos[0])
        needs_window = window is not None and span >= window
        if not eager and not needs_window and (self_attending or single_newest):
            masks[window] = None
            continue
        if single_newest:
            allowed = torch.ones_like(k_pos, dtype=torch.bool)[None]
        else:
            allowed = k_pos[None, :] <= q_pos[:, None]
        if needs_window:
            allowed = allowed & (k_pos[None, :] > q_pos[:, None] - window)
        allowed = allowed[None, None]
        if eager:
            allowed = torch.zeros(allowed.shape, dtype=parts.dtype, device=allowed.device).masked_fill(
                ~allowed, torch.finfo(parts.dtype).min
            )
        masks[window] = allowed
    return masks


def newest_masks(
    parts: ModelParts, windows: Sequence[int | None], active: torch.Tensor, context_len: int
) -> dict[int | None, torch.Tensor]:
    """Masks over the whole prefix for the newest token alone (the masked decode read): 0 at the
    active keys (and inside the window), the dtype's lowest value elsewhere. Additive, not bool,
    so SDPA need not convert it at every layer; the newest token is always active, so no row is
    fully masked."""
    lowest = torch.finfo(parts.dtype).min
    member = torch.full((context_len,), lowest, dtype=parts.dtype, device=active.device)
    member.index_fill_(0, active, 0.0)
    masks = {}
    for window in windows:
        mask = member
        if window is not None and context_len > window:  # keys up to context_len - 1 - window
            mask = member.clone()
            mask[: context_len - window].fill_(lowest)
        masks[window] = mask.view(1, 1, 1, context_len)
    return masks
