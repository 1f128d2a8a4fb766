"""Token importance beside the model's own attention kernel.

LazyLLM scores prompt tokens by the last query's attention row, averaged over heads. Asking
transformers for `output_attentions` would force eager attention and materialise N x N maps (on
SmolLM2 at 8k tokens: 144 s instead of 24 s), erasing the speedup being measured. Instead an
attention function registered with transformers' AttentionInterface calls the model's normal
kernel (SDPA, or eager where the model needs it) and, only on layers that feed a pruning boundary,
also computes softmax(q_last . K^T) for that one row. The engine asks for scores by passing a
`lazybench_scores` dict to the decoder layer; transformers forwards extra keyword arguments to the
attention function, so no global state is involved.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

SCORES_KWARG = "lazybench_scores"


class ScoreSink(dict):
    """{layer: scores} filled by the attention function. `key_index` (positions, or None) restricts
    the softmax to the active keys when the engine reads the whole cache through a mask instead of
    gathering it, so the scores come out aligned with the active set either way."""

    key_index: torch.Tensor | None = None


def as_fp32(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.float32 else t.float()


def last_query_scores(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    scaling: float,
    softcap: float | None,
    key_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Head-mean attention probabilities of the last query row over the given keys (those at
    `key_index` only, when given), shape [n_keys].

    With grouped-query attention the query heads of one KV group share its keys, so the query is
    viewed as [kv_heads, group, d] instead of repeating the keys.
    """
    _, n_heads, _, head_dim = query.shape
    n_kv = key.shape[1]
    q_last = as_fp32(query[0, :, -1, :].reshape(n_kv, n_heads // n_kv, head_dim))
    # fp32 products, not bf16 ones cast afterwards: bf16 rounding would flip near-tie top-k choices
    # (bmm: matmul's broadcasting checks cost more than this tiny product on the host)
    logits = torch.bmm(q_last, as_fp32(key[0]).transpose(-1, -2))
    if key_index is not None:  # the active keys only: the softmax over them, aligned with the active set
        logits = logits.index_select(-1, key_index)
    logits = logits * scaling
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.softmax(logits, dim=-1).mean(dim=(0, 1))


_PACKED_MASK: list = [None, None]  # (mask, its rows repeated per query head of a group): one per stage


def packed_sdpa(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA, except that several masked query rows under grouped KV heads are packed
    per KV head (as transformers itself packs a single row) instead of repeating the keys and values
    for every query head: a decode stage with revived rows then needs no KV copies and fewer ops."""
    groups = getattr(module, "num_key_value_groups", 1)
    batch, n_heads, q_len, head_dim = query.shape
    if (
        groups == 1
        or q_len == 1
        or batch != 1
        or attention_mask is None
        or attention_mask.dtype != torch.bool
        or attention_mask.shape[:2] != (1, 1)
        or any(kwargs.get(k) is not None for k in ("position_bias", "s_aux", "softcap"))
    ):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if _PACKED_MASK[0] is not attention_mask:  # the layers of a stage share one mask
        _PACKED_MASK[:] = attention_mask, attention_mask.repeat(1, 1, groups, 1)
    n_kv = key.shape[1]
    out = torch.nn.functional.scaled_dot_product_attention(
        query.reshape(1, n_kv, groups * q_len, head_dim),  # head h = kv * groups + g: rows (g, q) per kv
        key,
        value,
        attn_mask=_PACKED_MASK[1],
        dropout_p=kwargs.get("dropout", 0.0),
        scale=kwargs.get("scaling"),
    )
    return out.reshape(1, n_heads, q_len, value.shape[-1]).transpose(1, 2).contiguous(), None


def _eager_for(module: torch.nn.Module) -> Callable:
    return sys.modules[type(module).__module__].eager_attention_forward


def _make_wrapper(inner: str) -> Callable:
    def attention(module, query, key, value, attention_mask, **kwargs):
        sink = kwargs.pop(SCORES_KWARG, None)
        fn = packed_sdpa if inner == "sdpa" else _eager_for(module)
        out = fn(module, query, key, value, attention_mask, **kwargs)
        if sink is not None:
            scaling, softcap = kwargs.get("scaling") or module.scaling, kwargs.get("softcap")
            if isinstance(sink, ScoreSink):
                sink[module.layer_idx] = last_query_scores(
                    module, query, key, scaling, softcap, sink.key_index
                )
            else:  # a policy's own scorer (see policy.LayerScores)
                sink[module.layer_idx] = sink.score(module, query, key, scaling, softcap)
        return out

    attention.__name__ = f"lazybench_{inner}"
    return attention


for _inner in ("sdpa", "eager"):
    AttentionInterface.register(f"lazybench_{_inner}", _make_wrapper(_inner))


@contextmanager
def scoring_attention(model: torch.nn.Module, inner: str) -> Iterator[None]:
    """Route the model's attention through the scoring wrapper for the duration of a generation."""
    configs = [model.config]
    text_config = getattr(model.config, "text_config", None)
    if text_config is not None and text_config is not model.config:
        configs.append(text_config)
    saved = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = f"lazybench_{inner}"
        yield
    finally:
        for c, s in zip(configs, saved):
            c._attn_implementation = s
