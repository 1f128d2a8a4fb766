"""Pruning schedules: where the kept set shrinks, and to what fraction of the context.

The paper never states the settings behind its tables; its figures show four stages over roughly
30/30/30/10% of the layers keeping 100/70/40/10% of the prompt. A schedule is written by relative
depth so one config transfers across models of different depth, or by absolute layer index when a
sweep wants to pin exact layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


class ScheduleError(ValueError):
    """A schedule that cannot be applied; the message names the offending value."""


def kept_count(fraction: float, n: int) -> int:
    """Tokens a keep fraction leaves out of n: ceil(fraction * n), at least 1 and at most n. The one
    definition every method and the profiler use (the epsilon absorbs 0.7 * 10 = 7.000000000000001)."""
    return min(n, max(1, math.ceil(fraction * n - 1e-9)))


def check_fraction(name: str, value: float) -> None:
    """A keep fraction must be in (0, 1]; the message names the parameter."""
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise ValueError(f"{name} must be in (0, 1], got {value}")


@dataclass(frozen=True)
class Schedule:
    """Boundaries at which the kept set shrinks, and the kept fraction of the context after each.

    `boundaries[i]` is where stage i+1 starts: a relative depth in (0, 1) when `unit="depth"`
    (floored to a layer index, so 0.3 of 32 layers is layer 9, matching the paper's figure), or a
    0-based layer index when `unit="layer"`. Stage 0 always starts at layer 0 and keeps everything.
    `keep[i]` is the fraction of the whole context (prompt plus generated tokens) kept from
    boundary i onward.
    """

    boundaries: tuple[float, ...] = (0.3, 0.6, 0.9)
    keep: tuple[float, ...] = (0.7, 0.4, 0.1)
    unit: Literal["depth", "layer"] = "depth"

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        object.__setattr__(self, "keep", tuple(float(k) for k in self.keep))
        if self.unit not in ("depth", "layer"):
            raise ScheduleError(f"schedule unit must be 'depth' or 'layer', got {self.unit!r}")
        if len(self.boundaries) != len(self.keep):
            raise ScheduleError(
                f"schedule has {len(self.boundaries)} boundaries but {len(self.keep)} keep fractions; "
                "give one kept fraction per boundary"
            )
        for k in self.keep:
            if not (0.0 < k <= 1.0) or math.isnan(k):
                raise ScheduleError(f"keep fraction {k} is outside (0, 1]")
        for a, b in zip(self.keep, self.keep[1:]):
            if b > a:
                raise ScheduleError(f"keep fractions must not increase with depth: {a} then {b}")
        for b in self.boundaries:
            if self.unit == "depth" and not (0.0 < b < 1.0):
                raise ScheduleError(f"depth boundary {b} is outside (0, 1)")
            if self.unit == "layer" and (int(b) != b or b < 1):
                raise ScheduleError(f"layer boundary {b} must be an integer >= 1 (layer 0 cannot be pruned)")
        for a, b in zip(self.boundaries, self.boundaries[1:]):
            if b <= a:
                raise ScheduleError(f"boundaries must be strictly increasing: {a} then {b}")

    @classmethod
    def full(cls) -> Schedule:
        """No pruning at all: one stage over every layer."""
        return cls(boundaries=(), keep=())

    @classmethod
    def from_config(cls, cfg: dict | Schedule | None) -> Schedule:
        if cfg is None:
            return cls()
        if isinstance(cfg, Schedule):
            return cfg
        unknown = set(cfg) - {"boundaries", "keep", "unit"}
        if unknown:
            raise ScheduleError(f"unknown schedule keys {sorted(unknown)}; expected boundaries, keep, unit")
        return cls(
            boundaries=tuple(cfg.get("boundaries", ())),
            keep=tuple(cfg.get("keep", ())),
            unit=cfg.get("unit", "depth"),
        )

    def resolve(self, num_layers: int) -> LayerPlan:
        starts = [0]
        for b in self.boundaries:
            layer = math.floor(b * num_layers + 1e-9) if self.unit == "depth" else int(b)
            if not (1 <= layer < num_layers):
                raise ScheduleError(
                    f"boundary {b} ({self.unit}) maps to layer {layer}, outside 1..{num_layers - 1} "
                    f"for a {num_layers}-layer model"
                )
            if layer <= starts[-1]:
                raise ScheduleError(
                    f"boundary {b} maps to layer {layer}, which does not come after the previous boundary "
                    f"(layer {starts[-1]}) in a {num_layers}-layer model: use fewer or wider-spaced boundaries"
                )
            starts.append(layer)
        return LayerPlan(num_layers=num_layers, starts=tuple(starts), keep=(1.0, *self.keep))

    def describe(self) -> str:
        if not self.boundaries:
            return "full"
        pairs = ",".join(f"{b:g}:{k:g}" for b, k in zip(self.boundaries, self.keep))
        return f"{self.unit}[{pairs}]"


@dataclass(frozen=True)
class LayerPlan:
    """A schedule resolved against one model: stage s covers layers starts[s] .. starts[s+1]-1."""

    num_layers: int
    starts: tuple[int, ...]
    keep: tuple[float, ...]
    ends: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", (*self.starts[1:], self.num_layers))

    @property
    def num_stages(self) -> int:
        return len(self.starts)

    def stage_layers(self) -> Sequence[tuple[int, int, float]]:
        return list(zip(self.starts, self.ends, self.keep))

    def layer_keep_fractions(self) -> list[float]:
        """The nominal kept fraction at every layer, for FLOP-ideal estimates."""
        return [k for s, e, k in self.stage_layers() for _ in range(s, e)]
