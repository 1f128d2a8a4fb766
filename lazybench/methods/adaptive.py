"""Adaptive LazyLLM: at each boundary keep the fewest tokens holding a fraction p of the attention mass.

LazyLLM keeps a fixed fraction of the context at each pruning boundary, whatever the prompt. This
variant (issue 12, "beyond the paper") is LazyLLM in every respect but one: how many tokens go on.
Boundaries and positions, the importance score (the newest token's attention over the active
context at the layer before the boundary, averaged over query heads), progressive and nested kept
sets, re-selection at every step and revival from the Aux Cache in decoding are LazyLLM's own
(`AdaptivePolicy` subclasses `LazyLLMPolicy` and only changes the count). The count rule:

    sort the candidates' importance in descending order, cumulative sum / total over the candidates
    (the currently active context, the newest token's own score included); k = the smallest count
    whose cumulative mass is >= p; then k is clamped to [ceil(floor * N), ceil(ceiling * N)], and
    to the candidates at hand (nesting), where N is the whole current context (prompt plus the
    tokens generated so far), the same N LazyLLM's keep fractions refer to.

Floor and ceiling are fractions of N rather than of the active count so they read like LazyLLM's
keep fractions and bound the FLOP-ideal speedup analytically: every boundary keeping the ceiling
is the slowest this method can run, every boundary at the floor the fastest
(`lazybench.protocol.cost`). The kept tokens are then picked exactly as LazyLLM picks its n_keep
(the newest token plus the best-scored others), so p = anything with floor = ceiling = keep is
LazyLLM with that constant keep.

Device reads: k depends on the scores, so the host reads one number per boundary (the count of
the sorted cumulative mass below p), before the selection is sized. A fixed-size top-k at the
ceiling with the tail masked would avoid the read but compute ceiling-many rows at every later
layer, giving back the very saving the rule is for, so one read per boundary (three per step with
three boundaries) is the price, paid in prefill and decoding alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from lazybench.engine import Schedule, Selection, TokenPolicy, kept_count, top_k_indices
from lazybench.methods.base import Method, register_method
from lazybench.methods.lazyllm import LazyLLMPolicy

DEFAULT_BOUNDARIES = (0.3, 0.6, 0.9)
DEFAULT_FLOOR = 0.05
DEFAULT_CEILING = 0.9


def mass_count(scores: torch.Tensor, keep_mass: float) -> int:
    """The fewest of `scores` (largest first) whose sum is >= keep_mass x their total: one device read.

    Summed in float64 so that the cut depends on the scores, not on the order of fp32 additions."""
    ordered = torch.sort(scores.double(), descending=True).values
    cum = ordered.cumsum(0)
    below = int((cum < keep_mass * cum[-1]).sum())  # the one host read of the boundary
    return min(scores.numel(), below + 1)


def check_mass_rule(keep_mass: float, floor: float, ceiling: float) -> None:
    """One clear line for a bad setting (config values, before any weights load)."""
    for name, value in (("keep_mass", keep_mass), ("floor", floor), ("ceiling", ceiling)):
        if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 < value <= 1.0:
            raise ValueError(f"adaptive: {name} must be in (0, 1], got {value!r}")
    if floor > ceiling:
        raise ValueError(f"adaptive: floor {floor} is above ceiling {ceiling}")


class AdaptivePolicy(LazyLLMPolicy):
    """LazyLLM whose kept count at each boundary is set by the attention mass (module docstring)."""

    name = "adaptive"

    def __init__(
        self,
        schedule: Schedule,
        keep_mass: float,
        floor: float = DEFAULT_FLOOR,
        ceiling: float = DEFAULT_CEILING,
    ) -> None:
        check_mass_rule(keep_mass, floor, ceiling)
        super().__init__(schedule)
        self.keep_mass, self.floor, self.ceiling = float(keep_mass), float(floor), float(ceiling)

    def count(self, sel: Selection) -> int:
        """k for this boundary: the mass count, clamped to the floor/ceiling of the context and to
        the candidates at hand."""
        wanted = mass_count(sel.scores, self.keep_mass)
        low, high = kept_count(self.floor, sel.context_len), kept_count(self.ceiling, sel.context_len)
        return min(sel.candidates.numel(), max(low, min(high, wanted)))

    def select(self, sel: Selection) -> torch.Tensor | None:
        return top_k_indices(sel.scores, self.count(sel))


@register_method("adaptive")
@dataclass
class AdaptiveLazyLLM(Method):
    """LazyLLM with a mass-based kept set (lazybench.methods.adaptive): at each of `boundaries` keep
    the fewest tokens holding `keep_mass` of the newest token's attention, between `floor` and
    `ceiling` of the context. Boundaries as in a LazyLLM schedule (`unit`: depth or layer).

        lazybench method=adaptive method.keep_mass=0.95
        lazybench method=adaptive method.unit=layer 'method.boundaries=[9,19,28]'
    """

    query_aware: ClassVar[bool] = True
    saves: ClassVar[str] = "both"
    keep_mass: float = 0.99
    boundaries: tuple[float, ...] = field(default=DEFAULT_BOUNDARIES)
    unit: str = "depth"
    floor: float = DEFAULT_FLOOR
    ceiling: float = DEFAULT_CEILING

    def __post_init__(self) -> None:
        self.boundaries = tuple(self.boundaries)
        check_mass_rule(self.keep_mass, self.floor, self.ceiling)
        self.schedule  # noqa: B018 - validates the boundaries now (a ScheduleError names the bad one)

    @property
    def schedule(self) -> Schedule:
        """The boundaries as a LazyLLM schedule; its keep fractions (the ceiling) are not used by the
        count rule, only by estimates that read a schedule (an upper bound on the kept rows)."""
        return Schedule(self.boundaries, (self.ceiling,) * len(self.boundaries), unit=self.unit)

    def label(self) -> str:
        return adaptive_label(self.keep_mass, self.boundaries, self.unit, self.floor, self.ceiling)

    def policy(self) -> TokenPolicy:
        return AdaptivePolicy(self.schedule, self.keep_mass, self.floor, self.ceiling)


def adaptive_label(keep_mass: float, boundaries, unit: str, floor: float, ceiling: float) -> str:
    """`adaptive[p0.9,L9,L19,L28,f0.05,c0.9]` (layer boundaries) or `adaptive[p0.9,d0.3,...]` (depths)."""
    where = ",".join(f"L{int(b)}" if unit == "layer" else f"d{b:g}" for b in boundaries)
    return f"adaptive[p{keep_mass:g},{where},f{floor:g},c{ceiling:g}]"
