"""SnapKV (Li et al. 2024): per-head prompt KV chosen by an observation window; its scorer, policy
and Method class (the shared per-head reads: `methods.kv_selection`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from lazybench.engine import (
    LayerScores,
    TokenPolicy,
    check_fraction,
    full_attention_layers,
    grouped_logits,
    kept_count,
    score_flops,
)
from lazybench.methods.base import Method, register_method
from lazybench.methods.kv_selection import HeadKeep


class SnapKVScores(LayerScores):
    """Per KV head, the prompt positions SnapKV keeps: the observation window's attention to the
    prefix, summed over the window's queries, pooled, top (budget - window), plus the window."""

    def __init__(self, layers, budget: int, window: int, kernel: int, pooling: str) -> None:
        super().__init__(layers)
        self.budget, self.window, self.kernel, self.pooling = budget, window, kernel, pooling

    def score(self, module, query, key, scaling, softcap):
        n, w = key.shape[2], self.window
        logits = grouped_logits(query[:, :, -w:], key, scaling, softcap)  # [kv, group, w, n]
        k_pos = torch.arange(n, device=key.device)
        q_pos = k_pos[n - w :]
        logits.masked_fill_(k_pos[None, :] > q_pos[:, None], -math.inf)
        votes = torch.softmax(logits, dim=-1)[..., : n - w].sum(dim=2).mean(dim=1)  # [kv, n - w]
        if self.kernel > 1:
            pool = F.max_pool1d if self.pooling == "maxpool" else F.avg_pool1d
            votes = pool(votes[:, None], self.kernel, stride=1, padding=self.kernel // 2)[:, 0, : n - w]
        top = votes.topk(self.budget - w, dim=-1).indices.sort(dim=-1).values
        return torch.cat([top, q_pos[None].expand(top.shape[0], -1)], dim=-1)

    def flops(self, n_queries, n_keys, parts):
        return score_flops(min(self.window, n_queries), n_keys, parts)  # the observation window's rows


class SnapKVPolicy(TokenPolicy):
    name = "snapkv"

    def __init__(self, method: SnapKV) -> None:
        super().__init__()
        self.method = method

    def layer_scores(self, step, state, parts):
        if step != 0:
            return None
        budget = self.method.budget(state.length)
        if state.length <= budget:
            return None  # SnapKV leaves prompts within its capacity alone
        m = self.method
        return SnapKVScores(full_attention_layers(parts), budget, m.window, m.kernel, m.pooling)

    def end_step(self, step, state, parts, scores) -> None:
        if step == 0 and scores is not None and scores.layers:
            layers = sorted(scores.layers)
            HeadKeep.of(state).set(layers, torch.stack([scores[layer] for layer in layers]))


@register_method("snapkv")
@dataclass
class SnapKV(Method):
    """SnapKV (Li et al. 2024, arXiv 2404.14469): per-head prompt KV chosen by an observation window.

    Full prefill; at every full-attention layer, each KV head keeps the prompt positions most
    attended by the last `window`=32 prompt queries (attention summed over those queries, smoothed
    by max-pooling with `kernel`=7), `budget_tokens` positions in all including the window itself
    (their max_capacity_prompt); decoding reads those plus the generated tokens. Prompts no longer
    than the budget are not compressed. Defaults: window 32, max-pool with kernel 7, as the paper
    describes its LongBench runs (the reference code's fallback is avg-pool, kernel 5: set
    pooling/kernel for it), and budget 1024, the smallest of the paper's LongBench budgets
    (1024/2048/4096) and the one GemFilter compares against. `keep`, a fraction of the prompt,
    overrides `budget_tokens` when set. Query-aware (the window holds the question); saves decoding,
    not prefill (the window scoring runs inside the prefill and counts in TTFT).
    """

    query_aware: ClassVar[bool] = True
    saves: ClassVar[str] = "decode"
    budget_tokens: int = 1024
    window: int = 32
    kernel: int = 7
    pooling: str = "maxpool"
    keep: float | None = None

    def __post_init__(self) -> None:
        if self.window < 1 or self.budget_tokens <= self.window:
            raise ValueError(
                f"need window >= 1 and budget_tokens > window, got {self.budget_tokens}, {self.window}"
            )
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1, got {self.kernel}")
        if self.pooling not in ("maxpool", "avgpool"):
            raise ValueError(f"pooling must be 'maxpool' or 'avgpool', got {self.pooling!r}")
        if self.keep is not None:
            check_fraction("keep", self.keep)

    def budget(self, n: int) -> int:
        if self.keep is None:
            return self.budget_tokens
        return max(self.window + 1, kept_count(self.keep, n))

    def label(self) -> str:
        return f"snapkv[{self.keep:g}]" if self.keep is not None else f"snapkv[{self.budget_tokens}]"

    def policy(self) -> TokenPolicy:
        return SnapKVPolicy(self)
