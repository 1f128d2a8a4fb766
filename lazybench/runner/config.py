"""From a composed Hydra config to validated run pieces, without loading any model weights.

Everything a user can get wrong (a method name or parameter, a schedule, a suite, the data folder,
a run directory that holds a different run) is checked here and reported as `RunConfigError`, so
that a typo costs seconds, not a model load or an hour of generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lazybench.records import SPREAD_LIMIT

#: Keys of a method node that configure the run, not the method class.
RESERVED_METHOD_KEYS = ("name", "label", "repeats", "categories")
BASELINE = "baseline"
#: Model-config keys that may change between a run and its resumption (they do not change outputs).
_MODEL_KEYS_FREE_ON_RESUME = frozenset({"id", "device", "requires"})


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


# ---------------------------------------------------------------------------------------------
# methods


@dataclass
class MethodEntry:
    """One method of a run: the built method, its label and how many repeats per row."""

    name: str
    label: str
    params: dict[str, Any]
    method: Any  # lazybench.methods.Method
    repeats: int
    categories: tuple[str, ...] | None = None  # run only on rows of these categories (None: every row)

    @property
    def is_baseline(self) -> bool:
        return self.name == BASELINE

    def runs_on(self, category: str) -> bool:
        """Whether this method runs on a row of `category` (operating points chosen per category)."""
        return self.categories is None or category in self.categories


def method_defaults(name: str) -> dict[str, Any]:
    """The method's config-level defaults (conf/method/<name>.yaml), or just its name."""
    path = conf_dir() / "method" / f"{name}.yaml"
    if path.is_file():
        return to_plain(OmegaConf.load(path))
    return {"name": name}


def _entry_dict(entry: Any, where: str) -> dict[str, Any]:
    entry = to_plain(entry)
    if isinstance(entry, str):
        return method_defaults(entry)
    if isinstance(entry, dict):
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise RunConfigError(f"{where}: a method given as a dict needs a `name`, got {entry}")
        merged = OmegaConf.merge(method_defaults(name), entry)
        return to_plain(merged)
    raise RunConfigError(f"{where}: a method is a name or a dict with a `name`, got {entry!r}")


def _build(entry: dict[str, Any], where: str, default_repeats: int) -> MethodEntry:
    from lazybench.engine import ScheduleError
    from lazybench.methods import UnknownMethodError, build_method

    name = entry["name"]
    params = {k: v for k, v in entry.items() if k not in RESERVED_METHOD_KEYS}
    try:
        method = build_method(name, **params)
    except UnknownMethodError as err:
        raise RunConfigError(f"{where}: {err}") from None
    except ScheduleError as err:
        raise RunConfigError(f"{where}: bad schedule for method {name!r}: {err}") from None
    except (TypeError, ValueError) as err:
        text = str(err)
        raise RunConfigError(f"{where}: {text if name in text else f'method {name!r}: {text}'}") from None
    label = entry.get("label") or method.label()
    repeats = entry.get("repeats") or default_repeats
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise RunConfigError(f"{where}: repeats must be a positive integer, got {repeats!r}")
    return MethodEntry(
        name=name,
        label=str(label),
        params=_json_normal(method.params()),
        method=method,
        repeats=repeats if method.stochastic else 1,
        categories=_categories(entry.get("categories"), where),
    )


def method_entry(item: Any, where: str, default_repeats: int = 1) -> MethodEntry:
    """One method from a name or a dict with a `name` (merged over conf/method/<name>.yaml, as a
    `methods` entry is), built and checked; `where` names it in errors. The lm-eval backend builds
    its method with this, so `method=` there means what it means on the runner's command line."""
    return _build(_entry_dict(item, where), where, default_repeats)


def _categories(value: Any, where: str) -> tuple[str, ...] | None:
    """A method entry's `categories` (the paper categories whose rows it runs on), validated."""
    from lazybench.tasks.registry import CATEGORIES

    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(c, str) for c in items):
        raise RunConfigError(f"{where}: categories must be a non-empty list of category names, got {value!r}")
    unknown = [c for c in items if c not in CATEGORIES]
    if unknown:
        raise RunConfigError(f"{where}: unknown category {unknown[0]!r}; choose from {', '.join(CATEGORIES)}")
    return tuple(dict.fromkeys(items))


def resolve_methods(cfg: DictConfig, extra: list[Any] | None = None) -> tuple[list[MethodEntry], str | None]:
    """The run's methods, baseline first, duplicates (same label and params) dropped.

    Returns the entries and the label of the method under test (`cfg.method`, or the first
    non-baseline method when `method` is the baseline or absent), which the progress bar and a
    sweep objective follow. `extra`: further entries after `methods` (an operating-point sweep's
    settings, `lazybench.protocol.sweep`). A duplicate restricted to other categories widens them.
    """
    repeats = cfg.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise RunConfigError(f"repeats must be a positive integer, got {repeats!r}")
    listed = to_plain(cfg.get("methods")) or []
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list):
        raise RunConfigError(f"`methods` must be a list of method names or dicts, got {listed!r}")
    raw: list[tuple[str, Any]] = [("baseline (always run)", BASELINE)]
    raw += [(f"methods[{i}]", item) for i, item in enumerate(listed)]
    raw += [(f"sweep setting {i}", item) for i, item in enumerate(extra or [])]
    primary_raw = cfg.get("method")
    if primary_raw is not None:
        raw.append(("method", primary_raw))

    entries: list[MethodEntry] = []
    primary_label: str | None = None
    for where, item in raw:
        built = method_entry(item, where, repeats)
        same = next((e for e in entries if e.label == built.label), None)
        if same is not None:
            if same.name != built.name or same.params != built.params:
                raise RunConfigError(
                    f"{where}: label {built.label!r} is already used by another method configuration "
                    f"({same.name} {same.params}); give one of them a distinct `label`"
                )
            if same.categories is not None:
                wider = None if built.categories is None else (*same.categories, *built.categories)
                same.categories = None if wider is None else tuple(dict.fromkeys(wider))
        else:
            entries.append(built)
        if where == "method" and not built.is_baseline:
            primary_label = built.label
    if primary_label is None:
        primary_label = next((e.label for e in entries if not e.is_baseline), None)
    return entries, primary_label


def validate_schedules(entries: list[MethodEntry], num_layers: int) -> None:
    """Resolve every schedule a method holds against the model's depth (it needs num_layers)."""
    import dataclasses

    from lazybench.engine import Schedule, ScheduleError

    for entry in entries:
        if not dataclasses.is_dataclass(entry.method):
            continue
        for f in dataclasses.fields(entry.method):
            value = getattr(entry.method, f.name)
            if isinstance(value, Schedule):
                try:
                    value.resolve(num_layers)
                except ScheduleError as err:
                    raise RunConfigError(f"method {entry.label!r}: bad {f.name}: {err}") from None


# ---------------------------------------------------------------------------------------------
# suite, data, model


def resolve_suite(cfg: DictConfig):
    from lazybench.tasks import Suite, UnknownTaskError

    data = to_plain(cfg.get("suite"))
    if not isinstance(data, dict):
        raise RunConfigError(
            f"`suite` must be a mapping (name, datasets, limit, seed, max_new_tokens_cap), got {data!r}"
        )
    try:
        return Suite.from_dict(data)
    except UnknownTaskError as err:
        raise RunConfigError(f"suite {data.get('name')!r}: {err}") from None
    except (TypeError, ValueError) as err:
        raise RunConfigError(f"suite {data.get('name')!r}: {err}") from None


def resolve_split(cfg: DictConfig):
    """The run's dev/test row split (`split:`; lazybench.protocol.split), or None for all rows."""
    from lazybench.protocol.split import RowSplit

    try:
        split = RowSplit.from_config(to_plain(cfg.get("split")))
    except (TypeError, ValueError) as err:
        raise RunConfigError(str(err)) from None
    return split if split.active else None


def absolute(path: str | Path) -> Path:
    """A path from the config, relative paths taken from the directory lazybench was started in."""
    try:
        from hydra.utils import to_absolute_path

        return Path(to_absolute_path(str(path)))
    except Exception:  # noqa: BLE001 - outside a Hydra app: relative to the current directory
        return Path(path).absolute()


def resolve_data_source(cfg: DictConfig):
    """The run's `lazybench.tasks.DataSource` (`data_dir`: unset -> offline slice, ``offline``, ``hub``,
    ``hub:<copy>``, or a folder; see lazybench.tasks.sources). A folder must exist."""
    from lazybench.tasks import OFFLINE, DataSource, resolve_source

    value = cfg.get("data_dir")
    try:
        source = resolve_source(None if value is None else str(value))
    except ValueError as err:
        raise RunConfigError(str(err)) from None
    if source.kind != "folder":
        return source
    path = absolute(source.folder)
    if not path.is_dir():
        named = f"data_dir={value!r}" if source.origin == "data_dir=" else f"{source.origin}={source.folder}"
        raise RunConfigError(
            f"LongBench data folder {path} does not exist ({named}). Point data_dir= at a folder of LongBench "
            f"<dataset>.jsonl files, or use data_dir=hub (the full benchmark) or data_dir={OFFLINE} (the "
            "bundled 187-row slice)."
        )
    return DataSource("folder", folder=path, origin=source.origin)


def model_spec(cfg: DictConfig):
    from lazybench.models import ModelSpec

    m = cfg.get("model")
    if m is None or not m.get("name"):
        raise RunConfigError("`model.name` is not set: pick a model config (model=<name>) or set model.name=")
    return ModelSpec(
        name=str(m.name),
        dtype=str(m.get("dtype", "auto")),
        device=str(m.get("device", "auto")),
        attn_implementation=str(m.get("attn_implementation", "sdpa")),
        trust_remote_code=bool(m.get("trust_remote_code", False)),
        tokenizer=m.get("tokenizer"),
        random_init=bool(m.get("random_init", False)),
    )


# ---------------------------------------------------------------------------------------------
# run directory


def identity(cfg: DictConfig) -> dict[str, Any]:
    """What must not change between a run and its resumption: it decides prompts and outputs."""
    model = {k: v for k, v in (to_plain(cfg.model) or {}).items() if k not in _MODEL_KEYS_FREE_ON_RESUME}
    out = {"model": model, "suite": to_plain(cfg.suite), "seed": cfg.get("seed", 0)}
    split = to_plain(cfg.get("split")) or {}
    if split.get("part", "all") != "all":  # rows of a dev/test split (runs without one stay resumable)
        out["split"] = split
    return _json_normal(out)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: Overrides that do not change what a sweep job computes (ignored when a job dir is resumed).
_FREE_OVERRIDE_KEYS = frozenset(
    {"resume", "progress", "print_table", "plot", "threads", "warmups", "output_dir", "data_dir", "objective"}
)


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
            flat_old, flat_new = _flatten(old), _flatten(new)
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


# ---------------------------------------------------------------------------------------------
# timing


@dataclass(frozen=True)
class TimingConfig:
    """How TTFT is measured (conf/config.yaml `timing:`; see lazybench.runner.timing).

    prefill_repeats: TTFT samples per (row, method, repeat); the median is the record's `ttft_s`.
    spread_threshold: a unit whose samples spread by more than this fraction of their median, as
    (max - min) / median, is counted as noisy in the end-of-run note; by default the limit the
    summaries flag noisy rows by (`lazybench.records.SPREAD_LIMIT`, its one definition).
    """

    prefill_repeats: int = 1
    spread_threshold: float = SPREAD_LIMIT


def resolve_timing(cfg: DictConfig) -> TimingConfig:
    """The run's `timing:` block, validated (absent keys take the dataclass defaults)."""
    data = to_plain(cfg.get("timing")) or {}
    if not isinstance(data, dict):
        raise RunConfigError(f"`timing` must be a mapping (prefill_repeats, spread_threshold), got {data!r}")
    unknown = sorted(set(data) - {"prefill_repeats", "spread_threshold"})
    if unknown:
        raise RunConfigError(f"timing has no key(s) {unknown}; it takes prefill_repeats and spread_threshold")
    repeats = data.get("prefill_repeats", TimingConfig.prefill_repeats)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise RunConfigError(f"timing.prefill_repeats must be a positive integer, got {repeats!r}")
    threshold = data.get("spread_threshold")
    if threshold is None:
        threshold = TimingConfig.spread_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise RunConfigError(f"timing.spread_threshold must be a number >= 0, got {threshold!r}")
    return TimingConfig(prefill_repeats=repeats, spread_threshold=float(threshold))


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
