"""What every part of the runner (and the CLI, before Hydra composes a config) needs: the config
errors, where the config tree is, plain values from config nodes, and lazybench's OmegaConf
resolvers (registered when this module is imported, so before any composition).

Light on purpose: `lazybench --help` and the argv checks import it (no torch, no transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class RunConfigError(ValueError):
    """A configuration that cannot run; the message says what is wrong and how to fix it."""


class NotAvailableHereError(RunConfigError):
    """The config is valid but something it names is not on this machine (model weights outside the
    local cache, the hub unreachable): a dry run can still describe the run around it."""


def conf_dir() -> Path:
    """The Hydra config tree: `conf/` at the repository root (or `lazybench/conf` in a wheel)."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise RunConfigError(
        f"lazybench's config tree was found neither at {here.parent / 'conf'} nor {here / 'conf'}"
    )


def to_plain(node: Any) -> Any:
    """A config node as plain Python containers (resolved)."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _json_normal(value: Any) -> Any:
    """Tuples become lists etc., so params read back from JSON compare equal to fresh ones."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def absolute(path: str | Path) -> Path:
    """A path from the config, relative paths taken from the directory lazybench was started in."""
    try:
        from hydra.utils import to_absolute_path

        return Path(to_absolute_path(str(path)))
    except Exception:  # noqa: BLE001 - outside a Hydra app: relative to the current directory
        return Path(path).absolute()


# ---------------------------------------------------------------------------------------------
# derived schedules (OmegaConf has no arithmetic): ${lazybench.arithmetic:...}, ${lazybench.geometric:...}


def _sequence(name: str, start: Any, factor: Any, n: Any, decimals: Any, geometric: bool) -> list[float]:
    try:
        start, factor, n, decimals = float(start), float(factor), int(n), int(decimals)
    except (TypeError, ValueError):
        raise RunConfigError(
            f"${{lazybench.{name}:start,{'ratio' if geometric else 'step'},n[,decimals]}} needs numbers, "
            f"got {start!r}, {factor!r}, {n!r}, {decimals!r}"
        ) from None
    if n < 1:
        raise RunConfigError(f"${{lazybench.{name}:...}}: n must be >= 1, got {n}")
    if geometric:
        return [round(start * factor**i, decimals) for i in range(n)]
    # Round start and step first, so consecutive values differ by exactly the rounded step.
    start, factor = round(start, decimals), round(factor, decimals)
    return [round(start + i * factor, decimals) for i in range(n)]


def _arithmetic(start: Any, step: Any, n: Any, decimals: Any = 2) -> list[float]:
    """`${lazybench.arithmetic:start,step,n}`: [start, start+step, ..., start+(n-1)step] (rounded).

    E.g. schedule boundaries from a first depth and a spacing: strictly increasing when step > 0.
    """
    return _sequence("arithmetic", start, step, n, decimals, geometric=False)


def _geometric(start: Any, ratio: Any, n: Any, decimals: Any = 3) -> list[float]:
    """`${lazybench.geometric:start,ratio,n}`: [start, start*ratio, ..., start*ratio^(n-1)] (rounded).

    E.g. kept fractions from a first keep and a decay in (0, 1]: non-increasing.
    """
    return _sequence("geometric", start, ratio, n, decimals, geometric=True)


def register_resolvers() -> None:
    """Register lazybench's OmegaConf resolvers (idempotent; done when this module is imported)."""
    for name, fn in (("lazybench.arithmetic", _arithmetic), ("lazybench.geometric", _geometric)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {"a.b.c": value}: two configs compare key by key (resume, shards)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: Config keys that change no output of a run: a resumed sweep job and the shards of one run may differ in them.
OUTPUT_FREE_KEYS = frozenset(
    {"resume", "progress", "print_table", "plot", "threads", "warmups", "output_dir", "data_dir", "objective"}
)
