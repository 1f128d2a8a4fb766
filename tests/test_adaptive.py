"""The adaptive kept set (lazybench.methods.adaptive): how much it keeps follows the prompt, within
its floor and ceiling. Agreement with the independent reference is in tests/test_reference.py."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, Schedule, generate
from lazybench.methods import GenerationRequest, build_method
from lazybench.methods.adaptive import AdaptivePolicy, mass_count

# A larger init scale than the exactness tests' models: their near-uniform attention makes any mass
# rule keep about p of the tokens whatever the prompt; this one's attention is peaked, as a trained
# model's is, so the kept count has something to follow.
MODEL = tiny_model("llama", num_layers=8, initializer_range=0.2)
LAYERS = (2, 4, 6)


def prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(3, 256, (length,), generator=torch.Generator().manual_seed(seed))


def kept_counts(model, ids, keep_mass, floor=0.05, ceiling=0.9, new_tokens=3) -> dict[tuple[int, int], int]:
    """(step, stage) -> tokens active in that stage."""
    policy = AdaptivePolicy(Schedule(LAYERS, (ceiling,) * 3, unit="layer"), keep_mass, floor, ceiling)
    result = generate(LazyEngine(model, policy, check_invariants=True), ids, new_tokens, trace=True)
    return {(t.step, t.stage): len(t.active) for t in result.trace}


def test_mass_count_is_the_fewest_holding_p() -> None:
    scores = torch.tensor([0.125, 0.5, 0.0625, 0.25, 0.0625])  # exact in binary: no rounding at the cuts
    assert [mass_count(scores, p) for p in (0.5, 0.51, 0.75, 0.8, 0.9, 1.0)] == [1, 2, 2, 3, 4, 5]
    assert mass_count(scores * 7, 0.75) == 2  # normalised by the total, not assumed to sum to 1


def test_kept_counts_follow_the_prompt() -> None:
    """Same length, same p: different prompts keep different amounts, and all of them prune."""
    n = 48
    first = [kept_counts(MODEL, prompt(n, seed), 0.8)[(0, 1)] for seed in range(6)]
    assert all(k < n for k in first), first
    assert len(set(first)) > 1, f"every prompt kept the same count {first}: nothing adaptive happened"
    # more mass, more tokens, on the same prompt
    by_mass = [kept_counts(MODEL, prompt(n, 0), p)[(0, 1)] for p in (0.5, 0.8, 0.95)]
    assert by_mass == sorted(by_mass) and by_mass[0] < by_mass[-1], by_mass


@pytest.mark.parametrize("keep_mass,floor,ceiling", [(0.999, 0.05, 0.5), (0.05, 0.4, 0.9), (0.7, 0.3, 0.6)])
def test_floor_and_ceiling_are_honoured(keep_mass, floor, ceiling) -> None:
    n = 40
    counts = kept_counts(MODEL, prompt(n, 3), keep_mass, floor, ceiling, new_tokens=4)
    for (step, stage), k in counts.items():
        if stage == 0:
            continue
        context = n + step
        low, high = math.ceil(floor * context - 1e-9), math.ceil(ceiling * context - 1e-9)
        before = counts[(step, stage - 1)]
        assert k <= min(high, before) and k >= min(low, before), (step, stage, k, low, high)
    if keep_mass > 0.99:  # the mass wants nearly everything: the ceiling binds at the first boundary
        assert counts[(0, 1)] == math.ceil(ceiling * n)
    if keep_mass < 0.1:  # the mass wants one or two tokens: the floor binds
        assert counts[(0, 1)] == math.ceil(floor * n)


def test_method_config_label_and_errors() -> None:
    method = build_method("adaptive", keep_mass=0.95, boundaries=[9, 19, 28], unit="layer")
    assert method.label() == "adaptive[p0.95,L9,L19,L28,f0.05,c0.9]"
    assert build_method("adaptive").label() == "adaptive[p0.99,d0.3,d0.6,d0.9,f0.05,c0.9]"
    with pytest.raises(ValueError, match="keep_mass must be in"):
        build_method("adaptive", keep_mass=1.5)
    with pytest.raises(ValueError, match="floor 0.5 is above ceiling 0.3"):
        build_method("adaptive", floor=0.5, ceiling=0.3)
    with pytest.raises(ValueError, match="boundar"):
        build_method("adaptive", boundaries=[0.6, 0.3])


def test_method_runs_and_floor_equal_ceiling_is_lazyllm() -> None:
    """floor = ceiling = c pins the count at ceil(c x N): exactly LazyLLM keeping c at every boundary."""
    ids = prompt(36, 8).tolist()
    request = GenerationRequest(prompt_ids=ids, max_new_tokens=5, keep_logits=True)
    pinned = build_method(
        "adaptive", keep_mass=0.5, boundaries=list(LAYERS), unit="layer", floor=0.4, ceiling=0.4
    )
    lazy = build_method("lazyllm", schedule={"boundaries": list(LAYERS), "keep": [0.4] * 3, "unit": "layer"})
    a, b = pinned.run(MODEL, request), lazy.run(MODEL, request)
    assert a.pruned and a.tokens == b.tokens and a.prefill_flops == b.prefill_flops
    assert all(torch.equal(x, y) for x, y in zip(a.step_logits, b.step_logits))


@pytest.mark.slow
def test_smollm2_keeps_amounts_that_follow_the_prompt(smollm2) -> None:
    """On the trained model, whose attention is far from uniform, one p keeps clearly different
    fractions of different prompts."""
    model, tokenizer = smollm2
    texts = [
        "List the rivers: Danube, Rhine, Volga, Loire, Elbe, Oder, Tagus, Po. Which is the longest?",
        "The meeting moved from Tuesday to Thursday at noon because the room was booked; when is it now?",
        "def add(a, b):\n    return a + b\n\ndef mul(a, b):\n    return a * b\n\n# call add with 2 and 3",
    ]
    fractions = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        policy = AdaptivePolicy(Schedule((0.3, 0.6, 0.9)), 0.9)
        result = generate(LazyEngine(model, policy), ids, 1, trace=True)
        fractions.append(round(len(result.trace[1].active) / len(ids), 3))
    assert all(f < 0.9 for f in fractions) and len(set(fractions)) == len(fractions), fractions
