"""Prompt building, generation settings and post-processing, as LongBench's ``pred.py`` does them.

The order matters and is the protocol's: (1) fill the template, (2) middle-truncate on tokens,
(3) apply the chat wrapper (not for trec, triviaqa, samsum, lcc, repobench-p), (4) tokenize.
Truncating *before* wrapping keeps the instructions at both ends of the template, which is why
LongBench cuts the middle rather than the left.

The length compared with ``max_length`` is that of the prompt tokenized with the tokenizer's
default special tokens, as ``pred.py`` does (so a Llama tokenizer's BOS counts and takes one of the
head's slots); the cut is ``half = int(max_length / 2)``; ``decode(ids[:half]) + decode(ids[-half:])``,
both with ``skip_special_tokens=True``, and the text is re-tokenized afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from lazybench.tasks.data import Example
from lazybench.tasks.errors import PromptTooLongError
from lazybench.tasks.registry import TaskSpec, benchmark_of, get_task

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ChatStyle = Literal["none", "llama2", "xgen", "chat_template"]
CHAT_STYLES: tuple[str, ...] = get_args(ChatStyle)

#: XGen-7B-8k-inst's system header, verbatim from pred.py.
XGEN_HEADER = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.\n\n"
)


@dataclass(frozen=True)
class Prompt:
    """A model-ready prompt.

    Attributes:
        text: final prompt text (truncated, chat-wrapped); for ``chat_template`` the rendered
            template, which already holds any BOS the model needs.
        input_ids: token ids to feed the model (special tokens included as the style requires).
        n_tokens_before_truncation: tokens of the filled template (no special tokens, no chat
            wrapper) before any cut; the number compared with ``max_length``.
        truncated: whether the middle was cut.
        chat_applied: whether a chat wrapper was applied (False for the no-chat datasets and for
            style ``"none"``).
    """

    text: str
    input_ids: list[int]
    n_tokens_before_truncation: int
    truncated: bool
    chat_applied: bool = False

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class GenerationSettings:
    """Per-dataset decoding settings (greedy, batch 1, per the protocol).

    Attributes:
        max_new_tokens: the dataset's output budget (optionally capped by a suite).
        stop_token_ids: stop tokens *in addition to* the model's EOS (samsum: the newline token).
        min_new_tokens: tokens to generate before a stop may end generation (samsum: 1, so an
            immediate newline does not yield an empty summary).
    """

    max_new_tokens: int
    stop_token_ids: tuple[int, ...] = ()
    min_new_tokens: int = 0


def _encode(tokenizer: PreTrainedTokenizerBase, text: str, *, special: bool) -> list[int]:
    # verbose=False: long LongBench prompts exceed model_max_length on purpose; we cut them ourselves.
    return list(tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"])


def middle_truncate(tokenizer: PreTrainedTokenizerBase, ids: list[int], max_length: int) -> str:
    """pred.py's cut: the text of the first and the last ``int(max_length / 2)`` tokens."""
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 to keep a head and a tail, got {max_length}")
    half = int(max_length / 2)
    head = tokenizer.decode(ids[:half], skip_special_tokens=True)
    tail = tokenizer.decode(ids[-half:], skip_special_tokens=True)
    return head + tail


def apply_chat(text: str, chat_style: str, tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """Wrap a (truncated) prompt in the chat format of ``chat_style``."""
    if chat_style == "none":
        return text
    if chat_style == "llama2":
        return f"[INST]{text}[/INST]"
    if chat_style == "xgen":
        return XGEN_HEADER + f" ### Human: {text}\n###"
    if chat_style == "chat_template":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_style='chat_template' needs a tokenizer that has a chat template")
        messages = [{"role": "user", "content": text}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"unknown chat_style {chat_style!r}; expected one of {', '.join(CHAT_STYLES)}")


def build_prompt(
    task: TaskSpec | str,
    example: Example,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int | None,
    chat_style: str = "none",
    *,
    truncate: bool = True,
    context_limit: int | None = None,
) -> Prompt:
    """Build the prompt for one example exactly as the LongBench protocol does.

    After the chat wrapper, the dataset's benchmark may append to the text (`Benchmark.finish_prompt`;
    LongBench and the probes do not).

    Args:
        task: the dataset's `TaskSpec` or name (template, chat rule, whether middle truncation applies).
        example: the row.
        tokenizer: the model's Hugging Face tokenizer.
        max_length: token budget of the filled template (3500 for Llama-2-7b-chat, 7500 for
            xgen-7b-8k in the paper); None disables the cut, and so does a spec with
            ``middle_truncation=False`` (probes: their length is what they measure).
        chat_style: ``"none"``, ``"llama2"``, ``"xgen"`` or ``"chat_template"``.
        truncate: False turns an over-long prompt into `PromptTooLongError` instead of a cut
            (for methods that must see the whole context).
        context_limit: the model's context size in tokens; a final prompt longer than this
            raises `PromptTooLongError` (even after truncation: the chat wrapper adds tokens).

    Raises:
        PromptTooLongError: prompt over ``max_length`` with ``truncate=False``, or final prompt
            over ``context_limit``.
        ValueError: unknown chat style, or ``max_length < 2``.
    """
    if chat_style not in CHAT_STYLES:
        raise ValueError(f"unknown chat_style {chat_style!r}; expected one of {', '.join(CHAT_STYLES)}")
    task = get_task(task)
    text = task.fill(example.context, example.input)
    ids = _encode(tokenizer, text, special=True)  # pred.py's count and cut include a BOS
    n_before = len(ids)
    truncated = False
    if max_length is not None and n_before > max_length and task.middle_truncation:
        if not truncate:
            raise PromptTooLongError(
                f"{example.dataset}/{example.id}: prompt has {n_before} tokens, over max_length="
                f"{max_length}, and truncation is disabled; enable truncate=True or raise max_length"
            )
        text = middle_truncate(tokenizer, ids, max_length)
        truncated = True

    chat_applied = task.chat and chat_style != "none"
    if chat_applied:
        text = apply_chat(text, chat_style, tokenizer)
    text = benchmark_of(task).finish_prompt(task, example, text)
    # pred.py tokenizes the final string with the tokenizer's default special tokens (BOS);
    # a rendered chat template already contains them, so adding more would double the BOS.
    input_ids = _encode(tokenizer, text, special=not (chat_applied and chat_style == "chat_template"))

    if context_limit is not None and len(input_ids) > context_limit:
        raise PromptTooLongError(
            f"{example.dataset}/{example.id}: prompt has {len(input_ids)} tokens, over the model's "
            f"context of {context_limit}"
            + ("" if truncate and max_length is not None else "; set max_length and truncate=True to cut it")
        )
    return Prompt(
        text=text,
        input_ids=input_ids,
        n_tokens_before_truncation=n_before,
        truncated=truncated,
        chat_applied=chat_applied,
    )


def generation_settings(
    task: TaskSpec,
    tokenizer: PreTrainedTokenizerBase,
    max_new_tokens_cap: int | None = None,
    min_new_tokens: int | None = None,
) -> GenerationSettings:
    """Decoding settings for a dataset: its ``max_new_tokens`` and, for samsum, the newline stop.

    The newline id is ``tokenizer.encode("\\n", add_special_tokens=False)[-1]`` as in pred.py
    (the last piece, since some tokenizers emit a leading-space/marker piece first).
    ``min_new_tokens`` (a suite's): every output gets that many tokens: stops are ignored until
    they are out, and a smaller budget (the dataset's or the cap's) is raised to it (None: the
    dataset's own rule, 1 for samsum, else 0).
    """
    max_new = task.max_new_tokens
    if max_new_tokens_cap is not None:
        if max_new_tokens_cap <= 0:
            raise ValueError(f"max_new_tokens_cap must be positive, got {max_new_tokens_cap}")
        max_new = min(max_new, max_new_tokens_cap)
    own_min = 1 if task.stop_on_newline else 0
    min_new = own_min if min_new_tokens is None else max(own_min, int(min_new_tokens))
    max_new = max(max_new, min_new)
    if not task.stop_on_newline:
        return GenerationSettings(max_new_tokens=max_new, min_new_tokens=min_new)
    newline_id = tokenizer.encode("\n", add_special_tokens=False)[-1]
    return GenerationSettings(
        max_new_tokens=max_new, stop_token_ids=(int(newline_id),), min_new_tokens=min_new
    )


def postprocess(task: TaskSpec, prediction: str, chat_style: str = "none") -> str:
    """Model-specific clean-up of a decoded prediction (pred.py's ``post_process``).

    Only XGen needs one: its output is stripped and "Assistant:" removed. The first-line cut of
    trec/triviaqa/samsum is *not* done here: it belongs to scoring (`score_example`), so saved
    predictions stay as generated.
    """
    if chat_style == "xgen":
        return prediction.strip().replace("Assistant:", "")
    return prediction
