"""One call that writes every table (CSV + markdown), every plot (PNG) and a combined `report.md`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lazybench.aggregate import records_frame, source_text
from lazybench.analysis.paper import check_paper_model
from lazybench.analysis.summary import summarize
from lazybench.analysis.tables import dataset_table, overall_table, table1, table2
from lazybench.tablewriter import to_markdown, write_table

PAPER_NAMES = {"llama2": "Llama 2 7B chat", "xgen": "XGen 7B 8k inst"}


@dataclass
class Report:
    markdown: str
    summary: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    files: list[Path] = field(default_factory=list)


def runs_overview(records: pd.DataFrame) -> pd.DataFrame:
    """One row per run: folder, model, device, where its rows came from, records, method labels."""
    rows = []
    for (run, run_dir), g in records.groupby(["run", "run_dir"], sort=False):
        rows.append(
            {
                "run": run,
                "run_dir": run_dir,
                "data_source": "; ".join(pd.unique(records_frame(g)["data_source"])),
                "run_rows": len(g.drop_duplicates(["dataset", "example_id"])),
                "run_id": ", ".join(sorted(set(map(str, g["run_id"])))),
                "model": ", ".join(sorted(set(map(str, g["model"])))),
                "device": ", ".join(sorted(set(map(str, g["device"])))),
                "records": len(g),
                "method_labels": g["method_label"].nunique(),
            }
        )
    return pd.DataFrame(rows)


def build_report(
    records: pd.DataFrame, out_dir: str | os.PathLike, paper: str = "llama2", plots: bool = True
) -> Report:
    """Summarise `records` (from `load_runs`) and write tables, plots and report.md into out_dir."""
    check_paper_model(paper)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(records)
    paper_name = PAPER_NAMES[paper]
    tables = {
        "runs": runs_overview(records),
        "table1": table1(summary, paper),
        "table2": table2(summary, paper),
        "overall": overall_table(summary),
        "datasets": dataset_table(summary, paper),
    }
    notes = {
        "runs": ("Runs", None),
        "table1": (
            "Table 1 layout: score and TTFT speedup per category",
            f"Ours: score (0-100, category macro-average; overall: mean of the categories), TTFT x (sum of "
            f"baseline TTFT / sum of method TTFT over the rows both ran), % of baseline (relative score). "
            f"`paper_{paper}_*`: the paper's Table 1 for {paper_name} (A100), verbatim.",
        ),
        "table2": (
            "Table 2 layout: % of prompt tokens computed and generation speedup",
            f"Ours for every method; `paper_{paper}_*`: the paper's Table 2 for {paper_name}, which reports "
            "LazyLLM only.",
        ),
        "overall": (
            "Overall per method (fidelity to the full model included)",
            "1st-token match %: rows whose first generated token equals the baseline's; 1st-token KL: "
            "KL(baseline || method) of the first-token distributions; ROUGE-L vs base: ROUGE-L of the "
            "output against the baseline's output; noisy rows: rows whose repeated prefill timings "
            "spread by more than the limit in lazybench/aggregate.py.",
        ),
        "datasets": (
            "Per dataset",
            f"`longbench_{paper}_score`: LongBench's leaderboard score for {paper_name}, on baseline rows, "
            "to check our baseline against.",
        ),
    }
    files: list[Path] = []
    sections = ["# lazybench analysis\n", f"Rows: {source_text(summary)}.\n"]
    if (records["run_id"].astype(str).str.startswith("FIXTURE")).any():
        sections.append("**FIXTURE DATA: these records are synthetic test data, not measurements.**\n")
    summary_path = out / "summary.csv"
    summary.to_csv(summary_path, index=False)
    files.append(summary_path)
    for name, frame in tables.items():
        title, note = notes[name]
        files.extend(write_table(frame, out, name, title, note))
        sections.append(f"## {title}\n\n" + (f"{note}\n\n" if note else "") + to_markdown(frame))
    if plots:
        from lazybench.analysis.plots import probe_accuracy, write_plots

        probes = probe_accuracy(records)
        if not probes.empty:
            files.extend(write_table(probes, out, "probes", "Probe accuracy by depth and length"))
        pngs = write_plots(records, summary, out)
        files.extend(pngs)
        if pngs:
            sections.append("## Figures\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in pngs) + "\n")
    markdown = "\n".join(sections)
    report_path = out / "report.md"
    report_path.write_text(markdown, encoding="utf-8")
    files.append(report_path)
    return Report(markdown=markdown, summary=summary, tables=tables, files=files)
