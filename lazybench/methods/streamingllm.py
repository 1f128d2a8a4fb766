"""StreamingLLM (Xiao et al. 2023): attention sinks plus a recent window of KV in decoding; its policy
and its Method class (the shared per-head reads: `methods.kv_selection`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from lazybench.engine import (
    TokenPolicy,
    full_attention_layers,
)
from lazybench.methods.base import Method, register_method
from lazybench.methods.kv_selection import HeadKeep, kv_heads, same_for_all


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
            HeadKeep.of(state).set(layers, same_for_all(pos, len(layers), kv_heads(state, layers)))
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
