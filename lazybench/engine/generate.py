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
    prompt_rewrite_flops: float = (
        0.0  # FLOPs of rewriting it (a compressor's forward), in prefill/total FLOPs
    )
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

    def with_prompt_rewrite(
        self, original_tokens: int, seconds: float, full_prefill_flops: float, flops: float = 0.0
    ):
        """Account for a method that shortened the prompt before the model: its time counts in TTFT
        (as the paper counts Selective Context's compressor), its FLOPs in the prefill's, and ratios
        refer to the original prompt."""
        return replace(
            self,
            original_prompt_tokens=original_tokens,
            prompt_rewrite_s=seconds,
            prompt_rewrite_flops=flops,
            ttft_s=self.ttft_s + seconds,
            total_s=self.total_s + seconds,
            prefill_flops=self.prefill_flops + flops,
            total_flops=self.total_flops + flops,
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


def sync_device(device: torch.device) -> None:
    """Wait for queued CUDA work, so a clock read after it measures the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Generation:
    """One greedy generation, advanced a step at a time and timed per step.

    generate() runs one to the end; a benchmark can advance several in alternation (lockstep) so a
    shared machine's drift hits them alike, with every step timed by this same code. Stops on an EOS
    id (kept in the output, as transformers does), a stop string (needs `tokenizer`), or
    max_new_tokens; EOS is suppressed until min_new_tokens are out.
    """

    def __init__(
        self,
        engine: LazyEngine,
        prompt_ids: Sequence[int] | torch.Tensor,
        max_new_tokens: int,
        eos_token_ids: Sequence[int] = (),
        min_new_tokens: int = 0,
        stop_strings: Sequence[str] = (),
        tokenizer=None,
        keep_logits: bool = False,
        trace: bool = False,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if stop_strings and tokenizer is None:
            raise ValueError("stop_strings need a tokenizer to decode the output")
        self.engine, self.max_new_tokens, self.min_new_tokens = engine, max_new_tokens, min_new_tokens
        self.stop_strings, self.tokenizer, self.keep_logits = tuple(stop_strings), tokenizer, keep_logits
        self.device = engine.parts.device
        self.ids = torch.as_tensor(prompt_ids, dtype=torch.long).reshape(-1)
        self.eos_set = set(eos_token_ids)
        self.eos = torch.tensor(sorted(self.eos_set), dtype=torch.long, device=self.device)
        # Everything a step needs that does not depend on the model's output is made here, before
        # any clock: the prompt on the device, the KV buffers allocated and zeroed (every method alike).
        self.state = engine.new_state(capacity=self.ids.numel() + max_new_tokens, trace=trace)
        self.next_input = self.ids.to(self.device)
        self.tokens: list[int] = []
        self.step_logits: list[torch.Tensor] = []
        self.decode_times: list[float] = []
        self.ttft = self.elapsed = self.total_flops = 0.0
        self.prefill_cost = None
        self.stop_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def _pick(self, logits: torch.Tensor) -> tuple[int, torch.Tensor]:
        """The greedy token, and the logits it was picked from (EOS masked while suppressed). The
        token stays on the device as the next step's input; reading it (for the stop rules and the
        output) is the loop's one device read per step."""
        if len(self.tokens) < self.min_new_tokens and self.eos.numel():
            logits = logits.index_fill(0, self.eos, -torch.inf)
        token = torch.argmax(logits)
        self.next_input = token.view(1)
        return int(token), logits

    def advance(self) -> None:
        """Prefill (the first call) or one decode step, then the stop checks; all of it counts in
        the total time, the model step alone in TTFT or the decode-step time."""
        if self.done:
            raise RuntimeError("the generation has already stopped")
        with self.engine.attention_hook():
            sync_device(self.device)
            t0 = time.perf_counter()
            prefill = not self.tokens
            logits, cost = self.engine.step(self.state, self.next_input)
            token, logits = self._pick(logits)
            self.tokens.append(token)
            sync_device(self.device)
            t_step = time.perf_counter() - t0
        if prefill:
            self.ttft, self.prefill_cost = t_step, cost
        else:
            self.decode_times.append(t_step)
        self.total_flops += cost.flops
        if token in self.eos_set:
            self.stop_reason = "eos"
        elif self.stop_strings and any(
            s in self.tokenizer.decode(self.tokens[-8:]) for s in self.stop_strings
        ):
            self.stop_reason = "stop_string"
        elif len(self.tokens) >= self.max_new_tokens:
            self.stop_reason = "max_new_tokens"
        self.elapsed += time.perf_counter() - t0
        if self.keep_logits:  # copied off the device outside every clock: fidelity costs no time
            self.step_logits.append(logits.cpu())

    def result(self) -> GenerationResult:
        n_prompt, state = self.ids.numel(), self.state
        return GenerationResult(
            tokens=self.tokens,
            prompt_tokens=n_prompt,
            ttft_s=self.ttft,
            decode_step_s=self.decode_times,
            total_s=self.elapsed,
            stop_reason=self.stop_reason or "unfinished",
            computed_per_layer=state.prompt_computations_per_layer(n_prompt),
            kv_tokens_per_layer=state.kv_tokens_per_layer(),
            prefill_rows_per_layer=self.prefill_cost.rows_per_layer,
            prefill_flops=self.prefill_cost.flops,
            full_prefill_flops=self.engine.full_prefill_flops(n_prompt),
            total_flops=self.total_flops,
            first_logits=self.step_logits[0] if self.keep_logits else None,
            step_logits=self.step_logits if self.keep_logits else None,
            trace=state.stage_traces(),
        )


def generate(
    engine: LazyEngine, prompt_ids: Sequence[int] | torch.Tensor, max_new_tokens: int, **options
) -> GenerationResult:
    """Greedy decoding to a stop (see Generation for the options and the stop rules)."""
    generation = Generation(engine, prompt_ids, max_new_tokens, **options)
    while not generation.done:
        generation.advance()
    return generation.result()
