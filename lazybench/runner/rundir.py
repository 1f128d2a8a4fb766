"""A run directory's own files: the lock (one process per directory), config.yaml and run.json, and
the check that a directory holding records may be resumed with this config.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from lazybench.runner.common import OUTPUT_FREE_KEYS, RunConfigError, _json_normal, flatten, to_plain
from lazybench.runner.entries import MethodEntry
from lazybench.runner.frontend import versions
from lazybench.runner.hydra_state import hydra_overrides

#: Model-config keys that may change between a run and its resumption (they do not change outputs).
_MODEL_KEYS_FREE_ON_RESUME = frozenset({"id", "device", "requires"})


def identity(cfg: DictConfig) -> dict[str, Any]:
    """What must not change between a run and its resumption: it decides prompts and outputs."""
    model = {k: v for k, v in (to_plain(cfg.model) or {}).items() if k not in _MODEL_KEYS_FREE_ON_RESUME}
    out = {"model": model, "suite": to_plain(cfg.suite), "seed": cfg.get("seed", 0)}
    split = to_plain(cfg.get("split")) or {}
    if split.get("part", "all") != "all":  # rows of a dev/test split (runs without one stay resumable)
        out["split"] = split
    return _json_normal(out)


#: Overrides that do not change what a sweep job computes (ignored when a job dir is resumed).
_FREE_OVERRIDE_KEYS = OUTPUT_FREE_KEYS


def _result_overrides(overrides: list[str]) -> list[str]:
    out = []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key not in _FREE_OVERRIDE_KEYS and not key.startswith("debug."):
            out.append(item)
    return sorted(out)


def check_resumable(
    run_dir: Path,
    cfg: DictConfig,
    entries: list[MethodEntry],
    records: list[dict],
    sweep_job_overrides: list[str] | None = None,
) -> None:
    """Refuse to mix a run into a directory that holds a different one.

    A single-run directory may gain methods (records are keyed by method label); a sweep job
    directory (numbered by Hydra) must have been made by the same job overrides.
    """
    if records and not cfg.get("resume", True):
        raise RunConfigError(
            f"{run_dir} already holds {len(records)} records and resume=false: pick another name= "
            "(or output_dir=), delete the directory, or set resume=true to continue it"
        )
    saved = run_dir / "config.yaml"
    if saved.is_file() and records:
        old = identity(OmegaConf.load(saved))
        new = identity(cfg)
        if old != new:
            flat_old, flat_new = flatten(old), flatten(new)
            diffs = [
                f"{key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r}"
                for key in sorted(set(flat_old) | set(flat_new))
                if flat_old.get(key) != flat_new.get(key)
            ]
            raise RunConfigError(
                f"{run_dir} holds a run with a different model/suite/seed, which cannot be resumed with this "
                f"config ({'; '.join(diffs)}). Use another name= (or output_dir=) for this config."
            )
    info = run_dir / "run.json"
    if sweep_job_overrides is not None and records and info.is_file():
        old_overrides = json.loads(info.read_text(encoding="utf-8")).get("overrides")
        if old_overrides is not None and _result_overrides(old_overrides) != _result_overrides(
            sweep_job_overrides
        ):
            raise RunConfigError(
                f"sweep job directory {run_dir} holds a job made with overrides {old_overrides}, this job has "
                f"{sweep_job_overrides}: the sweep's points changed. Use another name= (or output_dir=) for this sweep."
            )
    seen: dict[str, dict] = {}
    for rec in records:
        seen.setdefault(rec["method_label"], rec.get("method_params") or {})
    for entry in entries:
        old_params = seen.get(entry.label)
        if old_params is not None and _json_normal(old_params) != entry.params:
            raise RunConfigError(
                f"{run_dir}: records of method {entry.label!r} were made with parameters {old_params}, "
                f"this config gives {entry.params}; give the method a distinct `label` or use another name="
            )


@contextmanager
def exclusive_run_dir(run_dir: Path):
    """One lazybench process per run directory: two would both run the pending units and append
    duplicates. An advisory lock on run_dir/.lock, released when the process ends, however it ends."""
    if fcntl is None:  # no flock (Windows): run unguarded
        yield
        return
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunConfigError(
                f"another lazybench process is running in {run_dir}; wait for it, or use another name="
            ) from None
        yield


def write_run_files(plan: Any, status: str, extra: dict | None = None) -> None:
    """config.yaml (the resolved config) and run.json (what the runner resolved and did)."""
    resolved = OmegaConf.to_container(plan.cfg, resolve=True)
    resolved["data_dir"] = plan.data.spec
    (plan.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)), encoding="utf-8")
    info = {
        "run_id": plan.run_id,
        "status": status,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_dir": str(plan.run_dir),
        "model": plan.spec.name,
        "device": plan.device,
        "num_layers": plan.num_layers,
        "context_limit": plan.context_limit,
        "data_dir": plan.data.spec,
        "data_source": plan.data_source,
        "rows": len(plan.rows),
        "methods": [
            {
                "label": m.label,
                "name": m.name,
                "params": m.params,
                "repeats": m.repeats,
                "categories": m.categories,
            }
            for m in plan.methods
        ],
        "method_under_test": plan.primary_label,
        "shard": {"index": plan.shard.index, "count": plan.shard.count},
        "overrides": hydra_overrides(),
        "command": sys.argv,
        "versions": versions(),
        **(extra or {}),
    }
    (plan.run_dir / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
