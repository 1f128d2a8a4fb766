"""Analytic prefill FLOPs of every method at a prompt length, from the model's config alone.

An operating-point sweep must place its settings along the speed axis before any weights load
(at plan time, and in a dry run on a laptop), so the FLOP-ideal TTFT speedup of a setting is
computed here from the config: the same per-layer cost model the engine accounts with
(`LazyEngine._layer_cost`: 2 x rows x layer parameters for the matmuls plus 4 x query-key pairs x
heads x head_dim for attention, and the score rows a method computes beside it), applied to the
rows each method computes. tests/test_protocol.py checks these counts against the engine's own
accounting on a real (tiny) model, so the two cannot drift apart unnoticed.

The lm_head of the last row is left out on both sides (it is the same for every method); a prompt
compressor's lm_head over every position is counted, as the engine's accounting counts it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from lazybench.engine import Schedule


def kept(fraction: float, n: int) -> int:
    """ceil(fraction x n), at least 1 and at most n (the rule every method's kept count follows)."""
    return min(n, max(1, math.ceil(fraction * n - 1e-9)))


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP model (and the dry run's time estimate) needs of a decoder: depth, attention
    width, parameters per layer, vocab, and the KV width and MLP size the estimate's memory reads need.
    The one shape class: `lazybench.runner.estimate` uses it too."""

    num_layers: int
    hidden_size: int
    num_heads: int
    head_dim: int
    params_per_layer: int
    vocab_size: int
    num_kv_heads: int = 0  # 0: as many as num_heads
    intermediate_size: int = 0

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """From a transformers (text) config: q/k/v/o projections, a gated MLP and two norms per layer,
        as the supported families (Llama, Mistral, Qwen, Gemma, Phi-3) have; biases where declared."""
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        h = int(config.hidden_size)
        heads = int(config.num_attention_heads)
        bias = bool(getattr(config, "attention_bias", False) or getattr(config, "model_type", "") == "qwen2")
        return cls.from_dims(
            layers=int(config.num_hidden_layers),
            hidden=h,
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(config, "head_dim", None) or h // heads),
            intermediate=int(config.intermediate_size),
            vocab=int(config.vocab_size),
            attention_bias=bias,
        )

    @classmethod
    def from_dims(
        cls, layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int, intermediate: int, vocab: int,
        attention_bias: bool = False,
    ) -> ModelShape:  # fmt: skip
        """From a config's published numbers (a preset whose config.json is not at hand)."""
        attn = hidden * head_dim * (2 * heads + 2 * kv_heads)
        if attention_bias:
            attn += head_dim * (heads + 2 * kv_heads)
        return cls(
            num_layers=layers,
            hidden_size=hidden,
            num_heads=heads,
            head_dim=head_dim,
            params_per_layer=attn + 3 * hidden * intermediate + 2 * hidden,
            vocab_size=vocab,
            num_kv_heads=kv_heads,
            intermediate_size=intermediate,
        )

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def layer_params(self) -> float:
        """Parameters of all decoder layers."""
        return float(self.num_layers * self.params_per_layer)

    @property
    def weights(self) -> float:
        """Parameters read per decode step: the layers and the lm_head."""
        return self.layer_params + self.vocab_size * self.hidden_size

    def prefill_flops(self, n: int, layers: int | None = None) -> float:
        """A causal forward of n tokens through `layers` layers (default all): the engine's cost model."""
        return self.causal_layers(n, self.num_layers if layers is None else layers)

    def as_config(self) -> SimpleNamespace:
        """The config fields `from_config` reads, for code that takes a config (a preset's sweep)."""
        return SimpleNamespace(
            num_hidden_layers=self.num_layers,
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.kv_heads,
            head_dim=self.head_dim,
            intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size,
        )

    # --- the engine's cost model -------------------------------------------------------------------
    def layer_cost(self, rows: float, pairs: float) -> float:
        return 2.0 * rows * self.params_per_layer + 4.0 * pairs * self.num_heads * self.head_dim

    def score_cost(self, queries: float, keys: float) -> float:
        """Attention logits of `queries` rows over `keys` keys in one layer (an importance score)."""
        return 2.0 * queries * keys * self.num_heads * self.head_dim

    def causal_layers(self, n: int, layers: int) -> float:
        """`layers` layers of a causal forward over n tokens."""
        return layers * self.layer_cost(n, n * (n + 1) / 2)

    def full_prefill(self, n: int) -> float:
        return self.causal_layers(n, self.num_layers)

    def staged_prefill(self, schedule: Schedule, n: int) -> float:
        """A pruning schedule's prefill (LazyLLM, static pruning): each stage's kept rows attend
        causally among themselves; the layer before each boundary also scores the last row."""
        plan = schedule.resolve(self.num_layers)
        flops, rows = 0.0, n
        stages = plan.stage_layers()
        for s, (start, end, keep) in enumerate(stages):
            if s > 0:
                rows = min(rows, kept(keep, n))
            flops += self.causal_layers(rows, end - start)
            if s + 1 < len(stages):
                flops += self.score_cost(1, rows)
        return flops

    def lm_forward(self, n: int) -> float:
        """A causal LM forward with logits at every position (a prompt compressor's pass)."""
        return self.full_prefill(n) + 2.0 * n * self.hidden_size * self.vocab_size


def _schedule(params: Mapping[str, Any], default: Schedule) -> Schedule:
    raw = params.get("schedule")
    return default if raw is None else Schedule.from_config(dict(raw))


def prefill_flops(
    shape: ModelShape, name: str, params: Mapping[str, Any], n: int, compressor: ModelShape | None = None
) -> float:
    """FLOPs of method `name` (registry name) with `params` (its config) to the first token of an
    n-token prompt. `compressor`: the shape of Selective Context's compressor (default: the target)."""
    if name == "baseline" or name == "streamingllm":
        return shape.full_prefill(n)
    if name in ("lazyllm", "static"):
        default = Schedule() if name == "lazyllm" else Schedule(boundaries=(0.3,), keep=(0.5,))
        return shape.staged_prefill(_schedule(params, default), n)
    if name == "random_drop":
        return shape.full_prefill(kept(float(params.get("keep", 0.6)), n))
    if name == "gemfilter":
        keep = params.get("keep")
        k = kept(float(keep), n) if keep is not None else min(n, int(params.get("topk", 1024)))
        if k >= n:
            return shape.full_prefill(n)
        layer = params.get("filter_layer")
        if layer is None:
            layer = math.floor(float(params.get("filter_depth", 0.40625)) * shape.num_layers)
        return shape.causal_layers(n, int(layer) + 1) + shape.score_cost(1, n) + shape.full_prefill(k)
    if name == "selective_context":
        k = kept(float(params.get("keep", 0.65)), n)
        if k >= n:
            return shape.full_prefill(n)
        lm = compressor or shape
        step = int(params.get("context", 1024)) - 1
        chunks = [min(step, n - start) + 1 for start in range(0, n, step)]  # + the compressor's BOS
        return sum(lm.lm_forward(c) for c in chunks) + shape.full_prefill(k)
    if name == "snapkv":
        keep = params.get("keep")
        budget = (
            max(int(params.get("window", 32)) + 1, kept(float(keep), n))
            if keep is not None
            else int(params.get("budget_tokens", 1024))
        )
        extra = 0.0 if n <= budget else shape.score_cost(min(int(params.get("window", 32)), n), n)
        return shape.full_prefill(n) + shape.num_layers * extra
    if name == "h2o":
        return shape.full_prefill(n) + shape.num_layers * shape.score_cost(n, n)
    if name == "adaptive":
        raise ValueError(
            "adaptive: its prefill FLOPs depend on the prompt's attention (measured, not modelled); "
            "adaptive_speed_range bounds them"
        )
    raise ValueError(f"no FLOP model for method {name!r}")


def adaptive_speed_range(
    shape: ModelShape, layers: list[int], floor: float, ceiling: float, n: int
) -> tuple[float, float]:
    """The FLOP-ideal speedups the adaptive kept set (lazybench.methods.adaptive) can reach at n
    tokens: every boundary keeping the ceiling (slowest) to every boundary at the floor (fastest).
    Its real speed depends on the prompt's attention; this range is all that is known in advance."""

    def at(keep: float) -> float:
        schedule = {"boundaries": list(layers), "keep": [keep] * len(layers), "unit": "layer"}
        return ideal_speedup(shape, "lazyllm", {"schedule": schedule}, n)

    return at(ceiling), at(floor)


def ideal_speedup(
    shape: ModelShape, name: str, params: Mapping[str, Any], n: int, compressor: ModelShape | None = None
) -> float:
    """Full-prefill FLOPs / the method's prefill FLOPs at n prompt tokens (the FLOP-ideal TTFT speedup)."""
    return shape.full_prefill(n) / prefill_flops(shape, name, params, n, compressor)


def geometric_targets(low: float, high: float, points: int) -> list[float]:
    """`points` speedups from low to high, evenly spaced in log (equal ratios between neighbours)."""
    if points < 1 or not (0 < low <= high):
        raise ValueError(f"need points >= 1 and 0 < low <= high, got {points}, {low}, {high}")
    if points == 1:
        return [round(math.sqrt(low * high), 3)]
    ratio = (high / low) ** (1 / (points - 1))
    return [round(low * ratio**i, 3) for i in range(points)]


def solve_decreasing(fn, target: float, lo: float, hi: float, iters: int = 50) -> float:
    """x in [lo, hi] with fn(x) ~= target, for fn decreasing in x (a speedup falls as the kept fraction
    grows); lo when even fn(lo) < target, hi when fn(hi) > target."""
    for _ in range(iters):
        mid = (lo + hi) / 2
        if fn(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
