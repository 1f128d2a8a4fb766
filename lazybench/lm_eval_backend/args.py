"""lm-eval's ``model_args`` read as the runner reads its config: a model node and a method entry.

``--model_args`` is one comma-separated ``key=value`` string, which lm-eval splits and types
(``true``, ``none``, numbers) before the model sees it. The keys map onto the runner's config:

- ``pretrained=`` is the runner's ``model=``: a conf/model key (``smollm2-135m``, ``llama2-7b-chat``)
  or a hub id / local folder on the default model config (`lazybench.conf_groups.model_node`);
- a field of that model config (``dtype``, ``device``, ``max_length``, ``chat_style``, ``truncate``,
  ``tokenizer``, ``context_limit``, ...) overrides it, as ``model.<field>=`` does for the runner;
- ``method=`` names a method (its class in `lazybench.methods` gives its defaults, as for the
  runner) and every other key is a field of that method node, dotted keys nested as on the runner's
  command line: ``schedule.keep=0.8:0.5:0.2`` is ``method.schedule.keep=[0.8,0.5,0.2]``.

Values are typed as the runner's overrides are (YAML), with one difference forced by lm-eval's
comma split: inside a value ``:`` stands for ``,``, so ``0.8:0.5:0.2`` is the list ``[0.8,0.5,0.2]``
(and ``[]`` the empty list: ``schedule.boundaries=[],schedule.keep=[]`` is the full schedule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from lazybench.conf_groups import default_option, model_node
from lazybench.runner.common import RunConfigError
from lazybench.runner.entries import MethodEntry, method_entry

MODEL_NAME = "lazyllm"
#: generation kwargs understood; sampling ones are accepted only when they mean greedy decoding.
GEN_KEYS = frozenset({"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "num_beams"})


class SamplingNotSupportedError(ValueError):
    """A request asked for sampling (or beam search): the lazybench engine decodes greedily."""


def arg_value(value: Any) -> Any:
    """A model_args value as the runner's override grammar types it; ``a:b:c`` is the list [a, b, c]."""
    if isinstance(value, str) and (":" in value or value.strip().startswith("[")):
        try:
            text = value.strip().replace(":", ",")
            return yaml.safe_load(text if text.startswith("[") else f"[{text}]")
        except yaml.YAMLError:
            raise RunConfigError(
                f"model_args value {value!r}: ':' separates list items (lm-eval splits model_args on "
                "commas), e.g. schedule.keep=0.8:0.5:0.2"
            ) from None
    return value


def model_fields() -> frozenset[str]:
    """The fields of a model node (those of the default model config)."""
    return frozenset(str(k) for k in model_node(default_option("model") or "smollm2-135m"))


def lm_model_node(pretrained: str | None, args: dict[str, Any]) -> DictConfig:
    """The model node `pretrained` names (the default model config when None), with the model-field
    entries of `args` applied."""
    node = model_node(pretrained if pretrained is not None else default_option("model") or "smollm2-135m")
    for key, value in args.items():
        node = OmegaConf.merge(node, {key: arg_value(value)})
    return node


def lm_method_entry(method: str, args: dict[str, Any]) -> MethodEntry:
    """The method entry: `method`'s class defaults with `args` (dotted keys nested) merged in,
    built by the runner's `method_entry`."""
    node = OmegaConf.create({"name": str(method)})
    for key, value in args.items():
        OmegaConf.update(node, key, arg_value(value), merge=True)
    return method_entry(OmegaConf.to_container(node), "model_args")


def split_args(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model-node fields, method fields) of the remaining model_args."""
    fields = model_fields()
    model = {k: v for k, v in args.items() if k in fields}
    return model, {k: v for k, v in args.items() if k not in fields}


def check_greedy(gen_kwargs: dict[str, Any]) -> None:
    """Refuse generation kwargs the engine cannot honour: it decodes greedily, batch 1."""
    unknown = set(gen_kwargs) - GEN_KEYS
    if unknown:
        raise ValueError(
            f"the {MODEL_NAME} model does not understand generation kwargs {sorted(unknown)}; "
            f"it takes {sorted(GEN_KEYS)} (greedy decoding only)"
        )
    do_sample = gen_kwargs.get("do_sample")
    temperature = gen_kwargs.get("temperature")
    sampling = do_sample is True or (do_sample is None and temperature is not None and float(temperature) > 0)
    if sampling:
        raise SamplingNotSupportedError(
            f"the {MODEL_NAME} model decodes greedily (LazyLLM and every lazybench method are measured "
            f"with greedy decoding); got do_sample={do_sample!r}, temperature={temperature!r}. "
            "Use do_sample=false (or temperature=0)"
        )
    beams = gen_kwargs.get("num_beams")
    if beams is not None and int(beams) != 1:
        raise SamplingNotSupportedError(
            f"the {MODEL_NAME} model decodes greedily; num_beams={beams} is not supported"
        )


def until_of(gen_kwargs: dict[str, Any]) -> list[str]:
    """lm-eval's ``until`` stop strings as a list."""
    until = gen_kwargs.get("until")
    if until is None:
        return []
    if isinstance(until, str):
        return [until]
    if not isinstance(until, (list, tuple)) or not all(isinstance(u, str) for u in until):
        raise ValueError(f"until must be a string or a list of strings, got {until!r}")
    return list(until)


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """The text up to the first occurrence of any stop string (lm-eval's ``until``)."""
    cut = len(text)
    for stop in until:
        if stop:
            idx = text.find(stop)
            if idx != -1:
                cut = min(cut, idx)
    return text[:cut]
