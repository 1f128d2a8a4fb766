"""The model front end every entry point shares: a model node -> checked spec, tokenizer, EOS ids, chat style.

The runner (`prepare`), the lm-eval backend (`lazybench.lm_eval_backend`) and the profiler all start
from a `model` node (conf/model/<key>.yaml, possibly with overrides, see
`lazybench.conf_groups.model_node`) and need the same things from it, in the same order, before any
weights load: a checked `ModelSpec` (dtype, device, a local folder made absolute), the chat style,
the tokenizer, the model's (text) config with its depth and context size, and every EOS id the
tokenizer, config and generation config name. Doing it here once means an lm-eval run and a runner
run of the same model config prompt and stop the model identically.

`model_front` does all of it from a node without weights; `loaded_front` does the same for a model
object already in memory (lm-eval's `pretrained=<model>` from Python).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import transformers
from omegaconf import DictConfig, OmegaConf

import lazybench
from lazybench import models
from lazybench.engine.adapter import SUPPORTED_MODEL_TYPES
from lazybench.models import (
    BUILTIN_SMOLLM2,
    ModelNotAvailableError,
    ModelSpec,
    eos_token_ids,
    resolve_device,
    resolve_dtype,
    smollm2_folder,
)
from lazybench.runner.common import NotAvailableHereError, RunConfigError, absolute
from lazybench.tasks import CHAT_STYLES
from lazybench.tasks.tokenizer import load_tokenizer

#: `chat_style: auto`: the tokenizer's own chat template when it has one, else none.
AUTO_CHAT_STYLE = "auto"


@dataclass(frozen=True)
class ModelFront:
    """What a run knows about its model before the weights load (and all it needs to prompt it)."""

    spec: ModelSpec
    chat_style: str  # resolved: never "auto"
    device: str
    tokenizer: Any
    config: Any  # the (text) model config: depth, context size, EOS
    context_limit: int | None  # tokens the model accepts (the node's context_limit, else the config's)
    eos_token_ids: tuple[int, ...]

    @property
    def num_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    def load(self):
        """The model's weights, on the spec's device and dtype (the tokenizer is already here)."""
        model, _ = models.load_model(self.spec)  # looked up at call time: tests guard it
        return model


def model_spec(cfg: DictConfig) -> ModelSpec:
    """The `ModelSpec` of a config's `model` node (no checks beyond a name being set)."""
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


def checked_model(node: DictConfig) -> tuple[ModelSpec, str, torch.device]:
    """(`ModelSpec`, chat style, torch device) of a model node, checked without loading anything.

    A model name that is a path becomes an absolute folder (which must exist). Raises
    `RunConfigError` for an unknown chat style or dtype, or a CUDA device where there is none.
    """
    spec = model_spec(OmegaConf.create({"model": node}))
    if spec.name.startswith((".", "/", "~")) or Path(spec.name).expanduser().exists():
        folder = absolute(Path(spec.name).expanduser())
        if not folder.is_dir():
            raise RunConfigError(f"model folder {folder} does not exist (model.name={spec.name!r})")
        spec = replace(spec, name=str(folder))
    chat_style = str(node.get("chat_style", "none"))
    if chat_style not in (*CHAT_STYLES, AUTO_CHAT_STYLE):
        raise RunConfigError(
            f"unknown model.chat_style {chat_style!r}; expected {AUTO_CHAT_STYLE} or one of "
            f"{', '.join(CHAT_STYLES)}"
        )
    try:
        device = resolve_device(spec.device)
        resolve_dtype(spec.dtype, device)
    except (ValueError, RuntimeError) as err:
        raise RunConfigError(f"model {spec.name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunConfigError(
            f"model.device={spec.device!r} but no CUDA device is available here; use model.device=cpu"
        )
    return spec, chat_style, device


def resolve_chat_style(style: str, tokenizer: Any) -> str:
    """`auto` -> `chat_template` when the tokenizer has a template, else `none`; others unchanged."""
    if style != AUTO_CHAT_STYLE:
        return style
    return "chat_template" if getattr(tokenizer, "chat_template", None) else "none"


def _source(spec: ModelSpec) -> str:
    return str(smollm2_folder()) if spec.name == BUILTIN_SMOLLM2 else spec.name


def inspect_model(spec: ModelSpec) -> tuple[Any, Any]:
    """Tokenizer and (text) model config, no weights; the engine must drive the model's type."""
    try:
        tokenizer = load_tokenizer(spec.tokenizer or spec.name, spec.trust_remote_code)
        config = transformers.AutoConfig.from_pretrained(
            _source(spec), trust_remote_code=spec.trust_remote_code
        )
    except ModelNotAvailableError as err:
        raise NotAvailableHereError(str(err)) from None
    except (OSError, ValueError) as err:
        raise RunConfigError(
            f"cannot read model {spec.name!r}: {err}. Use a model config (model=<name>), a hub id in the local "
            "cache, or a local folder with config.json and tokenizer files as model.name="
        ) from None
    text_config = _text_config(config)
    model_type = getattr(text_config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise RunConfigError(
            f"model {spec.name!r} is of type {model_type!r}, which the engine does not drive; "
            f"supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))}"
        )
    return tokenizer, text_config


def _text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _generation_eos(spec: ModelSpec) -> Any:
    try:
        return transformers.GenerationConfig.from_pretrained(_source(spec)).eos_token_id
    except Exception:  # noqa: BLE001 - no generation_config.json: the tokenizer's EOS is enough
        return None


def model_eos_ids(tokenizer: Any, config: Any, generation_eos: Any = None) -> tuple[int, ...]:
    """Every EOS id the tokenizer, the model config and the generation config name (they often
    disagree: chat models end a turn with their own id)."""
    return eos_token_ids(
        getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None), generation_eos
    )


def _context_limit(node: DictConfig | dict, config: Any) -> int | None:
    return node.get("context_limit") or getattr(config, "max_position_embeddings", None)


def model_front(node: DictConfig, spec: ModelSpec | None = None, chat_style: str | None = None) -> ModelFront:
    """The model front of a model node, no weights. `spec` and `chat_style`: from `checked_model`
    when the caller already checked the node (the runner checks dependencies in between)."""
    if spec is None or chat_style is None:
        spec, chat_style, _ = checked_model(node)
    tokenizer, config = inspect_model(spec)
    return ModelFront(
        spec=spec,
        chat_style=resolve_chat_style(chat_style, tokenizer),
        device=str(resolve_device(spec.device)),
        tokenizer=tokenizer,
        config=config,
        context_limit=_context_limit(node, config),
        eos_token_ids=model_eos_ids(tokenizer, config, _generation_eos(spec)),
    )


def loaded_front(model: torch.nn.Module, tokenizer: Any, node: DictConfig | dict) -> ModelFront:
    """The front of a model object already in memory (its own config and generation config)."""
    chat_style = str(node.get("chat_style", "none"))
    if chat_style not in (*CHAT_STYLES, AUTO_CHAT_STYLE):
        raise RunConfigError(
            f"unknown chat_style {chat_style!r}; expected auto or one of {', '.join(CHAT_STYLES)}"
        )
    config = _text_config(model.config)
    generation = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    device = next(model.parameters()).device
    return ModelFront(
        spec=ModelSpec(
            name=type(model).__name__, dtype=str(model.dtype).removeprefix("torch."), device=str(device)
        ),
        chat_style=resolve_chat_style(chat_style, tokenizer),
        device=str(device),
        tokenizer=tokenizer,
        config=config,
        context_limit=_context_limit(node, config),
        eos_token_ids=model_eos_ids(tokenizer, model.config, generation),
    )


def device_label(device: str) -> str:
    """What a record says it was timed on: the device kind, and the GPU's name on CUDA."""
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def versions() -> dict[str, str]:
    """The library versions a record was made with."""
    out = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lazybench": lazybench.__version__,
        "python": platform.python_version(),
    }
    if torch.version.cuda:
        out["cuda"] = str(torch.version.cuda)
    return out
