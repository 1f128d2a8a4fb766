"""Schedule search: the `quality` objective and the Pareto set of a sweep's schedules.

`lazybench experiment=schedule_search` (conf/experiment/schedule_search.yaml) runs a two-objective
Optuna search (NSGA-II) over LazyLLM schedules; docs/schedule_search.md explains it. This module holds

- `quality(score, first_token_kl)`: the quality objective, the LongBench score plus a fidelity
  tie-breaker below the score's precision: ``round(score, 2) + 0.001 * exp(-mean first-token KL)``;
- `pareto_table(sweep_dir, ...)`: one row per job of a sweep (its schedule, score, quality, TTFT
  speedup, fidelity) with an `on_front` flag, from the jobs' records via `lazybench.analysis`;
- `ParetoSchedules`: a Hydra callback (`hydra.callbacks`) that, when a multirun ends, writes
  ``pareto_schedules.csv`` / ``.md`` into the sweep directory and prints the Pareto set. It reads
  records only, so it works after any sweeper (optuna, basic) and any launcher.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("lazybench.search")

PARETO_FILE = "pareto_schedules"
#: Weight of the fidelity tie-breaker in `quality`: at most 0.001 score points, below the 0.01
#: resolution of the (rounded) score.
FIDELITY_WEIGHT = 1e-3
#: Sweep objective names (lazybench.runner.run.OBJECTIVES) -> columns of the Pareto table.
OBJECTIVE_COLUMNS = {
    "score": "score",
    "quality": "quality",
    "ttft_speedup": "ttft_speedup",
    "generation_speedup": "gen_speedup",
    "pct_prompt_computed": "pct_prompt_computed",
    "first_token_match_pct": "first_token_match_pct",
}
DEFAULT_OBJECTIVES = ("quality", "ttft_speedup")
_MINIMISED = frozenset({"pct_prompt_computed"})


def fidelity(first_token_kl: float | None) -> float:
    """exp(-KL(baseline || method)) of the first-token distributions, in (0, 1]; 0 when unknown."""
    if first_token_kl is None or math.isnan(first_token_kl):
        return 0.0
    return math.exp(-max(float(first_token_kl), 0.0))


def quality(score: float, first_token_kl: float | None) -> float:
    """The score (0..100, rounded to 2 decimals as the runner reports it) plus a fidelity tie-breaker
    of at most FIDELITY_WEIGHT points.

    Schedules with the same score (common on a small slice with short outputs) are ordered by how
    close their first-token distribution stays to the baseline's; any score difference (>= 0.01)
    wins. Unlike the relative score (method / baseline score), it is defined when the baseline
    scores 0; within one sweep every job's baseline is the same run, so maximising it maximises both.
    """
    return round(float(score), 2) + FIDELITY_WEIGHT * fidelity(first_token_kl)


def objective_value(row: Any, name: str) -> float:
    """One objective of the method under test from a runner summary row (category "all")."""
    if name == "quality":
        return quality(float(row["score"]), float(row["first_token_kl"]))
    return float(row[name])


# ---------------------------------------------------------------------------------------------
# the Pareto set of a sweep


def _job_info(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _trial_sort_key(trial: str) -> tuple[int, str]:
    return (int(trial), "") if trial.isdigit() else (1 << 30, trial)


def pareto_table(
    sweep_dir: str | Path,
    objectives: tuple[str, str] | list[str] = DEFAULT_OBJECTIVES,
    directions: tuple[str, str] | list[str] | None = None,
    since: float | None = None,
):
    """One row per job of the sweep (its method under test), with `on_front` over the two objectives.

    Objectives are sweep objective names (see OBJECTIVE_COLUMNS); directions "maximize"/"minimize"
    (default: maximise, except pct_prompt_computed). `since` (a time.time()) keeps only jobs whose
    run.json was written at or after it, i.e. this sweep's jobs, not older ones in the same folder.
    Numbers come from `lazybench.analysis.summarize`, overall level (LongBench macro-average score).
    """
    import numpy as np
    import pandas as pd

    from lazybench.analysis import load_runs, pareto_frontier, select_level, summarize
    from lazybench.records import RECORDS_FILE

    sweep_dir = Path(sweep_dir)
    objectives = list(objectives)
    if len(objectives) != 2 or any(o not in OBJECTIVE_COLUMNS for o in objectives):
        raise ValueError(f"two objectives among {', '.join(OBJECTIVE_COLUMNS)} are needed, got {objectives}")
    directions = list(directions or ["minimize" if o in _MINIMISED else "maximize" for o in objectives])

    job_dirs = sorted({f.parent for f in sweep_dir.rglob(RECORDS_FILE)})
    if since is not None:
        recent = [
            d for d in job_dirs if (d / "run.json").is_file() and (d / "run.json").stat().st_mtime >= since
        ]
        job_dirs = recent or job_dirs
    if not job_dirs:
        raise FileNotFoundError(f"no {RECORDS_FILE} under {sweep_dir}")
    overall = select_level(summarize(load_runs(*job_dirs)), "overall")

    rows = []
    for job in job_dirs:
        info = _job_info(job)
        mine = overall[overall["run_dir"] == str(job)]
        label = info.get("method_under_test")
        if label is None:
            non_base = mine[mine["method"] != "baseline"]
            label = non_base["method_label"].iloc[0] if len(non_base) else None
        hit = mine[mine["method_label"] == label]
        if hit.empty:
            continue
        s = hit.iloc[0]
        params = next((m.get("params") or {} for m in info.get("methods", []) if m.get("label") == label), {})
        schedule = params.get("schedule") or {}
        trial = job.relative_to(sweep_dir).as_posix()
        rows.append(
            {
                "trial": trial,
                "method": label,
                "unit": schedule.get("unit"),
                "boundaries": json.dumps(schedule.get("boundaries")) if schedule else None,
                "keep": json.dumps(schedule.get("keep")) if schedule else None,
                "score": s["score"],
                "baseline_score": s["baseline_score"],
                "relative_score": s["relative_score"],
                "quality": quality(s["score"], s["first_token_kl"]),
                "ttft_speedup": s["ttft_speedup"],
                "gen_speedup": s["gen_speedup"],
                "pct_prompt_computed": s["pct_prompt_computed"],
                "first_token_match_pct": 100.0 * s["first_token_match"],
                "first_token_kl": s["first_token_kl"],
                "rouge_l_vs_baseline": s["rouge_l_vs_baseline"],
                "n_examples": s["n_examples"],
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
        np.asarray(table[OBJECTIVE_COLUMNS[o]], dtype=float) * (-1.0 if d == "minimize" else 1.0)
        for o, d in zip(objectives, directions)
    ]
    table["on_front"] = pareto_frontier(axes[1], axes[0])
    return table.reset_index(drop=True)


def _front(table, objectives):
    """The front, sorted along its second objective (best first)."""
    column = OBJECTIVE_COLUMNS[objectives[1]]
    return table[table["on_front"]].sort_values(column, ascending=objectives[1] in _MINIMISED)


def write_pareto(sweep_dir: str | Path, table, objectives=DEFAULT_OBJECTIVES) -> tuple[Path, Path]:
    """`pareto_schedules.csv` (every job, full precision) and `.md` (front, then all) in the sweep dir."""
    from lazybench.analysis import to_markdown

    sweep_dir = Path(sweep_dir)
    csv_path, md_path = sweep_dir / f"{PARETO_FILE}.csv", sweep_dir / f"{PARETO_FILE}.md"
    table.to_csv(csv_path, index=False)
    shown = [c for c in table.columns if c not in ("run_dir", "overrides", "method", "params")]
    shown.append("params")
    front = _front(table, objectives)
    md = [
        f"## Pareto set of {sweep_dir}\n",
        f"Objectives: {', '.join(objectives)} (quality = round(score, 2) + {FIDELITY_WEIGHT:g} x exp(-first-token KL)); "
        f"{int(table['on_front'].sum())} of {len(table)} schedules are on the front. Numbers: overall level "
        "of `lazybench.analysis.summarize` (scores are LongBench macro-averages).\n",
        to_markdown(front[shown].drop(columns="on_front"), digits=4),
        "## All trials\n",
        to_markdown(table[shown], digits=4),
    ]
    md_path.write_text("\n".join(md), encoding="utf-8")
    return csv_path, md_path


def front_text(table, objectives=DEFAULT_OBJECTIVES) -> str:
    """The Pareto set as a short fixed-width table (for the terminal)."""
    front = _front(table, objectives)
    cols = ["trial", "boundaries", "keep", "score", "quality", "ttft_speedup", "first_token_kl"]
    cols += [OBJECTIVE_COLUMNS[o] for o in objectives if OBJECTIVE_COLUMNS[o] not in cols]
    return front[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")


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
