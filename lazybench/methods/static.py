"""Static token pruning: the paper's second baseline (Table 1, "static token pruning")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from lazybench.engine import Schedule, StaticPruningPolicy, TokenPolicy
from lazybench.methods.base import Method, register_method


def default_static_schedule() -> Schedule:
    return Schedule(boundaries=(0.3,), keep=(0.5,))


@register_method("static")
@dataclass
class StaticPruning(Method):
    """Prune once in prefill by the last token's attention in an early layer; no revival.

    The paper describes it as pruning "once, based on the attention of the first few layers" and
    gives no settings. Default: one boundary at 30% depth (layer 9 of 32, the end of LazyLLM's first
    stage), keeping 50% of the prompt after it: about 64% of full prefill compute at 32 layers, near
    LazyLLM's default (62.5%), so the two differ in being static, not in budget. Pruned tokens never
    get KV at the later layers, so decoding reads only the kept tokens there (saves both).
    Query-aware (the last prompt token's attention selects). Any schedule works (several
    boundaries prune progressively but still only once); keep 1.0 everywhere is the baseline.
    """

    query_aware: ClassVar[bool] = True
    saves: ClassVar[str] = "both"
    paper_name: ClassVar[str | None] = "Static Token Pruning"
    schedule: Schedule = dataclasses.field(default_factory=default_static_schedule)

    def label(self) -> str:
        return f"static[{self.schedule.describe()}]"

    def policy(self) -> TokenPolicy:
        return StaticPruningPolicy(self.schedule)
