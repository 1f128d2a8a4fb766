"""Finding and loading run records (`records.jsonl`, one `RunRecord` per line) into one DataFrame."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from lazybench.records import RECORDS_FILE, RunRecord, read_records
from lazybench.shards import finished_empty, merged_config, owner, shard_dirs, shard_set

CONFIG_FILE = "config.yaml"
RESULTS_ENV = "LAZYBENCH_RESULTS"

#: Numeric fields that may be None (None becomes NaN; first_token_match becomes 1.0/0.0/NaN).
NULLABLE_NUMERIC_COLUMNS = (
    "decode_step_mean_s",
    "first_token_match",
    "first_token_kl",
    "rouge_l_vs_baseline",
    "token_agreement",
)
RECORD_COLUMNS = tuple(f.name for f in dataclasses.fields(RunRecord))


def find_record_files(*paths: str | os.PathLike) -> list[Path]:
    """Every `records.jsonl` under the given run dirs / sweep dirs (recursively), or the files themselves.

    Order: the paths in the order given, each one's files sorted; duplicates are listed once.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(path.rglob(RECORDS_FILE))
        else:
            raise FileNotFoundError(f"{path}: no such run directory or records file")
        for candidate in candidates:
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                found.append(candidate)
    return found


def _short_names(run_dirs: list[Path]) -> dict[Path, str]:
    """Display names of runs: the folder name, or the path below the common parent when names clash."""
    names = [d.name or str(d) for d in run_dirs]
    if len(set(names)) == len(names):
        return dict(zip(run_dirs, names))
    resolved = [d.resolve() for d in run_dirs]
    common = Path(os.path.commonpath(resolved))
    return {d: str(r.relative_to(common)) or d.name for d, r in zip(run_dirs, resolved)}


def load_runs(*paths: str | os.PathLike) -> pd.DataFrame:
    """All records under the given run dirs or sweep dirs, one row per (example, method_label, repeat).

    Columns: every `RunRecord` field (nested ones, e.g. `method_params`, `extra`, the per-layer lists,
    stay Python objects), any extra fields the records carry, plus `run_dir` (the folder holding the
    records file; for a shard, `<run>/shards/<i>-of-<N>`, the run above it: the shards of a run are
    read as that one run, lazybench.shards) and `run` (a short display name for it). Numeric fields are floats with NaN for
    None; `first_token_match` becomes 1.0 / 0.0 / NaN so that its mean is the match rate.

    A half-written last line (a run killed mid-write) is skipped with a warning; any other malformed
    line raises (see `lazybench.records.read_records`). Raises FileNotFoundError when no records
    file is found at all.
    """
    if not paths:
        raise ValueError("load_runs needs at least one run directory")
    files = find_record_files(*paths)
    if not files:
        raise FileNotFoundError(
            f"no {RECORDS_FILE} under {', '.join(str(p) for p in paths)}: is this a lazybench run directory?"
        )
    runs = {f.parent: owner(f.parent) for f in files}
    _check_shards(runs)
    names = _short_names(list(dict.fromkeys(runs.values())))
    rows: list[dict[str, Any]] = []
    for file in files:
        loaded = read_records(file)
        if loaded.dropped_partial_line:
            warnings.warn(f"{file}: ignored a half-written last line (interrupted run)", stacklevel=2)
        for record in loaded.records:
            run = runs[file.parent]
            rows.append({**record, "run_dir": str(run), "run": names[run]})
    extra_columns = sorted({k for row in rows for k in row} - set(RECORD_COLUMNS) - {"run_dir", "run"})
    columns = ["run", "run_dir", *RECORD_COLUMNS, *extra_columns]
    df = pd.DataFrame.from_records(rows, columns=columns)
    for col in NULLABLE_NUMERIC_COLUMNS:
        df[col] = df[col].map(lambda v: float("nan") if v is None else float(v)).astype(float)
    return df


def _check_shards(runs: dict[Path, Path]) -> None:
    """Shards read as one run must agree (else lazybench.shards.ShardError); say when some are missing."""
    for run in dict.fromkeys(runs.values()):
        folders = [folder for folder, parent in runs.items() if parent == run and folder != run]
        if folders and (run / RECORDS_FILE).is_file():
            raise ValueError(f"{run} holds both its own records and shards' ({run / 'shards'}): not one run")
        if folders:  # a finished shard that owned no rows has no records, but is not missing
            folders += [p for p in shard_dirs(run).values() if p not in folders and finished_empty(p)]
        found = shard_set(run, folders) if folders else None
        if found is not None and found.missing:
            warnings.warn(found.note(), stacklevel=3)


def load_run_config(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's `config.yaml` as a dict (None when the run has none); a sharded run's from its shards
    when `lazybench merge` has not written one."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        found = shard_set(Path(run_dir))
        return merged_config(found) if found else None
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def repo_root() -> Path:
    """The nearest folder at or above the working directory holding `pyproject.toml` (else the working directory)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists():
            return folder
    return here


def results_path(default: str | os.PathLike = "results/reference/demo") -> Path:
    """Where notebooks read results from: $LAZYBENCH_RESULTS, else `default`; a relative path is taken
    from the repository root (`repo_root`), so notebooks work whether started from `notebooks/` or the root."""
    path = Path(os.environ.get(RESULTS_ENV) or default)
    return path if path.is_absolute() else repo_root() / path
