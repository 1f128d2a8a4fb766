"""Token policies: at each pruning boundary of each step, which candidate tokens go on.

The engine owns the mechanics (caches, revival, masks); a policy only answers "which of these
tokens are kept", so LazyLLM, static pruning and the KV-selection rivals differ in a few lines.
Each method's policy lives in its own module under `lazybench.methods`; this module holds the base
class and the helpers they share (exported by `lazybench.engine`).

A policy answers with the sorted indices of the kept candidates (or None: keep all). Their count
is then known on the host from the tensor's shape, so the engine never has to read the device to
size what follows (on a GPU every such read stalls the stream; see docs/host_path.md). A bool
mask is accepted too, at the price of one such read to count it.

KV-selection policies (SnapKV, H2O, StreamingLLM) use two more hooks, both called once per step:
`layer_scores` asks the attention wrapper for a score of their own at chosen layers (a
`LayerScores` sink), and `end_step` turns those scores into the per-layer, per-head positions that
decoding reads (a `KVReads` set on `TokenState.kv_reads`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lazybench.engine.attention import as_fp32, last_query_scores
from lazybench.engine.schedule import Schedule, kept_count

if TYPE_CHECKING:
    from lazybench.engine.adapter import ModelParts
    from lazybench.engine.state import TokenState


@dataclass
class Selection:
    """What a policy sees at one boundary: candidates are sorted positions, the last is the newest token."""

    step: int
    stage: int
    layer: int
    keep_fraction: float
    context_len: int
    candidates: torch.Tensor
    scores: torch.Tensor | None
    has_kv: torch.Tensor  # [num_layers, capacity] bool, read-only

    @property
    def n_keep(self) -> int:
        """The kept count is a fraction of the whole context (not of the stage's input), at least 1.

        In prefill the context is the prompt, so "keep 40%" keeps 40% of the prompt, as the
        schedule says. In decoding it is the prompt plus the tokens generated so far: the paper
        prunes by a percentile of the tokens present, and the generated ones are candidates too.
        """
        return min(self.candidates.numel(), kept_count(self.keep_fraction, self.context_len))


class TokenPolicy:
    """Base policy: no pruning anywhere (full prefill and full-context decoding)."""

    name = "full"

    def __init__(self, schedule: Schedule | None = None) -> None:
        self.schedule = schedule if schedule is not None else Schedule.full()

    def needs_scores(self, step: int, stage: int) -> bool:
        return False

    def select(self, sel: Selection) -> torch.Tensor | None:
        """Sorted int64 indices into `sel.candidates` of the kept ones (the last, the newest token,
        among them), a bool mask over the candidates (costs a device read), or None to keep all."""
        return None

    def layer_scores(self, step: int, state: TokenState, parts: ModelParts) -> LayerScores | None:
        """Once per step, before the layers: a sink the attention wrapper fills at `sink.layers`."""
        return None

    def end_step(self, step: int, state: TokenState, parts: ModelParts, scores: LayerScores | None) -> None:
        """Once per step, after the last layer (inside the step's timing): e.g. select the KV to keep."""


def score_flops(n_queries: int, n_keys: int, parts) -> float:
    """FLOPs of attention logits for n_queries rows over n_keys keys in one layer (q . k for every
    query head), the dominant cost of any attention-derived importance score."""
    return 2.0 * n_queries * n_keys * parts.num_heads * parts.head_dim


class LayerScores(dict):
    """{layer: score} filled by the attention wrapper at `layers`; subclasses define `score`.

    `score(module, query, key, scaling, softcap)` sees the layer's rotated query [1, q_heads, n_q, d]
    and the keys it attends to [1, kv_heads, n_k, d]; the default is LazyLLM's last-query head mean.
    `flops` is what one layer's scoring costs, so the engine can count it with the step's work.
    """

    def __init__(self, layers: Iterable[int]) -> None:
        super().__init__()
        self.layers = frozenset(layers)

    def score(self, module, query: torch.Tensor, key: torch.Tensor, scaling: float, softcap: float | None):
        return last_query_scores(module, query, key, scaling, softcap)

    def flops(self, n_queries: int, n_keys: int, parts) -> float:
        return score_flops(1, n_keys, parts)


def grouped_logits(
    query: torch.Tensor, key: torch.Tensor, scaling: float, softcap: float | None
) -> torch.Tensor:
    """Attention logits per KV head: [kv_heads, group, n_q, n_k], query heads grouped with their
    KV head as grouped-query attention pairs them (query head h reads KV head h // group).

    Computed in fp32 from the start (not in the model's bf16 and cast after), so near-tie rankings
    match an fp32 reference on every device. Pass a float key to avoid converting it per call."""
    _, n_heads, n_q, head_dim = query.shape
    n_kv = key.shape[1]
    q = as_fp32(query[0].reshape(n_kv, n_heads // n_kv, n_q, head_dim))
    logits = torch.matmul(q, as_fp32(key[0][:, None]).transpose(-1, -2)) * scaling  # fp32 products
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def full_attention_layers(parts: ModelParts) -> list[int]:
    """Layers without a sliding window: the ones KV selection applies to. Sliding-window layers
    already read a bounded window through the model's own mask, and keep doing so."""
    return [layer for layer, window in enumerate(parts.sliding_windows) if window is None]


def top_k_indices(scores: torch.Tensor, n_keep: int) -> torch.Tensor | None:
    """Sorted indices of the n_keep highest-scoring candidates, always including the last (the
    query token); None when that keeps them all. Its size is n_keep: no device read needed."""
    if n_keep >= scores.numel():
        return None
    forced = scores.clone()
    forced[-1:].fill_(torch.inf)  # a slice and a scalar fill: no host tensor to upload
    return torch.topk(forced, n_keep, sorted=False).indices.sort().values


def top_k_mask(scores: torch.Tensor, n_keep: int) -> torch.Tensor | None:
    """`top_k_indices` as a bool mask over the candidates."""
    kept = top_k_indices(scores, n_keep)
    if kept is None:
        return None
    return torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device).index_fill_(0, kept, True)


def mask_indices(mask: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` True entries of a 1-D bool mask, in order. Unlike nonzero, whose
    output size the host must read from the device first, nonzero_static is told the size (its
    CUDA kernel reads the count on the device: no synchronisation, PyTorch >= 2.6)."""
    return torch.nonzero_static(mask, size=count).view(-1)


def complement_indices(kept: torch.Tensor, n: int) -> torch.Tensor:
    """Sorted indices in 0..n-1 that are not in `kept` (unique), of known size n - len(kept)."""
    others = torch.ones(n, dtype=torch.bool, device=kept.device).index_fill_(0, kept, False)
    return mask_indices(others, n - kept.numel())
