"""Suites: named selections of datasets with a row limit, a seed and an optional output cap.

A suite is what a runner iterates over: for each dataset, `Suite.examples` gives the rows and
`Suite.max_new_tokens` the generation budget. Built-ins cover the paper (all 16 datasets),
per-family subsets, and a ``smoke`` suite small enough for a CPU demo (one row of six datasets,
at most 32 new tokens). User suites come from config dicts via `Suite.from_dict`, validated so a
typo fails at load time rather than after an hour of generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lazybench.tasks.data import Example, load_examples, select_examples
from lazybench.tasks.errors import UnknownTaskError
from lazybench.tasks.registry import CATEGORIES, PAPER_DATASETS, LongBenchTask, get_task


@dataclass(frozen=True)
class Suite:
    """A named list of LongBench datasets and how many rows of each to run.

    Attributes:
        name: suite name (free text for user suites).
        datasets: dataset names, in run order.
        limit: rows per dataset (None: all).
        seed: None takes the first ``limit`` rows; an int a seeded subset (see `load_examples`).
        max_new_tokens_cap: upper bound on every dataset's ``max_new_tokens`` (None: the
            protocol's values). Capped runs are not paper-comparable for long-output datasets.
    """

    name: str
    datasets: tuple[str, ...]
    limit: int | None = None
    seed: int | None = None
    max_new_tokens_cap: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.datasets, str):
            raise TypeError(f"suite {self.name!r}: datasets must be a sequence of names, not a string")
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.datasets:
            raise ValueError(f"suite {self.name!r}: no datasets")
        for name in self.datasets:
            if get_task(name).is_probe:
                raise ValueError(f"suite {self.name!r}: {name!r} is a probe; use make_probe_examples()")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"suite {self.name!r}: duplicate datasets in {self.datasets}")
        for key in ("limit", "seed", "max_new_tokens_cap"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"suite {self.name!r}: {key} must be an integer or None, got {value!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"suite {self.name!r}: limit must be positive or None, got {self.limit}")
        if self.max_new_tokens_cap is not None and self.max_new_tokens_cap <= 0:
            raise ValueError(f"suite {self.name!r}: max_new_tokens_cap must be positive or None")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suite:
        """Build a suite from config, e.g. ``{"name": "mine", "datasets": ["hotpotqa", "few_shot"]}``.

        ``datasets`` may name datasets or categories (expanded in paper order), or be the string
        ``"all"``. Unknown keys and unknown names raise (`UnknownTaskError` for names).
        """
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown suite keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "name" not in data or "datasets" not in data:
            raise ValueError("a suite needs 'name' and 'datasets'")
        return cls(
            name=str(data["name"]),
            datasets=expand_datasets(data["datasets"]),
            limit=data.get("limit"),
            seed=data.get("seed"),
            max_new_tokens_cap=data.get("max_new_tokens_cap"),
        )

    def tasks(self) -> list[LongBenchTask]:
        """The suite's tasks, in run order."""
        return [get_task(name) for name in self.datasets]

    def max_new_tokens(self, task: LongBenchTask | str) -> int:
        """The dataset's ``max_new_tokens``, capped by ``max_new_tokens_cap``."""
        task = get_task(task) if isinstance(task, str) else task
        if self.max_new_tokens_cap is None:
            return task.max_new_tokens
        return min(task.max_new_tokens, self.max_new_tokens_cap)

    def examples(self, dataset: str, data_dir: str | Path | None = None, split: Any = None) -> list[Example]:
        """Rows of one dataset of the suite, with the suite's limit and seed applied.

        `split` (a `lazybench.protocol.split.RowSplit`, or anything with `select(examples)`) keeps
        one part of a dev/test split first, so `limit` counts rows of that part."""
        if dataset not in self.datasets:
            raise UnknownTaskError(f"dataset of suite {self.name!r}", dataset, self.datasets)
        if split is None:
            return load_examples(dataset, data_dir=data_dir, limit=self.limit, seed=self.seed)
        return select_examples(split.select(load_examples(dataset, data_dir=data_dir)), self.limit, self.seed)


def expand_datasets(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Resolve dataset/category names (or ``"all"``) to dataset names, deduplicated, in order."""
    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if item == "all":
            names = list(PAPER_DATASETS)
        elif item in CATEGORIES:
            names = CATEGORIES[item]
        else:
            if item not in PAPER_DATASETS:
                raise UnknownTaskError("dataset", str(item), [*PAPER_DATASETS, *CATEGORIES, "all"])
            names = [item]
        out.extend(n for n in names if n not in out)
    return tuple(out)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("qa", (*CATEGORIES["single_doc_qa"], *CATEGORIES["multi_doc_qa"])),
        Suite("summarization", tuple(CATEGORIES["summarization"])),
        Suite("code", tuple(CATEGORIES["code_completion"])),
        Suite("paper", PAPER_DATASETS),
        Suite(
            "smoke",
            ("multifieldqa_en", "hotpotqa", "qmsum", "triviaqa", "passage_retrieval_en", "lcc"),
            limit=1,
            seed=None,
            max_new_tokens_cap=32,
        ),
    )
}


def get_suite(name: str) -> Suite:
    """A built-in suite by name; raise `UnknownTaskError` listing the built-ins."""
    try:
        return SUITES[name]
    except KeyError:
        raise UnknownTaskError("suite", name, list(SUITES)) from None
