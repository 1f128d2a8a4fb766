"""Greedy generation over the engine, timed the way the paper times it.

TTFT is the wall time from handing over the prompt to knowing the first token (prefill plus the
first lm_head/argmax, synchronised on CUDA). Every method, full prefill included, goes through this
one loop, so their clocks are comparable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from lazybench.engine.engine import LazyEngine


@dataclass
class GenerationResult:
    tokens: list[int]
    prompt_tokens: int
    ttft_s: float
    decode_step_s: list[float]
    total_s: float
    stop_reason: str
    computed_per_layer: list[int]  # prompt-token computations per layer over the whole generation
    kv_tokens_per_layer: list[int]  # KV cache entries per layer at the end
    prefill_rows_per_layer: list[int]
    prefill_flops: float
    full_prefill_flops: float
    total_flops: float
    original_prompt_tokens: int | None = None  # before a method rewrote the prompt (token drop, compression)
    prompt_rewrite_s: float = 0.0  # time spent rewriting the prompt, already included in ttft_s and total_s
    first_logits: torch.Tensor | None = field(default=None, repr=False)
    step_logits: list[torch.Tensor] | None = field(default=None, repr=False)
    trace: list | None = field(default=None, repr=False)

    @property
    def new_tokens(self) -> int:
        return len(self.tokens)

    @property
    def decode_s(self) -> float:
        return sum(self.decode_step_s)

    @property
    def pct_prompt_computed(self) -> float:
        """The paper's Table 2 measure: prompt-token computations over all steps and layers, % of full prefill."""
        layers = len(self.computed_per_layer)
        return (
            100.0
            * sum(self.computed_per_layer)
            / (layers * (self.original_prompt_tokens or self.prompt_tokens))
        )

    @property
    def prefill_flop_fraction(self) -> float:
        return self.prefill_flops / self.full_prefill_flops

    @property
    def pruned(self) -> bool:
        """Whether any prompt token was skipped at any layer during prefill: the run really pruned."""
        return min(self.prefill_rows_per_layer) < (self.original_prompt_tokens or self.prompt_tokens)

    def with_prompt_rewrite(self, original_tokens: int, seconds: float, full_prefill_flops: float):
        """Account for a method that shortened the prompt before the model: its time counts in TTFT
        (as the paper counts Selective Context's compressor) and ratios refer to the original prompt."""
        return replace(
            self,
            original_prompt_tokens=original_tokens,
            prompt_rewrite_s=seconds,
            ttft_s=self.ttft_s + seconds,
            total_s=self.total_s + seconds,
            full_prefill_flops=full_prefill_flops,
        )

    def summary(self) -> dict:
        """JSON-ready numbers (tensors and traces left out)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("first_logits", "step_logits", "trace")}
        out.update(
            new_tokens=self.new_tokens,
            decode_s=self.decode_s,
            pct_prompt_computed=self.pct_prompt_computed,
            prefill_flop_fraction=self.prefill_flop_fraction,
            pruned=self.pruned,
        )
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generate(
    engine: LazyEngine,
    prompt_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    eos_token_ids: Sequence[int] = (),
    min_new_tokens: int = 0,
    stop_strings: Sequence[str] = (),
    tokenizer=None,
    keep_logits: bool = False,
    trace: bool = False,
) -> GenerationResult:
    """Greedy decoding; stops on an EOS id (kept in the output, as transformers does), a stop string
    (needs `tokenizer`), or max_new_tokens. EOS is suppressed until min_new_tokens are out."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if stop_strings and tokenizer is None:
        raise ValueError("stop_strings need a tokenizer to decode the output")
    device = engine.parts.device
    ids = torch.as_tensor(prompt_ids, dtype=torch.long).reshape(-1)
    n_prompt = ids.numel()
    eos_set = set(eos_token_ids)
    eos = torch.tensor(sorted(eos_set), dtype=torch.long, device=device)
    step_logits: list[torch.Tensor] = []
    decode_times: list[float] = []
    total_flops = 0.0

    def pick(logits: torch.Tensor, n_done: int) -> int:
        if n_done < min_new_tokens and eos.numel():
            logits = logits.index_fill(0, eos, -torch.inf)
        if keep_logits:
            step_logits.append(logits.cpu())
        return int(torch.argmax(logits))

    with engine.attention_hook():
        state = engine.new_state(capacity=n_prompt + max_new_tokens, trace=trace)
        _sync(device)
        t_start = time.perf_counter()
        logits, cost = engine.step(state, ids.to(device))
        token = pick(logits, 0)
        _sync(device)
        ttft = time.perf_counter() - t_start
        prefill_cost = cost
        total_flops += cost.flops
        tokens = [token]
        stop_reason = "max_new_tokens"
        while True:
            if token in eos_set:
                stop_reason = "eos"
                break
            if stop_strings and any(s in tokenizer.decode(tokens[-8:]) for s in stop_strings):
                stop_reason = "stop_string"
                break
            if len(tokens) >= max_new_tokens:
                break
            t0 = time.perf_counter()
            logits, cost = engine.step(state, torch.tensor([token], device=device))
            token = pick(logits, len(tokens))
            _sync(device)
            decode_times.append(time.perf_counter() - t0)
            total_flops += cost.flops
            tokens.append(token)
        total = time.perf_counter() - t_start

    return GenerationResult(
        tokens=tokens,
        prompt_tokens=n_prompt,
        ttft_s=ttft,
        decode_step_s=decode_times,
        total_s=total,
        stop_reason=stop_reason,
        computed_per_layer=state.prompt_computations_per_layer(n_prompt),
        kv_tokens_per_layer=state.kv_tokens_per_layer(),
        prefill_rows_per_layer=prefill_cost.rows_per_layer,
        prefill_flops=prefill_cost.flops,
        full_prefill_flops=engine.full_prefill_flops(n_prompt),
        total_flops=total_flops,
        first_logits=step_logits[0] if keep_logits else None,
        step_logits=step_logits if keep_logits else None,
        trace=state.trace,
    )
