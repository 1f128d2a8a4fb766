"""Registry of the LongBench v1 English datasets (and of lazybench's synthetic probes).

Every protocol decision that differs per dataset (template, metric, output length, whether the
chat wrapper is applied, first-line cut, newline stop) lives in one frozen `LongBenchTask`, so
the prompt builder, the runner and the scorer cannot disagree about a dataset. Templates and
output lengths are read from LongBench's own config files (shipped verbatim as package data) so
that prompts are byte-identical to the official `pred.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from lazybench.tasks.errors import UnknownTaskError

#: The six LongBench categories, with the English datasets of each (paper order).
CATEGORIES: dict[str, list[str]] = {
    "single_doc_qa": ["narrativeqa", "qasper", "multifieldqa_en"],
    "multi_doc_qa": ["hotpotqa", "2wikimqa", "musique"],
    "summarization": ["gov_report", "qmsum", "multi_news"],
    "few_shot": ["trec", "triviaqa", "samsum"],
    "synthetic": ["passage_count", "passage_retrieval_en"],
    "code_completion": ["lcc", "repobench-p"],
}

#: All 16 English datasets, in paper order.
PAPER_DATASETS: tuple[str, ...] = tuple(name for names in CATEGORIES.values() for name in names)

#: Category of the synthetic probes (passkey, needle); deliberately not in CATEGORIES, so probe
#: scores never leak into a paper-comparable category average.
PROBE_CATEGORY = "probe"

#: Metric names understood by `lazybench.tasks.metrics.METRICS`.
METRIC_NAMES: frozenset[str] = frozenset(
    {"qa_f1", "rouge_l", "classification", "retrieval", "count", "code_sim", "passkey", "contains"}
)

_METRIC_BY_DATASET: dict[str, str] = {
    "narrativeqa": "qa_f1",
    "qasper": "qa_f1",
    "multifieldqa_en": "qa_f1",
    "hotpotqa": "qa_f1",
    "2wikimqa": "qa_f1",
    "musique": "qa_f1",
    "gov_report": "rouge_l",
    "qmsum": "rouge_l",
    "multi_news": "rouge_l",
    "trec": "classification",
    "triviaqa": "qa_f1",
    "samsum": "rouge_l",
    "passage_count": "count",
    "passage_retrieval_en": "retrieval",
    "lcc": "code_sim",
    "repobench-p": "code_sim",
}

# pred.py: "chat models are better off without build prompts on these tasks".
_NO_CHAT = frozenset({"trec", "triviaqa", "samsum", "lcc", "repobench-p"})
# eval.py cuts these predictions to their first line before scoring.
_FIRST_LINE = frozenset({"trec", "triviaqa", "samsum"})
# pred.py stops samsum at a newline (the model otherwise keeps writing "\nDialogue: ...").
_STOP_ON_NEWLINE = frozenset({"samsum"})

# Templates of the probes (lazybench's own, not LongBench's). They use the same {context}/{input}
# slots so that the one prompt builder serves datasets and probes alike.
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


@dataclass(frozen=True)
class LongBenchTask:
    """Everything the protocol fixes for one dataset (or probe).

    Attributes:
        name: dataset name as in LongBench (``"2wikimqa"``, ``"repobench-p"``...).
        category: one of `CATEGORIES`' keys, or ``"probe"``.
        metric: a name in `METRIC_NAMES`.
        max_new_tokens: generation budget from ``dataset2maxlen.json``.
        template: prompt template with ``{context}`` and ``{input}`` slots.
        chat: whether the chat wrapper is applied (False for the few-shot and code datasets).
        first_line_only: whether the prediction is cut to its first line before scoring.
        stop_on_newline: whether generation also stops at a newline token (samsum).
    """

    name: str
    category: str
    metric: str
    max_new_tokens: int
    template: str
    chat: bool
    first_line_only: bool
    stop_on_newline: bool

    def __post_init__(self) -> None:
        if self.metric not in METRIC_NAMES:
            raise ValueError(f"task {self.name!r}: unknown metric {self.metric!r}")
        if self.category not in CATEGORIES and self.category != PROBE_CATEGORY:
            raise ValueError(f"task {self.name!r}: unknown category {self.category!r}")
        if self.max_new_tokens <= 0:
            raise ValueError(f"task {self.name!r}: max_new_tokens must be positive")
        if "{context}" not in self.template:
            raise ValueError(f"task {self.name!r}: template has no {{context}} slot")

    @property
    def is_probe(self) -> bool:
        """True for lazybench's synthetic probes, which have no hub/jsonl data."""
        return self.category == PROBE_CATEGORY

    def fill(self, context: str, question: str) -> str:
        """Format the template exactly as ``pred.py`` does (``str.format`` on the raw row).

        ``question`` fills the ``{input}`` slot (LongBench's field name for it).
        """
        return self.template.format(context=context, input=question)


def _load_config(filename: str) -> dict:
    resource = files("lazybench") / "data" / "longbench" / filename
    return json.loads(resource.read_text(encoding="utf-8"))


@cache
def _tasks() -> dict[str, LongBenchTask]:
    prompts = _load_config("dataset2prompt.json")
    maxlen = _load_config("dataset2maxlen.json")
    tasks: dict[str, LongBenchTask] = {}
    for category, names in CATEGORIES.items():
        for name in names:
            tasks[name] = LongBenchTask(
                name=name,
                category=category,
                metric=_METRIC_BY_DATASET[name],
                max_new_tokens=int(maxlen[name]),
                template=prompts[name],
                chat=name not in _NO_CHAT,
                first_line_only=name in _FIRST_LINE,
                stop_on_newline=name in _STOP_ON_NEWLINE,
            )
    for name, metric, max_new, template in (
        ("passkey", "passkey", 16, PASSKEY_TEMPLATE),
        ("needle", "contains", 32, NEEDLE_TEMPLATE),
    ):
        tasks[name] = LongBenchTask(
            name=name,
            category=PROBE_CATEGORY,
            metric=metric,
            max_new_tokens=max_new,
            template=template,
            chat=True,
            first_line_only=False,
            stop_on_newline=False,
        )
    return tasks


#: Names of the synthetic probes.
PROBE_TASKS: tuple[str, ...] = ("passkey", "needle")


def list_tasks(include_probes: bool = True) -> list[str]:
    """Registered task names: the 16 datasets in paper order, then (optionally) the probes."""
    return list(PAPER_DATASETS) + (list(PROBE_TASKS) if include_probes else [])


def get_task(name: str) -> LongBenchTask:
    """Look a dataset or probe up by name; raise `UnknownTaskError` listing the known names."""
    try:
        return _tasks()[name]
    except (KeyError, TypeError):
        raise UnknownTaskError("task", str(name), list_tasks()) from None


def category_of(name: str) -> str:
    """Category of a dataset or probe (``"probe"`` for probes)."""
    return get_task(name).category
