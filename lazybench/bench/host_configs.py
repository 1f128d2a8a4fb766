"""What the host benchmark steps: the compute-free model, the engine configurations (LazyLLM, static
pruning, a no-revival diagnostic), the row references and plain transformers, each advanced one
step at a time by the same kind of loop so `lazybench.bench.host` can count and time them alike."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

import torch

from lazybench.bench.syncs import generate_module
from lazybench.bench.ttft import SCHEDULES
from lazybench.engine import Generation, LazyEngine, Selection, TokenPolicy, top_k_indices
from lazybench.methods.lazyllm import LazyLLMPolicy
from lazybench.methods.static import StaticPruningPolicy, default_static_schedule


def compute_free_model(device: torch.device, dtype: torch.dtype, layers: int = 32):
    """A Llama of many layers and tiny width: a step's compute is near zero, its host work is not."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
    )  # fmt: skip
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)


class NoRevivalPolicy(LazyLLMPolicy):
    """A diagnostic, not a method: LazyLLM's stages, scoring and re-selection at every boundary of
    every step, except that a decode step keeps only tokens that already have KV there, so nothing
    is revived. Against LazyLLM it separates the engine's per-step host work from the arithmetic
    of the revived rows (on this random-weight model some 5 per later layer and step)."""

    def select(self, sel: Selection) -> torch.Tensor | None:
        if sel.step == 0:
            return super().select(sel)
        lacking = ~sel.has_kv[sel.layer].index_select(0, sel.candidates)
        lacking[-1:].fill_(False)  # the newest token has no KV yet but is always kept
        return top_k_indices(sel.scores.masked_fill(lacking, -1.0), sel.n_keep)


def engine_configs(model, decode_read: str | None = None) -> dict[str, LazyEngine]:
    policies = {
        "engine-baseline": TokenPolicy(),
        "lazyllm-default": LazyLLMPolicy(SCHEDULES["lazyllm-default"]),
        "lazyllm-aggressive": LazyLLMPolicy(SCHEDULES["lazyllm-aggressive"]),
        "static": StaticPruningPolicy(default_static_schedule()),
        "lazyllm-default-no-revival": NoRevivalPolicy(SCHEDULES["lazyllm-default"]),
    }
    return {name: _engine(model, policy, decode_read) for name, policy in policies.items()}


def _engine(model, policy, decode_read: str | None) -> LazyEngine:
    if decode_read is None or "decode_read" not in inspect.signature(LazyEngine).parameters:
        return LazyEngine(model, policy)
    return LazyEngine(model, policy, decode_read=decode_read)


# New tokens per decode step of the row references: the engine baseline (nothing pruned) computing
# R rows at every layer, so a pruning config's decode step can be set against the same rows
# computed without any pruning machinery (up to 16: a LazyLLM layer rarely computes more here).
ROW_REFERENCES = (2, 4, 8, 16)


def row_reference(rows: int) -> str:
    return f"engine-baseline-x{rows}"


def reference_prompt(ids: torch.Tensor, rows: int, decode_steps: int) -> torch.Tensor:
    """`ids` shortened so that decode steps adding `rows` positions each see on average the context
    of steps adding one (attention cost grows with the context: 512 keys cost ~5 % more than 256
    on the compute-free model)."""
    cut = round((rows - 1) * (decode_steps + 1) / 2)
    return ids[: max(8, ids.numel() - cut)]


class RowsGeneration(Generation):
    """A generation whose decode steps feed the greedy token `rows` times (new positions each): the
    engine computes `rows` rows at every layer of every decode step. A reference, not a method; its
    prompt is cut (`reference_prompt`) so its mean decode context is that of a one-row generation."""

    def __init__(self, engine: LazyEngine, ids: torch.Tensor, max_new_tokens: int, rows: int) -> None:
        super().__init__(engine, reference_prompt(ids, rows, max_new_tokens - 1), max_new_tokens)
        self.rows = rows
        self.state = engine.new_state(capacity=self.ids.numel() + rows * max_new_tokens)

    def _pick(self, logits: torch.Tensor) -> tuple[int, torch.Tensor]:
        token, logits = super()._pick(logits)
        self.next_input = self.next_input.expand(self.rows)
        return token, logits


class PlainGreedy:
    """transformers' own forward with a DynamicCache, greedy, stepped like `Generation` (same clock)."""

    def __init__(self, model, ids: torch.Tensor, max_new_tokens: int, step_hook: Callable | None = None):
        from transformers import DynamicCache

        self.model, self.ids, self.max_new_tokens = model, ids, max_new_tokens
        self.device = ids.device
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.cache = DynamicCache(config=model.config)
        self.tokens: list[int] = []
        self.next_input = ids[None]
        self.ttft, self.decode_times = 0.0, []
        self.forward = step_hook(self._forward) if step_hook else self._forward

    @property
    def done(self) -> bool:
        return len(self.tokens) >= self.max_new_tokens

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(inputs, use_cache=True, logits_to_keep=1, **{self.cache_arg: self.cache})
        return out.logits[0, -1]

    @torch.inference_mode()
    def advance(self) -> None:
        generate_module.sync_device(self.device)
        t0 = time.perf_counter()
        logits = self.forward(self.next_input)
        token = torch.argmax(logits)
        self.tokens.append(int(token))
        self.next_input = token.view(1, 1)
        generate_module.sync_device(self.device)
        (self.decode_times.append if len(self.tokens) > 1 else lambda t: setattr(self, "ttft", t))(
            time.perf_counter() - t0
        )
