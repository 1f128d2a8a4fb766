"""The equal-speed ladder: every family's whole-output fidelity at the same FLOP-ideal speeds.

Issue 12 closes on "does LazyLLM >= static >= random hold at equal speed on whole-output
fidelity, also for outputs of 128+ tokens". A run that sweeps the families at a few target
speedups (`sweep.target_speedups`, e.g. `experiment=protocol_cpu_long`, outputs forced to 128
tokens by `suite.min_new_tokens`) answers it: each setting's lines over all rows (the paper
categories' rows, `operating_points.candidates(level="overall")`), placed on the rung (the
target) nearest its measured FLOP-ideal speedup, and per rung the families side by side. A family
whose speed is measured, not solved (adaptive), lands on the nearest rung too; `flop_speedup`
says how near.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lazybench.analysis.load import load_run_config, load_runs
from lazybench.analysis.operating_points import candidates
from lazybench.columns import OVERALL
from lazybench.tablewriter import to_markdown, write_table

LADDER = [
    "rung", "family", "method_label", "n_rows", "flop_speedup", "ttft_speedup", "token_agreement",
    "rouge_l_vs_baseline", "prefix_agreement", "same_output_pct", "first_token_match_pct",
]  # fmt: skip
#: The ordering the closing question asks about, best first.
ORDER = ("lazyllm", "static", "random_drop")


def nearest_rung(speed: float, rungs: Sequence[float]) -> float:
    """The rung nearest `speed` in ratio (log distance); NaN without rungs or speed."""
    if not rungs or speed is None or not math.isfinite(speed) or speed <= 0:
        return math.nan
    return min(rungs, key=lambda r: abs(math.log(speed / r)))


def ladder(records: pd.DataFrame, rungs: Sequence[float], metric: str = "token_agreement") -> pd.DataFrame:
    """One line per setting over all rows, with its rung, sorted by rung then family."""
    lines = candidates(records, level=OVERALL)
    lines["rung"] = [nearest_rung(s, rungs) for s in lines["flop_speedup"]]
    return lines.sort_values(["rung", "family", metric], ascending=[True, True, False])[LADDER].reset_index(
        drop=True
    )


def ordering(lines: pd.DataFrame, metric: str = "token_agreement") -> pd.DataFrame:
    """Per rung: the best `metric` of each family in ORDER there and whether they come in that order."""
    out = []
    for rung, here in lines.groupby("rung", sort=True):
        best = {f: here.loc[here["family"] == f, metric].max() for f in ORDER}
        values = [best[f] for f in ORDER]
        known = [v for v in values if not math.isnan(v)]
        holds = len(known) == len(ORDER) and all(a >= b for a, b in zip(values, values[1:]))
        out.append({"rung": rung, **{f: best[f] for f in ORDER}, "ordered": holds if known else None})
    return pd.DataFrame(out)


def write_ladder(run_dir: str | Path, out: str | Path | None = None, metric: str = "token_agreement") -> str:
    """Both tables for one run, written under `out` (default <run>/analysis/ladder); returns markdown."""
    run_dir = Path(run_dir)
    records = load_runs(run_dir)
    sweep = (load_run_config(run_dir) or {}).get("sweep") or {}
    rungs = sorted(float(t) for t in sweep.get("target_speedups") or [])
    lines = ladder(records, rungs, metric)
    order = ordering(lines, metric)
    folder = Path(out) if out is not None else run_dir / "analysis" / "ladder"
    note = f"Settings on the rung nearest their FLOP-ideal speedup (rungs {rungs}); {metric} over all rows."
    write_table(lines, folder, "ladder", "Whole-output fidelity at equal speed", note)
    write_table(order, folder, "ordering", f"{' >= '.join(ORDER)} by {metric}, per rung", note)
    return "\n".join(
        ["## Equal-speed ladder\n", note + "\n", to_markdown(lines), "## Ordering\n", to_markdown(order)]
    )
