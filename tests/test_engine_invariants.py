"""LazyLLM's invariants, checked directly on the engine's state over random schedules and prompts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, Schedule, TokenPolicy, generate
from lazybench.engine.attention import last_query_scores
from lazybench.engine.masks import window_masks
from lazybench.methods.lazyllm import LazyLLMPolicy
from lazybench.methods.static import StaticPruningPolicy

NUM_LAYERS = 8
MODEL = tiny_model("llama", num_layers=NUM_LAYERS)
# sliding-window layers mixed with full ones: masks and masked reads must hold the invariants too
SLIDING = tiny_model("gemma3", num_layers=NUM_LAYERS, sliding_window=8)


@pytest.fixture(autouse=True, scope="module")
def _check_invariants():
    """The engine's device-reading invariant checks (off by default: they stall a GPU) run here."""
    saved = LazyEngine.check_invariants
    LazyEngine.check_invariants = True
    yield
    LazyEngine.check_invariants = saved


@st.composite
def schedules(draw) -> Schedule:
    layers = sorted(draw(st.sets(st.integers(1, NUM_LAYERS - 1), min_size=1, max_size=4)))
    keeps = sorted(
        (draw(st.floats(0.05, 1.0, allow_nan=False)) for _ in layers),
        reverse=True,
    )
    return Schedule(boundaries=tuple(layers), keep=tuple(keeps), unit="layer")


def run(
    schedule: Schedule, prompt_len: int, new_tokens: int, seed: int, policy_cls=LazyLLMPolicy, model=MODEL
):
    ids = torch.randint(3, 256, (prompt_len,), generator=torch.Generator().manual_seed(seed))
    engine = LazyEngine(model, policy_cls(schedule))
    captured = {}
    original_new_state = engine.new_state

    def keep_state(*args, **kwargs):
        captured["state"] = original_new_state(*args, **kwargs)
        return captured["state"]

    engine.new_state = keep_state
    result = generate(engine, ids, new_tokens, trace=True)
    return engine, captured["state"], result


@pytest.mark.parametrize("model", [MODEL, SLIDING], ids=["llama", "gemma3-sliding"])
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=schedules(), prompt_len=st.integers(2, 48), new_tokens=st.integers(1, 8), seed=st.integers(0, 99)
)
def test_lazyllm_invariants(model, schedule: Schedule, prompt_len: int, new_tokens: int, seed: int) -> None:
    engine, state, result = run(schedule, prompt_len, new_tokens, seed, model=model)
    length = state.length
    # each token is computed at most once in every layer over the whole generation
    assert int(state.compute_count.max()) <= 1
    # a token has KV at a layer iff it was computed there
    assert torch.equal(state.has_kv, state.compute_count > 0)
    # every token has KV at layer 0 (stage 0 keeps everything), and KV never appears out of nowhere:
    # KV at layer l+1 implies KV at layer l
    assert bool(state.has_kv[0, :length].all())
    assert bool((state.has_kv[1:] <= state.has_kv[:-1]).all())
    # coverage: KV at the layer before a boundary is carried on by KV after it or by the Aux Cache
    for b in engine.plan.starts[1:]:
        covered = state.has_kv[b, :length] | state.has_aux[b][:length]
        assert bool((state.has_kv[b - 1, :length] <= covered).all()), f"boundary {b}"
        # and the Aux Cache holds only tokens that need it
        assert not bool((state.has_aux[b][:length] & state.has_kv[b, :length]).any())
    by_step: dict[int, list] = {}
    for t in result.trace:
        by_step.setdefault(t.step, []).append(t)
    for stages in by_step.values():
        for prev, cur in zip(stages, stages[1:]):
            # kept sets are nested within a step
            assert set(cur.active) <= set(prev.active)
            # revived tokens resume from the Aux Cache at this boundary: they had KV one layer up
            # and are not recomputed from layer 0 (their layer-0 computation count stays 1)
            for pos in cur.revived:
                assert state.compute_count[0, pos] == 1
                assert state.has_kv[cur.first_layer - 1, pos]
        for t in stages:
            assert t.active == sorted(t.active)  # positions are never re-indexed or reordered
            assert t.active[-1] == stages[0].active[-1]  # the newest token is always kept
            assert set(t.computed) <= set(t.active)
    # decode steps compute only the new token plus revived tokens
    assert result.computed_per_layer == state.compute_count[:, : result.prompt_tokens].sum(1).tolist()
    assert 0 < result.pct_prompt_computed <= 100.0


def test_pruning_really_happens_and_saves_compute() -> None:
    _, state, result = run(Schedule(), prompt_len=64, new_tokens=6, seed=0)
    assert result.pruned
    assert result.pct_prompt_computed < 100.0
    assert result.prefill_flop_fraction < 0.75
    # the kept counts follow the default schedule (100/70/40/10% of 64 tokens over 8 layers)
    assert result.prefill_rows_per_layer == [64, 64, 45, 45, 26, 26, 26, 7]


def test_revival_happens_and_is_not_a_recomputation() -> None:
    revived = 0
    for seed in range(6):
        _, state, result = run(Schedule(), prompt_len=48, new_tokens=8, seed=seed)
        revived += sum(len(t.revived) for t in result.trace)
        assert int(state.compute_count.max()) <= 1
    assert revived > 0, "no token was ever revived: the dynamic part of LazyLLM was not exercised"


def test_static_pruning_never_revives() -> None:
    _, state, result = run(Schedule(), prompt_len=48, new_tokens=8, seed=1, policy_cls=StaticPruningPolicy)
    assert result.pruned
    assert all(not t.revived for t in result.trace)
    prefill = [t for t in result.trace if t.step == 0]
    later = [t for t in result.trace if t.step > 0]
    for t in later:  # later steps use exactly the prefill's kept prompt tokens (plus generated ones)
        ref = next(p for p in prefill if p.stage == t.stage)
        assert [p for p in t.active if p < result.prompt_tokens] == [p for p in ref.active]


def test_rope_at_original_positions() -> None:
    """Layer-0 keys depend only on token and position: after pruned generation, every cached layer-0
    key must equal the plain model's key at that position."""
    ids = torch.randint(3, 256, (40,), generator=torch.Generator().manual_seed(5))
    engine, state, result = run(Schedule(), prompt_len=40, new_tokens=5, seed=5)
    full = torch.cat([ids, torch.tensor(result.tokens[:-1])])
    with torch.no_grad():
        cache = MODEL(full[None], use_cache=True).past_key_values
    ref_keys = cache.layers[0].keys
    ours = state.keys[0][:, :, : full.numel()]
    assert torch.allclose(ours, ref_keys, atol=1e-5)


def test_last_query_scores_equal_eager_attention_head_mean() -> None:
    model = tiny_model("llama", num_layers=4, attn="eager")
    ids = torch.randint(3, 256, (30,), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        attentions = model(ids[None], output_attentions=True).attentions
    seen = {}

    class Recording(LazyLLMPolicy):
        def select(self, sel):
            seen[sel.layer - 1] = sel.scores.clone()
            return None

    generate(
        LazyEngine(model, Recording(Schedule(boundaries=(1, 2, 3), keep=(1.0, 1.0, 1.0), unit="layer"))),
        ids,
        1,
    )
    assert sorted(seen) == [0, 1, 2]
    for layer, scores in seen.items():
        expected = attentions[layer][0, :, -1, :].float().mean(0)
        assert torch.allclose(scores, expected, atol=1e-6)
        assert scores.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_gqa_scores_group_query_heads_with_their_kv_head() -> None:
    torch.manual_seed(0)
    q = torch.randn(1, 6, 3, 8)
    k = torch.randn(1, 2, 5, 8)
    scores = last_query_scores(None, q, k, 8**-0.5, None)
    k_rep = k.repeat_interleave(3, dim=1)
    probs = torch.softmax((q[:, :, -1:] @ k_rep.transpose(-1, -2)) * 8**-0.5, dim=-1)
    assert torch.allclose(scores, probs[0, :, 0].mean(0), atol=1e-6)


def test_decode_masks_are_causal_by_position() -> None:
    engine = LazyEngine(MODEL, LazyLLMPolicy())
    q = torch.tensor([3, 9, 20])
    k = torch.tensor([0, 2, 3, 5, 9, 14, 20])
    windows = [None]
    masks = window_masks(engine.parts, windows, q, k, self_attending=False)
    mask = masks[None][0, 0]
    assert mask.tolist() == [[kk <= qq for kk in k.tolist()] for qq in q.tolist()]
    # a lone newest token attends to everything: no mask, so SDPA takes its fast path
    assert window_masks(engine.parts, windows, torch.tensor([20]), k, self_attending=False)[None] is None
    assert window_masks(engine.parts, windows, k, k, self_attending=True)[None] is None


def test_full_policy_reports_no_pruning() -> None:
    _, _, result = run(Schedule.full(), prompt_len=20, new_tokens=3, seed=0, policy_cls=TokenPolicy)
    assert not result.pruned and result.pct_prompt_computed == 100.0 and result.prefill_flop_fraction == 1.0


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_masked_decode_reads_equal_gathered_reads(family: str) -> None:
    """Single-token decode steps read the pruned cache through a mask; gathering it must give the
    same logits, tokens, revivals and importance scores (gemma3: sliding-window layers too)."""
    model = tiny_model(family, num_layers=8, sliding_window=8) if family == "gemma3" else MODEL
    ids = torch.randint(3, 256, (40,), generator=torch.Generator().manual_seed(7))
    runs = {}
    for read in ("masked", "gather"):
        engine = LazyEngine(model, LazyLLMPolicy(), decode_read=read)
        runs[read] = generate(engine, ids, 8, keep_logits=True, trace=True)
    a, b = runs["masked"], runs["gather"]
    assert a.tokens == b.tokens
    assert [t.active for t in a.trace] == [t.active for t in b.trace]
    assert sum(len(t.revived) for t in a.trace) > 0
    for x, y in zip(a.step_logits, b.step_logits):
        assert (x - y).abs().max().item() <= 1e-4


def test_cache_slots_never_written_are_zero() -> None:
    """Masked decode reads weight never-written KV slots by exactly zero; the slots must hold zeros
    (not allocator garbage, where 0 * NaN would poison the step: a CI flake before the fix)."""
    _, state, result = run(Schedule(boundaries=(1, 5, 7), keep=(0.77, 0.61, 0.07), unit="layer"), 30, 8, 43)
    assert result.pruned
    length = state.length
    assert (~state.has_kv[:, :length]).any()
    for layer, (keys, values) in enumerate(zip(state.keys, state.values)):
        unwritten = ~state.has_kv[layer, :length]
        assert keys[:, :, :length][..., unwritten, :].eq(0).all()
        assert values[:, :, :length][..., unwritten, :].eq(0).all()
        assert torch.isfinite(keys).all() and torch.isfinite(values).all()
