"""LazyLLM (Fu et al. 2024, arXiv 2407.14057): dynamic, progressive token pruning for long-context
prefill, with pruned tokens revived from the Aux Cache in later steps.

The method in one module: its policy (at every boundary of every step, keep the top fraction of the
whole context by the last token's attention, head-averaged, in the layer before the boundary: the
engine's boundary scores, `lazybench.engine.last_query_scores`) and its Method class (the schedule is
its only hyperparameter). The engine does the rest: the Aux Cache, revival, masks and accounting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from lazybench.engine import Schedule, Selection, TokenPolicy, top_k_indices
from lazybench.methods.base import ScheduledMethod, register_method


class LazyLLMPolicy(TokenPolicy):
    """LazyLLM: at every step, re-select from the whole context by the last token's attention."""

    name = "lazyllm"

    def __init__(self, schedule: Schedule | None = None) -> None:
        super().__init__(schedule if schedule is not None else Schedule())

    def needs_scores(self, step: int, stage: int) -> bool:
        return True

    def select(self, sel: Selection) -> torch.Tensor | None:
        return top_k_indices(sel.scores, sel.n_keep)


@register_method("lazyllm")
@dataclass
class LazyLLM(ScheduledMethod):
    """LazyLLM: progressive pruning re-selected at every step, pruned tokens revived from the Aux
    Cache. Default schedule: the paper's figures (see Schedule): boundaries at relative depths
    0.3/0.6/0.9 (`unit: depth`; layer indices >= 1 with `unit: layer`) keeping 0.7/0.4/0.1 of the
    context (non-increasing, in (0, 1]). Label: `lazyllm[<schedule>]` unless `label` is set.

        lazybench method.schedule.keep=[0.8,0.5,0.2]
        lazybench method.schedule.unit=layer method.schedule.boundaries=[8,16,24]
    """

    paper_name: ClassVar[str | None] = "LazyLLM"
    policy_class: ClassVar[type[TokenPolicy]] = LazyLLMPolicy
