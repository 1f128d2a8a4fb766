"""TTFT samples (timing.prefill_repeats): interleaved rounds, median and spread in the records."""

from __future__ import annotations

import dataclasses
import statistics
import time
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from lazybench.methods import GenerationRequest, Method
from lazybench.methods.base import PreparedPrompt
from lazybench.records import read_records
from lazybench.runner import RunConfigError
from lazybench.runner import run as run_module
from lazybench.runner.config import TimingConfig, resolve_timing
from lazybench.runner.generator import Generator
from lazybench.runner.testing import compose_cfg
from lazybench.runner.timing import interleaved_samples, prefill_ttft, spread, spread_note, with_samples

LAZY = "lazyllm[depth[0.3:0.7,0.6:0.4,0.9:0.1]]"


# --- the helpers -------------------------------------------------------------------------------


def test_spread_is_range_over_median() -> None:
    assert spread([2.0]) == 0.0
    assert spread([]) == 0.0
    assert spread([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert spread([1.0, 1.1, 0.9]) == pytest.approx(0.2)


def test_rounds_interleave_and_rotate() -> None:
    order: list[str] = []

    def sample(unit: str) -> float:
        order.append(unit)
        return float(len(order))

    out = interleaved_samples(["a", "b", "c"], 3, sample)
    # every round times every unit once; round r starts at unit r, so no unit is always first
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert out == {"a": [1.0, 6.0, 8.0], "b": [2.0, 4.0, 9.0], "c": [3.0, 5.0, 7.0]}
    assert interleaved_samples(["a"], 0, sample) == {"a": []}


def test_generation_is_the_last_sample_and_total_follows_the_median() -> None:
    result = dataclasses.make_dataclass("R", ["ttft_s", "total_s"])(4.0, 10.0)
    adjusted, samples = with_samples(result, [1.0, 2.0])
    assert samples == [1.0, 2.0, 4.0]
    assert adjusted.ttft_s == 2.0 and adjusted.total_s == 8.0  # 6 s after the first token kept
    same, samples = with_samples(result, [])
    assert same is result and samples == [4.0]


class _Spy(Method):
    """A method whose `run` is its own (as GemFilter's is): the sample must go through it."""

    seen: list = []

    def run(self, model, request):
        self.seen.append(request)
        return SimpleNamespace(ttft_s=7.0)


def test_prefill_sample_is_the_methods_own_run_for_one_token() -> None:
    request = GenerationRequest(prompt_ids=[1, 2, 3], max_new_tokens=32, keep_logits=True, trace=True, seed=5)
    assert prefill_ttft(_Spy(), None, request) == 7.0
    sent = _Spy.seen[-1]
    assert sent.max_new_tokens == 1 and not sent.keep_logits and not sent.trace
    assert sent.prompt_ids == [1, 2, 3] and sent.seed == 5


@dataclasses.dataclass
class _SlowRewrite(Method):
    """A prompt rewrite that takes 0.2 s (a compressor, say): it belongs inside the TTFT."""

    def prepare(self, request):
        time.sleep(0.2)
        return PreparedPrompt(ids=list(request.prompt_ids)[::2])


def test_prefill_sample_counts_the_prompt_rewrite() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    request = GenerationRequest(prompt_ids=list(range(3, 43)), max_new_tokens=8)
    with torch.inference_mode():
        sample = prefill_ttft(_SlowRewrite(), model, request)
    assert sample >= 0.2


def test_spread_note_counts_noisy_units() -> None:
    recs = [
        {"ttft_samples_s": [1.0, 1.0, 1.1], "ttft_spread": 0.1},
        {"ttft_samples_s": [1.0, 2.0, 1.5], "ttft_spread": 0.667},
        {"ttft_s": 1.0},  # a record from before the setting: not counted
    ]
    note = spread_note(recs, 0.25)
    assert note.startswith("timing: 1 of 2 (row, method) units have a TTFT spread over 25%")
    assert "3 samples" in note and "\n" not in note
    assert "timed once" in spread_note([{"ttft_samples_s": [1.0], "ttft_spread": 0.0}], 0.25)
    assert "predate" in spread_note([{"ttft_s": 1.0}], 0.25)


# --- config ------------------------------------------------------------------------------------


def test_timing_config_defaults_and_errors() -> None:
    assert resolve_timing(OmegaConf.create({})) == TimingConfig(1, 0.25)
    got = resolve_timing(OmegaConf.create({"timing": {"prefill_repeats": 3, "spread_threshold": 0.1}}))
    assert got == TimingConfig(3, 0.1)
    for bad, word in (
        ({"prefill_repeats": 0}, "positive integer"),
        ({"prefill_repeats": 2.5}, "positive integer"),
        ({"prefill_repeats": True}, "positive integer"),
        ({"spread_threshold": -1}, ">= 0"),
        ({"repeats": 3}, "no key"),
    ):
        with pytest.raises(RunConfigError, match=word):
            resolve_timing(OmegaConf.create({"timing": bad}))


def test_demo_and_bare_command_take_three_samples() -> None:
    assert compose_cfg([]).timing.prefill_repeats == 3
    assert compose_cfg(["experiment=demo"]).timing.prefill_repeats == 3


def test_bad_timing_is_refused_before_weights_load(tiny, tmp_path, no_model_load) -> None:
    cfg = compose_cfg([*tiny, "timing.prefill_repeats=0"])
    with pytest.raises(RunConfigError, match="timing.prefill_repeats"):
        run_module.prepare(cfg, tmp_path / "run")


# --- the runner --------------------------------------------------------------------------------


def test_runner_records_median_samples_and_spread(tiny, tmp_path, monkeypatch, capsys) -> None:
    calls: list[tuple[str, int]] = []
    sample = Generator.prefill_sample

    def spy(self, entry, row, repeat):
        calls.append((row.id, entry.label))
        return sample(self, entry, row, repeat)

    monkeypatch.setattr(Generator, "prefill_sample", spy)
    cfg = compose_cfg([*tiny, "suite.datasets=[hotpotqa]", "timing.prefill_repeats=3"])
    outcome = run_module.run(cfg, tmp_path / "run")
    records = read_records(outcome.records_path).records
    assert [r["method_label"] for r in records] == ["baseline", LAZY] * 2
    # two prefill-only rounds per row, rotated: baseline first, then the method first
    rows = [r["example_id"] for r in records[::2]]
    assert calls == [(row, label) for row in rows for label in ("baseline", LAZY, LAZY, "baseline")]
    for rec in records:
        samples = rec["ttft_samples_s"]
        assert len(samples) == 3 and all(s > 0 for s in samples)
        assert rec["ttft_s"] == pytest.approx(statistics.median(samples))
        assert rec["ttft_spread"] == pytest.approx(spread(samples))
        assert rec["total_s"] >= rec["ttft_s"]
    assert "units have a TTFT spread over 25%" in outcome.timing_note
    assert outcome.timing_note in capsys.readouterr().out


def test_one_sample_is_the_generations_own(tiny, tmp_path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("no prefill-only sample with prefill_repeats=1")

    monkeypatch.setattr(Generator, "prefill_sample", boom)
    cfg = compose_cfg([*tiny, "suite.datasets=[hotpotqa]", "suite.limit=1", "timing.prefill_repeats=1"])
    outcome = run_module.run(cfg, tmp_path / "run")
    for rec in read_records(outcome.records_path).records:
        assert rec["ttft_samples_s"] == [rec["ttft_s"]] and rec["ttft_spread"] == 0.0
    assert "timed once" in outcome.timing_note
