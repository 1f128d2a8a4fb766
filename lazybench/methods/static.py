"""Static token pruning: the paper's second baseline (Table 1, "static token pruning"): its policy and
its Method class."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from lazybench.engine import Schedule, Selection, TokenPolicy, mask_indices, top_k_indices
from lazybench.methods.base import ScheduledMethod, register_method


class StaticPruningPolicy(TokenPolicy):
    """Prune once in prefill; later steps keep exactly what prefill computed (no revival, no re-selection).

    A later step keeps the candidates with KV at the boundary layer plus the new token: the
    prefill's kept count at that stage plus every token generated since, a count known on the host.
    """

    name = "static"

    def __init__(self, schedule: Schedule | None = None) -> None:
        super().__init__(schedule)
        self._prompt_len = 0
        self._kept: dict[int, int] = {}  # stage -> prompt tokens kept there in prefill

    def needs_scores(self, step: int, stage: int) -> bool:
        return step == 0

    def select(self, sel: Selection) -> torch.Tensor | None:
        if sel.step == 0:
            kept = top_k_indices(sel.scores, sel.n_keep)
            self._prompt_len = sel.context_len
            self._kept[sel.stage] = sel.candidates.numel() if kept is None else kept.numel()
            return kept
        count = self._kept[sel.stage] + sel.context_len - self._prompt_len
        if count >= sel.candidates.numel():
            return None
        mask = sel.has_kv[sel.layer].index_select(0, sel.candidates)
        mask[-1:].fill_(True)
        return mask_indices(mask, count)


def default_static_schedule() -> Schedule:
    return Schedule(boundaries=(0.3,), keep=(0.5,))


@register_method("static")
@dataclass
class StaticPruning(ScheduledMethod):
    """Prune once in prefill by the last token's attention in an early layer; no revival.

    The paper describes it as pruning "once, based on the attention of the first few layers" and
    gives no settings. Default: one boundary at 30% depth (layer 9 of 32, the end of LazyLLM's first
    stage), keeping 50% of the prompt after it: about 64% of full prefill compute at 32 layers, near
    LazyLLM's default (62.5%), so the two differ in being static, not in budget. Pruned tokens never
    get KV at the later layers, so decoding reads only the kept tokens there (saves both).
    Query-aware (the last prompt token's attention selects). Any schedule works (several
    boundaries prune progressively but still only once); keep 1.0 everywhere is the baseline.
    """

    paper_name: ClassVar[str | None] = "Static Token Pruning"
    policy_class: ClassVar[type[TokenPolicy]] = StaticPruningPolicy
    schedule: Schedule = dataclasses.field(default_factory=default_static_schedule)
