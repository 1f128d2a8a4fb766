"""Every number lazybench reports, defined once: per dataset, per category and overall.

The runner's printed table and summary files, the sweep objective, the schedule search's Pareto
table, the analysis tables and plots, and the lm-eval backend's accounting all take their numbers
from `summarize`; `lazybench.columns` names each number once (CSV name, markdown header, decimals,
meaning) and orders the lines. This module sits below the runner and the analysis (it needs pandas, never matplotlib), so both
import it.

A *row* is one prompt (`example_id`) of one run; a method's repeats of a row (the seeds of random
token drop) are averaged per row first. For each (run, method label) and each group (a dataset, a
category, "overall"):

- score: dataset = 100 x the mean row score (LongBench's per-dataset score; kept unrounded, tables
  round); category = mean of its datasets' scores (LongBench's macro-average); overall = mean of
  the category scores, as the paper averages its categories. "overall" covers the paper's six
  categories when the run has any of them, otherwise every row (a probe-only run).
- relative_score: 100 x the method's score / the baseline's score, both computed as above over the
  rows both ran (`n_shared`); NaN when the baseline scores 0.
- ttft_speedup, generation_speedup: pooled over the rows both ran, sum of the baseline's TTFT (total
  generation time) / sum of the method's. Pooled rather than a mean of per-row ratios because it is
  the ratio of the time the rows take together, what a user waiting on them saves, and because it
  composes across levels (a category's speedup is that of its rows together); a mean of ratios lets
  a short prompt's noisy ratio weigh as much as a long prompt's.
- ttft_s, total_s, prompt_tokens, new_tokens, pct_prompt_computed, prefill_flop_fraction: means over
  rows; pruned_pct, truncated_pct: % of rows that skipped prompt tokens / were middle-truncated.
- first_token_match_pct: % of rows whose first token equals the baseline's (a row's repeats count as
  their match rate); first_token_kl, rouge_l_vs_baseline: means over rows; NaN for the baseline.
- n_rows, n_records (rows x repeats), n_shared (rows the baseline also ran), noisy_rows (rows whose
  recorded `ttft_spread`, the relative spread of repeated prefill timings, exceeds SPREAD_LIMIT;
  records without the field are not flagged).
- quality: the schedule search's objective, score plus a first-token-fidelity tie-breaker.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lazybench.columns import BASELINE, LEVELS, OVERALL, PAPER_CATEGORIES, sort_summary
from lazybench.records import SPREAD_LIMIT  # re-exported: the limit noisy_rows counts by
from lazybench.tasks.registry import CATEGORIES

#: Weight of the fidelity tie-breaker in `quality`: at most 0.001 points, below the score's 0.01.
FIDELITY_WEIGHT = 1e-3
OFFLINE_SLICE = "offline slice"

RUN_KEY = ["run_dir", "run", "model", "method", "method_label"]
ROW_KEY = [*RUN_KEY, "category", "dataset", "example_id"]
GROUP_KEY = [*RUN_KEY, "level", "group"]
#: Record fields averaged per row (over repeats), then over rows; `pruned`/`truncated`/`first_token_match`
#: are 0/1 here and become the % columns.
_ROW_VALUES = [
    "score", "ttft_s", "total_s", "prompt_tokens", "new_tokens", "pct_prompt_computed",
    "prefill_flop_fraction", "pruned", "truncated", "first_token_match", "first_token_kl",
    "rouge_l_vs_baseline", "ttft_spread", "token_agreement",
]  # fmt: skip
_MEANS = {
    "ttft_s": "ttft_s", "total_s": "total_s", "prompt_tokens": "prompt_tokens", "new_tokens": "new_tokens",
    "pct_prompt_computed": "pct_prompt_computed", "prefill_flop_fraction": "prefill_flop_fraction",
    "pruned_pct": "pruned", "truncated_pct": "truncated", "first_token_match_pct": "first_token_match",
    "first_token_kl": "first_token_kl", "rouge_l_vs_baseline": "rouge_l_vs_baseline",
    "token_agreement": "token_agreement",
}  # fmt: skip
_PERCENT = ("pruned_pct", "truncated_pct", "first_token_match_pct")
SUMMARY_COLUMNS = [
    *RUN_KEY, "level", "group", "category", "data_source", "run_rows", "n_rows", "n_records", "n_shared",
    "noisy_rows", "score", "baseline_score", "relative_score", "quality", "ttft_speedup",
    "generation_speedup", *_MEANS,
]  # fmt: skip
#: What a sweep may return to its sweeper (`objective=`): columns of the method's overall row.
OBJECTIVES = (
    "score",
    "quality",
    "ttft_speedup",
    "generation_speedup",
    "pct_prompt_computed",
    "first_token_match_pct",
)


# --- where the rows came from -----------------------------------------------------------------------


_OLD_SLICE_FOLDER = ("shared", "longbench")


def data_source_of(data_dir: str | None) -> str:
    """The `data_source` of rows read from `data_dir` as run.json records it, for records older than
    the field: the offline slice (none, or the reference folder the first runs read it from, whose
    last two parts are ``_OLD_SLICE_FOLDER``), the hub, or a folder."""
    text = "" if data_dir is None else str(data_dir).rstrip("/")
    if not text or Path(text).parts[-2:] == _OLD_SLICE_FOLDER:
        return OFFLINE_SLICE
    if text == "hub":
        return "LongBench (hub)"
    return f"folder {text}"


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """The run's run.json ({} when it has none or it cannot be read); a sharded run without one (not
    yet merged) gets its shards' (lazybench.shards)."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        from lazybench.shards import run_info_of

        return run_info_of(Path(run_dir))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def run_data_source(run_dir: str | Path | None) -> str:
    """`data_source_of` the run's run.json `data_dir` (the offline slice when there is none)."""
    return data_source_of(run_info(run_dir).get("data_dir") if run_dir else None)


def source_text(frame: pd.DataFrame) -> str:
    """'offline slice, 16 rows' for a summary or a records frame (runs joined with '; ')."""
    if "run_rows" not in frame.columns:
        frame = per_row(frame)
        frame = frame.assign(run_rows=_run_rows(frame))
    parts = frame.drop_duplicates("run_dir")
    texts = [f"{s}, {int(n)} rows" for s, n in zip(parts["data_source"], parts["run_rows"])]
    return "; ".join(dict.fromkeys(texts))


# --- rows -------------------------------------------------------------------------------------------


def dataset_category(dataset: str, recorded: Any = None) -> str:
    """The paper category of a LongBench dataset; other datasets (probes) keep their recorded category."""
    return _DATASET_CATEGORY.get(dataset) or (recorded if isinstance(recorded, str) else None) or "other"


_DATASET_CATEGORY = {d: c for c, names in CATEGORIES.items() for d in names}


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def records_frame(records: pd.DataFrame | Sequence[dict], run_dir: str | Path | None = None) -> pd.DataFrame:
    """Records (dicts, or a DataFrame from `lazybench.analysis.load_runs`) with every column the
    aggregation reads: absent fields become NaN / defaults, `data_source` comes from run.json where
    a record lacks it, 0/1 floats for the booleans, the paper category of each dataset."""
    df = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(list(records))
    if "run_dir" not in df.columns:
        df["run_dir"] = str(run_dir) if run_dir is not None else ""
    if "run" not in df.columns:
        df["run"] = [Path(d).name if d else "" for d in df["run_dir"]]
    for name, default in (("model", ""), ("method", ""), ("category", None), ("data_source", None)):
        if name not in df.columns:
            df[name] = default
    if "method_label" not in df.columns:
        df["method_label"] = df["method"]
    for name in _ROW_VALUES:
        df[name] = [_as_float(v) for v in df[name]] if name in df.columns else math.nan
    df["category"] = [dataset_category(d, c) for d, c in zip(df["dataset"], df["category"])]
    missing = df["data_source"].isna()
    if missing.any():  # (an all-missing column may have come in as floats: labels need objects)
        df["data_source"] = df["data_source"].astype(object)
        found = {d: run_data_source(d) for d in df.loc[missing, "run_dir"].unique()}
        df.loc[missing, "data_source"] = df.loc[missing, "run_dir"].map(found)
    return df


def per_row(records: pd.DataFrame | Sequence[dict], run_dir: str | Path | None = None) -> pd.DataFrame:
    """One line per (run, method label, row): record values averaged over repeats, `n_records` the
    number of repeats, `noisy` whether any repeat's TTFT spread exceeds SPREAD_LIMIT."""
    df = records_frame(records, run_dir)
    grouped = df.groupby(ROW_KEY, sort=False, dropna=False)
    out = grouped[_ROW_VALUES].mean()
    out["n_records"] = grouped.size()
    out["noisy"] = grouped["ttft_spread"].max() > SPREAD_LIMIT
    out["data_source"] = grouped["data_source"].first()
    return out.reset_index()


def _run_rows(frame: pd.DataFrame, rows: pd.DataFrame | None = None) -> pd.Series:
    """Per line of `frame`, the number of distinct rows (of `rows`, default `frame`) of its run."""
    rows = frame if rows is None else rows
    counts = rows.drop_duplicates(["run_dir", "dataset", "example_id"]).groupby("run_dir").size()
    return frame["run_dir"].map(counts)


def _in_overall(rows: pd.DataFrame) -> pd.Series:
    """Which rows count in "overall": the paper categories' rows if the run has any, else all."""
    in_paper = rows["category"].isin(PAPER_CATEGORIES)
    return in_paper | ~in_paper.groupby(rows["run_dir"]).transform("any")


def _expand(rows: pd.DataFrame) -> pd.DataFrame:
    """Each row once per group it belongs to: its dataset, its category, overall."""
    return pd.concat(
        [
            rows.assign(level="dataset", group=rows["dataset"]),
            rows.assign(level="category", group=rows["category"]),
            rows[_in_overall(rows)].assign(level=OVERALL, group=OVERALL),
        ],
        ignore_index=True,
    )


def _macro(rows: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    """Scores per group: 100 x mean per dataset, mean of datasets per category, mean of categories overall."""
    ds = rows.groupby([*RUN_KEY, "category", "dataset"], sort=False, dropna=False)[column].mean() * 100
    ds = ds.reset_index()
    cat = ds.groupby([*RUN_KEY, "category"], sort=False, dropna=False)[column].mean().reset_index()
    counted = rows.loc[_in_overall(rows), ["run_dir", "category"]].drop_duplicates()
    overall = cat.merge(counted, on=["run_dir", "category"]).groupby(RUN_KEY, sort=False, dropna=False)
    frames = [
        ds.assign(level="dataset", group=ds["dataset"]).drop(columns=["category", "dataset"]),
        cat.assign(level="category", group=cat["category"]).drop(columns=["category"]),
        overall[column].mean().reset_index().assign(level=OVERALL, group=OVERALL),
    ]
    return pd.concat(frames, ignore_index=True).rename(columns={column: name})


# --- the baseline -----------------------------------------------------------------------------------


def baseline_labels(rows: pd.DataFrame, baseline: str = BASELINE) -> dict[tuple[str, str], str]:
    """The baseline method_label of each (run_dir, model): the label, or a method, named `baseline`."""
    chosen: dict[tuple[str, str], str] = {}
    for (run_dir, model), group in rows.groupby(["run_dir", "model"], sort=False, dropna=False):
        hits = group.loc[(group["method"] == baseline) | (group["method_label"] == baseline), "method_label"]
        labels = sorted(hits.unique())
        if not labels:
            warnings.warn(
                f"{run_dir}: no {baseline!r} records for model {model}; speedups and relative scores are NaN",
                stacklevel=3,
            )
        elif baseline in labels or len(labels) == 1:
            chosen[(run_dir, model)] = baseline if baseline in labels else labels[0]
        else:
            warnings.warn(f"{run_dir}: several baseline labels {labels}; using {labels[0]!r}", stacklevel=3)
            chosen[(run_dir, model)] = labels[0]
    return chosen


def _comparisons(rows: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per group, over the rows both ran: n_shared, pooled speedups, baseline and relative score."""
    chosen = baseline_labels(rows, baseline)
    is_base = [
        chosen.get((r, m)) == lab for r, m, lab in zip(rows["run_dir"], rows["model"], rows["method_label"])
    ]
    base = rows.loc[
        np.asarray(is_base, dtype=bool),
        ["run_dir", "model", "dataset", "example_id", "score", "ttft_s", "total_s"],
    ]
    paired = rows.merge(base, on=["run_dir", "model", "dataset", "example_id"], suffixes=("", "_base"))
    sums = (
        _expand(paired)
        .groupby(GROUP_KEY, sort=False, dropna=False)
        .agg(
            n_shared=("example_id", "size"),
            ttft=("ttft_s", "sum"),
            ttft_base=("ttft_s_base", "sum"),
            total=("total_s", "sum"),
            total_base=("total_s_base", "sum"),
        )
        .reset_index()
    )
    sums["ttft_speedup"] = sums["ttft_base"] / sums["ttft"]
    sums["generation_speedup"] = sums["total_base"] / sums["total"]
    scores = _macro(paired, "score", "shared_score").merge(
        _macro(paired, "score_base", "baseline_score"), on=GROUP_KEY
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 100.0 * scores["shared_score"] / scores["baseline_score"]
    scores["relative_score"] = ratio.where(scores["baseline_score"] != 0)
    keep = ["n_shared", "ttft_speedup", "generation_speedup"]
    return sums[[*GROUP_KEY, *keep]].merge(
        scores[[*GROUP_KEY, "baseline_score", "relative_score"]], on=GROUP_KEY, how="left"
    )


# --- the summary ------------------------------------------------------------------------------------


def quality(score: float, first_token_kl: float | None) -> float:
    """round(score, 2) + FIDELITY_WEIGHT x exp(-first-token KL) (0 when the KL is unknown).

    Schedules with the same score (common on a small slice with short outputs) are ordered by how
    close their first-token distribution stays to the baseline's; any score difference (>= 0.01)
    wins. Unlike the relative score it is defined when the baseline scores 0."""
    kl = _as_float(first_token_kl)
    fidelity = 0.0 if math.isnan(kl) else math.exp(-max(kl, 0.0))
    return round(float(score), 2) + FIDELITY_WEIGHT * fidelity


def summarize(
    records: pd.DataFrame | Sequence[dict],
    baseline: str | None = BASELINE,
    run_dir: str | Path | None = None,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The numbers: one line per (run, method label, level, group), columns SUMMARY_COLUMNS.

    `records`: dicts of one run (give its `run_dir`), or `load_runs`'s frame of several. `baseline`:
    the label (or method name) compared against; None for request lists without one (no
    comparisons, no warning). `order`: method labels to list first, in that order."""
    rows = per_row(records, run_dir)
    if rows.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    expanded = _expand(rows)
    agg: dict[str, tuple[str, Any]] = {
        "category": ("category", "first"),
        "data_source": ("data_source", "first"),
        "n_rows": ("example_id", "size"),
        "n_records": ("n_records", "sum"),
        "noisy_rows": ("noisy", "sum"),
    }
    agg.update({name: (source, "mean") for name, source in _MEANS.items()})
    out = expanded.groupby(GROUP_KEY, sort=False, dropna=False).agg(**agg).reset_index()
    out.loc[out["level"] == "category", "category"] = out["group"]
    out.loc[out["level"] == OVERALL, "category"] = OVERALL
    out[list(_PERCENT)] = out[list(_PERCENT)] * 100.0
    out["run_rows"] = _run_rows(out, rows)
    out = out.merge(_macro(rows, "score", "score"), on=GROUP_KEY, how="left")
    if baseline is not None:
        out = out.merge(_comparisons(rows, baseline), on=GROUP_KEY, how="left")
    for name in ("n_shared", "ttft_speedup", "generation_speedup", "baseline_score", "relative_score"):
        if name not in out.columns:
            out[name] = math.nan
    out["n_shared"] = out["n_shared"].fillna(0).astype(int)
    out["quality"] = [
        quality(s, kl) if not math.isnan(s) else math.nan
        for s, kl in zip(out["score"], out["first_token_kl"])
    ]
    return sort_summary(out[SUMMARY_COLUMNS], order=order, baseline=baseline)


def select_level(summary: pd.DataFrame, level: str) -> pd.DataFrame:
    """Lines of one level ("dataset", "category" or "overall") of a summary."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    return summary[summary["level"] == level].reset_index(drop=True)


def objective_values(summary: pd.DataFrame, label: str, names: Sequence[str]) -> tuple[float, ...]:
    """The named OBJECTIVES of one method label's overall line (NaN when the label has none)."""
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective {unknown[0]!r}; choose from {', '.join(OBJECTIVES)}")
    line = summary[(summary["level"] == OVERALL) & (summary["method_label"] == label)]
    return tuple(float(line[n].iloc[0]) if len(line) else math.nan for n in names)


def pareto_frontier(x, y) -> np.ndarray:
    """Boolean mask of the points not dominated when both x and y are to be maximised.

    A point is dominated when another is at least as good in both and better in one. Equal points
    are all on the frontier; points with a NaN coordinate never are.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    ok = ~(np.isnan(x) | np.isnan(y))
    on = np.zeros(x.shape, dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        dominated = others & (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
        on[i] = not dominated.any()
    return on
