"""GemFilter (Shi et al. 2024, arXiv 2409.17422, "Discovering the Gems in Early Layers").

Two passes: the first runs only the layers up to a filter layer r over the whole prompt and ranks
the prompt tokens by the last query's attention logits at layer r; the second runs the full model
on the top-k tokens only (kept in their original order, as a fresh prompt) and generates from it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from lazybench.engine import (
    GenerationResult,
    LayerScores,
    LazyEngine,
    TokenPolicy,
    check_fraction,
    generate,
    grouped_logits,
    kept_count,
)
from lazybench.methods.base import GenerationRequest, Method, register_method


class GemFilterScores(LayerScores):
    """GemFilter's ranking: the last query's raw attention logits q_last . K^T summed over all query
    heads (no softmax: as their reference code does), smoothed by a 1-D average pool."""

    def __init__(self, layer: int, pool_kernel: int) -> None:
        super().__init__([layer])
        self.pool_kernel = pool_kernel

    def score(self, module, query, key, scaling, softcap):
        scores = grouped_logits(query[:, :, -1:], key, 1.0, None).sum(dim=(0, 1, 2))
        if self.pool_kernel > 1:
            k = self.pool_kernel
            scores = F.avg_pool1d(scores[None, None], k, stride=1, padding=k // 2)[0, 0, : scores.numel()]
        return scores


class GemFilterPolicy(TokenPolicy):
    """The filter pass: no pruning, scores at the filter layer, top-k chosen at the end of the step."""

    name = "gemfilter"

    def __init__(self, layer: int, k: int, pool_kernel: int) -> None:
        super().__init__()
        self.layer, self.k, self.pool_kernel = layer, k, pool_kernel
        self.selected: torch.Tensor | None = None

    def layer_scores(self, step, state, parts):
        return GemFilterScores(self.layer, self.pool_kernel) if step == 0 else None

    def end_step(self, step, state, parts, scores) -> None:
        if step == 0:
            ranked = scores[self.layer]
            self.selected = torch.topk(ranked, min(self.k, ranked.numel())).indices.sort().values


@register_method("gemfilter")
@dataclass
class GemFilter(Method):
    """GemFilter: early layers select the prompt tokens, then the full model runs on them alone.

    Query-aware (the last prompt token's attention ranks); saves prefill (the second pass computes
    k tokens; the filter pass computes r+1 of the layers) and decoding (the KV holds k tokens).
    Defaults from the paper and its reference code: k = `topk` = 1024 tokens (their LongBench
    setting), filter layer 13 of Llama 3.1 8B's 32 (0-based) -> `filter_depth` = 13/32 = 0.40625 of
    the depth, floored (12 of SmolLM2's 30); `filter_layer` pins a 0-based layer instead. Ranking as
    in their code: raw q_last . K^T logits summed over heads, average-pooled with kernel
    `pool_kernel`=5, top-k sorted back into prompt order, the last token not forced in. The
    selected tokens are a fresh prompt (positions 0..k-1), as their code feeds them to a new forward.
    `keep` (a fraction of the prompt) overrides `topk` when set. If k >= the prompt, no filtering
    happens (the run is the baseline). On a sliding-window filter layer (Gemma 2/3 local layers) the
    ranking still covers every prompt key, as the raw logits do not see the model's window mask.

    Accounting: TTFT and the FLOPs include both passes (the filter pass also runs the final norm and
    lm_head on its last row, one row of negligible cost); computed_per_layer adds the filter pass's
    rows (the whole prompt at layers 0..r) to the second pass's; KV counts are the second pass's.
    """

    query_aware: ClassVar[bool] = True
    saves: ClassVar[str] = "both"
    topk: int = 1024
    filter_depth: float = 0.40625
    filter_layer: int | None = None
    pool_kernel: int = 5
    keep: float | None = None

    def __post_init__(self) -> None:
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
        if not (0.0 <= self.filter_depth < 1.0):
            raise ValueError(f"filter_depth must be in [0, 1), got {self.filter_depth}")
        if self.filter_layer is not None and self.filter_layer < 0:
            raise ValueError(f"filter_layer must be >= 0, got {self.filter_layer}")
        if self.keep is not None:
            check_fraction("keep", self.keep)

    def label(self) -> str:
        budget = f"{self.keep:g}" if self.keep is not None else str(self.topk)
        layer = f"L{self.filter_layer}" if self.filter_layer is not None else f"d{self.filter_depth:g}"
        return f"gemfilter[{budget},{layer}]"

    def budget(self, n: int) -> int:
        return kept_count(self.keep, n) if self.keep is not None else self.topk

    def layer_index(self, num_layers: int) -> int:
        layer = (
            self.filter_layer if self.filter_layer is not None else math.floor(self.filter_depth * num_layers)
        )
        if not 0 <= layer < num_layers:
            raise ValueError(f"filter layer {layer} is outside 0..{num_layers - 1}")
        return layer

    def run(self, model: torch.nn.Module, request: GenerationRequest) -> GenerationResult:
        ids = list(request.prompt_ids)
        n = len(ids)
        k = self.budget(n)
        if k >= n:
            return super().run(model, request)
        engine = self.engine(model)
        layer = self.layer_index(engine.parts.num_layers)
        policy = GemFilterPolicy(layer, k, self.pool_kernel)
        first = generate(LazyEngine(model, policy, num_layers=layer + 1), ids, max_new_tokens=1)
        t0 = time.perf_counter()
        selected = [ids[p] for p in policy.selected.tolist()]
        filter_s = first.ttft_s + time.perf_counter() - t0
        second = self.generate(engine, selected, request)
        return combine_passes(first, second, n, filter_s, engine.full_prefill_flops(n))


def combine_passes(
    first: GenerationResult, second: GenerationResult, original: int, first_s: float, full_flops: float
) -> GenerationResult:
    """One result for a filter pass (over the first layers) followed by a generation on its selection."""

    def add(a: list[int], b: list[int]) -> list[int]:
        return [x + (a[i] if i < len(a) else 0) for i, x in enumerate(b)]

    return dataclasses.replace(
        second,
        ttft_s=second.ttft_s + first_s,
        total_s=second.total_s + first_s,
        computed_per_layer=add(first.computed_per_layer, second.computed_per_layer),
        prefill_rows_per_layer=add(first.prefill_rows_per_layer, second.prefill_rows_per_layer),
        prefill_flops=second.prefill_flops + first.prefill_flops,
        full_prefill_flops=full_flops,
        total_flops=second.total_flops + first.prefill_flops,
        original_prompt_tokens=original,
        prompt_rewrite_s=first_s,
    )
