"""The config groups (model, suite, experiment under `conf/`; method from the method registry).

The `method` group has no YAML: each registered method's node (`name`, `label` and the class's
`Method.defaults()`) is stored in Hydra's ConfigStore by `register_method_configs`, which everything
that composes calls first (the app in `lazybench.cli`, `compose_config`). So `method=snapkv
method.window=16` composes without `+`, and a method's defaults live only in its class.

Jobs that need the groups but not a composed run:

- `check_group_choices`: an unknown option such as `model=nope` becomes one `RunConfigError` line
  naming the known configs, checked on the command line before Hydra starts (so before any weights
  can load). Hydra's own report is several lines about search paths.
- `check_method_keys`: `method.<key>=` naming no key of the chosen method's node (a typo, a
  parameter of another method) is one line too, instead of Hydra's struct-mode report.
- `model_node`: the `model` node exactly as `lazybench model=<key>` (a conf/model key) or
  `lazybench model.name=<hub id or folder>` composes it, for tools outside the Hydra app (the
  profiler, the lm-eval backend), so that their `--model` means what the runner's `model=` means;
  `lazybench.runner.frontend` turns the node into a checked spec, tokenizer, EOS ids and chat style.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf

from lazybench.methods import METHODS, list_methods
from lazybench.runner.common import RunConfigError, conf_dir

#: Hydra's own group (launchers, sweepers): options there come from plugins, not from conf/ alone.
_HYDRA_GROUP = "hydra"
#: Hydra flags that add or replace config sources: with them conf/ no longer lists every option.
_SOURCE_FLAGS = ("-cp", "--config-path", "-cd", "--config-dir", "-cn", "--config-name")
#: The group made from the method registry (lazybench.methods) instead of conf/ files.
METHOD_GROUP = "method"
#: Keys of every method node besides the class's parameters (`label`: null is the method's own label).
METHOD_NODE_KEYS = ("name", "label")


def method_node(name: str) -> dict[str, Any]:
    """The `method` node that `method=<name>` composes: its name, `label: null` and the class's
    defaults (`Method.defaults()`); just the name for a method not registered."""
    cls = METHODS.get(name)
    return {"name": name, "label": None, **(cls.defaults() if cls is not None else {})}


def register_method_configs() -> None:
    """Store every registered method's node in Hydra's ConfigStore as the option `method=<name>`.

    Call it before composing (idempotent: a method registered since is added on the next call). Hydra
    finds the group there once conf/ holds no method folder; a launcher's worker processes get the
    store with Hydra's singleton state. No conf/method/<name>.yaml may share a name with a method:
    Hydra would silently merge the file over the stored node (its deprecated schema matching).
    """
    store = ConfigStore.instance()
    for name in list_methods():
        store.store(group=METHOD_GROUP, name=name, node=method_node(name), provider="lazybench")


def compose_config(overrides: Sequence[str] = (), hydra_config: bool = False) -> DictConfig:
    """The composed lazybench config for these overrides, as the `lazybench` command would see it."""
    register_method_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra_config)


def groups() -> list[str]:
    """The config groups a user picks options of (`model`, `suite`, `method`, ...): the folders of
    conf/ and the method group."""
    root = conf_dir()
    folders = {p.name for p in root.iterdir() if p.is_dir() and p.name != _HYDRA_GROUP}
    return sorted(folders | {METHOD_GROUP})


def group_options(group: str) -> list[str]:
    """The options of a group: the names of its conf/<group>/*.yaml files (for `method`: the
    registered methods, and any YAML a user added under conf/method/)."""
    files = {p.stem for p in (conf_dir() / group).glob("*.yaml")}
    return sorted(files | set(list_methods()) if group == METHOD_GROUP else files)


def default_option(group: str) -> str | None:
    """The option conf/config.yaml's defaults list picks for a group (None if it picks none)."""
    for entry in OmegaConf.load(conf_dir() / "config.yaml").get("defaults", []):
        if isinstance(entry, DictConfig) and group in entry:
            return entry[group]
    return None


def unknown_option(group: str, value: str) -> RunConfigError:
    """The one-line error for `group=value` where conf/<group>/value.yaml does not exist."""
    options = group_options(group)
    close = difflib.get_close_matches(value, options, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    where = "the methods registered in lazybench.methods" if group == METHOD_GROUP else f"conf/{group}/*.yaml"
    message = f"unknown {group} config {value!r}{hint}; the {group} configs ({where}) are: " + ", ".join(
        options
    )
    if group == "model":
        message += "; for any other model keep a config and set model.name=<hub id or folder>"
    return RunConfigError(message)


def _chosen(override) -> Iterator[str]:
    """The literal options an override picks (a sweep's choices; nothing for globs or interpolations)."""
    if override.is_delete() or override.value() is None:
        return
    if override.is_sweep_override():
        values = (
            list(override.sweep_string_iterator()) if type(override.value()).__name__ == "ChoiceSweep" else []
        )
    else:
        values = [override.get_value_element_as_str()]
    yield from (v for v in values if "${" not in v and v != "null")


def _overrides(args: Sequence[str], wanted) -> Iterator[Override]:
    """The overrides of Hydra's argv whose key passes `wanted` (nothing when a flag adds config
    sources: `--config-dir`, ..., as options may live there). Arguments Hydra's grammar cannot parse
    are left to Hydra, which reports them itself."""
    if any(arg.split("=", 1)[0] in _SOURCE_FLAGS for arg in args):
        return
    if any(arg.lstrip("+").startswith("hydra.searchpath") for arg in args):
        return
    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg or not wanted(arg.lstrip("+~").split("=", 1)[0]):
            continue
        try:
            yield parser.parse_override(arg)
        except Exception:  # noqa: BLE001 - Hydra's grammar error is Hydra's to report
            continue


def check_group_choices(args: Sequence[str]) -> None:
    """Raise `RunConfigError` for the first `group=option` in Hydra's argv naming no known option."""
    known = set(groups())
    for override in _overrides(args, lambda key: key.split("@")[0] in known):
        options = set(group_options(override.key_or_group))
        for value in _chosen(override):
            if value not in options:
                raise unknown_option(override.key_or_group, value)


def _experiment_method(experiment: str) -> tuple[str | None, dict[str, Any]]:
    """The method option an experiment preset picks (`override /method: <name>`, None if none) and
    the `method:` node it merges over that option's."""
    path = conf_dir() / "experiment" / f"{experiment}.yaml"
    if not path.is_file():
        return None, {}
    preset = OmegaConf.to_container(OmegaConf.load(path))
    picked = next(
        (
            e["override /method"]
            for e in preset.get("defaults", [])
            if isinstance(e, dict) and "override /method" in e
        ),
        None,
    )
    return picked, preset.get(METHOD_GROUP) or {}


def _method_nodes(args: Sequence[str]) -> list[dict[str, Any]]:
    """The method nodes Hydra will compose for argv, before its own `method.<key>=` overrides: for
    every method option and experiment preset picked (sweeps included), the option's node with the
    preset's `method:` node merged in."""
    picked = {METHOD_GROUP: [], "experiment": []}
    for override in _overrides(args, lambda key: key in picked):
        if override.type == OverrideType.DEL:
            continue
        picked[override.key_or_group] += list(_chosen(override))
    nodes = []
    for experiment in picked["experiment"] or [None]:
        preset_method, preset_node = _experiment_method(experiment) if experiment else (None, {})
        for name in picked[METHOD_GROUP] or [preset_method or default_option(METHOD_GROUP)]:
            if name in METHODS:
                nodes.append(OmegaConf.to_container(OmegaConf.merge(method_node(name), preset_node)))
    return nodes


def check_method_keys(args: Sequence[str]) -> None:
    """Raise `RunConfigError` for a `method.<key>=<value>` in Hydra's argv that names no key of a
    method node it would apply to (`+method.<key>=` adds a key on purpose and is not checked)."""
    changes = [
        o
        for o in _overrides(args, lambda key: key.startswith(f"{METHOD_GROUP}."))
        if o.type == OverrideType.CHANGE and o.package is None
    ]
    if not changes:
        return
    for node in _method_nodes(args):
        for override in changes:
            _check_path(node, override.key_or_group.split(".")[1:], override.input_line or "")


def _check_path(node: dict[str, Any], path: list[str], line: str) -> None:
    where = f"method {node['name']}"
    for part in path:
        if not isinstance(node, dict):
            return  # below a value: Hydra's to judge
        if part not in node:
            close = difflib.get_close_matches(part, [str(k) for k in node], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise RunConfigError(
                f"{line}: {where} has no key {part!r}{hint}; its keys are {', '.join(map(str, node))} "
                "(a method's parameters are the fields of its class in lazybench.methods)"
            )
        node, where = node[part], f"{where}'s {part}"


def model_node(model: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The composed `model` node for `model` (a conf/model key, else a hub id or folder) and overrides.

    A key reads conf/model/<key>.yaml, as `lazybench model=<key>`; anything else is a model name on
    the default model config, as `lazybench model.name=<name>`. Then each `model.<field>=<value>`
    override applies (YAML-typed, as on Hydra's command line); a field the config lacks is an error.
    """
    if model in group_options("model"):
        node = OmegaConf.load(conf_dir() / "model" / f"{model}.yaml")
    else:
        default = default_option("model")
        if default is None:
            raise RunConfigError(f"model {model!r}: conf/config.yaml picks no default model config")
        node = OmegaConf.load(conf_dir() / "model" / f"{default}.yaml")
        node.name = model
    for override in overrides:
        key = override.split("=", 1)[0]
        field = key.removeprefix("model.")
        if "=" not in override or not key.startswith("model.") or field not in node:
            raise RunConfigError(
                f"bad model override {override!r}: expected model.<field>=<value> with a field of "
                f"{', '.join(str(k) for k in node)}"
            )
        node = OmegaConf.merge(node, OmegaConf.from_dotlist([override]).model)
    return node
