"""Tables in the paper's layouts, with the paper's numbers beside ours (written by `lazybench.tablewriter`).

Our columns are unprefixed (`score`, `ttft_speedup`, ...). The paper's are prefixed with the paper
model they come from: `paper_llama2_score`, `paper_xgen_ttft_speedup`, ...; LongBench leaderboard
numbers are `longbench_llama2_score`. Paper values sit on the rows whose method maps to a paper
method (`paper_method`); they are blank elsewhere (e.g. our extra methods, our "overall" rows,
which the paper's tables do not have). Table 2 of the paper reports LazyLLM only.
"""

from __future__ import annotations

import pandas as pd

from lazybench.aggregate import select_level
from lazybench.analysis.paper import (
    PAPER_CATEGORIES,
    check_paper_model,
    longbench_official_scores,
    paper_table1,
    paper_table2,
)

_ID = ["run", "category", "method_label", "method", "paper_method", "n_rows"]


def _categories(summary: pd.DataFrame, include_overall: bool) -> pd.DataFrame:
    rows = summary[summary["level"].isin(("category", "overall") if include_overall else ("category",))]
    rows = rows[rows["group"].isin(PAPER_CATEGORIES) | (rows["level"] == "overall")]
    return rows.reset_index(drop=True)


def table1(summary: pd.DataFrame, paper: str = "llama2", include_overall: bool = True) -> pd.DataFrame:
    """Paper Table 1 layout: per category and method, score and TTFT speedup, the paper's beside ours.

    Rows: the paper's six categories present in our runs (paper order), then "overall" (ours only),
    methods in the paper's order within each. Columns: run, category, method_label, method,
    paper_method, n_rows, score, ttft_speedup, relative_score, paper_<model>_score,
    paper_<model>_ttft_speedup.
    """
    check_paper_model(paper)
    ours = _categories(summary, include_overall)
    ref = paper_table1().rename(
        columns={
            "method": "paper_method",
            f"{paper}_score": f"paper_{paper}_score",
            f"{paper}_ttft_speedup": f"paper_{paper}_ttft_speedup",
        }
    )[["category", "paper_method", f"paper_{paper}_score", f"paper_{paper}_ttft_speedup"]]
    out = ours[[*_ID, "score", "ttft_speedup", "relative_score"]].merge(
        ref, on=["category", "paper_method"], how="left"
    )
    return out


def table2(summary: pd.DataFrame, paper: str = "llama2", include_overall: bool = True) -> pd.DataFrame:
    """Paper Table 2 layout: per category and method, % of prompt tokens computed and generation speedup.

    Columns: run, category, method_label, method, paper_method, n_rows, pct_prompt_computed,
    generation_speedup, paper_<model>_pct_prompt_tokens_computed, paper_<model>_generation_speedup (the
    paper's values on LazyLLM rows only: its Table 2 reports LazyLLM alone).
    """
    check_paper_model(paper)
    ours = _categories(summary, include_overall)
    ref = paper_table2()[["category", f"{paper}_pct_prompt_tokens_computed", f"{paper}_generation_speedup"]]
    ref = ref.rename(columns={c: f"paper_{c}" for c in ref.columns if c != "category"}).assign(
        paper_method="lazyllm"
    )
    out = ours[[*_ID, "pct_prompt_computed", "generation_speedup"]].merge(
        ref, on=["category", "paper_method"], how="left"
    )
    return out


def dataset_table(summary: pd.DataFrame, paper: str = "llama2") -> pd.DataFrame:
    """Per dataset (probes included): score, relative score, speedups, % computed; the LongBench
    leaderboard score of the paper model beside our baseline rows (`longbench_<model>_score`)."""
    check_paper_model(paper)
    rows = select_level(summary, "dataset").rename(columns={"group": "dataset"})
    cols = [
        "run",
        "category",
        "dataset",
        "method_label",
        "method",
        "paper_method",
        "n_rows",
        "score",
        "relative_score",
        "ttft_speedup",
        "generation_speedup",
        "pct_prompt_computed",
    ]
    out = rows[cols].copy()
    official = longbench_official_scores().query("model == @paper").set_index("dataset")["score"]
    column = f"longbench_{paper}_score"
    out[column] = out["dataset"].map(official).where(out["paper_method"] == "baseline").astype(float)
    return out


def overall_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per run and method: overall score, relative score, speedups, accounting and fidelity."""
    rows = select_level(summary, "overall")
    cols = [
        "run",
        "method_label",
        "method",
        "n_rows",
        "n_records",
        "score",
        "relative_score",
        "ttft_speedup",
        "generation_speedup",
        "pct_prompt_computed",
        "prefill_flop_fraction",
        "first_token_match_pct",
        "first_token_kl",
        "rouge_l_vs_baseline",
        "noisy_rows",
    ]
    return rows[cols].reset_index(drop=True)
