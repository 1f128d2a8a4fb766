"""Small random-init models of each supported family: the engine's exactness must not depend on
trained weights, and these run in milliseconds on the CPU."""

from __future__ import annotations

import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

COMMON = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=256,
    max_position_embeddings=1024,
)

FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": 16}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, {"head_dim": 16}),
    "gemma3": (
        Gemma3ForCausalLM and Gemma3TextConfig,
        Gemma3ForCausalLM,
        {"sliding_window": 16, "head_dim": 16},
    ),
    "gemma2": (Gemma2Config, Gemma2ForCausalLM, {"sliding_window": 16, "head_dim": 16}),
    "phi3": (Phi3Config, Phi3ForCausalLM, {"pad_token_id": 0}),
}


def tiny_model(family: str = "llama", num_layers: int = 6, attn: str = "sdpa", seed: int = 0, **overrides):
    config_cls, model_cls, extra = FAMILIES[family]
    torch.manual_seed(seed)
    config = config_cls(num_hidden_layers=num_layers, **{**COMMON, **extra, **overrides})
    config._attn_implementation = attn
    return model_cls(config).eval()
