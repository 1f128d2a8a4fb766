"""The paper's published numbers (Tables 1 and 2) and LongBench's official scores, as DataFrames.

The CSV files live in `lazybench/data/paper/` and are verbatim copies (see the README there).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pandas as pd

from lazybench.methods import METHODS
from lazybench.tasks.registry import CATEGORIES, PROBE_CATEGORY

#: The two models of the paper, as the column prefixes of its tables.
PAPER_MODELS = ("llama2", "xgen")
#: LongBench leaderboard row of each paper model.
OFFICIAL_MODEL_ROW = {"llama2": "llama2-7b-chat-4k", "xgen": "xgen-7b-8k"}
#: Paper methods, in the paper's row order.
PAPER_METHODS = ("baseline", "random_token_drop", "static_token_pruning", "prompt_compression", "lazyllm")
PAPER_CATEGORIES = tuple(CATEGORIES)
#: Category (and overall) display order.
GROUP_ORDER = (*PAPER_CATEGORIES, PROBE_CATEGORY, "overall")


@cache
def _paper_keys() -> dict[str, str]:
    """Registry name -> paper row, from each method's own `paper_name`; a paper row names itself."""
    keys = {key: key for key in PAPER_METHODS}
    keys.update({name: cls.paper_key() for name, cls in METHODS.items() if cls.paper_name is not None})
    return keys


def paper_method(method: str | None) -> str | None:
    """The paper's row for one of our methods (registry name), or None if the paper has no such row."""
    if not isinstance(method, str):
        return None
    return _paper_keys().get(method.strip().lower().replace("-", "_"))


def _read(name: str) -> pd.DataFrame:
    with (files("lazybench") / "data" / "paper" / name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


@cache
def _table1() -> pd.DataFrame:
    return _read("table1.csv")


@cache
def _table2() -> pd.DataFrame:
    return _read("table2.csv")


@cache
def _official() -> pd.DataFrame:
    return _read("longbench_official_scores.csv")


def paper_table1() -> pd.DataFrame:
    """Table 1 verbatim: category, method, {llama2,xgen}_score, {llama2,xgen}_ttft_speedup."""
    return _table1().copy()


def paper_table2() -> pd.DataFrame:
    """Table 2 verbatim (LazyLLM only): category, {model}_pct_prompt_tokens_computed, {model}_generation_speedup."""
    return _table2().copy()


def longbench_official_scores() -> pd.DataFrame:
    """LongBench leaderboard scores, long format: model (llama2 / xgen), dataset, score (0-100)."""
    wide = _official().copy()
    reverse = {row: key for key, row in OFFICIAL_MODEL_ROW.items()}
    wide["model"] = wide["model"].map(reverse)
    return wide.melt(id_vars="model", var_name="dataset", value_name="score")


def check_paper_model(paper: str) -> str:
    if paper not in PAPER_MODELS:
        raise ValueError(f"unknown paper model {paper!r}; expected one of {', '.join(PAPER_MODELS)}")
    return paper
