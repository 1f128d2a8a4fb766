"""LazyLLM written out slowly and plainly: an oracle for tests and for anyone checking the engine.

`reference_generate` runs greedy generation with LazyLLM (Fu et al. 2024, arXiv 2407.14057; see
shared/paper/lazyllm_method.md) as the paper describes it, step by step, stage by stage, layer by
layer, with Python dicts keyed by token position and boolean masks over the whole position space.
It shares no mechanism with `lazybench.engine` (no preallocated position-indexed buffers, no cache
read plans, no attention hooks, no decoder-layer forward calls: layers.py does each layer's
arithmetic from its weights), so agreement between the two is evidence about both. It is O(slow):
every layer restacks its keys from a dict, every selection sorts in Python. Use it on tiny models
and prompts of tens of tokens, never for timing.

One generation step (the prefill, then each decode step), over context positions 0..N-1:

    active = every position                          (stage 0 keeps the whole context)
    rows   = the new tokens' embeddings              (prefill: the whole prompt; decode: one token)
    for each stage s, covering layers start..end-1:
        if s > 0 (a pruning boundary at layer `start`):
            score the active positions by the newest token's attention at layer start-1
            keep the newest token and the best others, n_keep in all
            rows pruned here were computed at start-1 in this step and have no KV at `start`:
                park their hidden state (the input of layer `start`) in Aux[start]
            kept positions without KV at `start` that are not rows: revive them from Aux[start]
        for each layer l of the stage:
            rows must be exactly the active positions without KV at layer l
            compute the rows at l: their keys/values join the KV cache of layer l; each row attends
                to the KV of every active position at or before its own (within the window on
                sliding-window layers)
    logits of the newest token's final hidden state -> greedy next token

Hence a token is computed at most once in every layer over the whole generation (`compute_count`
records it), and a token pruned in one step can come back in a later one ("revival") without being
recomputed below the boundary where it was parked.

Choices the paper leaves open (the engine makes the same ones; docs/design.md "Choices the paper leaves
open"):
- A schedule boundary at relative depth b starts at layer floor(b * num_layers) (with a 1e-9
  tolerance against float error); unit="layer" boundaries are layer indices. Stage 0 keeps all.
- The kept count at a boundary is ceil(keep * N) (1e-9 tolerance), at least 1 and at most the
  tokens still active, where N is the whole current context (prompt plus generated tokens), not the
  stage's input.
- Importance is the newest token's softmax attention row at the layer just before the boundary,
  over the keys active there, averaged over all query heads (grouped-query attention: each query
  head with its own KV head), with the model's logit softcap applied. On sliding-window layers the
  row ignores the window: every active key is scored, even one the window hides from the layer's
  own attention.
- The newest token is always kept. Exact score ties go to the earlier position.
- RoPE is applied at each token's original position; pruning leaves gaps, never re-indexes.
  Masks come from positions: a key is visible to a query iff key_pos <= query_pos (and
  query_pos - key_pos < window on sliding-window layers), so a revived token attends only to
  active tokens at or before its own position, never to newer ones.
- Cached keys/values and Aux Cache hidden states are reused as they were computed, in whatever
  context was active then (LazyLLM is an approximation beyond the pruning itself). A revived token
  leaves the Aux Cache of the boundary it resumes from.

The adaptive kept set (`keep_mass=p`, lazybench.methods.adaptive; not in the paper) changes only
the kept count at a boundary: the active positions' scores (the newest token's own included) from
largest to smallest, summed until the running sum reaches p x their total; that many, clamped to
[ceil(floor x N), ceil(ceiling x N)] (each at least 1) and to the tokens still active, N being the
whole current context as above. The schedule's keep fractions are then unused. The selection of
that many is the one above.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch

from lazybench.reference.layers import (
    ModelSpec,
    attend,
    attention_logits,
    finish,
    logits,
    project,
    read_model,
)


class ReferenceInvariantError(RuntimeError):
    """The reference reached a state LazyLLM rules out (a bug in the reference, never user error)."""


@dataclass
class StageRecord:
    """What one stage of one step did, by token position."""

    stage: int
    first_layer: int
    kept: list[int]  # positions active in this stage
    computed: list[int]  # positions whose rows this stage computed (new tokens, revived tokens)
    revived: list[int]  # resumed from the Aux Cache at first_layer
    parked: list[int]  # computed up to first_layer - 1 in this step, pruned here, parked in the Aux Cache
    margin: float = math.inf  # score of the weakest kept minus the best pruned (inf: no close call)
    scores: dict[int, float] | None = None  # the importance the selection used, by position (stage > 0)
    # keep_mass only: how far the running mass was from changing the (clamped) kept count
    mass_margin: float = math.inf


@dataclass
class ReferenceResult:
    tokens: list[int]
    logits: list[torch.Tensor]  # per step, fp32 [vocab]
    steps: list[list[StageRecord]]  # per step, per stage
    compute_count: list[Counter] = field(repr=False)  # per layer: position -> times computed

    @property
    def revived(self) -> list[int]:
        """Every revival over the whole generation (positions; one entry per revival)."""
        return [p for stages in self.steps for rec in stages for p in rec.revived]

    @property
    def min_margin(self) -> float:
        """The closest call of any selection: how far the scores were from picking differently."""
        return min((rec.margin for stages in self.steps for rec in stages), default=math.inf)


@dataclass
class Stage:
    start: int
    end: int
    keep: float


def resolve_stages(schedule, num_layers: int) -> list[Stage]:
    """Stages from anything with `boundaries`, `keep` and `unit` (e.g. lazybench.engine.Schedule)."""
    boundaries, keeps = list(schedule.boundaries), [float(k) for k in schedule.keep]
    unit = getattr(schedule, "unit", "depth")
    if len(boundaries) != len(keeps):
        raise ValueError(f"{len(boundaries)} boundaries but {len(keeps)} keep fractions")
    starts = [0]
    for b in boundaries:
        layer = math.floor(b * num_layers + 1e-9) if unit == "depth" else int(b)
        if not starts[-1] < layer < num_layers:
            raise ValueError(
                f"boundary {b} ({unit}) gives layer {layer}, not in {starts[-1] + 1}..{num_layers - 1}"
            )
        starts.append(layer)
    ends = [*starts[1:], num_layers]
    return [Stage(s, e, k) for s, e, k in zip(starts, ends, [1.0, *keeps])]


class Memory:
    """What persists across steps: the KV cache and the Aux Cache, as dicts keyed by position."""

    def __init__(self, num_layers: int, boundaries: list[int]) -> None:
        self.kv: list[dict[int, tuple[torch.Tensor, torch.Tensor]]] = [{} for _ in range(num_layers)]
        self.aux: dict[int, dict[int, torch.Tensor]] = {b: {} for b in boundaries}
        self.compute_count: list[Counter] = [Counter() for _ in range(num_layers)]


def positions(mask: torch.Tensor) -> list[int]:
    return [p for p, on in enumerate(mask.tolist()) if on]


def select(scores: list[float], active: torch.Tensor, n_keep: int, newest: int) -> tuple[torch.Tensor, float]:
    """The kept mask over all positions: the newest token plus the n_keep - 1 best-scored others."""
    others = sorted((p for p in positions(active) if p != newest), key=lambda p: (-scores[p], p))
    n_others = n_keep - 1
    kept = torch.zeros_like(active)
    kept[newest] = True
    for p in others[:n_others]:
        kept[p] = True
    margin = math.inf
    if 0 < n_others < len(others):
        margin = scores[others[n_others - 1]] - scores[others[n_others]]
    return kept, margin


@dataclass(frozen=True)
class MassRule:
    """The adaptive kept count (module docstring): mass p, floor and ceiling fractions of the context."""

    keep_mass: float
    floor: float
    ceiling: float

    def count(self, scores: list[float], n_active: int, context_len: int) -> tuple[int, float]:
        """(kept count, margin): the margin is how far the running sum was from the p x total cut
        where a cut one earlier or later would change the clamped count (inf: it would not)."""
        ordered = sorted(scores, reverse=True)
        target = self.keep_mass * sum(ordered)
        running, sums = 0.0, []
        for value in ordered:
            running += value
            sums.append(running)
        raw = next((i + 1 for i, total in enumerate(sums) if total >= target), len(sums))
        low = max(1, math.ceil(self.floor * context_len - 1e-9))
        high = max(1, math.ceil(self.ceiling * context_len - 1e-9))

        def clamp(k: int) -> int:
            return min(n_active, max(low, min(high, k)))

        margin = math.inf
        if clamp(raw - 1) != clamp(raw):  # the cut at raw was reached, by this much
            margin = min(margin, sums[raw - 1] - target)
        if raw >= 2 and clamp(raw + 1) != clamp(raw):  # one fewer fell short, by this much
            margin = min(margin, target - sums[raw - 2])
        return clamp(raw), margin


def compute_layer(
    spec: ModelSpec,
    index: int,
    memory: Memory,
    rows: dict[int, torch.Tensor],
    active: torch.Tensor,
    score: bool,
) -> tuple[dict[int, torch.Tensor], list[float] | None]:
    """Run layer `index` for `rows` (position -> input hidden state); optionally score the active keys."""
    layer, cache = spec.layers[index], memory.kv[index]
    row_pos = sorted(rows)
    lacking = [p for p in positions(active) if p not in cache]
    if row_pos != lacking:
        raise ReferenceInvariantError(f"layer {index}: rows {row_pos} but active tokens without KV {lacking}")
    x = torch.stack([rows[p] for p in row_pos])
    q, k, v = project(spec, layer, x, row_pos)
    for i, p in enumerate(row_pos):
        cache[p] = (k[i], v[i])
        memory.compute_count[index][p] += 1

    # which key positions each row may see, over the whole position space 0..N-1
    n = active.numel()
    key_at = torch.arange(n)[None, :]
    query_at = torch.tensor(row_pos)[:, None]
    visible = active[None, :] & (key_at <= query_at)
    if layer.window is not None:
        visible &= query_at - key_at < layer.window
    key_pos = positions(active)  # every active position has KV at this layer now
    keys = torch.stack([cache[p][0] for p in key_pos])
    values = torch.stack([cache[p][1] for p in key_pos])
    out = finish(layer, x, attend(spec, layer, q, keys, values, visible[:, key_pos]))

    scores = None
    if score:  # the newest token (always the last row) over all active keys, window ignored
        probs = torch.softmax(attention_logits(spec, layer, q[-1:], keys), dim=-1)[:, 0, :].mean(dim=0)
        scores = [math.nan] * n
        for p, value in zip(key_pos, probs.tolist()):
            scores[p] = value
    return {p: out[i] for i, p in enumerate(row_pos)}, scores


def run_step(
    spec: ModelSpec,
    stages: list[Stage],
    memory: Memory,
    context: list[int],
    n_new: int,
    mass: MassRule | None = None,
) -> tuple[torch.Tensor, list[StageRecord]]:
    """One generation step over the whole context; the last n_new tokens are new."""
    n = len(context)
    newest = n - 1
    embedded = spec.model.get_input_embeddings()(torch.tensor(context[n - n_new :], device=spec.model.device))
    rows = {n - n_new + i: embedded[i] for i in range(n_new)}
    active = torch.ones(n, dtype=torch.bool)
    scores: list[float] | None = None
    records = []
    for s, stage in enumerate(stages):
        revived, parked, margin, used, mass_margin = [], [], math.inf, None, math.inf
        if s > 0:
            used = {p: scores[p] for p in positions(active)}
            if mass is None:
                n_keep = min(int(active.sum()), max(1, math.ceil(stage.keep * n - 1e-9)))
            else:
                n_keep, mass_margin = mass.count(list(used.values()), int(active.sum()), n)
            kept, margin = select(scores, active, n_keep, newest)
            aux = memory.aux[stage.start]
            for p in sorted(rows):
                if not kept[p]:
                    aux[p] = rows.pop(p)
                    parked.append(p)
            active = kept
            for p in positions(active):
                if p not in memory.kv[stage.start] and p not in rows:
                    if p not in aux:
                        raise ReferenceInvariantError(
                            f"position {p} has neither KV nor Aux at layer {stage.start}"
                        )
                    rows[p] = aux.pop(p)
                    revived.append(p)
        computed = sorted(rows)
        for index in range(stage.start, stage.end):
            wants = index == stage.end - 1 and s + 1 < len(stages)
            rows, layer_scores = compute_layer(spec, index, memory, rows, active, wants)
            if wants:
                scores = layer_scores
        records.append(
            StageRecord(
                s, stage.start, positions(active), computed, revived, parked, margin, used, mass_margin
            )
        )
    return logits(spec, rows[newest]), records


@torch.no_grad()
def reference_generate(
    model,
    prompt_ids,
    schedule,
    max_new_tokens: int,
    keep_mass: float | None = None,
    floor: float = 0.05,
    ceiling: float = 0.9,
) -> ReferenceResult:
    """Greedy LazyLLM generation of exactly max_new_tokens tokens (no EOS stop), the slow way.

    `schedule` has `boundaries`, `keep` and `unit` (lazybench.engine.Schedule fits; only its fields
    are read). With `keep_mass`, the adaptive kept set (module docstring) with `floor` and `ceiling`
    replaces the schedule's keep fractions. Returns the tokens, each step's next-token logits, and
    each step's per-stage kept, computed, revived and parked positions.
    """
    prompt = [int(t) for t in torch.as_tensor(prompt_ids).reshape(-1).tolist()]
    if not prompt:
        raise ValueError("the prompt is empty")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    mass = None
    if keep_mass is not None:
        if not (0.0 < keep_mass <= 1.0 and 0.0 < floor <= ceiling <= 1.0):
            raise ValueError(
                f"need 0 < keep_mass <= 1 and 0 < floor <= ceiling <= 1, got {keep_mass}, {floor}, {ceiling}"
            )
        mass = MassRule(float(keep_mass), float(floor), float(ceiling))
    spec = read_model(model)
    stages = resolve_stages(schedule, len(spec.layers))
    memory = Memory(len(spec.layers), [st.start for st in stages[1:]])
    context, tokens, step_logits, steps = list(prompt), [], [], []
    n_new = len(prompt)
    for _ in range(max_new_tokens):
        step_out, records = run_step(spec, stages, memory, context, n_new, mass)
        token = int(torch.argmax(step_out))
        tokens.append(token)
        step_logits.append(step_out.cpu())
        steps.append(records)
        context.append(token)
        n_new = 1
    return ReferenceResult(tokens, step_logits, steps, memory.compute_count)
