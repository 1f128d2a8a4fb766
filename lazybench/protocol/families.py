"""Operating-point families: for each method, settings that span the FLOP-ideal TTFT speedups.

The paper's Table 1 is a table of operating points (§5.2, Figure 5): per model, category and
method, a setting picked from a sweep of that method's hyperparameters. A family lays such a sweep
along the speed axis without brute force: each setting is solved for a target speedup (evenly
spaced in log between `min_speedup` and `max_speedup`) from the model's shape and the run's
prompt length, with the analytic prefill FLOPs of `lazybench.protocol.cost`.

How each family reaches a target (one knob solved by bisection, the others picked from a short,
ordered list so that the latest / mildest pruning able to reach the target is used, because
pruning late hurts accuracy less):

- lazyllm: the number and positions of pruning steps from TEMPLATES (three steps at 50/70/90% of
  the depth first, then the paper figure's 30/60/90%, earlier ones, and a four-step schedule for
  the fastest points); the sizes are a geometric profile r, r^2, r^3, ... of the context, r solved.
- static: one boundary at the latest of STATIC_DEPTHS that can reach the target, its keep solved.
- random_drop: the keep ratio solved.
- gemfilter: the filter layer at the latest of GEMFILTER_DEPTHS that can reach the target (its own
  paper's 13/32 first), the kept fraction solved.
- selective_context: its compressor costs a forward of its own (the paper's "using LLMs": up to
  ~2x a prefill when the compressor is the target model), so no keep reaches a speedup above 1;
  the family is a list of compression rates (`compression_keeps`, default `points` from 0.8 to 0.2).
- streamingllm, snapkv, h2o: they never shorten prefill; a couple of KV budgets (`kv_budgets`,
  fractions of the prompt) each.
- adaptive (lazybench.methods.adaptive, beyond the paper): how much it keeps depends on the prompt's
  attention, so no setting can be solved for a speed. The family is a list of attention masses
  (`adaptive_masses`, largest first) at one boundary template (LazyLLM's default 30/60/90% depth,
  or `params.adaptive.boundaries`), with the method's floor and ceiling (or `params.adaptive`);
  a setting's speed is measured (the records' prefill FLOP fraction), and only its FLOP-ideal
  range is known in advance: every boundary at the ceiling to every boundary at the floor.

Settings are written with layer indices (`unit: layer`), so a label names exactly what ran, e.g.
`lazyllm[L9:0.62,L19:0.38,L28:0.24]`, `static[L6:0.35]`, `gemfilter[L12:0.3]`,
`adaptive[p0.9,L9,L19,L28,f0.05,c0.9]` (mass, boundaries, floor, ceiling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lazybench.engine import Schedule, ScheduleError
from lazybench.methods.adaptive import (
    DEFAULT_BOUNDARIES,
    DEFAULT_CEILING,
    DEFAULT_FLOOR,
    adaptive_label,
    check_mass_rule,
)
from lazybench.protocol.cost import (
    ModelShape,
    adaptive_speed_range,
    geometric_targets,
    ideal_speedup,
    kept,
    solve_decreasing,
)

#: LazyLLM step templates (relative depths), mildest first.
TEMPLATES: tuple[tuple[float, ...], ...] = (
    (0.5, 0.7, 0.9),
    (0.3, 0.6, 0.9),
    (0.2, 0.5, 0.8),
    (0.1, 0.4, 0.7),
    (0.1, 0.25, 0.5, 0.75),
)
#: The smallest geometric ratio r of a LazyLLM template (keeps r, r^2, ...): below it a template
#: counts as unable to reach a target, and the next, earlier one is used.
R_MIN = 0.25
STATIC_DEPTHS = (0.3, 0.2, 0.1, 0.05)
GEMFILTER_DEPTHS = (0.40625, 0.25, 0.125, 0.0625)
#: The smallest kept fraction a solved setting may use (static pruning, GemFilter, random drop).
KEEP_MIN = 0.05
PREFILL_FAMILIES = ("lazyllm", "static", "random_drop", "gemfilter")
KV_FAMILIES = ("streamingllm", "snapkv", "h2o")
FAMILIES = (*PREFILL_FAMILIES, "selective_context", *KV_FAMILIES, "adaptive")
#: The adaptive family's default attention masses, mildest (largest) first.
ADAPTIVE_MASSES = (0.9995, 0.999, 0.995, 0.99, 0.98)


@dataclass(frozen=True)
class Setting:
    """One operating point: a method configuration, its label and its FLOP-ideal TTFT speedup."""

    family: str  # the method's registry name
    label: str
    params: dict[str, Any]
    speedup: float | None  # FLOP-ideal TTFT speedup at the sweep's prompt length (None: measured only)
    target: float | None = None  # the speedup it was solved for (None: a listed rate or budget)
    speed_range: tuple[float, float] | None = None  # when speedup is None: its FLOP-ideal bounds

    def entry(self, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `methods:` entry that runs it (fixed family parameters, e.g. a compressor, merged in)."""
        return {"name": self.family, "label": self.label, **(fixed or {}), **self.params}


@dataclass(frozen=True)
class SweepSpec:
    """The `sweep:` config key: which families, how many points, over which speedups."""

    families: tuple[str, ...]
    points: int = 6
    min_speedup: float = 1.1
    max_speedup: float = 5.0
    target_speedups: tuple[float, ...] | None = None
    kv_budgets: tuple[float, ...] = (0.5, 0.2)
    compression_keeps: tuple[float, ...] | None = None
    variants: int = 1  # LazyLLM templates per target (the next, earlier ones too when > 1)
    adaptive_masses: tuple[float, ...] = ADAPTIVE_MASSES  # the adaptive family's attention masses
    prompt_tokens: int | None = None  # null: the run's model.max_length
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # fixed parameters per family

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> SweepSpec:
        """Validate a `sweep:` mapping; ValueError names the bad key or value."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown sweep keys {unknown}; allowed: {sorted(allowed)}")
        families = data.get("families")
        if isinstance(families, str):
            families = [families]
        if not families:
            raise ValueError(f"sweep.families must list method families, choose from {', '.join(FAMILIES)}")
        bad = [f for f in families if f not in FAMILIES]
        if bad:
            raise ValueError(f"unknown sweep family {bad[0]!r}; choose from {', '.join(FAMILIES)}")
        spec = cls(
            families=tuple(dict.fromkeys(families)),
            points=int(data.get("points", 6)),
            min_speedup=float(data.get("min_speedup", 1.1)),
            max_speedup=float(data.get("max_speedup", 5.0)),
            target_speedups=_floats(data.get("target_speedups")),
            kv_budgets=_floats(data.get("kv_budgets", (0.5, 0.2))) or (),
            compression_keeps=_floats(data.get("compression_keeps")),
            variants=int(data.get("variants", 1)),
            adaptive_masses=_floats(data.get("adaptive_masses")) or ADAPTIVE_MASSES,
            prompt_tokens=None if data.get("prompt_tokens") is None else int(data["prompt_tokens"]),
            params={str(k): dict(v or {}) for k, v in (data.get("params") or {}).items()},
        )
        spec.check()
        return spec

    def check(self) -> None:
        if self.points < 1 or self.variants < 1:
            raise ValueError(
                f"sweep.points and sweep.variants must be >= 1, got {self.points}, {self.variants}"
            )
        if not 1.0 < self.min_speedup <= self.max_speedup:
            raise ValueError(
                f"sweep needs 1 < min_speedup <= max_speedup, got {self.min_speedup}, {self.max_speedup}"
            )
        if self.target_speedups is not None and any(t <= 1.0 for t in self.target_speedups):
            raise ValueError(f"sweep.target_speedups must all be > 1, got {list(self.target_speedups)}")
        for name, values in (
            ("kv_budgets", self.kv_budgets),
            ("compression_keeps", self.compression_keeps),
            ("adaptive_masses", self.adaptive_masses),
        ):
            if values is not None and any(not 0.0 < v <= 1.0 for v in values):
                raise ValueError(f"sweep.{name} must be fractions in (0, 1], got {list(values)}")
        if self.prompt_tokens is not None and self.prompt_tokens < 2:
            raise ValueError(f"sweep.prompt_tokens must be >= 2, got {self.prompt_tokens}")
        stray = sorted(set(self.params) - set(self.families))
        if stray:
            raise ValueError(
                f"sweep.params names {stray}, which are not in sweep.families {list(self.families)}"
            )

    def targets(self) -> list[float]:
        if self.target_speedups is not None:
            return sorted(self.target_speedups)
        return geometric_targets(self.min_speedup, self.max_speedup, self.points)

    def keeps(self) -> list[float]:
        if self.compression_keeps is not None:
            return sorted(self.compression_keeps, reverse=True)
        n = self.points
        return [round(0.8 - 0.6 * i / max(n - 1, 1), 2) for i in range(n)] if n > 1 else [0.5]


def _floats(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return (float(value),)
    return tuple(float(v) for v in value)


# --- the families ---------------------------------------------------------------------------------
Generator = Callable[[ModelShape, int, SweepSpec, ModelShape | None], list[Setting]]


def _layers(depths: Sequence[float], num_layers: int) -> tuple[int, ...] | None:
    """The template's boundaries as layer indices on this model, or None when they do not fit."""
    try:
        return Schedule(boundaries=tuple(depths), keep=(1.0,) * len(depths)).resolve(num_layers).starts[1:]
    except ScheduleError:
        return None


def _lazyllm_params(layers: Sequence[int], r: float) -> dict[str, Any]:
    keep = [max(round(r ** (i + 1), 3), 0.001) for i in range(len(layers))]
    return {"schedule": {"boundaries": list(layers), "keep": keep, "unit": "layer"}}


def _schedule_label(family: str, params: Mapping[str, Any]) -> str:
    s = params["schedule"]
    return f"{family}[" + ",".join(f"L{b}:{k:g}" for b, k in zip(s["boundaries"], s["keep"])) + "]"


def lazyllm_family(shape: ModelShape, n: int, spec: SweepSpec, _c=None) -> list[Setting]:
    fits = [layers for layers in dict.fromkeys(_layers(t, shape.num_layers) for t in TEMPLATES) if layers]

    def speed(layers, r):
        return ideal_speedup(shape, "lazyllm", _lazyllm_params(layers, r), n)

    out = []
    for target in spec.targets():
        able = [layers for layers in fits if speed(layers, R_MIN) >= target] or fits[-1:]
        for layers in able[: spec.variants]:
            r = solve_decreasing(lambda x, ly=layers: speed(ly, x), target, R_MIN, 0.999)
            params = _lazyllm_params(layers, r)
            out.append(_setting("lazyllm", _schedule_label("lazyllm", params), params, shape, n, target))
    return out


def _one_knob(
    family: str,
    shape: ModelShape,
    n: int,
    spec: SweepSpec,
    places: Sequence[Any],
    params_of: Callable[[Any, float], dict[str, Any]],
    label_of: Callable[[Any, float], str],
) -> list[Setting]:
    """A family with a place (a layer, or nothing) picked from `places` (mildest first) and a kept
    fraction solved for each target."""
    out = []
    for target in spec.targets():

        def speed(place, keep):
            return ideal_speedup(shape, family, params_of(place, keep), n)

        able = [p for p in places if speed(p, KEEP_MIN) >= target] or list(places[-1:])
        place = able[0]
        keep = round(solve_decreasing(lambda k, p=place: speed(p, k), target, KEEP_MIN, 1.0), 3)
        out.append(_setting(family, label_of(place, keep), params_of(place, keep), shape, n, target))
    return out


def static_family(shape: ModelShape, n: int, spec: SweepSpec, _c=None) -> list[Setting]:
    places = [ly[0] for ly in dict.fromkeys(_layers((d,), shape.num_layers) for d in STATIC_DEPTHS) if ly]
    return _one_knob(
        "static",
        shape,
        n,
        spec,
        places,
        lambda layer, keep: {"schedule": {"boundaries": [layer], "keep": [keep], "unit": "layer"}},
        lambda layer, keep: f"static[L{layer}:{keep:g}]",
    )


def random_drop_family(shape: ModelShape, n: int, spec: SweepSpec, _c=None) -> list[Setting]:
    return _one_knob(
        "random_drop",
        shape,
        n,
        spec,
        [None],
        lambda _, keep: {"keep": keep},
        lambda _, keep: f"random_drop[{keep:g}]",
    )


def gemfilter_family(shape: ModelShape, n: int, spec: SweepSpec, _c=None) -> list[Setting]:
    places = list(dict.fromkeys(math.floor(d * shape.num_layers) for d in GEMFILTER_DEPTHS))
    return _one_knob(
        "gemfilter",
        shape,
        n,
        spec,
        places,
        lambda layer, keep: {"filter_layer": layer, "keep": keep},
        lambda layer, keep: f"gemfilter[L{layer}:{keep:g}]",
    )


def selective_context_family(
    shape: ModelShape, n: int, spec: SweepSpec, compressor: ModelShape | None = None
) -> list[Setting]:
    out = []
    for keep in spec.keeps():
        params = {"keep": keep}
        fixed = _with_fixed(spec, "selective_context", params)
        speed = ideal_speedup(shape, "selective_context", fixed, n, compressor)
        out.append(Setting("selective_context", f"selective_context[{keep:g}]", params, speed))
    return out


def _kv_family(family: str, params_of: Callable[[float], dict[str, Any]], label_of) -> Generator:
    def generate(shape: ModelShape, n: int, spec: SweepSpec, _c=None) -> list[Setting]:
        out = []
        for budget in spec.kv_budgets:
            params = params_of(budget, n)
            out.append(Setting(family, label_of(params), params, ideal_speedup(shape, family, params, n)))
        return out

    return generate


def adaptive_family(shape: ModelShape, n: int, spec: SweepSpec, _c=None) -> list[Setting]:
    """One setting per attention mass (largest first) at one boundary template; speed measured."""
    fixed = spec.params.get("adaptive", {})
    floor, ceiling = float(fixed.get("floor", DEFAULT_FLOOR)), float(fixed.get("ceiling", DEFAULT_CEILING))
    bounds = tuple(fixed.get("boundaries", DEFAULT_BOUNDARIES))
    try:
        check_mass_rule(1.0, floor, ceiling)
        plan = Schedule(bounds, (1.0,) * len(bounds), unit=fixed.get("unit", "depth")).resolve(
            shape.num_layers
        )
    except ValueError as err:
        raise ValueError(f"sweep.params.adaptive: {err}") from None
    layers = list(plan.starts[1:])
    speeds = adaptive_speed_range(shape, layers, floor, ceiling, n)
    out = []
    for mass in sorted(spec.adaptive_masses, reverse=True):
        params = {"keep_mass": mass, "boundaries": layers, "unit": "layer"}
        label = adaptive_label(mass, layers, "layer", floor, ceiling)
        out.append(Setting("adaptive", label, params, None, speed_range=speeds))
    return out


GENERATORS: dict[str, Generator] = {
    "lazyllm": lazyllm_family,
    "static": static_family,
    "random_drop": random_drop_family,
    "gemfilter": gemfilter_family,
    "selective_context": selective_context_family,
    "streamingllm": _kv_family(
        "streamingllm",
        lambda f, n: {"n_sink": 4, "window": max(1, kept(f, n) - 4)},
        lambda p: f"streamingllm[{p['n_sink']}+{p['window']}]",
    ),
    "snapkv": _kv_family("snapkv", lambda f, n: {"keep": f}, lambda p: f"snapkv[{p['keep']:g}]"),
    "h2o": _kv_family(
        "h2o",
        lambda f, n: {"heavy_ratio": f / 2, "recent_ratio": f / 2},
        lambda p: f"h2o[{p['heavy_ratio']:g}+{p['recent_ratio']:g}]",
    ),
    "adaptive": adaptive_family,
}


def _setting(family: str, label: str, params: dict, shape: ModelShape, n: int, target: float) -> Setting:
    return Setting(family, label, params, ideal_speedup(shape, family, params, n), target)


def _with_fixed(spec: SweepSpec, family: str, params: dict[str, Any]) -> dict[str, Any]:
    return {**spec.params.get(family, {}), **params}


def expand(spec: SweepSpec, shape: ModelShape, n: int, compressor: ModelShape | None = None) -> list[Setting]:
    """Every family's settings at an n-token prompt, in family order, duplicates (same label) dropped;
    within a family, by increasing speedup (a family whose speed is measured keeps its own order)."""
    out: dict[str, Setting] = {}
    for family in spec.families:
        settings = GENERATORS[family](shape, n, spec, compressor)
        for s in sorted(settings, key=lambda s: 0.0 if s.speedup is None else s.speedup):
            out.setdefault(s.label, s)
    return list(out.values())
