"""Schedule search: the Pareto set of a sweep's schedules, and the Hydra callback that writes it.

`lazybench experiment=schedule_search` (conf/experiment/schedule_search.yaml) runs a two-objective
Optuna search (NSGA-II) over LazyLLM schedules; docs/schedule_search.md explains it. Each job
returns its objectives (`lazybench.aggregate.OBJECTIVES`, e.g. `quality`: the score plus a fidelity
tie-breaker, see `lazybench.aggregate.quality`) from its overall summary line. This module holds

- `pareto_table(sweep_dir, ...)`: one row per job of a sweep (its schedule and the same overall
  line: score, quality, speedups, fidelity) with an `on_front` flag;
- `ParetoSchedules`: a Hydra callback (`hydra.callbacks`) that, when a multirun ends, writes
  ``pareto_schedules.csv`` / ``.md`` into the sweep directory and prints the Pareto set. It reads
  records only, so it works after any sweeper (optuna, basic) and any launcher.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from lazybench import aggregate as agg
from lazybench.aggregate import FIDELITY_WEIGHT, OBJECTIVES

log = logging.getLogger("lazybench.search")

PARETO_FILE = "pareto_schedules"
DEFAULT_OBJECTIVES = ("quality", "ttft_speedup")
_MINIMISED = frozenset({"pct_prompt_computed"})
#: The numbers of each job's method under test shown in the Pareto table (aggregate columns).
_NUMBERS = [
    "score", "baseline_score", "relative_score", "quality", "ttft_speedup", "generation_speedup",
    "pct_prompt_computed", "first_token_match_pct", "first_token_kl", "rouge_l_vs_baseline", "n_rows",
    "noisy_rows",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the Pareto set of a sweep


def _trial_sort_key(trial: str) -> tuple[int, str]:
    return (int(trial), "") if trial.isdigit() else (1 << 30, trial)


def pareto_table(
    sweep_dir: str | Path,
    objectives: tuple[str, str] | list[str] = DEFAULT_OBJECTIVES,
    directions: tuple[str, str] | list[str] | None = None,
    since: float | None = None,
):
    """One row per job of the sweep (its method under test), with `on_front` over the two objectives.

    Objectives are names of OBJECTIVES; directions "maximize"/"minimize" (default: maximise, except
    pct_prompt_computed). `since` (a time.time()) keeps only jobs whose run.json was written at or
    after it, i.e. this sweep's jobs, not older ones in the same folder. Numbers: each job's overall
    line of `lazybench.aggregate.summarize`, the line its objective came from.
    """
    import numpy as np
    import pandas as pd

    from lazybench.records import RECORDS_FILE, read_records

    sweep_dir = Path(sweep_dir)
    objectives = list(objectives)
    if len(objectives) != 2 or any(o not in OBJECTIVES for o in objectives):
        raise ValueError(f"two objectives among {', '.join(OBJECTIVES)} are needed, got {objectives}")
    directions = list(directions or ["minimize" if o in _MINIMISED else "maximize" for o in objectives])

    job_dirs = sorted({f.parent for f in sweep_dir.rglob(RECORDS_FILE)})
    if since is not None:
        recent = [
            d for d in job_dirs if (d / "run.json").is_file() and (d / "run.json").stat().st_mtime >= since
        ]
        job_dirs = recent or job_dirs
    if not job_dirs:
        raise FileNotFoundError(f"no {RECORDS_FILE} under {sweep_dir}")

    rows = []
    for job in job_dirs:
        records = read_records(job / RECORDS_FILE).records
        if not records:
            continue
        info = agg.run_info(job)
        overall = agg.select_level(agg.summarize(records, run_dir=job), agg.OVERALL)
        label = info.get("method_under_test")
        if label is None:
            non_base = overall[overall["method"] != agg.BASELINE]
            label = non_base["method_label"].iloc[0] if len(non_base) else None
        hit = overall[overall["method_label"] == label]
        if hit.empty:
            continue
        params = next((m.get("params") or {} for m in info.get("methods", []) if m.get("label") == label), {})
        schedule = params.get("schedule") or {}
        rows.append(
            {
                "trial": job.relative_to(sweep_dir).as_posix(),
                "method_label": label,
                "unit": schedule.get("unit"),
                "boundaries": json.dumps(schedule.get("boundaries")) if schedule else None,
                "keep": json.dumps(schedule.get("keep")) if schedule else None,
                **hit.iloc[0][_NUMBERS].to_dict(),
                "overrides": list(info.get("overrides") or []),
                "run_dir": str(job),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        raise FileNotFoundError(f"no job under {sweep_dir} has records of a method other than the baseline")
    table = table.sort_values("trial", key=lambda c: c.map(_trial_sort_key), kind="stable")
    # What tells the trials apart: the overrides not shared by every job (the sampled parameters).
    common = set.intersection(*map(set, table["overrides"])) if len(table) > 1 else set()
    table.insert(1, "params", [" ".join(o for o in ov if o not in common) for ov in table["overrides"]])
    table["overrides"] = [" ".join(ov) for ov in table["overrides"]]
    axes = [
        np.asarray(table[o], dtype=float) * (-1.0 if d == "minimize" else 1.0)
        for o, d in zip(objectives, directions)
    ]
    table["on_front"] = agg.pareto_frontier(axes[1], axes[0])
    return table.reset_index(drop=True)


def _front(table, objectives):
    """The front, sorted along its second objective (best first)."""
    return table[table["on_front"]].sort_values(objectives[1], ascending=objectives[1] in _MINIMISED)


def write_pareto(sweep_dir: str | Path, table, objectives=DEFAULT_OBJECTIVES) -> tuple[Path, Path]:
    """`pareto_schedules.csv` (every job, full precision) and `.md` (front, then all) in the sweep dir."""
    from lazybench.tablewriter import to_markdown

    sweep_dir = Path(sweep_dir)
    csv_path, md_path = sweep_dir / f"{PARETO_FILE}.csv", sweep_dir / f"{PARETO_FILE}.md"
    table.to_csv(csv_path, index=False)
    shown = [c for c in table.columns if c not in ("run_dir", "overrides", "method_label", "params")]
    shown.append("params")
    front = _front(table, objectives)
    md = [
        f"## Pareto set of {sweep_dir}\n",
        f"Objectives: {', '.join(objectives)} (quality = round(score, 2) + {FIDELITY_WEIGHT:g} x exp(-first-token KL)); "
        f"{int(table['on_front'].sum())} of {len(table)} schedules are on the front. Numbers: each job's "
        "overall line of `lazybench.aggregate.summarize` (score: mean of the category macro-averages; "
        "speedups pooled over the rows).\n",
        to_markdown(front[shown].drop(columns="on_front")),
        "## All trials\n",
        to_markdown(table[shown]),
    ]
    md_path.write_text("\n".join(md), encoding="utf-8")
    return csv_path, md_path


def front_text(table, objectives=DEFAULT_OBJECTIVES) -> str:
    """The Pareto set as a short table (for the terminal)."""
    from lazybench.tablewriter import to_markdown

    cols = ["trial", "boundaries", "keep", "score", "quality", "ttft_speedup", "first_token_kl"]
    cols += [o for o in objectives if o not in cols]
    return to_markdown(_front(table, objectives)[cols])


try:
    from hydra.experimental.callback import Callback as _Callback
except ImportError:  # pragma: no cover - hydra is a dependency
    _Callback = object


class ParetoSchedules(_Callback):
    """Hydra callback: after a multirun, the Pareto set of its schedules into the sweep directory.

    Objectives: the config's `objective` when it names two (directions from hydra.sweeper.direction
    when given), else quality and ttft_speedup.
    """

    def __init__(self, objectives: list[str] | None = None) -> None:
        self.objectives = list(objectives) if objectives else None
        self.started: float | None = None

    def on_multirun_start(self, config, **kwargs: Any) -> None:
        self.started = time.time() - 1.0  # file mtimes may be coarser than time.time()

    def _objectives(self, config) -> tuple[list[str], list[str] | None]:
        from lazybench.runner.config import to_plain

        wanted = self.objectives or to_plain(config.get("objective"))
        if isinstance(wanted, str) or not wanted or len(wanted) != 2:
            return list(DEFAULT_OBJECTIVES), None
        direction = to_plain(config.hydra.sweeper.get("direction")) if "sweeper" in config.hydra else None
        if isinstance(direction, list) and len(direction) == 2:
            return list(wanted), [str(d).split(".")[-1] for d in direction]
        return list(wanted), None

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        objectives, directions = self._objectives(config)
        try:
            table = pareto_table(sweep_dir, objectives, directions, since=self.started)
        except FileNotFoundError as err:
            log.warning("no Pareto set written: %s", err)
            print(f"lazybench: no Pareto set written: {err}")
            return
        csv_path, md_path = write_pareto(sweep_dir, table, objectives)
        n = int(table["on_front"].sum())
        print(
            f"\nlazybench: Pareto set ({', '.join(objectives)}): {n} of {len(table)} schedules\n"
            f"{front_text(table, objectives)}\n  wrote {csv_path}\n  wrote {md_path}"
        )
