"""Token policies: at each pruning boundary of each step, which candidate tokens go on.

The engine owns the mechanics (caches, revival, masks); a policy only answers "which of these
tokens are kept", so LazyLLM, static pruning and the KV-selection rivals differ in a few lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lazybench.engine.schedule import Schedule


@dataclass
class Selection:
    """What a policy sees at one boundary: candidates are sorted positions, the last is the newest token."""

    step: int
    stage: int
    layer: int
    keep_fraction: float
    context_len: int
    candidates: torch.Tensor
    scores: torch.Tensor | None
    has_kv: torch.Tensor  # [num_layers, capacity] bool, read-only

    @property
    def n_keep(self) -> int:
        """The kept count is a fraction of the whole context (not of the stage's input), at least 1."""
        return min(self.candidates.numel(), max(1, math.ceil(self.keep_fraction * self.context_len - 1e-9)))


class TokenPolicy:
    """Base policy: no pruning anywhere (full prefill and full-context decoding)."""

    name = "full"

    def __init__(self, schedule: Schedule | None = None) -> None:
        self.schedule = schedule if schedule is not None else Schedule.full()

    def needs_scores(self, step: int, stage: int) -> bool:
        return False

    def initial_active(self, step: int, context_len: int, device: torch.device) -> torch.Tensor | None:
        """Positions visible at layer 0 of this step; None means the whole context."""
        return None

    def select(self, sel: Selection) -> torch.Tensor | None:
        """A bool mask over `sel.candidates`, or None to keep them all."""
        return None


def top_k_mask(scores: torch.Tensor, n_keep: int) -> torch.Tensor | None:
    """Keep the n_keep highest-scoring candidates, always including the last (the query token)."""
    if n_keep >= scores.numel():
        return None
    forced = scores.clone()
    forced[-1] = torch.inf
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[torch.topk(forced, n_keep, sorted=False).indices] = True
    return mask


class LazyLLMPolicy(TokenPolicy):
    """LazyLLM: at every step, re-select from the whole context by the last token's attention."""

    name = "lazyllm"

    def __init__(self, schedule: Schedule | None = None) -> None:
        super().__init__(schedule if schedule is not None else Schedule())

    def needs_scores(self, step: int, stage: int) -> bool:
        return True

    def select(self, sel: Selection) -> torch.Tensor | None:
        return top_k_mask(sel.scores, sel.n_keep)


class StaticPruningPolicy(TokenPolicy):
    """Prune once in prefill; later steps keep exactly what prefill computed (no revival, no re-selection)."""

    name = "static"

    def needs_scores(self, step: int, stage: int) -> bool:
        return step == 0

    def select(self, sel: Selection) -> torch.Tensor | None:
        if sel.step == 0:
            return top_k_mask(sel.scores, sel.n_keep)
        mask = sel.has_kv[sel.layer, sel.candidates].clone()
        mask[-1] = True
        return None if bool(mask.all()) else mask
