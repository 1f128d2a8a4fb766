"""An lm-eval run's numbers and run.json: `lazybench.aggregate` over its request records.

One request is one row; a lazybench LongBench row keeps its dataset and category, a request of
another lm-eval task has the task as its dataset. An lm-eval run has one method, so its accounting
has no comparisons; as with the runner, a run directory may gain methods (records are keyed by
method label): run ``method=baseline`` and the method under test with the same ``output=`` and
`lazybench analyze` that directory for speedups and relative scores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lazybench import aggregate
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.common import RunConfigError

#: The accounting numbers of a request list (lazybench.aggregate columns; no baseline here).
ACCOUNTING = (
    "n_rows", "score", "ttft_s", "total_s", "prompt_tokens", "new_tokens", "pct_prompt_computed",
    "prefill_flop_fraction", "pruned_pct", "truncated_pct", "noisy_rows",
)  # fmt: skip


def summary(records: Sequence[dict[str, Any]], run_dir: Path | None = None) -> pd.DataFrame:
    """`lazybench.aggregate.summarize` of the records, without a baseline."""
    return aggregate.summarize(list(records), baseline=None, run_dir=run_dir)


def _line(row: pd.Series) -> dict[str, Any]:
    return {name: row[name].item() if hasattr(row[name], "item") else row[name] for name in ACCOUNTING}


def accounting(records: Sequence[dict[str, Any]], run_dir: Path | None = None) -> dict[str, Any]:
    """The overall line and one line per dataset of `summary`, ACCOUNTING columns."""
    if not records:
        return {"overall": {"n_rows": 0}, "per_dataset": {}}
    frame = summary(records, run_dir)
    overall = aggregate.select_level(frame, aggregate.OVERALL).iloc[0]
    datasets = aggregate.select_level(frame, "dataset")
    return {"overall": _line(overall), "per_dataset": {r["group"]: _line(r) for _, r in datasets.iterrows()}}


def check_run_dir(run_dir: Path, label: str, model: str) -> None:
    """A run directory may gain a method of the same model; a method it already holds is refused."""
    held = read_records(run_dir / RECORDS_FILE).records
    if any(r["method_label"] == label for r in held):
        raise RunConfigError(
            f"{run_dir} already holds records of {label!r}: give lm-eval another --output_path (or output=)"
        )
    models = sorted({r["model"] for r in held} - {model})
    if models:
        raise RunConfigError(
            f"{run_dir} holds records of model {models[0]!r}, not {model!r}: use another output="
        )


def write_run_json(run_dir: Path, records: Sequence[dict[str, Any]], info: dict[str, Any]) -> Path:
    """run.json of an lm-eval run: `info` (model, method, environment), the row count, the accounting."""
    path = run_dir / "run.json"
    before = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    methods = [m for m in before.get("methods", []) if m not in info.get("methods", [])]
    data = {
        "run_id": run_dir.name,
        "status": "finished",
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_dir": str(run_dir),
        "harness": "lm-eval",
        "rows": len(records),
        **info,
        "methods": [*methods, *info.get("methods", [])],
        "accounting": accounting(records, run_dir),
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path
