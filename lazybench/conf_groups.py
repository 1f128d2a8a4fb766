"""The config groups under `conf/` (model, suite, method, experiment), read without composing a run.

Two jobs that need the group folders but not Hydra's composition:

- `check_group_choices`: an unknown option such as `model=nope` becomes one `RunConfigError` line
  naming the known configs, checked on the command line before Hydra starts (so before any weights
  can load). Hydra's own report is several lines about search paths.
- `model_node`: the `model` node exactly as `lazybench model=<key>` (a conf/model key) or
  `lazybench model.name=<hub id or folder>` composes it, for tools outside the Hydra app (the
  profiler, the lm-eval backend), so that their `--model` means what the runner's `model=` means;
  `lazybench.runner.frontend` turns the node into a checked spec, tokenizer, EOS ids and chat style.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

from omegaconf import DictConfig, OmegaConf

from lazybench.runner.common import RunConfigError, conf_dir

#: Hydra's own group (launchers, sweepers): options there come from plugins, not from conf/ alone.
_HYDRA_GROUP = "hydra"
#: Hydra flags that add or replace config sources: with them conf/ no longer lists every option.
_SOURCE_FLAGS = ("-cp", "--config-path", "-cd", "--config-dir", "-cn", "--config-name")


def groups() -> list[str]:
    """The config groups a user picks options of (`model`, `suite`, ...): the folders of conf/."""
    root = conf_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != _HYDRA_GROUP)


def group_options(group: str) -> list[str]:
    """The options of a group: the names of its conf/<group>/*.yaml files."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


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
    message = (
        f"unknown {group} config {value!r}{hint}; the {group} configs (conf/{group}/*.yaml) are: "
        + ", ".join(options)
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


def check_group_choices(args: Sequence[str]) -> None:
    """Raise `RunConfigError` for the first `group=option` in Hydra's argv naming no conf/ file.

    Arguments Hydra's grammar cannot parse are left to Hydra, which reports them itself; with a flag
    that adds config sources (`--config-dir`, ...) nothing is checked, as options may live there.
    """
    if any(arg.split("=", 1)[0] in _SOURCE_FLAGS for arg in args):
        return
    if any(arg.lstrip("+").startswith("hydra.searchpath") for arg in args):
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    known = set(groups())
    parser = OverridesParser.create()
    for arg in args:
        if (
            arg.startswith("-")
            or "=" not in arg
            or arg.lstrip("+~").split("=", 1)[0].split("@")[0] not in known
        ):
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # noqa: BLE001 - Hydra's grammar error is Hydra's to report
            continue
        options = set(group_options(override.key_or_group))
        for value in _chosen(override):
            if value not in options:
                raise unknown_option(override.key_or_group, value)


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
