"""Analysis of lazybench runs: load records, summarise per method, compare with the paper, plot.

    from lazybench.analysis import load_runs, summarize, table1, to_markdown
    records = load_runs("results/reference/demo")       # run dirs or sweep dirs, searched recursively
    summary = summarize(records)                        # lazybench.aggregate's numbers, paper order
    print(to_markdown(table1(summary, paper="llama2")))  # paper Table 1 layout, the paper's numbers beside

Command line: `lazybench-analyze RUN_DIR... [--out DIR] [--paper llama2|xgen]`. Plots live in
`lazybench.analysis.plots` (imported on use, as it loads matplotlib).
"""

from lazybench.aggregate import pareto_frontier, per_row, select_level
from lazybench.analysis.load import find_record_files, load_run_config, load_runs, repo_root, results_path
from lazybench.analysis.paper import (
    PAPER_CATEGORIES,
    PAPER_METHODS,
    PAPER_MODELS,
    longbench_official_scores,
    paper_method,
    paper_table1,
    paper_table2,
)
from lazybench.analysis.report import Report, build_report, runs_overview
from lazybench.analysis.summary import summarize
from lazybench.analysis.tables import dataset_table, overall_table, table1, table2
from lazybench.tablewriter import to_markdown, write_table

__all__ = [
    "PAPER_CATEGORIES",
    "PAPER_METHODS",
    "PAPER_MODELS",
    "Report",
    "build_report",
    "dataset_table",
    "find_record_files",
    "load_run_config",
    "load_runs",
    "longbench_official_scores",
    "overall_table",
    "paper_method",
    "paper_table1",
    "paper_table2",
    "pareto_frontier",
    "per_row",
    "repo_root",
    "results_path",
    "runs_overview",
    "select_level",
    "summarize",
    "table1",
    "table2",
    "to_markdown",
    "write_table",
]
