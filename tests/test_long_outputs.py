"""Outputs of a forced length (suite.min_new_tokens) and whole-output token agreement with the baseline.

Whole-output fidelity on long outputs needs outputs that do not stop early at EOS: stops are
ignored until min_new_tokens are out, for every method alike, and nothing else changes."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, TokenPolicy, generate
from lazybench.records import read_records
from lazybench.runner.fidelity import fidelity, token_agreement
from lazybench.runner.testing import compose_cfg
from lazybench.tasks import Suite, generation_settings, get_task

MODEL = tiny_model("llama", num_layers=4)
IDS = torch.randint(3, 256, (30,), generator=torch.Generator().manual_seed(5))
VOCAB = MODEL.config.vocab_size


def test_eos_is_ignored_until_n_then_honoured() -> None:
    """Every id but three is an EOS: the first n tokens come from those three, the next one stops."""
    allowed = {10, 11, 12}
    eos = [t for t in range(VOCAB) if t not in allowed]
    for n in (0, 1, 4):
        result = generate(LazyEngine(MODEL, TokenPolicy()), IDS, 8, eos_token_ids=eos, min_new_tokens=n)
        assert len(result.tokens) == n + 1 and result.stop_reason == "eos", (n, result.tokens)
        assert set(result.tokens[:n]) <= allowed and result.tokens[n] not in allowed


def test_forced_length_is_exact_otherwise() -> None:
    """With an EOS the model never picks, min_new_tokens changes nothing; where it masks, the logits
    it picks from are the plain ones with the EOS ids at -inf."""
    free = generate(LazyEngine(MODEL, TokenPolicy()), IDS, 6, keep_logits=True)
    unused = next(t for t in range(VOCAB) if t not in free.tokens)
    forced = generate(
        LazyEngine(MODEL, TokenPolicy()), IDS, 6, eos_token_ids=[unused], min_new_tokens=6, keep_logits=True
    )
    assert forced.tokens == free.tokens and forced.stop_reason == "max_new_tokens"
    eos = free.tokens[0]
    masked = generate(
        LazyEngine(MODEL, TokenPolicy()), IDS, 2, eos_token_ids=[eos], min_new_tokens=1, keep_logits=True
    )
    expected = free.step_logits[0].clone()
    expected[eos] = -torch.inf
    assert torch.equal(masked.step_logits[0], expected) and masked.tokens[0] != eos


def test_suite_min_new_tokens_reaches_the_generation_settings() -> None:
    from transformers import AutoTokenizer

    from lazybench.models import smollm2_folder

    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder())
    hotpot, samsum = get_task("hotpotqa"), get_task("samsum")
    assert generation_settings(hotpot, tokenizer, 128).min_new_tokens == 0  # the dataset's own rule
    forced = generation_settings(hotpot, tokenizer, 128, 128)  # hotpotqa's budget is 32: raised to 128
    assert forced.min_new_tokens == 128 and forced.max_new_tokens == 128
    forced = generation_settings(samsum, tokenizer, 128, 128)
    assert forced.min_new_tokens == 128 and forced.stop_token_ids  # samsum's newline stop, ignored until 128
    suite = Suite.from_dict({"name": "s", "datasets": ["hotpotqa"], "min_new_tokens": 64})
    assert suite.min_new_tokens == 64 and suite.max_new_tokens("hotpotqa") == 64
    with pytest.raises(ValueError, match="min_new_tokens must be >= 0"):
        Suite.from_dict({"name": "s", "datasets": ["hotpotqa"], "min_new_tokens": -1})


def test_token_agreement() -> None:
    assert token_agreement([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0 and token_agreement([], []) == 1.0
    assert token_agreement([1, 2, 9, 4], [1, 2, 3, 4]) == 0.5
    assert token_agreement([1, 2], [1, 2, 3, 4]) == 0.5  # over the longer output
    assert token_agreement([5], [1, 2]) == 0.0
    fid = fidelity(None, "a b", None, "a b", [1, 2, 3], [1, 2, 4])
    assert (
        fid.token_agreement == pytest.approx(2 / 3) and fidelity(None, "a", None, "a").token_agreement is None
    )


def test_run_forces_the_output_length_and_records_token_agreement(tiny) -> None:
    from lazybench.runner.run import run

    keep_all = "{name:lazyllm,label:keep_all,schedule:{keep:[1.0,1.0,1.0]}}"
    cfg = compose_cfg(
        [
            *[o for o in tiny if not o.startswith("suite.max_new_tokens_cap")],
            "suite.max_new_tokens_cap=6",
            "+suite.min_new_tokens=6",
            f"methods=[baseline,{keep_all},{{name:random_drop,keep:0.5}}]",
            "method=baseline",
        ]
    )
    outcome = run(cfg)
    records = read_records(outcome.records_path).records
    assert records and all(r["new_tokens"] == 6 and r["extra"]["min_new_tokens"] == 6 for r in records)
    assert all(r["stop_reason"] == "max_new_tokens" for r in records)
    by_method = {}
    for r in records:
        by_method.setdefault(r["method_label"], []).append(r["token_agreement"])
    assert all(v is None for v in by_method["baseline"])
    assert all(v == 1.0 for v in by_method["keep_all"])  # nothing pruned: the baseline's tokens
    assert all(0.0 <= v <= 1.0 for v in by_method["random_drop[0.5]"])
