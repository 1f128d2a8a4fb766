"""The engine against the slow reference (lazybench.reference): same tokens, logits, kept, revived and
parked sets, and importance scores, under pruning with revival, on several model families."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, Schedule, generate
from lazybench.methods.adaptive import AdaptivePolicy
from lazybench.methods.lazyllm import LazyLLMPolicy
from lazybench.reference import ReferenceModelError, reference_generate

NUM_LAYERS = 8
LOGIT_TOL = 1e-4  # fp32, as in the exactness tests
SCORE_TOL = 1e-6  # importance scores are probabilities ~1/N; the two implementations differ by ~1e-8

# Llama (SmolLM2's family), Qwen2 (GQA with qkv bias), Gemma 3 (sliding-window layers mixed with
# full ones, a rotary base per layer type, q/k norms, sandwich norms); the window is shorter than
# the prompts so it really masks.
MODELS = {
    "llama": tiny_model("llama", num_layers=NUM_LAYERS),
    "qwen2": tiny_model("qwen2", num_layers=NUM_LAYERS),
    "gemma3": tiny_model("gemma3", num_layers=NUM_LAYERS, sliding_window=8),
}
# for the fixed-case tests: Mistral windows every layer; Gemma 2 softcaps (eager attention only)
MORE_MODELS = {
    "mistral": lambda: tiny_model("mistral", num_layers=NUM_LAYERS, sliding_window=8),
    "gemma2": lambda: tiny_model("gemma2", num_layers=NUM_LAYERS, sliding_window=8, attn="eager"),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: on a busy 2-core machine, handing each small op to a second thread cost ~10x
    the arithmetic (measured: 1.3 s against 0.1 s for one generation)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


class Recording:
    """A policy mixin that also remembers the importance scores the engine selected with."""

    def select(self, sel):
        self.scores[(sel.step, sel.stage)] = dict(zip(sel.candidates.tolist(), sel.scores.tolist()))
        return super().select(sel)


class RecordingLazyLLM(Recording, LazyLLMPolicy):
    def __init__(self, schedule: Schedule) -> None:
        super().__init__(schedule)
        self.scores: dict[tuple[int, int], dict[int, float]] = {}


class RecordingAdaptive(Recording, AdaptivePolicy):
    def __init__(self, schedule: Schedule, keep_mass: float, floor: float, ceiling: float) -> None:
        super().__init__(schedule, keep_mass, floor, ceiling)
        self.scores: dict[tuple[int, int], dict[int, float]] = {}


def prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(3, 256, (length,), generator=torch.Generator().manual_seed(seed))


def compare(model, schedule: Schedule, ids: torch.Tensor, new_tokens: int, mass: dict | None = None):
    """Run both; fail with the exact step/stage/positions of the first disagreement. A disagreement
    that only a near-tie explains (two scores, two logits, or a running attention mass and the
    adaptive cut, closer than the implementations' float difference) is rejected as undecidable,
    never passed. `mass` ({keep_mass, floor, ceiling}): the adaptive kept set on both sides."""
    policy = RecordingLazyLLM(schedule) if mass is None else RecordingAdaptive(schedule, **mass)
    engine = generate(LazyEngine(model, policy), ids, new_tokens, keep_logits=True, trace=True)
    ref = reference_generate(model, ids, schedule, new_tokens, **(mass or {}))
    traces = {(t.step, t.stage): t for t in engine.trace}
    assert len(traces) == sum(len(stages) for stages in ref.steps)
    for step, stages in enumerate(ref.steps):
        for rec in stages:
            where = f"step {step}, stage {rec.stage} (from layer {rec.first_layer})"
            ours = traces[(step, rec.stage)]
            if rec.scores is not None:
                theirs = policy.scores[(step, rec.stage)]
                assert sorted(theirs) == sorted(rec.scores), f"{where}: scored different candidates"
                diff = max(abs(theirs[p] - rec.scores[p]) for p in rec.scores)
                assert diff <= SCORE_TOL, f"{where}: importance differs by {diff:.2e}"
                if ours.active != rec.kept and rec.margin <= 2 * diff:
                    reject()  # the cut fell between two scores the float error cannot order
                if ours.active != rec.kept and rec.mass_margin <= len(rec.scores) * diff + 1e-12:
                    reject()  # the running mass met p x total closer than the summed float error
            assert ours.active == rec.kept, (
                f"{where}: kept only by the engine {sorted(set(ours.active) - set(rec.kept))}, "
                f"only by the reference {sorted(set(rec.kept) - set(ours.active))} (margin {rec.margin:.2e})"
            )
            assert ours.revived == rec.revived, (
                f"{where}: revived engine {ours.revived} reference {rec.revived}"
            )
            assert ours.pruned_to_aux == rec.parked, (
                f"{where}: parked engine {ours.pruned_to_aux} ref {rec.parked}"
            )
            assert ours.computed == rec.computed, (
                f"{where}: computed engine {ours.computed} ref {rec.computed}"
            )
        ours, theirs = engine.step_logits[step], ref.logits[step]
        diff = (ours - theirs).abs().max().item()
        assert diff <= LOGIT_TOL, f"step {step}: max |logit diff| {diff:.2e}"
        if engine.tokens[step] != ref.tokens[step]:
            top2 = theirs.topk(2).values
            if (top2[0] - top2[1]).item() <= 2 * diff:
                reject()  # greedy argmax between two logits within float error
            raise AssertionError(
                f"step {step}: token engine {engine.tokens[step]} reference {ref.tokens[step]}"
            )
    assert all(max(count.values(), default=0) <= 1 for count in ref.compute_count)
    return engine, ref


@st.composite
def schedules(draw) -> Schedule:
    """1-4 boundaries at random layers, by layer index or by relative depth (landing on the same
    layers through the floor), with non-increasing kept fractions."""
    layers = sorted(draw(st.sets(st.integers(1, NUM_LAYERS - 1), min_size=1, max_size=4)))
    keeps = sorted((draw(st.floats(0.05, 1.0, allow_nan=False)) for _ in layers), reverse=True)
    if draw(st.booleans()):
        offset = draw(st.sampled_from([0.0, 0.5]))
        return Schedule(tuple((layer + offset) / NUM_LAYERS for layer in layers), tuple(keeps), unit="depth")
    return Schedule(tuple(layers), tuple(keeps), unit="layer")


@given(
    family=st.sampled_from(sorted(MODELS)),
    schedule=schedules(),
    prompt_len=st.integers(20, 60),
    new_tokens=st.integers(4, 8),
    seed=st.integers(0, 10_000),
)
def test_engine_matches_reference(
    family: str, schedule: Schedule, prompt_len: int, new_tokens: int, seed: int
):
    engine, ref = compare(MODELS[family], schedule, prompt(prompt_len, seed), new_tokens)
    event(f"{family}: {'revived' if ref.revived else 'no revival'}")
    assert engine.pruned == any(len(rec.kept) < prompt_len for rec in ref.steps[0])


@pytest.mark.parametrize("family", [*sorted(MODELS), *sorted(MORE_MODELS)])
def test_pruning_with_revival_matches(family: str) -> None:
    """A fixed case per family that certainly prunes and revives (the paper's default schedule)."""
    model = MODELS[family] if family in MODELS else MORE_MODELS[family]()
    engine, ref = compare(model, Schedule(), prompt(40, 11), 6)
    assert engine.pruned
    assert ref.revived, "nothing was revived: the dynamic part of LazyLLM was not exercised"
    assert sum(len(t.revived) for t in engine.trace) == len(ref.revived)


@pytest.mark.parametrize("family", [*sorted(MODELS), *sorted(MORE_MODELS)])
def test_keep_all_equals_plain_model(family: str) -> None:
    """keep=1.0 everywhere: the reference (and the engine) are the plain model, step by step."""
    model = MODELS[family] if family in MODELS else MORE_MODELS[family]()
    ids = prompt(30, 3)
    schedule = Schedule(boundaries=(0.3, 0.6, 0.9), keep=(1.0, 1.0, 1.0))
    ref = reference_generate(model, ids, schedule, 5)
    full = torch.cat([ids, torch.tensor(ref.tokens[:-1])])
    with torch.no_grad():
        plain = model(full[None]).logits[0, ids.numel() - 1 :].float()
    assert ref.tokens == plain.argmax(-1).tolist()
    for step, logits in enumerate(ref.logits):
        assert (logits - plain[step]).abs().max().item() <= LOGIT_TOL, f"step {step}"
    assert not ref.revived and all(not rec.parked for stages in ref.steps for rec in stages)
    engine, _ = compare(model, schedule, ids, 5)
    assert not engine.pruned


# the adaptive rule also on a model with peaked attention (a larger init scale), where the mass
# cut lands far from p x the active count and varies from prompt to prompt
PEAKED = {**MODELS, "llama_peaked": tiny_model("llama", num_layers=NUM_LAYERS, initializer_range=0.1)}


@settings(max_examples=20)
@given(
    family=st.sampled_from(sorted(PEAKED)),
    layers=st.sets(st.integers(1, NUM_LAYERS - 1), min_size=1, max_size=3),
    keep_mass=st.sampled_from([0.5, 0.7, 0.8, 0.9, 0.95]),
    bounds=st.sampled_from([(0.05, 0.9), (0.2, 0.6), (0.05, 1.0)]),
    prompt_len=st.integers(20, 50),
    seed=st.integers(0, 10_000),
)
def test_adaptive_kept_set_matches_reference(family, layers, keep_mass, bounds, prompt_len, seed):
    """The adaptive kept set (lazybench.methods.adaptive): engine and reference agree on every kept
    count, set, revival, token and logit, under pruning with revival."""
    schedule = Schedule(tuple(sorted(layers)), (bounds[1],) * len(layers), unit="layer")
    mass = {"keep_mass": keep_mass, "floor": bounds[0], "ceiling": bounds[1]}
    engine, ref = compare(PEAKED[family], schedule, prompt(prompt_len, seed), 5, mass)
    event(f"{family}: {'revived' if ref.revived else 'no revival'}")
    assert engine.pruned == any(len(rec.kept) < prompt_len for rec in ref.steps[0])


@pytest.mark.parametrize("family", sorted(PEAKED))
@pytest.mark.parametrize("keep_mass", [0.6, 0.9])
def test_adaptive_prunes_and_revives_like_the_reference(family: str, keep_mass: float) -> None:
    """A fixed case per family and mass that certainly prunes and revives."""
    mass = {"keep_mass": keep_mass, "floor": 0.05, "ceiling": 0.9}
    engine, ref = compare(
        PEAKED[family], Schedule((2, 4, 6), (0.9,) * 3, unit="layer"), prompt(40, 5), 6, mass
    )
    assert engine.pruned and ref.revived
    assert sum(len(t.revived) for t in engine.trace) == len(ref.revived)


@pytest.mark.slow
def test_smollm2_matches_reference(smollm2) -> None:
    """The real offline model, whose trained attention is far from uniform: an aggressive schedule."""
    model, tokenizer = smollm2
    text = "Rivers: Danube, Rhine, Volga, Loire, Elbe, Oder. Which is the longest, and where does it end?"
    messages = [{"role": "user", "content": text}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    engine, ref = compare(model, Schedule((0.2, 0.5, 0.8), (0.5, 0.25, 0.1)), torch.tensor(ids), 6)
    assert engine.pruned and ref.revived


def test_margin_reports_the_closest_call() -> None:
    ref = reference_generate(MODELS["llama"], prompt(30, 1), Schedule(), 3)
    cuts = [rec for stages in ref.steps for rec in stages if rec.stage > 0]
    assert all(rec.scores is not None and rec.margin > 0 for rec in cuts)
    assert ref.min_margin == min(rec.margin for rec in cuts) and math.isfinite(ref.min_margin)


def test_unsupported_model_is_one_clear_line() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ReferenceModelError, match="gpt2"):
        reference_generate(model, [1, 2, 3], Schedule(), 1)
    with pytest.raises(ValueError, match="empty"):
        reference_generate(MODELS["llama"], [], Schedule(), 1)
