"""The attention-concentration profiler: recorded scores, statistics, and the proposed schedule."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, Schedule, generate
from lazybench.methods.lazyllm import LazyLLMPolicy
from lazybench.profile import (
    GRID,
    Profile,
    ProfileError,
    layer_scores,
    main,
    nested_retention,
    normalized_entropy,
    profile_prompts,
    propose_schedule,
    retention,
    top_mass,
)


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", num_layers=6, seed=3)


@pytest.fixture(scope="module")
def tiny_profile(tiny):
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 256, (n,), generator=gen).tolist() for n in (37, 64, 90)]
    return profile_prompts(tiny, prompts)


def _check_profile(prof: Profile) -> None:
    for s in prof.scores:
        assert s.shape[0] == prof.num_layers - 1
        assert torch.allclose(s.sum(-1), torch.ones(s.shape[0]), atol=1e-4)
        assert bool((s >= 0).all())
    top = prof.top_mass()
    assert bool((top[:, 1:] >= top[:, :-1] - 1e-6).all()), "top-k mass must grow with k"
    assert bool((top >= torch.tensor([0.1, 0.3, 0.5]) - 1e-4).all()), "top-p mass is at least p"
    curves = prof.curves()
    assert bool((curves[:, 1:] >= curves[:, :-1] - 1e-6).all())
    assert torch.allclose(curves[:, -1], torch.ones(curves.shape[0]), atol=1e-4)
    ent = prof.entropy()
    assert bool(((ent >= 0) & (ent <= 1)).all())


def test_scores_are_the_engines():
    """The recorded rows are the head-mean last-query attention of full prefill (checked against
    eager attention's own maps), and recording prunes nothing."""
    model = tiny_model("llama", num_layers=6, seed=3, attn="eager")
    ids = torch.arange(5, 45)
    scores = layer_scores(model, ids.tolist())
    assert scores.shape == (5, 40)
    with torch.no_grad():
        maps = model(ids[None], output_attentions=True).attentions
    for layer in range(5):
        assert torch.allclose(scores[layer], maps[layer][0, :, -1, :].float().mean(0), atol=1e-5)
    full = generate(LazyEngine(model, LazyLLMPolicy(Schedule.full())), ids, max_new_tokens=3)
    every = Schedule(boundaries=tuple(range(1, 6)), keep=(1.0,) * 5, unit="layer")
    same = generate(LazyEngine(model, LazyLLMPolicy(every)), ids, max_new_tokens=3)
    assert full.tokens == same.tokens


def test_tiny_profile_invariants(tiny_profile):
    _check_profile(tiny_profile)
    rows = tiny_profile.table(0.9)
    assert [r.layer for r in rows] == list(range(5))
    assert all(r.keep_for_target in GRID for r in rows)


def test_statistics_on_known_distributions():
    n = 10
    uniform = torch.full((1, n), 1 / n)
    peaked = torch.zeros(1, n)
    peaked[0, 3] = 1.0
    assert normalized_entropy(uniform).item() == pytest.approx(1.0)
    assert normalized_entropy(peaked).item() == pytest.approx(0.0, abs=1e-6)
    assert top_mass(uniform, (0.1, 0.3, 0.5)).tolist()[0] == pytest.approx([0.1, 0.3, 0.5])
    assert top_mass(peaked, (0.1,)).item() == pytest.approx(1.0)
    # retention of layer j under layer r's ranking: ranking by a peaked layer keeps its peak first
    two = torch.stack([peaked[0], uniform[0]])
    ret = retention(two, (0.2, 1.0))  # keep 2 of 10: the last token (always) and the best other one
    assert ret[0, 0, 0].item() == pytest.approx(1.0)  # layer 0 ranks its own peak second
    assert ret[0, 1, 0].item() == pytest.approx(0.2)  # and layer 1 (uniform) keeps 2/10 of its mass
    assert ret[:, :, -1].allclose(torch.ones(2, 2))


def test_last_token_is_always_kept():
    scores = torch.tensor([[0.7, 0.3, 0.0]])
    # keep 1 of 3 by this layer's ranking: the last token (forced), not token 0
    assert retention(scores, (0.3,))[0, 0, 0].item() == pytest.approx(0.0)
    assert nested_retention(torch.cat([scores, scores]), [1], [0.3])[1].item() == pytest.approx(0.0)


def test_proposal_is_a_valid_schedule(tiny, tiny_profile):
    for target in (0.5, 0.9, 1.0):
        p = tiny_profile.propose(target, max_stages=3)
        sched = p.schedule
        assert isinstance(sched, Schedule) and sched.unit == "layer"
        sched.resolve(tiny_profile.num_layers)  # raises if invalid for this model
        LazyEngine(tiny, LazyLLMPolicy(sched))
        assert len(p.boundaries) <= 3
        assert p.min_retained_mass >= target - 1e-6
        assert 0 < p.compute_fraction <= 1
        assert p.overrides().startswith("method=lazyllm method.schedule.boundaries=[")
        assert p.overrides().endswith("method.schedule.unit=layer")
    assert tiny_profile.propose(1.0).boundaries == []  # nothing may be lost: no pruning
    assert tiny_profile.propose(0.9, max_stages=0).boundaries == []


def test_proposal_on_synthetic_concentration():
    """Attention all on token 0 and the last token from layer 2 on: prune hard from layer 3."""
    n, layers = 100, 8
    s = torch.full((layers - 1, n), 1 / n)
    s[2:] = 0.0
    s[2:, 0] = 0.5
    s[2:, -1] = 0.5
    p = propose_schedule([s], layers, target_mass=0.95, max_stages=2)
    assert p.boundaries and p.boundaries[0] == 3
    assert p.keep[-1] == GRID[0]
    assert p.min_retained_mass >= 0.95
    assert p.compute_fraction < 0.5


def test_errors(tiny):
    with pytest.raises(ProfileError):
        propose_schedule([], 6)
    with pytest.raises(ProfileError):
        propose_schedule([torch.ones(2, 4) / 4], 6)
    with pytest.raises(ProfileError):
        layer_scores(tiny, [1])
    with pytest.raises(ProfileError):
        layer_scores(tiny_model("llama", num_layers=1), [1, 2, 3])


def test_main_rescore(tmp_path, tiny_profile, capsys):
    """--scores re-proposes from a saved run without a model, and writes all outputs."""
    from lazybench.profile import write_outputs

    first = tmp_path / "first"
    write_outputs(tiny_profile, tiny_profile.propose(0.9), first, {}, png=False)
    out = tmp_path / "again"
    assert main(["--scores", str(first / "scores.pt"), "--target-mass", "0.8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "method=lazyllm method.schedule.boundaries=[" in printed
    data = json.loads((out / "profile.json").read_text())
    assert data["proposal"]["target_mass"] == 0.8
    assert len(data["layers"]) == 5
    assert (out / "profile.csv").read_text().startswith("layer,top10,top30,top50,entropy")
    assert (out / "profile.png").stat().st_size > 0


@pytest.mark.slow
def test_smollm2_one_row(smollm2, longbench_dir, tmp_path, capsys):
    """The CLI on SmolLM2 with one short row: sane per-layer statistics and a valid schedule."""
    model, _ = smollm2
    out = tmp_path / "prof"
    argv = ["--datasets", "hotpotqa", "--limit", "1", "model.max_length=256", "--data-dir", str(longbench_dir),
            "--out", str(out), "--no-plot"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.strip().startswith("runner:"))
    assert "method.schedule.unit=layer" in line
    data = json.loads((out / "profile.json").read_text())
    assert data["num_layers"] == 30 and len(data["layers"]) == 29
    saved = torch.load(out / "scores.pt", weights_only=True)
    prof = Profile(num_layers=30, scores=saved["scores"], rows=saved["rows"])
    _check_profile(prof)
    p = data["proposal"]
    Schedule(boundaries=tuple(p["boundaries"]), keep=tuple(p["keep"]), unit="layer").resolve(30)
    LazyEngine(
        model, LazyLLMPolicy(Schedule(boundaries=tuple(p["boundaries"]), keep=tuple(p["keep"]), unit="layer"))
    )
    assert math.isclose(sum(saved["scores"][0][5].tolist()), 1.0, rel_tol=1e-4)


def test_main_reports_bad_input(capsys, tmp_path):
    assert main(["--scores", str(tmp_path / "x.pt"), "--target-mass", "1.5"]) == 2
    assert "target-mass" in capsys.readouterr().err
    assert main(["--datasets", "nope", "--model", "smollm2-135m", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.nosuch=1"], "bad model override 'model.nosuch=1'"),
        (["model.chat_style=fancy"], "unknown model.chat_style 'fancy'"),
        (["model.dtype=float64"], "unknown dtype 'float64'"),
    ],
)
def test_main_model_errors_before_any_weights(overrides, message, capsys, tmp_path, no_model_load):
    argv = ["--datasets", "hotpotqa", "--out", str(tmp_path), *overrides]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lazybench profile: error: ") and message in err


def test_main_reads_the_model_as_the_runner_does(monkeypatch, capsys, tmp_path, longbench_dir):
    """--model is a conf/model key (or a name on the default config) plus model.FIELD=VALUE overrides."""
    from lazybench.runner.config import NotAvailableHereError

    specs = []

    def fake_inspect(spec):  # the runner's front end reads tokenizer and config before any weights
        specs.append(spec)
        raise NotAvailableHereError("not loading in this test")

    monkeypatch.setattr("lazybench.runner.frontend.inspect_model", fake_inspect)
    common = [
        "--datasets",
        "hotpotqa",
        "--limit",
        "1",
        "--data-dir",
        str(longbench_dir),
        "--out",
        str(tmp_path),
    ]
    assert main(["--model", "llama2-7b-chat", *common, "model.device=cpu"]) == 2
    assert main([*common, "--model", "some/other-model"]) == 2
    assert "not loading in this test" in capsys.readouterr().err
    llama, other = specs
    assert (llama.name, llama.dtype, llama.device) == ("meta-llama/Llama-2-7b-chat-hf", "bfloat16", "cpu")
    assert other.name == "some/other-model" and other.device == "cpu"  # the default model config's
