"""Random token drop: the paper's simplest baseline (Table 1, "random token drop").

The prompt is shortened before the model sees it, in the manner of Random-LTD (Yao et al. 2022,
arXiv 2211.11586), which skips a random subset of tokens; here at inference, once, before prefill.
Our choice where the LazyLLM paper is silent: Random-LTD itself drops tokens only in the middle
layers (all tokens present at the first and last ones) during training; dropping them from the
input is the variant whose prefill saving is comparable with LazyLLM's, and the one that needs no
per-layer machinery, so a rival that fails does not fail for an engine reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import torch

from lazybench.engine import check_fraction, kept_count
from lazybench.methods.base import GenerationRequest, Method, PreparedPrompt, register_method


@register_method("random_drop")
@dataclass
class RandomDrop(Method):
    """Keep a random `keep` fraction of the prompt tokens (in order), drop the rest before the model.

    Not query-aware; saves prefill and decoding (the model only ever sees the shorter prompt).
    Stochastic: the kept set is drawn from `request.seed`; the paper averages 5 runs.

    The paper does not give its drop rate. Default keep=0.6, about the prefill compute of LazyLLM's
    default schedule (100/70/40/10% over 30/30/30/10% of the layers: 62.5% at 32 layers), so the
    two are compared at a similar budget. The last `keep_last`=64 tokens (LongBench puts the
    question and answer cue at the end of the prompt, and the chat template's assistant header is
    there) and the first `keep_first`=1 token (BOS, the attention sink) are always kept; they count
    toward the kept fraction, and the rest of the budget is drawn uniformly from the middle.
    With keep=1.0 the prompt is untouched and the run is the baseline.
    """

    query_aware: ClassVar[bool] = False
    saves: ClassVar[str] = "both"
    stochastic: ClassVar[bool] = True
    paper_name: ClassVar[str | None] = "Random Token Drop"
    keep: float = 0.6
    keep_last: int = 64
    keep_first: int = 1

    def __post_init__(self) -> None:
        check_fraction("keep", self.keep)
        if self.keep_last < 0 or self.keep_first < 0:
            raise ValueError("keep_last and keep_first must be >= 0")

    def label(self) -> str:
        return f"random_drop[{self.keep:g}]"

    def kept_positions(self, n: int, seed: int) -> list[int]:
        n_keep = kept_count(self.keep, n)
        if n_keep >= n:
            return list(range(n))
        tail = min(self.keep_last, n_keep)
        head = min(self.keep_first, n_keep - tail)
        middle = n - tail - head
        gen = torch.Generator().manual_seed(seed)
        drawn = (torch.randperm(middle, generator=gen)[: n_keep - tail - head] + head).tolist()
        return sorted([*range(head), *drawn, *range(n - tail, n)])

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        t0 = time.perf_counter()
        ids = list(request.prompt_ids)
        keep = self.kept_positions(len(ids), request.seed)
        if len(keep) == len(ids):
            return PreparedPrompt(ids=ids)
        return PreparedPrompt(ids=[ids[p] for p in keep], seconds=time.perf_counter() - t0)
