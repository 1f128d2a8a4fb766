"""With nothing pruned the engine must be the plain model: same logits at every step, same tokens."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_model

from lazybench.engine import LazyEngine, Schedule, TokenPolicy, UnsupportedModelError, generate
from lazybench.methods.lazyllm import LazyLLMPolicy


@pytest.fixture(autouse=True, scope="module")
def _check_invariants():
    """The engine's device-reading invariant checks (off by default: they stall a GPU) run here."""
    saved = LazyEngine.check_invariants
    LazyEngine.check_invariants = True
    yield
    LazyEngine.check_invariants = saved


NO_PRUNE_POLICIES = {
    "full": lambda: TokenPolicy(),
    "lazyllm-keep-all": lambda: LazyLLMPolicy(Schedule(boundaries=(0.3, 0.6, 0.9), keep=(1.0, 1.0, 1.0))),
}


def reference(model, ids: torch.Tensor, new_tokens: int):
    with torch.no_grad():
        out = model.generate(
            ids[None],
            max_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
            return_dict_in_generate=True,
            output_logits=True,
        )
    return out.sequences[0, ids.numel() :].tolist(), [lg[0].float() for lg in out.logits]


def assert_matches_plain_model(model, ids: torch.Tensor, policy, new_tokens: int = 8) -> None:
    tokens, logits = reference(model, ids, new_tokens)
    result = generate(LazyEngine(model, policy), ids, new_tokens, keep_logits=True)
    assert result.tokens == tokens
    assert len(result.step_logits) == len(logits)
    for step, (ours, theirs) in enumerate(zip(result.step_logits, logits)):
        diff = (ours - theirs).abs().max().item()
        assert diff <= 1e-4, f"step {step}: max |logit diff| {diff}"
    assert result.pct_prompt_computed == pytest.approx(100.0)
    assert not result.pruned


@pytest.mark.parametrize("policy", sorted(NO_PRUNE_POLICIES))
@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3", "gemma3", "phi3"])
def test_no_pruning_equals_plain_model(family: str, policy: str) -> None:
    model = tiny_model(family)
    ids = torch.randint(3, 256, (40,), generator=torch.Generator().manual_seed(1))
    assert_matches_plain_model(model, ids, NO_PRUNE_POLICIES[policy]())


def test_gemma2_eager_softcap_equals_plain_model() -> None:
    """Gemma 2 softcaps attention logits, which SDPA cannot do: the engine must delegate to eager."""
    model = tiny_model("gemma2", attn="eager")
    ids = torch.randint(3, 256, (40,), generator=torch.Generator().manual_seed(2))
    assert_matches_plain_model(model, ids, NO_PRUNE_POLICIES["lazyllm-keep-all"]())


def test_sliding_window_layers_are_masked_by_position() -> None:
    """Prompt much longer than the window: the window mask must come from positions."""
    model = tiny_model("gemma3", sliding_window=8)
    ids = torch.randint(3, 256, (60,), generator=torch.Generator().manual_seed(3))
    assert_matches_plain_model(model, ids, NO_PRUNE_POLICIES["full"](), new_tokens=5)


def test_baseline_prefill_matches_plain_forward_last_logits() -> None:
    model = tiny_model("llama")
    ids = torch.randint(3, 256, (33,), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        plain = model(ids[None], logits_to_keep=1).logits[0, -1]
    result = generate(LazyEngine(model, TokenPolicy()), ids, 1, keep_logits=True)
    assert (result.first_logits - plain).abs().max().item() <= 1e-5


@pytest.mark.slow
def test_no_pruning_equals_plain_smollm2(smollm2) -> None:
    model, tokenizer = smollm2
    messages = [{"role": "user", "content": "Name three rivers in Europe and say which is longest."}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    ids = torch.tensor(ids)
    for make in NO_PRUNE_POLICIES.values():
        assert_matches_plain_model(model, ids, make(), new_tokens=6)


def test_unsupported_model_is_a_clear_error() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(UnsupportedModelError, match="gpt2"):
        LazyEngine(model)
