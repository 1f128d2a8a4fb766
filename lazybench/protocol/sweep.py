"""The `sweep:` config key: operating-point families expanded into the run's methods at plan time.

    sweep:
      families: [lazyllm, static, random_drop, gemfilter]
      points: 6              # settings per prefill-saving family, 1.1x .. 5x FLOP-ideal TTFT
      params: {selective_context: {compressor: target}}

`prepare` reads the model's config (never its weights), expands each family at the run's prompt
length (`sweep.prompt_tokens`, default `model.max_length`) and appends the settings to `methods`,
so every setting runs on every row, interleaved, after one baseline, exactly as a `methods:` list.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lazybench.protocol.cost import ModelShape
from lazybench.protocol.families import Setting, SweepSpec, expand
from lazybench.runner.config import RunConfigError, method_defaults, to_plain


def sweep_spec(cfg: DictConfig) -> SweepSpec | None:
    """The validated `sweep:` of a config, or None when it has none."""
    data = to_plain(cfg.get("sweep"))
    if not data:
        return None
    if not isinstance(data, dict):
        raise RunConfigError(f"`sweep` must be a mapping (families, points, ...), got {data!r}")
    try:
        return SweepSpec.from_config(data)
    except (TypeError, ValueError) as err:
        raise RunConfigError(str(err)) from None


def prompt_tokens(cfg: DictConfig, spec: SweepSpec) -> int:
    """The prompt length the settings are solved at: sweep.prompt_tokens, else model.max_length."""
    n = spec.prompt_tokens or cfg.model.get("max_length")
    if not n:
        raise RunConfigError("a sweep needs a prompt length: set sweep.prompt_tokens= or model.max_length=")
    return int(n)


def _compressor_shape(spec: SweepSpec, cfg: DictConfig) -> ModelShape | None:
    """Selective Context's compressor shape (None: the target model itself)."""
    if "selective_context" not in spec.families:
        return None
    fixed = spec.params.get("selective_context", {})
    name = fixed.get("compressor", method_defaults("selective_context").get("compressor", "target"))
    if name in ("target", cfg.model.get("name")):
        return None
    from transformers import AutoConfig

    from lazybench.models import BUILTIN_SMOLLM2, ModelNotAvailableError, smollm2_folder

    try:
        source = str(smollm2_folder()) if name == BUILTIN_SMOLLM2 else name
        return ModelShape.from_config(AutoConfig.from_pretrained(source))
    except (ModelNotAvailableError, OSError, ValueError) as err:
        raise RunConfigError(
            f"sweep: cannot read the config of selective_context's compressor {name!r}: {err}"
        ) from None


def sweep_settings(cfg: DictConfig, text_config: Any) -> list[Setting]:
    """The sweep's settings for this model (empty without a `sweep:` key)."""
    spec = sweep_spec(cfg)
    if spec is None:
        return []
    shape = ModelShape.from_config(text_config)
    return expand(spec, shape, prompt_tokens(cfg, spec), _compressor_shape(spec, cfg))


def sweep_entries(cfg: DictConfig, text_config: Any) -> list[dict[str, Any]]:
    """The sweep's settings as `methods:` entries (each family's fixed `params` merged in)."""
    spec = sweep_spec(cfg)
    if spec is None:
        return []
    return [s.entry(spec.params.get(s.family)) for s in sweep_settings(cfg, text_config)]
