"""A run's summaries: `lazybench.aggregate`'s numbers per dataset and per category, as the printed
table, summary_by_dataset.csv, summary_by_category.csv, summary.md and speed_accuracy.png.

Nothing is computed here: every number and column is defined in `lazybench.aggregate`, every
table is written by `lazybench.tablewriter`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lazybench import aggregate as agg
from lazybench.tablewriter import to_markdown

log = logging.getLogger("lazybench.runner")

#: Columns of the printed per-category table and of summary.md's tables (the CSVs hold them all).
TABLE = [
    "method_label",
    "n_rows",
    "score",
    "ttft_speedup",
    "generation_speedup",
    "pct_prompt_computed",
    "first_token_match_pct",
    "first_token_kl",
    "rouge_l_vs_baseline",
]
_FILES = ("summary_by_dataset.csv", "summary_by_category.csv", "summary.md")


@dataclass
class Summary:
    frame: pd.DataFrame  # lazybench.aggregate.summarize: one line per (method label, level, group)
    baseline_label: str
    labels: list[str]

    @property
    def by_dataset(self) -> pd.DataFrame:
        rows = agg.select_level(self.frame, "dataset")
        return rows.rename(columns={"group": "dataset"}).drop(columns=["level"])

    @property
    def by_category(self) -> pd.DataFrame:
        """Categories, then "overall"; `category` names the group."""
        rows = self.frame[self.frame["level"] != "dataset"]
        return rows.drop(columns=["level", "group"]).reset_index(drop=True)


def summarize(
    records: Sequence[dict],
    baseline_label: str = agg.BASELINE,
    labels: Sequence[str] | None = None,
    run_dir: str | Path | None = None,
) -> Summary:
    """Every number of one run's records (all labels present), methods in `labels`' order."""
    if not records:
        raise ValueError("no records to summarise")
    frame = agg.summarize(records, baseline_label, run_dir=run_dir, order=labels)
    return Summary(frame, baseline_label, list(pd.unique(frame["method_label"])))


def _shown(frame: pd.DataFrame, first: str) -> list[str]:
    """The table's columns, with noisy_rows only when some row is noisy."""
    return [first, *TABLE, *(["noisy_rows"] if frame["noisy_rows"].sum() else [])]


def category_table(summary: Summary) -> str:
    cats = summary.by_category
    return to_markdown(cats[_shown(cats, "category")], drop_constant=())


def console_table(summary: Summary) -> str:
    """The category table as the command prints it, headed by where its rows came from, so a table
    copied from a terminal still says whether it is the offline slice or LongBench."""
    return f"rows: {agg.source_text(summary.frame)}\n\n{category_table(summary)}"


def dataset_table(summary: Summary) -> str:
    ds = summary.by_dataset
    return to_markdown(ds[_shown(ds, "dataset")], drop_constant=())


def notes(summary: Summary) -> list[str]:
    """What the tables' numbers are, where the rows came from, and the noisy-timing footnote."""
    lines = [
        f"- rows: {agg.source_text(summary.frame)}",
        "",
        "Score: LongBench metric x100 (category: macro-average of its datasets; overall: mean of the "
        "categories). TTFT x / gen x: sum of baseline times / sum of method times over the rows both ran. "
        f"Fidelity columns compare each output with `{summary.baseline_label}` on the same prompt. "
        "Definitions: lazybench/aggregate.py, docs/results_layout.md.",
    ]
    noisy = summary.frame[(summary.frame["level"] == agg.OVERALL) & (summary.frame["noisy_rows"] > 0)]
    if len(noisy):
        counts = ", ".join(f"`{lab}` {int(n)}" for lab, n in zip(noisy["method_label"], noisy["noisy_rows"]))
        lines += [
            "",
            f"Noisy timings: rows whose repeated prefill timings spread by more than {agg.SPREAD_LIMIT:.0%} "
            f"(`noisy_rows`): {counts}. Their speedups are less certain.",
        ]
    return lines


def write_summary(summary: Summary, run_dir: Path, header: Sequence[str] = ()) -> list[Path]:
    """summary_by_dataset.csv, summary_by_category.csv and summary.md in run_dir."""
    paths = [run_dir / name for name in _FILES]
    summary.by_dataset.to_csv(paths[0], index=False)
    summary.by_category.to_csv(paths[1], index=False)
    header = [h for h in header if not h.startswith("- rows:")]
    lines = ["# lazybench run summary", "", *header, *notes(summary), "", "## By category", ""]
    lines += [category_table(summary), "## By dataset", "", dataset_table(summary)]
    paths[2].write_text("\n".join(lines), encoding="utf-8")
    return paths


def plot_speed_accuracy(summary: Summary, path: Path) -> Path | None:
    """Score against TTFT speedup, a panel per category and overall (`lazybench.analysis.plots`,
    imported here so that the runner loads matplotlib only when it plots); None if nothing to plot."""
    try:
        from lazybench.analysis.plots import plot_pareto, save_figure

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = plot_pareto(summary.frame, x="ttft_speedup", y="score")
        return None if fig is None else save_figure(fig, path)
    except Exception as err:  # noqa: BLE001 - a plot must not fail a finished run
        log.warning("no speed/accuracy plot: %s", err)
        return None


def write_run_summaries(
    run_dir: Path,
    records: Sequence[dict],
    header: Sequence[str] = (),
    labels: Sequence[str] | None = None,
    plot: bool = True,
) -> tuple[Summary, list[Path]]:
    """Summarise a run's records and write its summary files (and plot); the Summary and the paths."""
    summary = summarize(records, agg.BASELINE, labels, run_dir)
    files = write_summary(summary, run_dir, header)
    png = plot_speed_accuracy(summary, run_dir / "speed_accuracy.png") if plot else None
    return summary, files + ([png] if png else [])
