"""KV-cache selection rivals: StreamingLLM, SnapKV and H2O.

All three run the full prefill and then let decoding read only part of the prompt's KV, chosen per
layer and per KV head: their policies set a `HeadKeep` (this module's `KVReads`, the engine's hook
for a method's own cache reads) on the state, and each head reads its own positions with one
gather per layer. They save decoding work and KV memory, never prefill (their TTFT is the
baseline's plus their selection cost). Choices shared by all three:

- Only full-attention layers select; sliding-window layers (Mistral v0.1, Gemma 2/3's local layers)
  keep reading their window through the model's own mask, which already bounds them.
- Grouped-query attention: selection is per KV head, with the scores of the query heads that share
  a KV head averaged (SnapKV, StreamingLLM) or summed (H2O, as its reference code's `sum_group`), so
  memory really shrinks per KV head. The original papers used multi-head models.
- Positions are the original ones (RoPE is applied once, when the KV is computed); StreamingLLM's
  re-indexing of positions inside its rolling cache matters only past the pretraining length.
- Evicted KV is not freed (buffers are allocated once for the whole generation); kv_tokens_per_layer
  reports the entries each head keeps, and FLOPs count the keys each head reads. A trace's `active`
  lists still show the whole context: the per-head positions are `HeadKeep.positions()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from lazybench.engine import (
    KVReads,
    LayerScores,
    TokenPolicy,
    as_fp32,
    check_fraction,
    full_attention_layers,
    grouped_logits,
    kept_count,
    score_flops,
)
from lazybench.methods.base import Method, register_method


class HeadKeep(KVReads):
    """Per selecting layer and KV head, the cached positions that head reads in decoding (every
    head keeps the same number); new tokens are visible to every head. Layers not selecting read
    the cache as usual."""

    def __init__(self, num_layers: int, capacity: int, device: torch.device) -> None:
        self.num_layers, self.capacity, self.device = num_layers, capacity, device
        self.keep: torch.Tensor | None = None  # [rows, kv_heads, capacity]; the first `length` valid
        self.length = 0
        self.rows: list[int] = [-1] * num_layers  # layer -> row of `keep`, or -1
        self._index: torch.Tensor | None = None

    @classmethod
    def of(cls, state) -> HeadKeep:
        """The state's HeadKeep, made on first use."""
        if state.kv_reads is None:
            state.kv_reads = cls(state.num_layers, state.capacity, state.device)
        return state.kv_reads

    def set(self, layers: list[int], positions: torch.Tensor) -> None:
        """From the next step on, layer `layers[r]` head h attends only to `positions[r, h]` (plus
        the new tokens)."""
        if positions.dim() != 3 or positions.shape[0] != len(layers):
            raise ValueError(
                f"positions must be [{len(layers)} layers, kv_heads, n], got {tuple(positions.shape)}"
            )
        rows, heads, n = positions.shape
        if self.keep is None or self.keep.shape[:2] != (rows, heads):
            self.keep = torch.empty(rows, heads, self.capacity, dtype=torch.long, device=self.device)
        self.keep[:, :, :n] = positions
        self.length = n
        self.rows = [-1] * self.num_layers
        for r, layer in enumerate(layers):
            self.rows[layer] = r

    def positions(self) -> torch.Tensor:
        """[rows, kv_heads, length] view of the kept positions."""
        return self.keep[:, :, : self.length]

    # --- the engine's KVReads hooks
    def reads(self, layer: int) -> bool:
        return self.rows[layer] >= 0

    def append(self, positions: torch.Tensor) -> None:
        n = positions.numel()
        self.keep[:, :, self.length : self.length + n] = positions
        self.length += n

    def begin_stage(self) -> None:
        self._index = None  # expanded to the head dim on the first read of the stage

    def read(self, layer, keys, values):
        if self._index is None:
            self._index = self.keep[:, :, : self.length, None].expand(-1, -1, -1, keys.shape[-1])
        index = self._index[self.rows[layer]]
        return keys[0].gather(1, index)[None], values[0].gather(1, index)[None]

    def keys_read(self, layer: int) -> int:
        return self.length


def _kv_heads(state, layers: list[int]) -> int:
    return state.keys[layers[0]].shape[1]


def _same_for_all(positions: torch.Tensor, rows: int, heads: int) -> torch.Tensor:
    return positions[None, None].expand(rows, heads, -1)


# --- StreamingLLM ------------------------------------------------------------------------------
class StreamingPolicy(TokenPolicy):
    """Keep the first n_sink positions and the last `window` ones, for every head."""

    name = "streamingllm"

    def __init__(self, n_sink: int, window: int) -> None:
        super().__init__()
        self.n_sink, self.window = n_sink, window

    def end_step(self, step, state, parts, scores) -> None:
        layers = full_attention_layers(parts)
        if not layers:
            return
        budget = self.n_sink + self.window
        if step == 0:
            n = state.length
            pos = torch.arange(n, device=state.device)
            if n > budget:
                pos = torch.cat([pos[: self.n_sink], pos[n - self.window :]])
            HeadKeep.of(state).set(layers, _same_for_all(pos, len(layers), _kv_heads(state, layers)))
        elif state.kv_reads.length > budget:
            heads = state.kv_reads
            kept = heads.positions()
            over = heads.length - budget
            heads.set(layers, torch.cat([kept[..., : self.n_sink], kept[..., self.n_sink + over :]], dim=-1))


@register_method("streamingllm")
@dataclass
class StreamingLLM(Method):
    """StreamingLLM (Xiao et al. 2023, arXiv 2309.17453): attention sinks plus a recent window.

    Full prefill; every decode step then attends only to the first `n_sink` tokens and the last
    `window` tokens of the context (the window rolls over generated tokens), at every full-attention
    layer. Defaults from the paper's code (examples/run_streaming_llama.py): start_size 4,
    recent_size 2000. Not query-aware; saves decoding (KV read and held), not prefill. A window at
    least as long as the whole context keeps everything and is the baseline.
    """

    query_aware: ClassVar[bool] = False
    saves: ClassVar[str] = "decode"
    n_sink: int = 4
    window: int = 2000

    def __post_init__(self) -> None:
        if self.n_sink < 0 or self.window < 1:
            raise ValueError(f"need n_sink >= 0 and window >= 1, got {self.n_sink}, {self.window}")

    def label(self) -> str:
        return f"streamingllm[{self.n_sink}+{self.window}]"

    def policy(self) -> TokenPolicy:
        return StreamingPolicy(self.n_sink, self.window)


# --- SnapKV ------------------------------------------------------------------------------------
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


# --- H2O ---------------------------------------------------------------------------------------
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
                layers, _same_for_all(torch.arange(n, device=state.device), *mass.shape[:2])
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
