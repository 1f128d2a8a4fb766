"""Synthetic retrieval probes: passkey retrieval and needle-in-a-haystack.

Why: token pruning methods (LazyLLM and its rivals) can drop exactly the one sentence a question
needs. LongBench mixes that failure with many others; a probe isolates it, with full control of
prompt length and of where the needle sits (depth 0 = start of the context, 1 = end).

Design choices:

- Probes are a benchmark (`Probes`, registered as ``"probes"``) beside LongBench: their datasets
  ``passkey`` and ``needle`` (category ``"probe"``) have specs like LongBench's, and rows made by
  `make_probe_examples` over the grid a suite gives (``probes: {depths, lengths, seeds}``,
  `ProbeGrid`), so the runner handles them with the same prompt builder, generation settings and
  `score_example`. Their prompts are never middle-truncated (a cut would remove the needle); their
  records carry depth and length (``extra``) for the analysis' depth x length heatmap.
- Haystacks are cut from real LongBench contexts (gov_report and narrativeqa by default)
  rather than repeated filler, so the text around the needle is natural prose.
- Everything is a pure function of the seed (``random.Random`` seeded with a string, and
  sha256-ordered source rows), hence identical across runs and machines. For one seed the
  haystack is the same for every depth (only the needle moves) and a longer haystack extends a
  shorter one.
- ``length`` is the token count of the filled template (no special tokens, no chat wrapper),
  i.e. the number `build_prompt` compares with ``max_length``; it is met to within a few tokens.
- The needle goes at the sentence boundary nearest to the requested depth (so no sentence is
  split), measured in haystack tokens; ``meta["actual_depth"]`` records where it really landed.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lazybench.tasks.benchmark import Benchmark, register_benchmark
from lazybench.tasks.data import Example, load_examples, word_count
from lazybench.tasks.metrics import normalize_answer
from lazybench.tasks.registry import PAPER_DATASETS, PROBE_CATEGORY, TaskSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Names of the synthetic probes.
PROBE_TASKS: tuple[str, ...] = ("passkey", "needle")
DEFAULT_HAYSTACK_DATASETS: tuple[str, ...] = ("gov_report", "narrativeqa")
#: Row facts (``Example.meta``) that go into every record's ``extra``: where the needle was.
RECORD_META: tuple[str, ...] = ("depth", "actual_depth", "target_tokens")
# The probes' templates (lazybench's own, not LongBench's), with the same {context}/{input} slots.
PASSKEY_TEMPLATE = (
    "There is an important piece of information hidden inside a lot of irrelevant text. "
    "Find it and memorize it. I will quiz you about the important information there.\n\n"
    "{context}\n\n{input}"
)
NEEDLE_TEMPLATE = (
    "A fact is hidden somewhere in the long text below. Read the text, then answer the question "
    "about that fact. Only give me the answer and do not output any other words.\n\n"
    "{context}\n\nQuestion: {input}\nAnswer:"
)
_PROBE_SPECS: tuple[TaskSpec, ...] = tuple(
    TaskSpec(
        name=name,
        category=PROBE_CATEGORY,
        metric=metric,
        max_new_tokens=max_new,
        template=template,
        chat=True,
        middle_truncation=False,
        record_meta=RECORD_META,
        benchmark="probes",
    )
    for name, metric, max_new, template in (
        ("passkey", "passkey", 16, PASSKEY_TEMPLATE),
        ("needle", "contains", 32, NEEDLE_TEMPLATE),
    )
)
_SPEC = {spec.name: spec for spec in _PROBE_SPECS}
_ID = re.compile(
    r"^(?P<kind>passkey|needle)-len(?P<length>\d+)-depth(?P<depth>[0-9.eE+-]+)-seed(?P<seed>-?\d+)$"
)
#: How far (in characters) the needle may move to reach a sentence boundary.
SNAP_WINDOW_CHARS = 300

_FIRST_NAMES = ("Orla", "Tomasz", "Ines", "Kwame", "Yuki", "Bram", "Selin", "Mateo", "Ailsa", "Ravi")
_LAST_NAMES = ("Finnegan", "Wieczorek", "Albuquerque", "Mensah", "Takeda", "Verhoeven", "Aksoy", "Quiroga")
# (fact sentence, question, answer choices); {who} is a random person, {x} the answer.
_FACTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "The secret ingredient in {who}'s famous stew is {x}.",
        "What is the secret ingredient in {who}'s famous stew?",
        ("smoked paprika", "pickled ginger", "star anise", "black garlic", "candied lemon peel"),
    ),
    (
        "{who} named the new sailing boat {x}.",
        "What did {who} name the new sailing boat?",
        ("Silver Heron", "Morning Tide", "Little Comet", "Blue Lantern", "Quiet Otter"),
    ),
    (
        "The spare key to {who}'s workshop is hidden under the {x}.",
        "Under what is the spare key to {who}'s workshop hidden?",
        ("red flower pot", "loose third stair", "old iron anvil", "fish-shaped doormat"),
    ),
    (
        "The password to {who}'s greenhouse is {x}.",
        "What is the password to {who}'s greenhouse?",
        ("copper lantern", "violet harbour", "seventh meadow", "sleepy walrus"),
    ),
)
_BOUNDARY = re.compile(r"(?<=[.!?])[ \t]+|\n+")


@dataclass(frozen=True)
class Needle:
    """The inserted sentence, the question about it and the expected answer."""

    sentence: str
    question: str
    answer: str


def _draw_needle(kind: str, rng: random.Random) -> Needle:
    if kind == "passkey":
        key = str(rng.randint(10000, 99999))
        return Needle(f"The pass key is {key}. Remember it.", "What is the pass key? The pass key is", key)
    fact, question, choices = rng.choice(_FACTS)
    who = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    answer = rng.choice(choices)
    return Needle(fact.format(who=who, x=answer), question.format(who=who), answer)


def _source_contexts(data_dir: str | Path | None, datasets: Sequence[str], seed: int) -> list[str]:
    """Contexts of the haystack datasets, in a seed-dependent but machine-independent order."""
    rows = [ex for name in datasets for ex in load_examples(name, data_dir=data_dir)]

    def rank(ex: Example) -> str:
        return hashlib.sha256(f"haystack:{seed}:{ex.dataset}:{ex.id}".encode()).hexdigest()

    return [ex.context.strip() for ex in sorted(rows, key=rank)]


def _tokenize_pool(
    tokenizer: PreTrainedTokenizerBase, contexts: Sequence[str], n_tokens: int
) -> tuple[str, list[tuple[int, int]]]:
    """Join contexts until they hold ``n_tokens`` tokens; return the text and token char offsets."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("probes need a fast (Rust) tokenizer: they use token offset mappings")
    used = 0
    text = ""
    while True:
        # Add contexts until there are ~6 characters per wanted token (English BPE: ~4), then check.
        while used < len(contexts) and len(text) < 6 * n_tokens:
            text = f"{text}\n\n{contexts[used]}" if text else contexts[used]
            used += 1
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        if len(offsets) >= n_tokens:
            return text, offsets
        if used == len(contexts):
            raise ValueError(
                f"haystack sources hold only {len(offsets)} tokens, {n_tokens} needed; "
                "use a shorter length or more haystack_datasets"
            )
        text += "\n\n" + contexts[used]
        used += 1


def _snap_to_boundary(text: str, pos: int) -> int:
    """Nearest sentence/line boundary to ``pos`` within the snap window (else ``pos`` itself)."""
    if pos <= 0 or pos >= len(text):
        return max(0, min(pos, len(text)))
    lo = max(0, pos - SNAP_WINDOW_CHARS)
    candidates = [lo + m.end() for m in _BOUNDARY.finditer(text, lo, pos + SNAP_WINDOW_CHARS)]
    candidates = [c for c in candidates if abs(c - pos) <= SNAP_WINDOW_CHARS]
    if candidates:
        return min(candidates, key=lambda c: (abs(c - pos), c))
    space = text.rfind(" ", lo, pos)  # no sentence end nearby: at least do not split a word
    return space + 1 if space >= 0 else pos


def _insert(text: str, pos: int, sentence: str) -> tuple[str, int]:
    """Insert ``sentence`` at ``pos`` with a separating space where needed; return text, start."""
    left, right = text[:pos], text[pos:]
    sep_left = "" if not left or left[-1].isspace() else " "
    sep_right = "" if not right or right[0].isspace() else " "
    start = len(left) + len(sep_left)
    return left + sep_left + sentence + sep_right + right, start


def make_probe_examples(
    kind: str,
    lengths: Sequence[int],
    depths: Sequence[float],
    tokenizer: PreTrainedTokenizerBase,
    data_dir: str | Path | None = None,
    seed: int = 0,
    haystack_datasets: Sequence[str] = DEFAULT_HAYSTACK_DATASETS,
) -> list[Example]:
    """Build a grid of probe rows: one `Example` per (length, depth), lengths outer.

    Args:
        kind: ``"passkey"`` or ``"needle"``.
        lengths: target prompt lengths in tokens of ``tokenizer`` (filled template, no special
            tokens, no chat wrapper).
        depths: needle positions as fractions of the haystack, 0.0 (start) to 1.0 (end).
        tokenizer: the model's (fast) tokenizer; lengths and depths are measured with it.
        data_dir: folder of LongBench jsonl files to cut haystacks from (default: as
            `load_examples`).
        seed: everything (haystack order, pass keys, facts) is a function of it.
        haystack_datasets: LongBench datasets whose contexts form the haystack.

    Returns rows whose ``answers`` hold the pass key / fact answer, and whose ``meta`` holds
    ``depth``, ``actual_depth``, ``target_tokens``, ``haystack_tokens``, ``needle``,
    ``needle_char_start`` and ``needle_token_index``.
    """
    if kind not in PROBE_TASKS:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {', '.join(PROBE_TASKS)}")
    task = _SPEC[kind]
    _check_grid(lengths, depths)

    contexts = _source_contexts(data_dir, haystack_datasets, seed)
    pool, offsets = _tokenize_pool(tokenizer, contexts, max(lengths))
    token_ends = [end for _, end in offsets]

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    examples: list[Example] = []
    for length in lengths:
        for depth in depths:
            rng = random.Random(f"lazybench-probe|{kind}|{seed}|{length}|{depth!r}")
            needle = _draw_needle(kind, rng)
            overhead = n_tokens(task.fill(needle.sentence, needle.question)) + 1  # +1: separator
            budget = length - overhead
            if budget < 1:
                raise ValueError(f"length {length} too short: template, question and needle take {overhead}")
            haystack = pool[: offsets[budget - 1][1]]
            while normalize_answer(needle.answer) in normalize_answer(haystack):
                needle = _draw_needle(kind, rng)  # the answer must only be findable in the needle
            target = round(depth * budget)
            char = offsets[target][0] if target < budget else len(haystack)
            pos = _snap_to_boundary(haystack, char)
            context, start = _insert(haystack, pos, needle.sentence)
            needle_token_index = bisect.bisect_right(token_ends, pos, hi=budget)
            examples.append(
                Example(
                    id=probe_id(kind, length, depth, seed),
                    dataset=kind,
                    input=needle.question,
                    context=context,
                    answers=[needle.answer],
                    all_classes=None,
                    length=word_count(needle.question, context),
                    meta={
                        "kind": kind,
                        "seed": seed,
                        "target_tokens": length,
                        "depth": depth,
                        "actual_depth": needle_token_index / budget,
                        "haystack_tokens": budget,
                        "needle": needle.sentence,
                        "needle_char_start": start,
                        "needle_token_index": needle_token_index,
                        "haystack_datasets": tuple(haystack_datasets),
                    },
                )
            )
    return examples


def probe_id(kind: str, length: int, depth: float, seed: int) -> str:
    """A probe row's id, ``<kind>-len<tokens>-depth<depth>-seed<seed>`` (`parse_probe_id` reads it)."""
    return f"{kind}-len{length}-depth{depth:g}-seed{seed}"


def parse_probe_id(example_id: str) -> dict[str, Any] | None:
    """``{"kind", "target_tokens", "depth", "seed"}`` of a probe row id, or None for another id."""
    m = _ID.match(str(example_id))
    if m is None:
        return None
    return {
        "kind": m["kind"],
        "target_tokens": int(m["length"]),
        "depth": float(m["depth"]),
        "seed": int(m["seed"]),
    }


def _check_grid(lengths: Sequence[Any], depths: Sequence[Any]) -> None:
    if not lengths or not depths:
        raise ValueError("lengths and depths must be non-empty")
    for depth in depths:
        if isinstance(depth, bool) or not isinstance(depth, (int, float)) or not 0.0 <= depth <= 1.0:
            raise ValueError(f"depth must be within [0, 1], got {depth!r}")
    for length in lengths:
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise ValueError(f"length must be a positive integer, got {length!r}")


@dataclass(frozen=True)
class ProbeGrid:
    """What a suite asks of the probes (its ``probes:`` options): one row per seed x length x depth.

    Attributes:
        depths: needle positions, 0.0 (start of the haystack) to 1.0 (end).
        lengths: prompt lengths in the model's tokens (filled template, no chat wrapper).
        seeds: haystack order, pass keys and facts are a function of the seed.
        haystack_datasets: LongBench datasets whose contexts make the haystack.
    """

    depths: tuple[float, ...]
    lengths: tuple[int, ...]
    seeds: tuple[int, ...] = (0,)
    haystack_datasets: tuple[str, ...] = DEFAULT_HAYSTACK_DATASETS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"probes.{f.name} must be a list, got {value!r}")
            object.__setattr__(self, f.name, tuple(value))
        _check_grid(self.lengths, self.depths)
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds):
            raise ValueError(f"probes.seeds must be a non-empty list of integers, got {list(self.seeds)}")
        unknown = [name for name in self.haystack_datasets if name not in PAPER_DATASETS]
        if unknown or not self.haystack_datasets:
            raise ValueError(
                f"probes.haystack_datasets must name LongBench datasets, got {list(self.haystack_datasets)}"
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ProbeGrid:
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"unknown probes options {unknown}; allowed: {allowed}")
        missing = [name for name in ("depths", "lengths") if name not in options]
        if missing:
            raise ValueError(f"probes options need {' and '.join(missing)}")
        return cls(**options)


class Probes(Benchmark):
    """Passkey retrieval and needle-in-a-haystack over a depth x length grid (see the module docstring)."""

    name = "probes"

    def specs(self) -> tuple[TaskSpec, ...]:
        return _PROBE_SPECS

    def check_options(
        self, options: Mapping[str, Any] | ProbeGrid | None, datasets: Sequence[str]
    ) -> ProbeGrid:
        if isinstance(options, ProbeGrid):
            return options
        if not options:
            raise ValueError(
                f"{', '.join(datasets)}: a probe needs its depth x length grid; give the suite "
                "`probes: {depths: [0.0, 0.5, 1.0], lengths: [1000, 2000], seeds: [0]}`"
            )
        return ProbeGrid.from_options(options)

    def load_rows(
        self,
        dataset: str,
        *,
        data_dir: Any = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        options: ProbeGrid | None = None,
    ) -> list[Example]:
        grid = self.check_options(options, [dataset])
        if tokenizer is None:
            raise ValueError(f"{dataset}: probe rows are measured in the model's tokens; pass its tokenizer")
        return [
            row
            for seed in grid.seeds
            for row in make_probe_examples(
                dataset, grid.lengths, grid.depths, tokenizer, data_dir, seed, grid.haystack_datasets
            )
        ]


PROBES = register_benchmark(Probes())
