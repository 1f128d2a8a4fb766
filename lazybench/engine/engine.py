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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from lazybench.engine.adapter import ModelParts
from lazybench.engine.attention import SCORES_KWARG, ScoreSink, scoring_attention
from lazybench.engine.policy import LazyLLMPolicy, Selection, TokenPolicy, score_flops
from lazybench.engine.state import StageTrace, TokenState


class EngineInvariantError(RuntimeError):
    """A LazyLLM invariant was violated (a bug, never a user error)."""


@dataclass
class StepCost:
    """Work done by one step, for the paper's accounting and FLOP-ideal speedups."""

    rows_per_layer: list[int]
    flops: float


class LazyEngine:
    # Decode steps over a pruned cache read the whole prefix through a boolean mask instead of
    # gathering the active KV per layer (equal results; faster on CPU SDPA).
    masked_decode_reads: bool = True
    # Only the lone new token: with revived rows too (q > 1), the masked read measured slower than
    # the gather on CPU (2k prompt: 57-110 ms vs 52-93 ms per step).
    masked_read_max_rows: int = 1

    def __init__(
        self, model: torch.nn.Module, policy: TokenPolicy | None = None, num_layers: int | None = None
    ) -> None:
        """`num_layers` runs only the model's first layers (the logits then come from that depth):
        GemFilter's filter pass, which needs the early layers' attention and nothing after them."""
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
            )
        self.policy = policy if policy is not None else LazyLLMPolicy()
        self.plan = self.policy.schedule.resolve(self.parts.num_layers)
        self._windows_by_stage = [
            sorted({w for w in self.parts.sliding_windows[s:e]}, key=lambda w: (w is not None, w or 0))
            for s, e, _ in self.plan.stage_layers()
        ]

    def attention_hook(self):
        """Context manager routing attention through the scoring wrapper (see attention.py)."""
        return scoring_attention(self.model, self.parts.attn_impl)

    def new_state(self, capacity: int, trace: bool = False) -> TokenState:
        return TokenState(
            num_layers=self.parts.num_layers,
            capacity=capacity,
            hidden_size=self.parts.hidden_size,
            boundary_layers=self.plan.starts[1:],
            device=self.parts.device,
            dtype=self.parts.dtype,
            trace=[] if trace else None,
        )

    # ------------------------------------------------------------------------------------------
    def _masks(
        self,
        stage: int,
        q_pos: torch.Tensor,
        k_pos: torch.Tensor,
        self_attending: bool,
        member: torch.Tensor | None = None,
    ) -> dict[int | None, torch.Tensor | None]:
        """Attention masks by sliding window, built from positions (never from row order).

        None where SDPA's own causal flag (or no mask, for a single newest query) is exact: an
        explicit mask halves CPU prefill attention (see shared/notes/transformers5_notes.md).
        `member` (bool over k_pos) marks the active keys when the cache is read whole and masked.
        """
        eager = self.parts.attn_impl == "eager"
        masks: dict[int | None, torch.Tensor | None] = {}
        single_newest = q_pos.numel() == 1
        for window in self._windows_by_stage[stage]:
            span = int(q_pos[-1] - k_pos[0])
            needs_window = window is not None and span >= window
            if not eager and not needs_window and member is None and (self_attending or single_newest):
                masks[window] = None
                continue
            allowed = k_pos[None, :] <= q_pos[:, None]
            if member is not None:
                allowed &= member[None, :]
            if needs_window:
                allowed &= k_pos[None, :] > q_pos[:, None] - window
            allowed = allowed[None, None]
            if eager:
                allowed = torch.zeros(
                    allowed.shape, dtype=self.parts.dtype, device=allowed.device
                ).masked_fill(~allowed, torch.finfo(self.parts.dtype).min)
            masks[window] = allowed
        return masks

    def _layer_cost(self, n_rows: int, n_pairs: float) -> float:
        p = self.parts
        return 2.0 * n_rows * p.params_per_layer + 4.0 * n_pairs * p.num_heads * p.head_dim

    def full_prefill_flops(self, n_tokens: int) -> float:
        return self.parts.num_layers * self._layer_cost(n_tokens, n_tokens * (n_tokens + 1) / 2)

    def _boundary(self, state: TokenState, sel: Selection, batch, hidden, prefix: bool):
        """Cross one stage boundary: keep the policy's choice of candidates, park pruned rows in the
        Aux Cache, and bring back kept tokens that lack KV here from the Aux Cache (revival).

        Returns (active, batch, hidden, prefix, revived, pruned); batch/hidden stay in position order.
        """
        start, active = sel.layer, sel.candidates
        revived = pruned = batch[:0]
        if sel.scores is not None and sel.scores.numel() != active.numel():
            raise EngineInvariantError(f"{sel.scores.numel()} scores for {active.numel()} candidates")
        keep_mask = self.policy.select(sel)
        if keep_mask is not None:
            rows = keep_mask if batch is active else torch.isin(batch, active[keep_mask])
            active = active[keep_mask]
            prefix = False
            if not bool(rows.all()):
                pruned = batch[~rows]
                state.aux[start].index_copy_(0, pruned, hidden[0, ~rows])
                state.has_aux[start][pruned] = True
                hidden = hidden[:, rows]
            batch = active if rows is keep_mask else batch[rows]
        missing = active[~state.has_kv[start, active]]
        if missing.numel() > batch.numel():
            revived = missing[~torch.isin(missing, batch)]
            if not bool(state.has_aux[start][revived].all()):
                raise EngineInvariantError(f"token without KV or Aux Cache entry at layer {start}")
            aux = state.aux[start]
            aux.index_copy_(0, batch, hidden[0])  # merge in position order via the buffer
            hidden = aux.index_select(0, missing)[None]
            state.has_aux[start][revived] = False
            batch = missing
        return active, batch, hidden, prefix, revived, pruned

    def _stage_calls(
        self, state, start, end, masks, pos_emb, score_layer, sink, layer_sink, head_rows
    ) -> list:
        """(layer, mask, rotary, kwargs) for each layer of a stage, so the layer loop only calls."""
        parts = self.parts
        calls = []
        for layer in range(start, end):
            kwargs = {parts.cache_kwarg: state}
            if layer == score_layer:
                kwargs[SCORES_KWARG] = sink
            elif layer_sink is not None and layer in layer_sink.layers:
                kwargs[SCORES_KWARG] = layer_sink
            # a lone newest token reading its heads' own kept positions needs no mask
            per_head = head_rows is not None and head_rows[layer] >= 0
            mask = None if per_head else masks[parts.sliding_windows[layer]]
            calls.append((parts.layers[layer], mask, pos_emb[parts.layer_types[layer]], kwargs))
        return calls

    # ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, state: TokenState, token_ids: torch.Tensor) -> tuple[torch.Tensor, StepCost]:
        """Append `token_ids` to the context, run one step, return the next-token logits (fp32)."""
        parts, plan, policy = self.parts, self.plan, self.policy
        device = parts.device
        n_new = token_ids.numel()
        first_new = state.length
        context_len = first_new + n_new
        if context_len > state.capacity:
            raise ValueError(f"context of {context_len} tokens exceeds the state's capacity {state.capacity}")
        state.length = context_len
        step_idx = state.steps
        state.steps += 1

        hidden = parts.embed(token_ids.view(1, -1).to(device))
        batch = state.arange(context_len)[first_new:]
        active = policy.initial_active(step_idx, context_len, device)
        prefix = active is None
        if prefix:
            active = state.arange(context_len)
        if batch.numel() == active.numel():
            batch = active  # prefill: the rows being computed are exactly the candidates
        sink = ScoreSink()
        masked_read = None  # the active set of the stage whose cache was read whole and masked
        # KV-selection policies: scores at chosen layers of this step, and per-head reads in decoding
        layer_sink = policy.layer_scores(step_idx, state, parts)
        head_rows = state.head_rows if state.head_keep is not None else None
        if head_rows is not None:
            if n_new != 1:
                raise EngineInvariantError(f"per-head KV selection reads one new token per step, got {n_new}")
            state.append_head_keep(batch)
        rows_per_layer = [0] * parts.num_layers
        flops = 0.0
        empty = batch[:0]
        embedded_rows = None  # the rows whose rotary embeddings pos_emb holds

        for s, (start, end, keep) in enumerate(plan.stage_layers()):
            revived = pruned = empty
            if s > 0:
                scores = sink.pop(start - 1, None)
                if scores is not None and masked_read is not None:
                    scores = scores[masked_read]  # the softmax already excluded the inactive keys
                boundary = self._boundary(
                    state, Selection(step_idx, s, start, keep, context_len, active, scores, state.has_kv),
                    batch, hidden, prefix,
                )  # fmt: skip
                active, batch, hidden, prefix, revived, pruned = boundary

            self_attending = batch.numel() == active.numel()
            read = "self" if self_attending else ("prefix" if prefix else "index")
            # A decode step over a pruned cache: reading the whole prefix through a boolean mask is
            # cheaper than gathering the active KV at every layer (measured on CPU, SDPA).
            member = masked_read = sink.key_mask = None
            if (
                self.masked_decode_reads
                and read == "index"
                and batch.numel() <= self.masked_read_max_rows
                and parts.attn_impl == "sdpa"
                and head_rows is None
            ):
                read, masked_read = "prefix", active
                member = torch.zeros(context_len, dtype=torch.bool, device=device)
                member[active] = True
                sink.key_mask = member
            contiguous = int(batch[-1] - batch[0]) + 1 == batch.numel()
            state.plan_stage(batch, contiguous, read, active)
            state.masked_keys = None if member is None else active.numel()
            keys = state.arange(context_len) if member is not None else active
            masks = self._masks(s, batch, keys, self_attending, member)
            if batch is not embedded_rows:  # a stage that pruned or revived nothing keeps its rows
                pos_emb, position_ids, embedded_rows = (
                    parts.position_embeddings(hidden, batch),
                    batch[None],
                    batch,
                )
            wants_scores = s + 1 < plan.num_stages and policy.needs_scores(step_idx, s + 1)
            score_layer = end - 1 if wants_scores else -1
            calls = self._stage_calls(
                state, start, end, masks, pos_emb, score_layer, sink, layer_sink, head_rows
            )
            for layer, mask, emb, extra in calls:
                hidden = layer(
                    hidden, attention_mask=mask, position_ids=position_ids, position_embeddings=emb, **extra
                )  # fmt: skip
            state.has_kv[start:end, batch] = True
            state.compute_count[start:end, batch] += 1

            n_rows = batch.numel()
            pairs = n_rows * (n_rows + 1) / 2 if self_attending else n_rows * active.numel()
            n_head = 0 if head_rows is None else sum(head_rows[layer] >= 0 for layer in range(start, end))
            flops += (end - start - n_head) * self._layer_cost(n_rows, pairs)
            flops += n_head * self._layer_cost(n_rows, n_rows * state.head_len)
            # the importance scores computed beside attention are work too
            n_keys = context_len if member is not None else (n_rows if self_attending else active.numel())
            if score_layer >= 0:
                flops += score_flops(1, n_keys, parts)
            if layer_sink is not None:
                for layer in range(start, end):
                    if layer in layer_sink.layers:
                        per_head = head_rows is not None and head_rows[layer] >= 0
                        flops += layer_sink.flops(n_rows, state.head_len if per_head else n_keys, parts)
            for layer in range(start, end):
                rows_per_layer[layer] = n_rows
            if state.trace is not None:
                state.trace.append(
                    StageTrace(step_idx, s, start, end, active.tolist(), batch.tolist(),
                               revived.tolist(), pruned.tolist())
                )  # fmt: skip

        logits = parts.logits(hidden[:, -1:])[0, 0]
        policy.end_step(step_idx, state, parts, layer_sink)
        return logits, StepCost(rows_per_layer=rows_per_layer, flops=flops)
