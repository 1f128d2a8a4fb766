"""H2O (Zhang et al. 2023): heavy hitters plus recent keys, evicting as decoding goes; its scorer
(accumulated attention mass), policy and Method class (the shared per-head reads: `methods.kv_selection`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from lazybench.engine import (
    LayerScores,
    TokenPolicy,
    as_fp32,
    full_attention_layers,
    grouped_logits,
    score_flops,
)
from lazybench.methods.base import Method, register_method
from lazybench.methods.kv_selection import HeadKeep, same_for_all


class AttentionMassScores(LayerScores):
    """Per KV head, the attention each key receives, summed over all queries of the step and the
    query heads of the group: H2O's accumulated-attention update. Causal by row order (the keys are
    in position order and the queries are the last rows), computed in blocks of queries."""

    block_elements = {"cuda": 1 << 26, "cpu": 1 << 22}  # fp32 logits per block: 256 MB / 16 MB

    def score(self, module, query, key, scaling, softcap):
        n_heads, n_q = query.shape[1], query.shape[2]
        n_k = key.shape[2]
        key = as_fp32(key)  # once, not per block of queries
        total = torch.zeros(key.shape[1], n_k, dtype=torch.float32, device=key.device)
        k_pos = torch.arange(n_k, device=key.device)
        elements = self.block_elements.get(key.device.type, 1 << 22)
        block = max(1, elements // (n_heads * n_k))
        for b0 in range(0, n_q, block):
            logits = grouped_logits(query[:, :, b0 : b0 + block], key, scaling, softcap)
            q_pos = k_pos[n_k - n_q + b0 : n_k - n_q + b0 + logits.shape[2]]
            logits.masked_fill_(k_pos[None, :] > q_pos[:, None], -math.inf)
            total += torch.softmax(logits, dim=-1).sum(dim=(1, 2))
        return total

    def flops(self, n_queries, n_keys, parts):
        return score_flops(n_queries, n_keys, parts)  # every query row against every key, masked after


class H2OPolicy(TokenPolicy):
    name = "h2o"

    def __init__(self, method: H2O) -> None:
        super().__init__()
        self.method = method
        self.heavy = self.recent = 0
        self.mass: torch.Tensor | None = None  # [rows, kv_heads, length], aligned with HeadKeep.keep

    def layer_scores(self, step, state, parts):
        layers = full_attention_layers(parts)
        return AttentionMassScores(layers) if layers else None

    def end_step(self, step, state, parts, scores) -> None:
        if scores is None:
            return
        layers = sorted(scores.layers)
        mass = torch.stack([scores[layer] for layer in layers])
        if step == 0:
            self.heavy, self.recent = self.method.sizes(state.length)
            n = state.length
            HeadKeep.of(state).set(
                layers, same_for_all(torch.arange(n, device=state.device), *mass.shape[:2])
            )
        else:
            mass[..., :-1] += self.mass
        heads = state.kv_reads
        length = heads.length
        if length > self.heavy + self.recent:
            old = length - self.recent
            heavy = mass[..., :old].topk(self.heavy, dim=-1).indices.sort(dim=-1).values
            recent = torch.arange(old, length, device=mass.device)
            cols = torch.cat([heavy, recent[None, None].expand(*heavy.shape[:2], -1)], dim=-1)
            heads.set(layers, heads.positions().gather(-1, cols))
            mass = mass.gather(-1, cols)
        self.mass = mass


@register_method("h2o")
@dataclass
class H2O(Method):
    """H2O, Heavy-Hitter Oracle (Zhang et al. 2023, arXiv 2306.14048): keep the keys with the most
    accumulated attention ("heavy hitters") plus the most recent ones, evicting one per decode step.

    Full prefill; at every full-attention layer and KV head, the prompt's attention mass (summed over
    all prompt queries, as the reference implementation's real-drop cache does) selects `heavy`
    positions among all but the last `recent`; every decode step adds its query's attention to the
    mass of the kept keys and evicts the lowest-mass non-recent key once over budget. Defaults from
    the paper's headline setting (20% KV budget) and its lm-eval scripts: heavy_ratio = recent_ratio
    = 0.1 of the prompt (floored, recent at least 1); `heavy_size` / `recent_size` give absolute
    counts instead (their real-drop scripts use 1024 and 1024). Not query-aware in its selection
    order (every query votes, not the question's); saves decoding, not prefill: the prompt's
    attention mass is computed beside SDPA in the prefill (as much work again as the attention
    itself, blocked to bound memory) and counts in TTFT. A budget covering prompt plus generation
    (e.g. both ratios 1.0) keeps everything and is the baseline.
    """

    query_aware: ClassVar[bool] = False
    saves: ClassVar[str] = "decode"
    heavy_ratio: float = 0.1
    recent_ratio: float = 0.1
    heavy_size: int | None = None
    recent_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("heavy_ratio", "recent_ratio"):
            value = getattr(self, name)
            if not (0.0 <= value) or math.isnan(value):
                raise ValueError(f"{name} must be >= 0, got {value}")
        if (self.heavy_size is not None and self.heavy_size < 0) or (
            self.recent_size is not None and self.recent_size < 1
        ):
            raise ValueError("need heavy_size >= 0 and recent_size >= 1")

    def sizes(self, n: int) -> tuple[int, int]:
        heavy = self.heavy_size if self.heavy_size is not None else math.floor(self.heavy_ratio * n)
        recent = self.recent_size if self.recent_size is not None else math.floor(self.recent_ratio * n)
        return heavy, max(1, recent)

    def label(self) -> str:
        if self.heavy_size is not None or self.recent_size is not None:
            return f"h2o[{self.heavy_size}+{self.recent_size}]"
        return f"h2o[{self.heavy_ratio:g}+{self.recent_ratio:g}]"

    def policy(self) -> TokenPolicy:
        return H2OPolicy(self)
