"""What a protocol preset's dry run adds: the sweep's settings and both phases with their cost.

Phase 1 (`protocol.phase: dev`) is the run itself: every family's settings on the dev rows. Phase 2
runs the test rows at the points the selection will choose; before the selection, its plan is the
same run on the test rows with one stand-in setting per family (each test row runs exactly one
chosen setting per family, so its unit count is exact; the time estimate, like the dry run's, costs
every unit as a full prefill).
"""

from __future__ import annotations

import copy
from typing import Any

from omegaconf import DictConfig, open_dict

from lazybench.analysis.operating_points import Rule
from lazybench.protocol.sweep import prompt_tokens, sweep_settings, sweep_spec
from lazybench.runner.config import absolute, to_plain
from lazybench.shards import owner

#: What the whole protocol's line says it adds up.
_BOTH = "both phases; upper bounds as above"


def settings_lines(cfg: DictConfig, config: Any) -> list[str]:
    spec = sweep_spec(cfg)
    if spec is None:
        return []
    settings = sweep_settings(cfg, config)
    lines = [
        f"sweep: {len(settings)} settings, FLOP-ideal TTFT speedup at {prompt_tokens(cfg, spec)} prompt tokens:"
    ]
    for family in spec.families:
        mine = [s for s in settings if s.family == family]
        measured = [s for s in mine if s.speedup is None]
        if measured:  # speed follows the prompt (adaptive): only its FLOP-ideal bounds are known
            slow, fast = measured[0].speed_range or (float("nan"), float("nan"))
            lines.append(
                f"  {family} (speed measured, not solved; FLOP-ideal {slow:.2f}x at the ceiling .. "
                f"{fast:.2f}x at the floor): " + ", ".join(s.label for s in measured)
            )
        solved = [f"{s.label} {s.speedup:.2f}x" for s in mine if s.speedup is not None]
        if solved:
            lines.append(f"  {family}: " + ", ".join(solved))
    return lines


def protocol_outline(cfg: DictConfig, hours=None, why: str = "", rates: dict[str, Any] | None = None) -> str:
    """The phases of a protocol preset when no plan can be made here (the model or the hub is not
    available): what each phase runs, without the settings' speedups (they need the model's shape),
    and, given phase 1's `hours` (lazybench.runner.shard_cost), the whole protocol's."""
    spec = sweep_spec(cfg)
    proto = to_plain(cfg.get("protocol")) or {}
    if spec is None or proto.get("phase") != "dev":
        return ""
    split = to_plain(cfg.get("split")) or {}
    points = proto.get("points") or f"{proto.get('experiment', '<preset>')}_points"
    rule = Rule.from_config(to_plain(proto.get("select")) or {}).describe()
    return "\n".join(
        [
            "",
            f"phase 1 of 2 (dev sweep on the dev part of the rows, dev_fraction {split.get('dev_fraction')}): "
            f"families {', '.join(spec.families)}, {spec.points} settings each, solved from the model's "
            f"shape for FLOP-ideal TTFT speedups {spec.min_speedup}x..{spec.max_speedup}x (the methods "
            "line above, where the preset's published shape is known)"
            + (
                f"; adaptive: attention masses {', '.join(f'{m:g}' for m in spec.adaptive_masses)}, "
                "speed measured, not solved"
                if "adaptive" in spec.families
                else ""
            ),
            f"selection: lazybench protocol select <phase-1 run dir> -> conf/experiment/{points}.yaml "
            f"(rule: {rule})",
            f"phase 2 of 2 (test rows at the chosen points): lazybench experiment={points}, "
            "one chosen setting per family per category",
            *_whole(cfg, hours, why, rates),
        ]
    )


def _whole(cfg: DictConfig, hours, why: str, rates) -> list[str]:
    """The whole protocol's rows and hours (per shard when sharded), phase 2 costed like phase 1."""
    from lazybench.runner.dryrun import describe_unavailable_parts

    if hours is None:
        return []
    second = describe_unavailable_parts(phase_two_cfg(cfg), why, rates)[1]
    if second is None:
        return []
    this = cfg.shard.index if hours.count > 1 else None
    return (hours + second).lines("protocol", this, _BOTH)


def phase_two_cfg(cfg: DictConfig) -> DictConfig:
    """Phase 2's config before the selection: test rows, one stand-in setting per sweep family."""
    spec = sweep_spec(cfg)
    out = copy.deepcopy(cfg)
    with open_dict(out):
        out.split.part = "test"
        out.sweep = None
        fixed = {
            f: {k: v for k, v in spec.params.get(f, {}).items() if k != "repeats"} for f in spec.families
        }
        stand_ins = [{"name": f, "label": f"{f}-chosen", **fixed[f]} for f in spec.families]
        out.methods = ["baseline", *stand_ins]
    return out


def protocol_text(cfg: DictConfig, plan, rates: dict[str, Any] | None, hours) -> str:
    """Dry-run lines for a sweep or a protocol preset ("" for other runs); `hours`: the run's own
    (phase 1's) rows and hours per shard (lazybench.runner.shard_cost)."""
    from lazybench.runner.dryrun import describe_parts
    from lazybench.runner.run import prepare

    lines = settings_lines(cfg, plan.model_config)
    proto = to_plain(cfg.get("protocol")) or {}
    phase = proto.get("phase")
    if phase == "dev" and sweep_spec(cfg) is not None:
        second = phase_two_cfg(cfg)
        plan2 = prepare(second, absolute(second.output_dir) / str(second.name))
        text2, hours2 = describe_parts(plan2, plan2.model_config, rates)
        points = proto.get("points") or f"{proto.get('experiment', '<preset>')}_points"
        rule = Rule.from_config(to_plain(proto.get("select")) or {}).describe()
        lines += [
            "",
            f"phase 1 of 2 (dev sweep, {len(plan.rows)} rows): the plan above",
            f"selection: lazybench protocol select {owner(plan.run_dir)} -> conf/experiment/{points}.yaml "
            f"(rule: {rule})",
            f"phase 2 of 2 (test rows at the chosen points: lazybench experiment={points}); "
            "one chosen setting per family per row, stand-ins named <family>-chosen:",
            *["  " + line for line in text2.splitlines()],
            *(hours + hours2).lines("protocol", plan.shard.index if plan.shard.active else None, _BOTH),
        ]
    elif phase == "test":
        sel = proto.get("selection") or {}
        lines += [
            "",
            f"phase 2 of 2: test rows at the points chosen on {sel.get('rows')} rows of {sel.get('run')}",
        ]
    return "\n".join(lines)
