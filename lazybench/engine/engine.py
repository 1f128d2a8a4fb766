"""The LazyLLM engine: one forward step over the model's own layers with progressive pruning.

A step (the prefill, or one decode step) starts from the whole context. Layers run in stages; at
each stage boundary the policy keeps a subset of the previous stage's tokens, chosen from the last
token's attention in the layer just before the boundary. Within a stage the rows that are actually
computed are the kept tokens that have no KV at that layer yet: in prefill that is every kept token,
in decoding the new token plus any token revived from the Aux Cache. Tokens that already have KV
are attended to from the cache without any computation. Hence each token is computed at most once
per layer over a whole generation, and full prefill is the worst case.

All bookkeeping (selection, pruning into the Aux Cache, revival, masks, rotary embeddings, the cache
read plan) happens once per stage; the per-layer loop only calls the decoder layers.

The host never waits for the device inside a step except where a size is truly data dependent:
kept counts are host ints (a fraction of the context length), selections are sorted indices of
known size, and contiguity and window decisions follow from the step's structure. A decode
boundary reads one number, how many rows go on (the kept rows in hand plus the revived ones).
Invariant checks that would read the device run only with `check_invariants` (the engine tests
turn it on). See docs/host_path.md for the budget and how it is counted.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch

from lazybench.engine.adapter import ModelParts
from lazybench.engine.attention import SCORES_KWARG, ScoreSink, scoring_attention
from lazybench.engine.masks import newest_masks, window_masks
from lazybench.engine.policy import (
    LayerScores,
    Selection,
    TokenPolicy,
    mask_indices,
    score_flops,
)
from lazybench.engine.state import EngineInvariantError, KVReads, StageRecord, TokenState
from lazybench.engine.stepping import park_pruned_rows, resume_rows

DECODE_READS = ("masked", "gather")

__all__ = ["DECODE_READS", "EngineInvariantError", "LazyEngine", "StepCost", "StepFlow"]


@dataclass
class StepCost:
    """Work done by one step, for the paper's accounting and FLOP-ideal speedups."""

    rows_per_layer: list[int]
    flops: float


@dataclass
class StepFlow:
    """The tokens flowing through one step as its stages reshape them. Sizes come from tensor
    shapes and the flags are host-side facts about the sets, so no decision needs a device read."""

    step: int
    first_new: int
    context_len: int
    hidden: torch.Tensor  # [1, rows, hidden], rows in position order
    batch: torch.Tensor  # positions of the rows being computed (a subset of active)
    active: torch.Tensor  # positions visible at this stage, sorted, the newest last
    new_rows: bool  # batch is exactly the step's new positions (a contiguous KV write)
    prefix: bool  # active is every position (the cache read is a slice)
    layer_sink: LayerScores | None
    kv_reads: KVReads | None  # a method's own cache reads (KV selection), in decoding
    sink: ScoreSink = field(default_factory=ScoreSink)
    masked_read: torch.Tensor | None = None  # active set of a stage that reads the whole cache masked
    embedded: torch.Tensor | None = None  # the rows whose rotary embeddings pos_emb holds
    pos_emb: dict | None = None
    rows_per_layer: list[int] = field(default_factory=list)
    flops: float = 0.0

    @property
    def self_attending(self) -> bool:
        """The rows computed are all the visible tokens (batch is a subset of active)."""
        return self.batch.numel() == self.active.numel()


class LazyEngine:
    # Only the lone new token reads masked: with revived rows too (q > 1), the masked read measured
    # slower than the gather on CPU (2k prompt: 57-110 ms vs 52-93 ms per step).
    masked_read_max_rows: int = 1
    # Checks that read the device (each token computed at most once, revival only from the Aux
    # Cache, the newest token kept); tests turn them on, a GPU run should not pay for them.
    check_invariants: bool = os.environ.get("LAZYBENCH_CHECK_INVARIANTS", "") == "1"

    def __init__(
        self,
        model: torch.nn.Module,
        policy: TokenPolicy | None = None,
        num_layers: int | None = None,
        decode_read: str = "masked",
        check_invariants: bool | None = None,
    ) -> None:
        """`num_layers` runs only the model's first layers (the logits then come from that depth):
        GemFilter's filter pass, which needs the early layers' attention and nothing after them.

        `decode_read`: how a single-token decode step over a pruned cache reads it. "masked" reads
        the whole prefix through an additive mask (fastest with CPU SDPA), "gather" gathers the
        active KV at every layer; both give the same results.
        """
        if decode_read not in DECODE_READS:
            raise ValueError(f"decode_read must be one of {DECODE_READS}, got {decode_read!r}")
        self.model = model
        self.parts = ModelParts.from_model(model)
        if num_layers is not None:
            p = self.parts
            if not 1 <= num_layers <= p.num_layers:
                raise ValueError(f"num_layers={num_layers} is outside 1..{p.num_layers}")
            self.parts = dataclasses.replace(
                p,
                layers=p.layers[:num_layers],
                layer_types=p.layer_types[:num_layers],
                sliding_windows=p.sliding_windows[:num_layers],
                kv_specs=p.kv_specs[:num_layers],
            )
        self.policy = policy if policy is not None else TokenPolicy()
        self.decode_read = decode_read
        if check_invariants is not None:
            self.check_invariants = check_invariants
        self.plan = self.policy.schedule.resolve(self.parts.num_layers)
        self._windows_by_stage = [
            sorted({w for w in self.parts.sliding_windows[s:e]}, key=lambda w: (w is not None, w or 0))
            for s, e, _ in self.plan.stage_layers()
        ]

    def attention_hook(self):
        """Context manager routing attention through the scoring wrapper (see attention.py)."""
        return scoring_attention(self.model, self.parts.attn_impl)

    def new_state(self, capacity: int, trace: bool = False) -> TokenState:
        """A generation's memory, KV buffers allocated and zeroed now (before any clock starts)."""
        return TokenState(
            num_layers=self.parts.num_layers,
            capacity=capacity,
            hidden_size=self.parts.hidden_size,
            boundary_layers=self.plan.starts[1:],
            device=self.parts.device,
            dtype=self.parts.dtype,
            kv_specs=self.parts.kv_specs,
            count_computations=self.check_invariants,
            trace=[] if trace else None,
        )

    # ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, state: TokenState, token_ids: torch.Tensor) -> tuple[torch.Tensor, StepCost]:
        """Append `token_ids` to the context, run one step, return the next-token logits (fp32)."""
        flow = self._start(state, token_ids)
        for s, (start, end, keep) in enumerate(self.plan.stage_layers()):
            before = flow.batch
            if s > 0:
                self._boundary(state, flow, s, start, keep)
            score_layer = self._score_layer(flow, s, end)
            self._run_stage(state, flow, s, start, end, score_layer)
            self._account(state, flow, start, end, score_layer)
            if state.trace is not None:  # device tensors only: turned into lists after the clocks
                state.trace.append(
                    StageRecord(flow.step, s, start, end, flow.active, flow.batch, before if s else None)
                )
        logits = self.parts.logits(flow.hidden[:, -1:])[0, 0]
        self.policy.end_step(flow.step, state, self.parts, flow.layer_sink)
        return logits, StepCost(rows_per_layer=flow.rows_per_layer, flops=flow.flops)

    # --- the step's parts, in the order it runs them -------------------------------------------
    def _start(self, state: TokenState, token_ids: torch.Tensor) -> StepFlow:
        """Embed the new tokens; every position is visible and only the new ones are computed."""
        parts, policy = self.parts, self.policy
        n_new = token_ids.numel()
        first_new = state.length
        context_len = first_new + n_new
        if context_len > state.capacity:
            raise ValueError(f"context of {context_len} tokens exceeds the state's capacity {state.capacity}")
        state.length = context_len
        step = state.steps
        state.steps += 1
        active = state.arange(context_len)  # every position is visible at layer 0
        batch = active if first_new == 0 else active[first_new:]  # prefill: the rows are the candidates
        # a method's own cache reads in decoding (KV selection): they see each new token too
        if state.kv_reads is not None:
            if n_new != 1:
                raise EngineInvariantError(
                    f"a method's own KV reads take one new token per step, got {n_new}"
                )
            state.kv_reads.append(batch)
        return StepFlow(
            step=step,
            first_new=first_new,
            context_len=context_len,
            hidden=parts.embed(token_ids.view(1, -1).to(parts.device)),
            batch=batch,
            active=active,
            new_rows=True,
            prefix=True,
            layer_sink=policy.layer_scores(step, state, parts),
            kv_reads=state.kv_reads,
            rows_per_layer=[0] * parts.num_layers,
        )

    def _boundary(self, state: TokenState, flow: StepFlow, s: int, start: int, keep: float) -> None:
        """Cross one stage boundary: keep the policy's choice of candidates, park pruned rows in the
        Aux Cache, and bring back kept tokens that lack KV here from the Aux Cache (revival)."""
        scores = flow.sink.pop(start - 1, None)  # aligned with the active set (see ScoreSink)
        candidates = flow.active
        if scores is not None and scores.numel() != candidates.numel():
            raise EngineInvariantError(f"{scores.numel()} scores for {candidates.numel()} candidates")
        sel = Selection(flow.step, s, start, keep, flow.context_len, candidates, scores, state.has_kv)
        kept = self._kept_indices(self.policy.select(sel), candidates.numel())
        in_hand = flow.self_attending  # every candidate is a row being computed
        if kept is not None:
            flow.active, flow.prefix = candidates.index_select(0, kept), False
            state.parked.add(start)
            if self.check_invariants and int(flow.active[-1]) != flow.context_len - 1:
                raise EngineInvariantError(f"the newest token was pruned at layer {start}")
        if in_hand:
            if kept is not None:
                park_pruned_rows(state, flow, start, kept)
        elif kept is not None or start in state.parked:
            resume_rows(state, flow, start, self.check_invariants)
        # else nothing was ever pruned here: the rows in hand go on and none can be revived

    @staticmethod
    def _kept_indices(kept: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """A policy's answer as sorted indices of known size (None: all kept)."""
        if kept is None:
            return None
        if kept.dtype == torch.bool:  # a mask costs one device read to size its indices
            kept = mask_indices(kept, int(kept.sum()))
        return None if kept.numel() == n else kept

    def _score_layer(self, flow: StepFlow, s: int, end: int) -> int:
        """The layer whose last-query attention the next boundary selects by, or -1."""
        wants = s + 1 < self.plan.num_stages and self.policy.needs_scores(flow.step, s + 1)
        return end - 1 if wants else -1

    def _run_stage(
        self, state: TokenState, flow: StepFlow, s: int, start: int, end: int, score_layer: int
    ) -> None:
        masks = self._plan_reads(state, flow, s)
        if flow.batch is not flow.embedded:  # a stage that pruned or revived nothing keeps its rows
            flow.pos_emb, flow.embedded = self._rotary(state, flow), flow.batch
        position_ids = flow.batch[None]
        for layer, mask, emb, extra in self._stage_calls(state, flow, start, end, masks, score_layer):
            flow.hidden = layer(
                flow.hidden, attention_mask=mask, position_ids=position_ids, position_embeddings=emb, **extra
            )  # fmt: skip
        if self.check_invariants and bool(state.has_kv[start:end].index_select(1, flow.batch).any()):
            raise EngineInvariantError(f"a token was computed twice in layers {start}..{end - 1}")
        state.mark_computed(start, end, flow.batch)

    def _rotary(self, state: TokenState, flow: StepFlow) -> dict[str, tuple]:
        """cos/sin of the rows: computed for the step's new positions, gathered for later stages'
        rows where RoPE is static (every row's position was new in some earlier stage or step)."""
        parts = self.parts
        if flow.new_rows or not parts.static_rope or not state.rotary:
            emb = parts.position_embeddings(flow.hidden, flow.batch)
            if flow.new_rows and parts.static_rope and self.plan.num_stages > 1:
                state.remember_rotary(emb, flow.first_new)
            return emb
        return state.rotary_rows(flow.batch)

    def _plan_reads(self, state: TokenState, flow: StepFlow, s: int) -> dict[int | None, torch.Tensor | None]:
        """Tell the cache where this stage writes and what it reads; return the attention masks."""
        read = "self" if flow.self_attending else ("prefix" if flow.prefix else "index")
        flow.masked_read = flow.sink.key_index = None
        if (
            self.decode_read == "masked"
            and read == "index"
            and flow.batch.numel() <= self.masked_read_max_rows
            and self.parts.attn_impl == "sdpa"
            and flow.kv_reads is None
        ):  # read the whole prefix through a mask instead of gathering the active KV at every layer
            flow.masked_read = flow.sink.key_index = flow.active
            state.plan_stage(flow.batch, flow.first_new if flow.new_rows else None, "prefix", flow.active)
            state.masked_keys = flow.active.numel()
            return newest_masks(self.parts, self._windows_by_stage[s], flow.active, flow.context_len)
        state.plan_stage(flow.batch, flow.first_new if flow.new_rows else None, read, flow.active)
        state.masked_keys = None
        return window_masks(
            self.parts,
            self._windows_by_stage[s],
            flow.batch,
            flow.active,
            flow.self_attending,
            flow.context_len - 1,
        )

    def _stage_calls(
        self, state: TokenState, flow: StepFlow, start: int, end: int, masks: dict, score_layer: int
    ) -> list:
        """(layer, mask, rotary, kwargs) for each layer of a stage, so the layer loop only calls."""
        parts, layer_sink, reads = self.parts, flow.layer_sink, flow.kv_reads
        calls = []
        for layer in range(start, end):
            kwargs = {parts.cache_kwarg: state}
            if layer == score_layer:
                kwargs[SCORES_KWARG] = flow.sink
            elif layer_sink is not None and layer in layer_sink.layers:
                kwargs[SCORES_KWARG] = layer_sink
            # a lone newest token reading the method's own positions needs no mask
            own = reads is not None and reads.reads(layer)
            mask = None if own else masks[parts.sliding_windows[layer]]
            calls.append((parts.layers[layer], mask, flow.pos_emb[parts.layer_types[layer]], kwargs))
        return calls

    # --- accounting -----------------------------------------------------------------------------
    def _layer_cost(self, n_rows: int, n_pairs: float) -> float:
        p = self.parts
        return 2.0 * n_rows * p.params_per_layer + 4.0 * n_pairs * p.num_heads * p.head_dim

    def full_prefill_flops(self, n_tokens: int) -> float:
        return self.parts.num_layers * self._layer_cost(n_tokens, n_tokens * (n_tokens + 1) / 2)

    def _account(self, state: TokenState, flow: StepFlow, start: int, end: int, score_layer: int) -> None:
        """FLOPs and rows of one stage, from host-side sizes only."""
        n_rows, n_active, reads = flow.batch.numel(), flow.active.numel(), flow.kv_reads
        self_attending = n_rows == n_active
        pairs = n_rows * (n_rows + 1) / 2 if self_attending else n_rows * n_active
        own = [] if reads is None else [layer for layer in range(start, end) if reads.reads(layer)]
        flops = (end - start - len(own)) * self._layer_cost(n_rows, pairs)
        flops += sum(self._layer_cost(n_rows, n_rows * reads.keys_read(layer)) for layer in own)
        # the importance scores computed beside attention are work too
        n_keys = (
            flow.context_len if flow.masked_read is not None else (n_rows if self_attending else n_active)
        )
        if score_layer >= 0:
            flops += score_flops(1, n_keys, self.parts)
        if flow.layer_sink is not None:
            for layer in range(start, end):
                if layer in flow.layer_sink.layers:
                    keys = reads.keys_read(layer) if layer in own else n_keys
                    flops += flow.layer_sink.flops(n_rows, keys, self.parts)
        flow.flops += flops
        flow.rows_per_layer[start:end] = [n_rows] * (end - start)
