"""The pieces of a transformers causal LM the engine drives itself, found once per model.

The engine runs the model's own embedding, rotary embedding, decoder layers, final norm and
lm_head; nothing is copied from modeling files. The differences between families that matter to an
outer loop (one rotary embedding or one per layer type, sliding-window layers, final-logit
softcapping) are read from the config here, so the per-layer loop never has to ask.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

SUPPORTED_MODEL_TYPES = frozenset(
    {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "olmo2", "granite"}
)
SUPPORTED_ATTENTION = frozenset({"sdpa", "eager"})


class UnsupportedModelError(ValueError):
    """The model's layers cannot be driven by the engine (not routed through the attention interface)."""


@dataclass
class ModelParts:
    model: nn.Module
    embed: nn.Module
    layers: nn.ModuleList
    norm: nn.Module
    lm_head: nn.Module
    rotary: nn.Module
    rotary_takes_layer_type: bool
    layer_types: tuple[str, ...]
    sliding_windows: tuple[int | None, ...]
    final_softcap: float | None
    attn_impl: str
    hidden_size: int
    num_heads: int
    head_dim: int
    params_per_layer: int
    cache_kwarg: str  # "cache" from transformers 5.2x on, "past_key_values" before
    # per layer (kv_heads, head_dim, dtype): what its KV buffer holds, so it can be allocated up front
    kv_specs: tuple[tuple[int, int, torch.dtype], ...] = ()
    # a position's rotary cos/sin never change (not dynamic/longrope RoPE, whose frequencies follow
    # the sequence length): computed once, they can be gathered by later stages
    static_rope: bool = False

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @classmethod
    def from_model(cls, model: nn.Module) -> ModelParts:
        config = model.config
        model_type = getattr(config, "model_type", type(model).__name__)
        base = getattr(model, "model", None)
        if model_type not in SUPPORTED_MODEL_TYPES or base is None or not hasattr(base, "layers"):
            raise UnsupportedModelError(
                f"model type {model_type!r} ({type(model).__name__}) is not supported by the LazyLLM engine; "
                f"supported: {sorted(SUPPORTED_MODEL_TYPES)} (decoder-only models whose attention goes "
                "through transformers' AttentionInterface)"
            )
        impl = getattr(config, "_attn_implementation", None) or "eager"
        if impl.startswith("lazybench_"):
            impl = impl.removeprefix("lazybench_")
        if impl not in SUPPORTED_ATTENTION:
            raise UnsupportedModelError(
                f"attention implementation {impl!r} is not supported by the engine; load the model with "
                f"attn_implementation in {sorted(SUPPORTED_ATTENTION)} (sdpa picks flash kernels on GPU itself)"
            )
        num_layers = len(base.layers)
        layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * num_layers)
        windows = []
        for i, layer in enumerate(base.layers):
            attn = layer.self_attn
            if hasattr(attn, "sliding_window"):
                windows.append(attn.sliding_window)
            elif layer_types[i] == "sliding_attention" or "layer_types" not in config.to_dict():
                windows.append(getattr(config, "sliding_window", None))
            else:
                windows.append(None)
        rotary = base.rotary_emb
        rope_types = getattr(rotary, "rope_type", "default")
        rope_types = rope_types.values() if isinstance(rope_types, dict) else [rope_types]
        static_rope = all(isinstance(t, str) and "dynamic" not in t and t != "longrope" for t in rope_types)
        takes_type = "layer_type" in inspect.signature(rotary.forward).parameters
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        params = sum(p.numel() for p in base.layers[0].parameters())
        layer_params = inspect.signature(base.layers[0].forward).parameters
        cache_kwarg = "cache" if "cache" in layer_params else "past_key_values"
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        kv_specs = tuple(
            (kv_heads, getattr(layer.self_attn, "head_dim", head_dim), next(layer.parameters()).dtype)
            for layer in base.layers
        )
        return cls(
            model=model,
            embed=model.get_input_embeddings(),
            layers=base.layers,
            norm=base.norm,
            lm_head=model.get_output_embeddings(),
            rotary=rotary,
            rotary_takes_layer_type=takes_type,
            layer_types=layer_types,
            sliding_windows=tuple(windows),
            final_softcap=getattr(config, "final_logit_softcapping", None),
            attn_impl=impl,
            hidden_size=config.hidden_size,
            num_heads=config.num_attention_heads,
            head_dim=head_dim,
            params_per_layer=params,
            cache_kwarg=cache_kwarg,
            kv_specs=kv_specs,
            static_rope=static_rope,
        )

    def position_embeddings(self, hidden: torch.Tensor, positions: torch.Tensor) -> dict[str, tuple]:
        """cos/sin for the given positions, one pair per layer type (Gemma 3 has two rotary bases)."""
        pos = positions[None]
        if self.rotary_takes_layer_type:
            return {t: self.rotary(hidden, pos, t) for t in set(self.layer_types)}
        emb = self.rotary(hidden, pos)
        return {t: emb for t in set(self.layer_types)}

    def logits(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """lm_head on the last row only: full-prompt logits would cost more than a layer."""
        logits = self.lm_head(self.norm(last_hidden)).float()
        if self.final_softcap is not None:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits
