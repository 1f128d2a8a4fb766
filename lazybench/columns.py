"""The names of lazybench's numbers, and their order: one `Column` per summary column (CSV name,
markdown header, decimals, meaning), the levels and groups of a summary, and how its lines sort.

`lazybench.aggregate` computes the numbers under these names; `lazybench.tablewriter` prints them
with these headers and decimals; docs/results_layout.md lists them (a test keeps it complete).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lazybench.tasks.registry import CATEGORIES, PAPER_DATASETS, PROBE_CATEGORY

BASELINE = "baseline"
OVERALL = "overall"
LEVELS = ("dataset", "category", OVERALL)
PAPER_CATEGORIES = tuple(CATEGORIES)
GROUP_ORDER = (*PAPER_CATEGORIES, PROBE_CATEGORY, OVERALL)


@dataclass(frozen=True)
class Column:
    name: str  # in CSV files and DataFrames
    header: str  # in markdown tables
    decimals: int | None  # None: shown as is
    meaning: str


_COLUMNS = [
    Column("run", "run", None, "short name of the run folder"),
    Column("run_dir", "run folder", None, "the folder holding the run's records.jsonl"),
    Column("model", "model", None, "hub id or folder of the model"),
    Column("method", "algorithm", None, "registry name of the method (lazyllm, static, ...)"),
    Column("method_label", "method", None, "the method as labelled in the run (name + parameters)"),
    Column("paper_method", "paper method", None, "the paper's name for the method, if it has one"),
    Column("level", "level", None, "dataset, category or overall"),
    Column("group", "group", None, "the dataset / category named, or overall"),
    Column("category", "category", None, "the group's category (overall for the overall row)"),
    Column("dataset", "dataset", None, "LongBench dataset (or probe)"),
    Column("data_source", "rows from", None, "where the rows came from (offline slice, hub, folder)"),
    Column("run_rows", "run rows", 0, "rows of the whole run"),
    Column("n_rows", "rows", 0, "rows the method ran in the group"),
    Column("n_records", "records", 0, "records (rows x repeats)"),
    Column("n_shared", "shared rows", 0, "rows both the method and the baseline ran"),
    Column("noisy_rows", "noisy rows", 0, "rows whose TTFT spread over repeats > aggregate.SPREAD_LIMIT"),
    Column("score", "score", 2, "LongBench score 0-100: dataset mean, category/overall macro-average"),
    Column("baseline_score", "baseline score", 2, "the baseline's score over the shared rows"),
    Column("relative_score", "% of baseline", 1, "100 x score / baseline score, over the shared rows"),
    Column("quality", "quality", 4, "round(score, 2) + 0.001 x exp(-first_token_kl): the search objective"),
    Column("ttft_speedup", "TTFT x", 2, "sum of baseline TTFT / sum of method TTFT, shared rows"),
    Column("generation_speedup", "gen x", 2, "the same with the whole generation time"),
    Column("ttft_s", "TTFT s", 3, "mean time to first token (s)"),
    Column("total_s", "total s", 3, "mean whole-generation time (s)"),
    Column("prompt_tokens", "prompt tokens", 0, "mean prompt tokens given to the method"),
    Column("new_tokens", "new tokens", 1, "mean generated tokens"),
    Column("pct_prompt_computed", "% prompt computed", 1, "mean % of one full prefill's prompt work"),
    Column("prefill_flop_fraction", "prefill FLOPs", 2, "mean prefill FLOPs / full-prefill FLOPs"),
    Column("pruned_pct", "% pruned", 0, "% of rows whose prefill skipped prompt tokens"),
    Column("truncated_pct", "% truncated", 0, "% of rows middle-truncated"),
    Column("first_token_match_pct", "1st-token match %", 1, "% of rows whose first token = baseline's"),
    Column("first_token_kl", "1st-token KL", 4, "mean KL(baseline || method), first token (nats)"),
    Column("rouge_l_vs_baseline", "ROUGE-L vs base", 3, "mean ROUGE-L F of the output vs the baseline's"),
    Column(
        "token_agreement",
        "token agreement",
        3,
        "mean fraction of the output's tokens = baseline's, from the start",
    ),
]
COLUMNS: dict[str, Column] = {c.name: c for c in _COLUMNS}


def group_sort_key(group: str) -> tuple[int, int, str]:
    """Datasets in the paper's order (then others by name), categories in the paper's order, overall last."""
    if group in GROUP_ORDER:
        return (GROUP_ORDER.index(group), 0, "")
    if group in PAPER_DATASETS:
        return (-1, PAPER_DATASETS.index(group), "")
    return (-1, len(PAPER_DATASETS), str(group))


def sort_summary(
    frame: pd.DataFrame,
    method_key: Callable[[str, str], Any] | None = None,
    order: Sequence[str] | None = None,
    baseline: str | None = BASELINE,
) -> pd.DataFrame:
    """Runs in order of appearance, then level, group (paper order), method: the baseline first, then
    `order`'s labels, then `method_key(method, label)` (default: order of appearance)."""
    runs = {r: i for i, r in enumerate(pd.unique(frame["run_dir"]))}
    seen = {lab: i for i, lab in enumerate(pd.unique(frame["method_label"]))}
    first = {lab: i for i, lab in enumerate(order or [])}

    def method(m: str, lab: str) -> tuple:
        is_base = baseline is not None and baseline in (m, lab)
        rest = method_key(m, lab) if method_key else seen[lab]
        return (not is_base, first.get(lab, len(first)), rest)

    keys = [
        (runs[r], LEVELS.index(lv), group_sort_key(g), method(m, lab))
        for r, lv, g, m, lab in zip(
            frame["run_dir"], frame["level"], frame["group"], frame["method"], frame["method_label"]
        )
    ]
    index = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[index].reset_index(drop=True)
