"""What the runner reads of Hydra's state, in one place: the job's output folder, its overrides, and
whether it is one job of a multirun. Each is a plain answer outside a Hydra app (tests, notebooks).
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def output_dir() -> Path | None:
    """The Hydra job's output folder (None outside a Hydra app)."""
    try:
        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - not under Hydra
        pass
    return None


def hydra_overrides() -> list[str]:
    """The job's command-line overrides ([] outside a Hydra app)."""
    try:
        if HydraConfig.initialized():
            return list(HydraConfig.get().overrides.task)
    except Exception:  # noqa: BLE001
        pass
    return []


def multirun() -> bool:
    """Whether this is one job of a Hydra multirun (a sweep)."""
    try:
        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001
        return False
