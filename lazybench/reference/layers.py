"""One decoder layer's arithmetic, written out from the layer's own weights, for the reference.

The reference never calls a decoder layer's `forward` (that would route through transformers'
attention dispatch and cache protocol, which is exactly what the engine relies on). Instead it
reads the layer's sub-modules (norms, projections, MLP) and does the rest here by hand: rotary
embedding at given positions, grouped-query attention with an explicit boolean mask, the residual
wiring. Two layouts cover the supported families:

- pre-norm (Llama, SmolLM2, Mistral, Qwen2, Qwen3):
  h = x + o(attn(norm_in(x)));  out = h + mlp(norm_post_attn(h))
- sandwich (Gemma 2, Gemma 3):
  h = x + norm_post_attn(o(attn(norm_in(x))));  out = h + norm_post_ff(mlp(norm_pre_ff(h)))

Qwen3 and Gemma 3 normalise each head's query and key before RoPE; Gemma 2 softcaps attention
logits; Gemma 2/3 and Qwen2/3 mark some layers as sliding-window layers, Mistral applies its
window to every layer. The tests check all of it against the plain model with nothing pruned.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text")


class ReferenceModelError(ValueError):
    """The model is not one of the families the reference knows how to compute by hand."""


@dataclass(frozen=True)
class LayerSpec:
    """What one decoder layer needs beyond its weights: its rotary type, window and attention constants."""

    module: nn.Module
    layer_type: str
    window: int | None  # a key is visible only if query_pos - key_pos < window
    scaling: float
    softcap: float | None  # attention-logit softcapping (Gemma 2)
    sandwich: bool  # Gemma-style norms after attention and around the MLP


@dataclass(frozen=True)
class ModelSpec:
    model: nn.Module
    layers: tuple[LayerSpec, ...]
    heads: int
    kv_heads: int
    head_dim: int
    final_softcap: float | None


def read_model(model: nn.Module) -> ModelSpec:
    config = model.config
    kind = getattr(config, "model_type", None)
    if kind not in SUPPORTED:
        raise ReferenceModelError(
            f"the LazyLLM reference computes {list(SUPPORTED)} by hand; got model type {kind!r}"
        )
    num_layers = config.num_hidden_layers
    layer_types = list(getattr(config, "layer_types", None) or ["full_attention"] * num_layers)
    specs = []
    for i, layer in enumerate(model.model.layers):
        attn = layer.self_attn
        if hasattr(attn, "sliding_window"):
            window = attn.sliding_window  # already None on the family's full-attention layers
        else:
            window = getattr(config, "sliding_window", None)  # Mistral: one window for every layer
        specs.append(
            LayerSpec(
                module=layer,
                layer_type=layer_types[i],
                window=window,
                scaling=attn.scaling,
                softcap=getattr(attn, "attn_logit_softcapping", None),
                sandwich=hasattr(layer, "pre_feedforward_layernorm"),
            )
        )
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return ModelSpec(
        model=model,
        layers=tuple(specs),
        heads=config.num_attention_heads,
        kv_heads=config.num_key_value_heads,
        head_dim=head_dim,
        final_softcap=getattr(config, "final_logit_softcapping", None),
    )


def rotary(spec: ModelSpec, x: torch.Tensor, positions: list[int], layer_type: str):
    """cos, sin [n, head_dim] at the given (original) positions, from the model's rotary module."""
    rope = spec.model.model.rotary_emb
    pos = torch.tensor([positions], device=x.device)
    if "layer_type" in inspect.signature(rope.forward).parameters:  # Gemma 3: a base per layer type
        cos, sin = rope(x[None], pos, layer_type)
    else:
        cos, sin = rope(x[None], pos)
    return cos[0], sin[0]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on [n, heads, d] with cos/sin [n, d] (the half-split convention all these families use)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


def project(spec: ModelSpec, layer: LayerSpec, x: torch.Tensor, positions: list[int]):
    """Queries [n, heads, d], keys and values [n, kv_heads, d] of rows x [n, hidden] at `positions`."""
    attn = layer.module.self_attn
    h = layer.module.input_layernorm(x)
    n = x.shape[0]
    q = attn.q_proj(h).view(n, spec.heads, spec.head_dim)
    k = attn.k_proj(h).view(n, spec.kv_heads, spec.head_dim)
    v = attn.v_proj(h).view(n, spec.kv_heads, spec.head_dim)
    if hasattr(attn, "q_norm"):
        q, k = attn.q_norm(q), attn.k_norm(k)
    cos, sin = rotary(spec, x, positions, layer.layer_type)
    return _rotate(q, cos, sin), _rotate(k, cos, sin), v


def attention_logits(spec: ModelSpec, layer: LayerSpec, q: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """[heads, n_q, n_k] scaled (and softcapped) logits; query head h reads KV head h // group."""
    group = spec.heads // spec.kv_heads
    k = keys.repeat_interleave(group, dim=1)  # [n_k, heads, d]
    logits = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * layer.scaling
    if layer.softcap is not None:
        logits = torch.tanh(logits / layer.softcap) * layer.softcap
    return logits


def attend(spec, layer, q, keys, values, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax attention of q [n, heads, d] over keys/values [m, kv_heads, d] where allowed [n, m]."""
    logits = attention_logits(spec, layer, q, keys).masked_fill(~allowed[None], -torch.inf)
    probs = torch.softmax(logits, dim=-1).to(values.dtype)
    group = spec.heads // spec.kv_heads
    v = values.repeat_interleave(group, dim=1)  # [m, heads, d]
    return torch.einsum("hqk,khd->qhd", probs, v).reshape(q.shape[0], -1)


def finish(layer: LayerSpec, x: torch.Tensor, attn_out: torch.Tensor) -> torch.Tensor:
    """The layer's output rows from its input rows and their attention output (before o_proj)."""
    m = layer.module
    a = m.self_attn.o_proj(attn_out)
    if layer.sandwich:
        h = x + m.post_attention_layernorm(a)
        return h + m.post_feedforward_layernorm(m.mlp(m.pre_feedforward_layernorm(h)))
    h = x + a
    return h + m.mlp(m.post_attention_layernorm(h))


def logits(spec: ModelSpec, last_hidden: torch.Tensor) -> torch.Tensor:
    """Next-token logits (fp32) from the last position's final hidden state."""
    model = spec.model
    out = model.get_output_embeddings()(model.model.norm(last_hidden)).float()
    if spec.final_softcap is not None:
        out = torch.tanh(out / spec.final_softcap) * spec.final_softcap
    return out
