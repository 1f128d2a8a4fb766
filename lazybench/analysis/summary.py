"""The analysis view of `lazybench.aggregate`: its numbers, with the paper's method names and order.

Every number is defined in `lazybench.aggregate` (see its docstring); this module only adds the
`paper_method` column and lists methods in the paper's row order.
"""

from __future__ import annotations

import pandas as pd

from lazybench import aggregate as agg
from lazybench.analysis.paper import PAPER_METHODS, paper_method
from lazybench.columns import BASELINE, sort_summary


def method_sort_key(method: str, label: str) -> tuple[int, str]:
    """The paper's methods in its row order, then the others; labels by name within a method."""
    pm = paper_method(method)
    return (PAPER_METHODS.index(pm) if pm in PAPER_METHODS else len(PAPER_METHODS), str(label))


def summarize(records: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """`lazybench.aggregate.summarize` of `load_runs`'s records, plus `paper_method`, in paper order:
    one line per (run, method label, level, group); `level` is "dataset", "category" or "overall"."""
    out = agg.summarize(records, baseline)
    out.insert(out.columns.get_loc("method_label") + 1, "paper_method", out["method"].map(paper_method))
    return sort_summary(out, method_key=method_sort_key, baseline=baseline)
