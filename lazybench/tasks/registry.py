"""The task tables: every dataset's protocol (`TaskSpec`), by name, and the benchmarks that own them.

A benchmark (LongBench v1, the synthetic probes, ...) is an object of `lazybench.tasks.benchmark`;
registering it puts its datasets' specs here, so that the prompt builder, the runner and the scorer
look a dataset up in one place and cannot disagree about it. Dataset names are global.

LongBench v1's protocol is declared below, one line per dataset (category, metric and the
pred.py/eval.py rules that differ per dataset); its templates and output lengths are read from
LongBench's own config files (shipped verbatim as package data), so that prompts are byte-identical
to the official `pred.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING

from lazybench.tasks.errors import UnknownTaskError

if TYPE_CHECKING:
    from lazybench.tasks.benchmark import Benchmark

#: Category of the synthetic probes (passkey, needle); deliberately not in CATEGORIES, so probe
#: scores never leak into a paper-comparable category average.
PROBE_CATEGORY = "probe"


@dataclass(frozen=True)
class TaskSpec:
    """Everything the protocol fixes for one dataset of a benchmark.

    Attributes:
        name: dataset name, as the benchmark spells it (``"2wikimqa"``, ``"repobench-p"``, ``"passkey"``).
        category: the category its score averages into (LongBench's six, ``"probe"``, ...).
        metric: a name in `lazybench.tasks.metrics.METRICS` (checked when the benchmark registers).
        max_new_tokens: generation budget (LongBench: ``dataset2maxlen.json``).
        template: prompt template with ``{context}`` and ``{input}`` slots.
        chat: whether the chat wrapper is applied (False for LongBench's few-shot and code datasets).
        first_line_only: whether the prediction is cut to its first line before scoring.
        stop_on_newline: whether generation also stops at a newline token (samsum).
        middle_truncation: whether a prompt over the model's ``max_length`` is middle-truncated
            (LongBench); False keeps it whole, for rows whose length is the variable measured
            (probes: a cut would remove the needle). The model's context limit applies either way.
        record_meta: keys of a row's ``Example.meta`` copied into its records' ``extra`` (probes:
            depth and length, which the analysis plots).
        benchmark: name of the registered benchmark that owns the dataset.
    """

    name: str
    category: str
    metric: str
    max_new_tokens: int
    template: str
    chat: bool = True
    first_line_only: bool = False
    stop_on_newline: bool = False
    middle_truncation: bool = True
    record_meta: tuple[str, ...] = ()
    benchmark: str = "longbench"

    def __post_init__(self) -> None:
        if not self.category:
            raise ValueError(f"task {self.name!r}: empty category")
        if self.max_new_tokens <= 0:
            raise ValueError(f"task {self.name!r}: max_new_tokens must be positive")
        if "{context}" not in self.template:
            raise ValueError(f"task {self.name!r}: template has no {{context}} slot")

    @property
    def is_probe(self) -> bool:
        """True for lazybench's synthetic probes, whose rows are generated, not read from files."""
        return self.category == PROBE_CATEGORY

    def fill(self, context: str, question: str) -> str:
        """Format the template exactly as ``pred.py`` does (``str.format`` on the raw row).

        ``question`` fills the ``{input}`` slot (LongBench's field name for it).
        """
        return self.template.format(context=context, input=question)


#: The old name, from when every task was a LongBench dataset.
LongBenchTask = TaskSpec


# --- LongBench v1 ----------------------------------------------------------------------------------


#: LongBench v1's 16 English datasets, in paper order: (dataset, category, metric, the rules where it
#: departs from `TaskSpec`'s defaults). metric: eval.py's ``dataset2metric``; ``chat=False``: pred.py
#: leaves the prompt unwrapped ("chat models are better off without build prompts on these tasks");
#: ``first_line_only``: eval.py scores the first line of the prediction; ``stop_on_newline``: pred.py
#: stops samsum at a newline (the model otherwise goes on with "\nDialogue:"). Templates and output
#: lengths: LongBench's config files (`longbench_specs`).
LONGBENCH_RULES: tuple[tuple[str, str, str, dict[str, bool]], ...] = (
    ("narrativeqa", "single_doc_qa", "qa_f1", {}),
    ("qasper", "single_doc_qa", "qa_f1", {}),
    ("multifieldqa_en", "single_doc_qa", "qa_f1", {}),
    ("hotpotqa", "multi_doc_qa", "qa_f1", {}),
    ("2wikimqa", "multi_doc_qa", "qa_f1", {}),
    ("musique", "multi_doc_qa", "qa_f1", {}),
    ("gov_report", "summarization", "rouge_l", {}),
    ("qmsum", "summarization", "rouge_l", {}),
    ("multi_news", "summarization", "rouge_l", {}),
    ("trec", "few_shot", "classification", {"chat": False, "first_line_only": True}),
    ("triviaqa", "few_shot", "qa_f1", {"chat": False, "first_line_only": True}),
    ("samsum", "few_shot", "rouge_l", {"chat": False, "first_line_only": True, "stop_on_newline": True}),
    ("passage_count", "synthetic", "count", {}),
    ("passage_retrieval_en", "synthetic", "retrieval", {}),
    ("lcc", "code_completion", "code_sim", {"chat": False}),
    ("repobench-p", "code_completion", "code_sim", {"chat": False}),
)

#: The six LongBench categories, with the English datasets of each (paper order).
CATEGORIES: dict[str, list[str]] = {}
for _name, _category, _, _ in LONGBENCH_RULES:
    CATEGORIES.setdefault(_category, []).append(_name)

#: All 16 English datasets, in paper order.
PAPER_DATASETS: tuple[str, ...] = tuple(rule[0] for rule in LONGBENCH_RULES)


def _load_config(filename: str) -> dict:
    resource = files("lazybench") / "data" / "longbench" / filename
    return json.loads(resource.read_text(encoding="utf-8"))


def longbench_specs() -> tuple[TaskSpec, ...]:
    """LongBench's specs: the rules above joined with the upstream templates and output lengths."""
    prompts = _load_config("dataset2prompt.json")
    maxlen = _load_config("dataset2maxlen.json")
    return tuple(
        TaskSpec(name, category, metric, int(maxlen[name]), prompts[name], benchmark="longbench", **rules)
        for name, category, metric, rules in LONGBENCH_RULES
    )


# --- the tables ------------------------------------------------------------------------------------

#: Registered benchmarks by name (filled by `lazybench.tasks.benchmark.register_benchmark`).
BENCHMARKS: dict[str, Benchmark] = {}
_TASKS: dict[str, TaskSpec] = {}


def add_benchmark(benchmark: Benchmark, specs: tuple[TaskSpec, ...]) -> None:
    """Enter a benchmark and its datasets' specs (use `register_benchmark`, which checks them first)."""
    for spec in specs:
        owner = _TASKS.get(spec.name)
        if owner is not None and owner.benchmark != benchmark.name:
            raise ValueError(f"dataset {spec.name!r} of {benchmark.name!r} is already {owner.benchmark!r}'s")
    BENCHMARKS[benchmark.name] = benchmark
    _TASKS.update({spec.name: spec for spec in specs})


def list_tasks(include_probes: bool = True) -> list[str]:
    """Registered dataset names, benchmark by benchmark (LongBench's 16 first, in paper order)."""
    return [name for name, spec in _TASKS.items() if include_probes or not spec.is_probe]


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Look a dataset up by name (a spec is returned as is); `UnknownTaskError` lists the known names."""
    if isinstance(name, TaskSpec):
        return name
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTaskError("task", str(name), list_tasks()) from None


def benchmark_of(task: str | TaskSpec) -> Benchmark:
    """The benchmark that owns a dataset."""
    return BENCHMARKS[get_task(task).benchmark]


def category_of(name: str) -> str:
    """Category of a dataset (``"probe"`` for probes)."""
    return get_task(name).category
