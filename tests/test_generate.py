"""The generation loop's stop rules and its step-at-a-time form (Generation, lockstep benchmarks)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_model

from lazybench.bench.revival import lockstep
from lazybench.engine import Generation, LazyEngine, TokenPolicy, generate
from lazybench.methods.lazyllm import LazyLLMPolicy

MODEL = tiny_model("llama", num_layers=6)
IDS = torch.randint(3, 256, (40,), generator=torch.Generator().manual_seed(3))


def free_run(n: int = 8) -> list[int]:
    return generate(LazyEngine(MODEL, TokenPolicy()), IDS, n).tokens


class LetterTokenizer:
    """decode() maps each id to a letter: enough for stop-string checks without a real vocabulary."""

    def decode(self, ids) -> str:
        return "".join(chr(ord("a") + i % 26) for i in ids)


def test_eos_stops_and_is_kept() -> None:
    tokens = free_run()
    eos = tokens[3]
    first = tokens.index(eos)
    result = generate(LazyEngine(MODEL, TokenPolicy()), IDS, 8, eos_token_ids=[eos])
    assert result.tokens == tokens[: first + 1] and result.stop_reason == "eos"
    assert len(result.decode_step_s) == first


def test_min_new_tokens_suppresses_eos() -> None:
    eos = free_run(1)[0]
    result = generate(LazyEngine(MODEL, TokenPolicy()), IDS, 6, eos_token_ids=[eos], min_new_tokens=3)
    assert eos not in result.tokens[:3]


def test_stop_string_stops() -> None:
    tokens = free_run()
    stop = LetterTokenizer().decode(tokens[2:4])
    result = generate(
        LazyEngine(MODEL, TokenPolicy()), IDS, 8, stop_strings=[stop], tokenizer=LetterTokenizer()
    )
    assert result.stop_reason == "stop_string"
    assert stop in LetterTokenizer().decode(result.tokens) and len(result.tokens) <= 4


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(LazyEngine(MODEL, TokenPolicy()), IDS, 0)
    with pytest.raises(ValueError, match="tokenizer"):
        generate(LazyEngine(MODEL, TokenPolicy()), IDS, 4, stop_strings=["x"])


def test_stepping_by_hand_equals_generate() -> None:
    generation = Generation(LazyEngine(MODEL, LazyLLMPolicy()), IDS, 6, trace=True)
    steps = 0
    while not generation.done:
        generation.advance()
        steps += 1
    result = generation.result()
    reference = generate(LazyEngine(MODEL, LazyLLMPolicy()), IDS, 6, trace=True)
    assert steps == 6 and result.tokens == reference.tokens
    assert result.computed_per_layer == reference.computed_per_layer
    assert result.total_s >= result.ttft_s + sum(result.decode_step_s)
    with pytest.raises(RuntimeError, match="already stopped"):
        generation.advance()


def test_lockstep_runs_each_generation_as_alone() -> None:
    """Interleaving two engines' steps on one model changes nothing in either generation."""
    engines = {"base": LazyEngine(MODEL, TokenPolicy()), "lazy": LazyEngine(MODEL, LazyLLMPolicy())}
    runs = lockstep(
        {
            "base": Generation(engines["base"], IDS, 7, keep_logits=True),
            "lazy": Generation(engines["lazy"], IDS, 3),
        }
    )
    alone = generate(LazyEngine(MODEL, TokenPolicy()), IDS, 7, keep_logits=True)
    assert runs["base"].tokens == alone.tokens
    assert all(torch.equal(a, b) for a, b in zip(runs["base"].step_logits, alone.step_logits))
    assert runs["lazy"].tokens == generate(LazyEngine(MODEL, LazyLLMPolicy()), IDS, 3).tokens
    assert len(runs["lazy"].decode_step_s) == 2 and runs["lazy"].stop_reason == "max_new_tokens"
