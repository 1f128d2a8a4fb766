"""A run's methods: each entry of `methods` / `method` (a name or a dict) merged over its
method node (the class's defaults, `lazybench.conf_groups.method_node`), built through the
`lazybench.methods` registry and checked.

The runner's `prepare` and the lm-eval backend build their methods here, so a method means the
same thing on both command lines.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lazybench.conf_groups import method_node
from lazybench.engine import Schedule, ScheduleError
from lazybench.methods import UnknownMethodError, build_method
from lazybench.runner.common import RunConfigError, _json_normal, to_plain
from lazybench.tasks.registry import CATEGORIES

#: Keys of a method node that configure the run, not the method class.
RESERVED_METHOD_KEYS = ("name", "label", "repeats", "categories")
BASELINE = "baseline"


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
    """The method's config-level defaults: the node `method=<name>` composes (its class's defaults,
    name and `label: null`), or just its name for a method not registered (reported when built)."""
    return method_node(name)


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
    """One method from a name or a dict with a `name` (merged over its class's defaults, as a
    `methods` entry is), built and checked; `where` names it in errors. The lm-eval backend builds
    its method with this, so `method=` there means what it means on the runner's command line."""
    return _build(_entry_dict(item, where), where, default_repeats)


def _categories(value: Any, where: str) -> tuple[str, ...] | None:
    """A method entry's `categories` (the paper categories whose rows it runs on), validated."""

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
