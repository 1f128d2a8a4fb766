"""The one table writer: every markdown table lazybench prints or writes, and its CSV twin.

Headers and decimals come from `lazybench.columns.COLUMNS`, so a number reads the same in the
runner's printed table, a run's summary.md, the analysis tables and the Pareto table. A column the
registry does not know (the paper's numbers, a sweep's parameters) is shown under its own name,
floats with `digits` decimals. Missing values (NaN, None) show as "–"; CSV files keep full
precision and the column names.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from lazybench.columns import COLUMNS

MISSING = "–"


def _cell(value, decimals: int | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits if decimals is None else decimals}f}"
    return str(value).replace("|", "\\|")


def to_markdown(
    frame: pd.DataFrame,
    digits: int = 2,
    drop_constant: Sequence[str] = ("run",),
    hidden: Sequence[str] = ("run_dir",),
) -> str:
    """A GitHub markdown table (numbers right-aligned). Columns in `drop_constant` are left out when
    they hold a single value (e.g. `run` in a one-run table); columns in `hidden` always are."""
    cols = [
        c
        for c in frame.columns
        if c not in hidden and not (c in drop_constant and frame[c].nunique(dropna=False) <= 1)
    ]
    known = {c: COLUMNS.get(c) for c in cols}
    head = [known[c].header if known[c] else c for c in cols]
    numeric = [is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c]) for c in cols]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    for row in frame[cols].itertuples(index=False):
        cells = [_cell(v, known[c].decimals if known[c] else None, digits) for c, v in zip(cols, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(
    frame: pd.DataFrame,
    out_dir: str | os.PathLike,
    name: str,
    title: str | None = None,
    note: str | None = None,
    digits: int = 2,
) -> tuple[Path, Path]:
    """`<name>.csv` (full precision) and `<name>.md` (title, note, table) in out_dir; both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    frame.to_csv(csv_path, index=False)
    parts = [f"## {title}\n" if title else "", f"{note}\n" if note else "", to_markdown(frame, digits)]
    md_path.write_text("\n".join(p for p in parts if p), encoding="utf-8")
    return csv_path, md_path
