"""Summaries of a run's records: per dataset, per category, per method label; tables and a plot.

Definitions (also in docs/results_layout.md):

- score: LongBench's dataset score, round(100 x mean example score, 2), each example's score first
  averaged over its repeats; a category's score is the macro-average of its datasets' scores, and
  the ``all`` row the mean over datasets.
- TTFT speedup: mean baseline TTFT / mean method TTFT over the same rows (those where both ran);
  generation speedup the same with the total generation time. Pooled over rows for categories.
- % prompt computed, prefill FLOP fraction, pruned %: means over records.
- fidelity: first-token match rate (%), mean first-token KL(baseline || method), mean ROUGE-L of
  the output against the baseline's output, over non-baseline records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lazybench.tasks import CATEGORIES, PAPER_DATASETS

ALL = "all"
_MEANS = {
    "ttft_mean_s": "ttft_s",
    "total_mean_s": "total_s",
    "prompt_tokens": "prompt_tokens",
    "new_tokens": "new_tokens",
    "pct_prompt_computed": "pct_prompt_computed",
    "prefill_flop_fraction": "prefill_flop_fraction",
}
COLUMNS = [
    "method",
    "n_rows",
    "n_records",
    "score",
    "ttft_speedup",
    "generation_speedup",
    "ttft_mean_s",
    "total_mean_s",
    "prompt_tokens",
    "new_tokens",
    "pct_prompt_computed",
    "prefill_flop_fraction",
    "pruned_pct",
    "first_token_match_pct",
    "first_token_kl",
    "rouge_l_vs_baseline",
]
#: Columns of the printed per-category table: (column, header, decimals).
TABLE = [
    ("category", "category", None),
    ("method", "method", None),
    ("n_rows", "rows", 0),
    ("score", "score", 2),
    ("ttft_speedup", "TTFT x", 2),
    ("generation_speedup", "gen x", 2),
    ("pct_prompt_computed", "% prompt computed", 1),
    ("first_token_match_pct", "1st-token match %", 1),
    ("first_token_kl", "1st-token KL", 4),
    ("rouge_l_vs_baseline", "ROUGE-L vs base", 3),
]


@dataclass
class Summary:
    by_dataset: pd.DataFrame
    by_category: pd.DataFrame
    baseline_label: str
    labels: list[str]


def _per_example(records: Sequence[dict]) -> pd.DataFrame:
    """One row per (dataset, example, method label): record fields averaged over repeats."""
    df = pd.DataFrame.from_records(list(records))
    df["first_token_match"] = df["first_token_match"].map({True: 1.0, False: 0.0})
    for col in ("first_token_kl", "rouge_l_vs_baseline"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["pruned"] = df["pruned"].astype(float)
    value_cols = [
        "score",
        "ttft_s",
        "total_s",
        "prompt_tokens",
        "new_tokens",
        "pct_prompt_computed",
        "prefill_flop_fraction",
        "pruned",
        "first_token_match",
        "first_token_kl",
        "rouge_l_vs_baseline",
    ]
    keys = ["dataset", "category", "method_label", "example_id"]
    grouped = df.groupby(keys, sort=False)
    out = grouped[value_cols].mean()
    out["n_records"] = grouped.size()
    out["method_name"] = grouped["method"].first()
    return out.reset_index()


def _nanmean(series: pd.Series) -> float:
    values = series.dropna()
    return float(values.mean()) if len(values) else math.nan


def _metrics(rows: pd.DataFrame, base: pd.DataFrame) -> dict:
    """Numbers of one method over some rows; `base` is the baseline over the same scope."""
    idx = ["dataset", "example_id"]
    shared = rows[[*idx, "ttft_s", "total_s"]].merge(
        base[[*idx, "ttft_s", "total_s"]], on=idx, suffixes=("", "_base")
    )
    out = {
        "n_rows": len(rows),
        "n_records": int(rows["n_records"].sum()),
        "ttft_speedup": shared["ttft_s_base"].mean() / shared["ttft_s"].mean() if len(shared) else math.nan,
        "generation_speedup": shared["total_s_base"].mean() / shared["total_s"].mean()
        if len(shared)
        else math.nan,
        "pruned_pct": 100.0 * rows["pruned"].mean(),
        "first_token_match_pct": 100.0 * _nanmean(rows["first_token_match"]),
        "first_token_kl": _nanmean(rows["first_token_kl"]),
        "rouge_l_vs_baseline": _nanmean(rows["rouge_l_vs_baseline"]),
    }
    for name, col in _MEANS.items():
        out[name] = float(rows[col].mean())
    return out


def _dataset_order(names) -> list[str]:
    known = [d for d in PAPER_DATASETS if d in set(names)]
    return known + sorted(set(names) - set(known))


def _category_order(names) -> list[str]:
    known = [c for c in CATEGORIES if c in set(names)]
    return known + sorted(set(names) - set(known))


def summarize(
    records: Sequence[dict], baseline_label: str = "baseline", labels: Sequence[str] | None = None
) -> Summary:
    """Per-dataset and per-category tables over every record given (all labels present)."""
    if not records:
        raise ValueError("no records to summarise")
    ex = _per_example(records)
    present = list(dict.fromkeys(ex["method_label"]))
    order = [lb for lb in (labels or []) if lb in present] + [
        lb for lb in present if lb not in (labels or [])
    ]
    if baseline_label in order:
        order.remove(baseline_label)
        order.insert(0, baseline_label)
    names = dict(zip(ex["method_label"], ex["method_name"]))

    by_dataset = []
    for dataset in _dataset_order(ex["dataset"].unique()):
        d = ex[ex["dataset"] == dataset]
        base = d[d["method_label"] == baseline_label]
        for label in order:
            rows = d[d["method_label"] == label]
            if rows.empty:
                continue
            row = {"dataset": dataset, "category": rows["category"].iloc[0], "method": label}
            row.update(_metrics(rows, base), score=round(100.0 * float(rows["score"].mean()), 2))
            row["method_name"] = names[label]
            by_dataset.append(row)
    by_dataset_df = pd.DataFrame(by_dataset, columns=["dataset", "category", *COLUMNS, "method_name"])

    by_category = []
    scopes = [(c, ex["category"] == c) for c in _category_order(ex["category"].unique())]
    scopes.append((ALL, pd.Series(True, index=ex.index)))
    for category, mask in scopes:
        c = ex[mask]
        base = c[c["method_label"] == baseline_label]
        for label in order:
            rows = c[c["method_label"] == label]
            if rows.empty:
                continue
            ds = by_dataset_df[(by_dataset_df["method"] == label)]
            if category != ALL:
                ds = ds[ds["category"] == category]
            row = {"category": category, "method": label}
            row.update(_metrics(rows, base), score=round(float(ds["score"].mean()), 2))
            row["n_datasets"] = len(ds)
            row["method_name"] = names[label]
            by_category.append(row)
    by_category_df = pd.DataFrame(by_category, columns=["category", *COLUMNS, "n_datasets", "method_name"])
    return Summary(by_dataset_df, by_category_df, baseline_label, order)


# ---------------------------------------------------------------------------------------------
# output


def _fmt(value, decimals: int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if decimals is None:
        return str(value)
    if decimals == 0:
        return str(int(value))
    return f"{value:.{decimals}f}"


def markdown_table(df: pd.DataFrame, spec: Sequence[tuple[str, str, int | None]]) -> str:
    head = "| " + " | ".join(h for _, h, _ in spec) + " |"
    rule = "|" + "|".join("---" if d is None else "---:" for _, _, d in spec) + "|"
    body = ["| " + " | ".join(_fmt(row[c], d) for c, _, d in spec) + " |" for _, row in df.iterrows()]
    return "\n".join([head, rule, *body])


def category_table(summary: Summary) -> str:
    return markdown_table(summary.by_category, TABLE)


def dataset_table(summary: Summary) -> str:
    spec = [("dataset", "dataset", None), *TABLE[1:]]
    return markdown_table(summary.by_dataset, spec)


def write_summary(summary: Summary, run_dir: Path, header: Sequence[str] = ()) -> list[Path]:
    """summary_by_dataset.csv, summary_by_category.csv and summary.md in run_dir."""
    paths = [run_dir / "summary_by_dataset.csv", run_dir / "summary_by_category.csv", run_dir / "summary.md"]
    summary.by_dataset.to_csv(paths[0], index=False)
    summary.by_category.to_csv(paths[1], index=False)
    lines = ["# lazybench run summary", "", *header, ""]
    lines += [
        "Score: LongBench metric x100 (category: macro-average of its datasets; `all`: mean over datasets). "
        "TTFT x / gen x: mean baseline time / mean method time over the same rows. Fidelity columns compare "
        f"each output with `{summary.baseline_label}` on the same prompt. Definitions: docs/results_layout.md.",
        "",
        "## By category",
        "",
        category_table(summary),
        "",
        "## By dataset",
        "",
        dataset_table(summary),
        "",
    ]
    paths[2].write_text("\n".join(lines), encoding="utf-8")
    return paths


def plot_with_analysis(run_dir: Path, path: Path) -> Path | None:
    """The analysis layer's speed/accuracy plot (lazybench.analysis: panels per category, Pareto
    frontier), or None when it is unavailable or cannot plot these records."""
    import logging
    import warnings

    try:
        from lazybench.analysis import load_runs
        from lazybench.analysis import summarize as analysis_summarize
        from lazybench.analysis.plots import plot_pareto, save_figure

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = plot_pareto(analysis_summarize(load_runs(run_dir)), x="ttft_speedup", y="score")
        return None if fig is None else save_figure(fig, path)
    except Exception as err:  # noqa: BLE001 - optional: fall back to the runner's own plot
        logging.getLogger("lazybench.runner").info(
            "analysis plot unavailable (%s); using the runner's own", err
        )
        return None


def plot_speed_accuracy(summary: Summary, path: Path, title: str = "") -> Path:
    """Score against TTFT speedup: one large point per method (all rows), small ones per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    cats = summary.by_category
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, label in enumerate(summary.labels):
        color = colors[i % len(colors)]
        rows = cats[cats["method"] == label]
        per_cat = rows[rows["category"] != ALL]
        ax.scatter(per_cat["ttft_speedup"], per_cat["score"], s=18, alpha=0.35, color=color)
        overall = rows[rows["category"] == ALL]
        if not overall.empty:
            x, y = float(overall["ttft_speedup"].iloc[0]), float(overall["score"].iloc[0])
            ax.scatter([x], [y], s=80, color=color, edgecolor="black", label=label, zorder=3)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("TTFT speedup vs baseline (x)")
    ax.set_ylabel("LongBench score (mean over datasets)")
    ax.set_title(title or "speed / accuracy", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
