"""The statistics of recorded attention rows: concentration, entropy and what a selection retains.

Pure tensor functions over score matrices `[layers, N]` (one row per scored layer, each a
probability distribution over the prompt's N tokens), so the schedule proposal and the tests can
use them without a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from lazybench.engine import kept_count

#: keep fractions the proposal chooses from (and the x axis of the mass curves).
GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
TOP_FRACTIONS: tuple[float, ...] = (0.1, 0.3, 0.5)


class ProfileError(ValueError):
    """The profile cannot be computed (e.g. a one-layer model, an empty prompt)."""


def top_mass(scores: torch.Tensor, fractions: Sequence[float]) -> torch.Tensor:
    """[layers, len(fractions)]: mass held by the top `fraction` of tokens at each layer."""
    n = scores.shape[-1]
    cum = torch.sort(scores, dim=-1, descending=True).values.cumsum(-1)
    idx = torch.tensor([kept_count(f, n) - 1 for f in fractions])
    return cum[:, idx].clamp(max=1.0)


def normalized_entropy(scores: torch.Tensor) -> torch.Tensor:
    """[layers]: H(s) / log N, in [0, 1]."""
    n = scores.shape[-1]
    p = scores.clamp(min=0)
    h = -(p * torch.log(p.clamp(min=1e-30))).sum(-1)
    return (h / math.log(n)).clamp(0.0, 1.0) if n > 1 else torch.zeros(scores.shape[0])


def retention(scores: torch.Tensor, grid: Sequence[float] = GRID) -> torch.Tensor:
    """[r, j, g]: mass of layer j's attention on the tokens layer r's scores would keep at grid[g].

    The selection is LazyLLM's: top-k by layer r's scores with the last token always kept. This is
    what a single boundary after layer r with keep grid[g] retains of every layer's attention.
    """
    n_layers, n = scores.shape
    idx = torch.tensor([kept_count(f, n) - 1 for f in grid])
    out = torch.empty(n_layers, n_layers, len(grid))
    for r in range(n_layers):
        ranking = scores[r].clone()
        ranking[-1] = torch.inf
        order = torch.argsort(ranking, descending=True)
        out[r] = scores[:, order].cumsum(-1)[:, idx].clamp(max=1.0)
    return out


def nested_retention(scores: torch.Tensor, boundaries: Sequence[int], keep: Sequence[float]) -> torch.Tensor:
    """[layers]: mass of each layer's attention on the tokens a schedule keeps at that layer.

    Simulates progressive pruning on full-prefill scores: at boundary b the survivors are cut to
    ceil(keep * N) by layer b-1's scores (last token forced). An approximation, since real pruning
    changes the later layers' attention; it is what the proposal is checked against.
    """
    n_layers, n = scores.shape
    kept = torch.ones(n, dtype=torch.bool)
    out = torch.ones(n_layers)
    stage_of = {b: k for b, k in zip(boundaries, keep)}
    for layer in range(n_layers):
        if layer in stage_of:
            ranking = scores[layer - 1].clone()
            ranking[-1] = torch.inf
            ranking[~kept] = -torch.inf
            n_keep = min(int(kept.sum()), kept_count(stage_of[layer], n))
            new = torch.zeros(n, dtype=torch.bool)
            new[torch.topk(ranking, n_keep).indices] = True
            kept = new
        out[layer] = scores[layer, kept].sum().clamp(max=1.0)
    return out
