"""The chosen operating points as a reusable experiment config (conf/experiment/<name>_points.yaml).

`lazybench protocol select` writes it after the dev sweep; the test phase is then
`lazybench experiment=<name>_points`, and anyone can re-run a table at those points without
re-sweeping. The file builds on the protocol's preset (its `defaults`), switches the rows to the
test part of the split, drops the sweep, and lists the baseline plus every chosen setting, each run
only on the categories it was chosen for (`categories:`). Under `protocol.selection` it records how
the points were chosen (rule, source run, rows, split) and the dev numbers of each choice, which
the tables read back to label the selection.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

HEADER = """# @package _global_
# Operating points chosen by `lazybench protocol select` ({when}); generated, do not edit by hand.
# Rule: {rule}.
# Chosen on {rows} rows ({split}) of {run}.
# Test phase: lazybench experiment={name}   (dry run: add dry_run=true)
"""
#: Numbers of each choice kept in the file (the dev phase's), for the tables' "selected on" columns.
CHOICE_COLUMNS = [
    "category", "family", "method_label", "passes", "n_rows", "score", "baseline_score",
    "relative_score", "ttft_speedup", "flop_speedup", "rouge_l_vs_baseline", "prefix_agreement",
    "token_agreement",
]  # fmt: skip


def _plain(value: Any) -> Any:
    """numpy scalars and NaN as YAML-friendly Python values."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float):
        return round(value, 6)
    return value


def choice(line: Any) -> dict[str, Any]:
    """A chosen line's CHOICE_COLUMNS as YAML-friendly values."""
    return {c: _plain(line[c]) for c in CHOICE_COLUMNS}


def points_config(
    entries: list[dict[str, Any]],
    chosen: pd.DataFrame,
    rule: dict[str, Any],
    source: dict[str, Any],
    base_experiment: str | None,
    test_split: dict[str, Any] | None,
) -> dict[str, Any]:
    """The config as a dict. `source`: run, rows, split and model of the selection run."""
    config: dict[str, Any] = {}
    if base_experiment:
        config["defaults"] = [base_experiment, "_self_"]
    if test_split is not None:
        config["split"] = test_split
    config["sweep"] = None
    config["methods"] = ["baseline", *entries]
    choices = [{c: _plain(v) for c, v in line.items()} for line in chosen[CHOICE_COLUMNS].to_dict("records")]
    config["protocol"] = {
        "phase": "test",
        "selection": {**{k: _plain(v) for k, v in source.items()}, "rule": rule, "chosen": choices},
    }
    return config


def write_points(path: str | Path, config: dict[str, Any], rule_text: str, name: str) -> Path:
    """Write the config with a header saying where it came from; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sel = config["protocol"]["selection"]
    header = HEADER.format(
        when=time.strftime("%Y-%m-%d %H:%M"),
        rule=rule_text,
        rows=sel.get("rows"),
        split=sel.get("split_text", "all rows"),
        run=sel.get("run"),
        name=name,
    )
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=110)
    path.write_text(header + body, encoding="utf-8")
    return path


def read_points(path: str | Path) -> dict[str, Any]:
    """A points config as a dict (its chosen settings under protocol.selection.chosen)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such operating-points config")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "selection" not in (data.get("protocol") or {}):
        raise ValueError(f"{path} is not an operating-points config (no protocol.selection)")
    return data


def chosen_frame(points: dict[str, Any]) -> pd.DataFrame:
    """The chosen settings of a points config: category, family, method_label and the dev numbers."""
    return pd.DataFrame(points["protocol"]["selection"]["chosen"], columns=CHOICE_COLUMNS)
