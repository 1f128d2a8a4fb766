"""Selective Context (Li et al. 2023, arXiv 2310.06201): prompt compression by self-information.

A small causal LM reads the prompt; each token's self-information is -log p(token | preceding
text). Lexical units (tokens, words or sentences) are scored by the mean self-information of their
tokens, and the least informative units are dropped before the target model sees the prompt. The
paper's third baseline (Table 1, "prompt compression"); its TTFT includes the compressor.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from lazybench.engine import check_fraction, kept_count, sync_device
from lazybench.methods.base import GenerationRequest, Method, PreparedPrompt, register_method

UNITS = ("token", "word", "sentence")
_COMPRESSORS: dict[tuple[str, str], tuple] = {}  # (name, device) -> (model, tokenizer), loaded once


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def causal_lm_flops(lm: torch.nn.Module, n_tokens: int) -> float:
    """Dense FLOPs of one causal-LM forward over n_tokens with logits at every position (a
    compressor scores every token): the engine's per-layer model plus the full-width lm_head."""
    config = getattr(lm.config, "text_config", None) or lm.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    layers = lm.model.layers
    per_layer = sum(p.numel() for p in layers[0].parameters())
    attention = 4.0 * n_tokens * (n_tokens + 1) / 2 * heads * head_dim
    lm_head = 2.0 * n_tokens * config.hidden_size * config.vocab_size
    return len(layers) * (2.0 * n_tokens * per_layer + attention) + lm_head


def _is_model(model: torch.nn.Module, name: str) -> bool:
    """Whether `model` was loaded from `name` (a hub id, a folder, or the built-in model)."""
    from lazybench.models import BUILTIN_SMOLLM2, cache_dir

    source = str(getattr(model.config, "_name_or_path", "") or "")
    if not source:
        return False
    if source == name:
        return True
    if name == BUILTIN_SMOLLM2:
        return Path(source).resolve() == (cache_dir() / BUILTIN_SMOLLM2).resolve()
    return Path(name).exists() and Path(source).resolve() == Path(name).resolve()


def token_pieces(tokenizer, ids: list[int], context: int = 4) -> list[str]:
    """The text each token adds when decoded after its predecessors (leading spaces included, which
    decoding a token alone loses for SentencePiece vocabularies); joined, they are the decoded text."""
    kw = dict(skip_special_tokens=False, clean_up_tokenization_spaces=False)
    before = tokenizer.batch_decode([ids[max(0, i - context) : i] for i in range(len(ids))], **kw)
    upto = tokenizer.batch_decode([ids[max(0, i - context) : i + 1] for i in range(len(ids))], **kw)
    return [
        b[len(a) :] if b.startswith(a) else tokenizer.decode([t], **kw) for a, b, t in zip(before, upto, ids)
    ]


def unit_starts(pieces: list[str], unit: str) -> list[bool]:
    """Where a new lexical unit begins: every token, at whitespace (words), or after . ! ? or a newline."""
    starts = []
    for i, piece in enumerate(pieces):
        if i == 0 or unit == "token":
            starts.append(True)
            continue
        prev = pieces[i - 1]
        gap = piece[:1].isspace() or prev[-1:].isspace()
        if unit == "word":
            starts.append(gap or not prev)
        else:
            starts.append("\n" in prev or (gap and prev.rstrip()[-1:] in (".", "!", "?")))
    return starts


@register_method("selective_context")
@dataclass
class SelectiveContext(Method):
    """Selective Context: drop the least informative lexical units, scored by a small LM, to `keep`.

    Not query-aware (self-information ignores the question); saves prefill and decoding for the
    target model, but its TTFT includes the compressor's forward and the selection (prepare()).

    Defaults and deviations from the paper and its code:
    - `keep` = 0.65: their default reduce_ratio 0.35. We drop units until a *token* budget is met
      (ceil(keep * prompt) target tokens kept, units taken greedily by score while they fit), so the
      kept fraction is what was asked; their code drops units below a percentile of unit scores.
    - `unit` = "word": their default level is the phrase (spaCy noun chunks, not installed here);
      words (whitespace-delimited, punctuation attached) are the nearest lexical unit without it.
      "sentence" and "token" are their other two levels.
    - Self-information is read with `context` (1024) compressor tokens of preceding text at most, the
      compressor's BOS token first (their code scores each sentence alone after GPT-2's
      <|endoftext|>; GPT-2's context is 1024 tokens). A unit scores the mean of its tokens, as theirs.
    - `compressor`: "smollm2-135m" (the offline model) by default, loaded once per device; "target"
      or the target's own name reuses the target model. The paper used GPT-2 / curie.
    - Units are formed in the target tokenizer's tokens, and kept tokens are spliced as ids (never
      re-encoded text), so keep=1.0 returns the prompt unchanged. Special tokens (BOS, chat-template
      markers) and the last `keep_last`=64 tokens (LongBench's question and answer cue) are never
      dropped; they count toward the budget.
    """

    paper_name: ClassVar[str | None] = "Prompt Compression"
    query_aware: ClassVar[bool] = False
    saves: ClassVar[str] = "both"
    keep: float = 0.65
    unit: str = "word"
    compressor: str = "smollm2-135m"
    keep_last: int = 64
    context: int = 1024

    def __post_init__(self) -> None:
        check_fraction("keep", self.keep)
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.keep_last < 0 or self.context < 2:
            raise ValueError("need keep_last >= 0 and context >= 2")
        self._lm = self._lm_tokenizer = self._tokenizer = None
        self._same_vocab = False
        self._compressor_flops = 0.0  # of the prompt being prepared
        self._special: set[int] = set()

    def label(self) -> str:
        return f"selective_context[{self.keep:g},{self.unit}]"

    def setup(self, model: torch.nn.Module, tokenizer) -> None:
        self._tokenizer = tokenizer
        self._special = set(tokenizer.all_special_ids) if tokenizer is not None else set()
        if self.compressor == "target" or _is_model(model, self.compressor):
            self._lm, self._lm_tokenizer, self._same_vocab = model, tokenizer, True
        else:
            from lazybench.models import ModelSpec, load_model

            device = _device_of(model)
            key = (self.compressor, str(device))
            if key not in _COMPRESSORS:
                _COMPRESSORS[key] = load_model(ModelSpec(name=self.compressor, device=str(device)))
            self._lm, self._lm_tokenizer = _COMPRESSORS[key]
            self._same_vocab = (
                tokenizer is not None and tokenizer.get_vocab() == self._lm_tokenizer.get_vocab()
            )
        if tokenizer is None and (self.unit != "token" or not self._same_vocab):
            raise ValueError(
                "selective_context without a tokenizer needs unit='token' and compressor='target'"
            )

    # --- scoring ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def _surprisal(self, ids: list[int]) -> torch.Tensor:
        """-log p(id_t | up to `context` preceding ids) under the compressor, one value per id (fp32)."""
        lm = self._lm
        device = _device_of(lm)
        tok = self._lm_tokenizer
        bos = None
        if tok is not None:
            bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        out = torch.empty(len(ids), dtype=torch.float32)
        step = self.context - 1
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            inputs = ([bos] if bos is not None else []) + chunk
            x = torch.tensor([inputs], device=device)
            logits = lm(input_ids=x, use_cache=False).logits[0].float()
            self._compressor_flops += causal_lm_flops(lm, len(inputs))
            logp = torch.log_softmax(logits[:-1], dim=-1)
            info = -logp.gather(1, x[0, 1:, None])[:, 0].cpu()
            if bos is None:  # the chunk's first token has no context: never drop it for that
                info = torch.cat(
                    [info.max(dim=0, keepdim=True).values if info.numel() else info.new_zeros(1), info]
                )
            out[start : start + len(chunk)] = info
        return out

    def token_information(self, ids: list[int], pieces: list[str] | None) -> torch.Tensor:
        """Self-information per target token (compressor tokens credited to the target token they start in)."""
        if self._same_vocab:
            return self._surprisal(ids)
        offsets, text_len = [], 0
        for piece in pieces:
            offsets.append(text_len)
            text_len += len(piece)
        enc = self._lm_tokenizer("".join(pieces), add_special_tokens=False, return_offsets_mapping=True)
        info = self._surprisal(list(enc["input_ids"]))
        owner = [max(0, bisect.bisect_right(offsets, start) - 1) for start, _ in enc["offset_mapping"]]
        return torch.zeros(len(ids)).index_add_(0, torch.tensor(owner, dtype=torch.long), info)

    def kept_positions(self, ids: list[int]) -> list[int]:
        n = len(ids)
        n_keep = kept_count(self.keep, n)
        if n_keep >= n:
            return list(range(n))
        pieces = token_pieces(self._tokenizer, ids) if self._tokenizer is not None else None
        info = self.token_information(ids, pieces)
        protected = [t in self._special or i >= n - self.keep_last for i, t in enumerate(ids)]
        starts = unit_starts(pieces, self.unit) if pieces is not None else [True] * n
        units: list[list[int]] = []
        for i in range(n):
            if protected[i]:
                continue
            if starts[i] or not units or protected[i - 1] or units[-1][-1] != i - 1:
                units.append([])
            units[-1].append(i)
        scores = [float(info[u].mean()) for u in units]
        budget = n_keep - sum(protected)
        kept = [i for i in range(n) if protected[i]]
        for u in sorted(range(len(units)), key=lambda j: -scores[j]):
            if len(units[u]) <= budget:
                kept.extend(units[u])
                budget -= len(units[u])
        return sorted(kept)

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        ids = list(request.prompt_ids)
        if kept_count(self.keep, len(ids)) >= len(ids):
            return PreparedPrompt(ids=ids)
        if self._lm is None:
            raise RuntimeError("selective_context needs setup(model, tokenizer) before prepare()")
        device = _device_of(self._lm)
        sync_device(device)
        t0 = time.perf_counter()
        self._compressor_flops = 0.0
        keep = self.kept_positions(ids)
        sync_device(device)
        seconds = time.perf_counter() - t0
        return PreparedPrompt(ids=[ids[p] for p in keep], seconds=seconds, flops=self._compressor_flops)
