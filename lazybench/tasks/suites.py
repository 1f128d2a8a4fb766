"""Suites: named selections of datasets with a row limit, a seed and an optional output cap.

A suite is what a runner iterates over: for each dataset, `Suite.examples` gives the rows and
`Suite.max_new_tokens` the generation budget. Built-ins cover the paper (all 16 datasets),
per-family subsets and a ``smoke`` suite small enough for a CPU demo (one row of six datasets,
at most 32 new tokens). Other suites come from config dicts via `Suite.from_dict` (the runner's
``conf/suite/*.yaml``), validated so a typo fails at load time rather than after an hour of
generation. A suite may hold datasets of any registered benchmark; a benchmark that takes options
gets them under its name (``conf/suite/probes.yaml``: ``probes: {depths: ..., lengths: ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lazybench.tasks.data import Example, select_examples
from lazybench.tasks.errors import UnknownTaskError
from lazybench.tasks.registry import (
    BENCHMARKS,
    CATEGORIES,
    PAPER_DATASETS,
    TaskSpec,
    benchmark_of,
    get_task,
    list_tasks,
)


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
        min_new_tokens: every output gets this many tokens, for every method alike: EOS (and a
            dataset's stop token) is ignored until they are out, and a smaller budget (the
            dataset's, or the cap's) is raised to it; so whole-output fidelity is measured over
            outputs of a known length (None: the dataset's own rule). Forced outputs are not the
            protocol's: their task scores are not paper-comparable.
        options: options of the datasets' benchmarks, by benchmark name (``{"probes": ProbeGrid}``),
            as each benchmark's `check_options` returns them.
    """

    name: str
    datasets: tuple[str, ...]
    limit: int | None = None
    seed: int | None = None
    max_new_tokens_cap: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    min_new_tokens: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.datasets, str):
            raise TypeError(f"suite {self.name!r}: datasets must be a sequence of names, not a string")
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.datasets:
            raise ValueError(f"suite {self.name!r}: no datasets")
        self._check_options()
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"suite {self.name!r}: duplicate datasets in {self.datasets}")
        for key in ("limit", "seed", "max_new_tokens_cap", "min_new_tokens"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"suite {self.name!r}: {key} must be an integer or None, got {value!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"suite {self.name!r}: limit must be positive or None, got {self.limit}")
        if self.max_new_tokens_cap is not None and self.max_new_tokens_cap <= 0:
            raise ValueError(f"suite {self.name!r}: max_new_tokens_cap must be positive or None")
        if self.min_new_tokens is not None and self.min_new_tokens < 0:
            raise ValueError(
                f"suite {self.name!r}: min_new_tokens must be >= 0 or None, got {self.min_new_tokens}"
            )

    def _check_options(self) -> None:
        """Each benchmark of the suite checks (and normalises) its options; others are refused."""
        by_benchmark: dict[str, list[str]] = {}
        for name in self.datasets:
            by_benchmark.setdefault(benchmark_of(name).name, []).append(name)
        stray = sorted(set(self.options) - set(by_benchmark))
        if stray:
            raise ValueError(
                f"suite {self.name!r}: options for {stray}, whose datasets the suite does not hold"
            )
        checked = {}
        for bench, names in by_benchmark.items():
            try:
                value = BENCHMARKS[bench].check_options(self.options.get(bench), names)
            except TypeError as err:
                raise TypeError(f"suite {self.name!r}: {err}") from None
            except ValueError as err:
                raise ValueError(f"suite {self.name!r}: {err}") from None
            if value is not None:
                checked[bench] = value
        object.__setattr__(self, "options", checked)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suite:
        """Build a suite from config, e.g. ``{"name": "mine", "datasets": ["hotpotqa", "few_shot"]}``.

        ``datasets`` may name datasets or categories (expanded in paper order), or be the string
        ``"all"``. A benchmark's options go under its name (``"probes": {"depths": ..., ...}``).
        Unknown keys and unknown names raise (`UnknownTaskError` for names).
        """
        allowed = {f.name for f in fields(cls)} - {"options"} | set(BENCHMARKS)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown suite keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "name" not in data or "datasets" not in data:
            raise ValueError("a suite needs 'name' and 'datasets'")
        return cls(
            name=str(data["name"]),
            datasets=expand_datasets(data["datasets"], every_benchmark=True),
            limit=data.get("limit"),
            seed=data.get("seed"),
            max_new_tokens_cap=data.get("max_new_tokens_cap"),
            min_new_tokens=data.get("min_new_tokens"),
            options={k: v for k, v in data.items() if k in BENCHMARKS and v is not None},
        )

    def tasks(self) -> list[TaskSpec]:
        """The suite's tasks, in run order."""
        return [get_task(name) for name in self.datasets]

    def max_new_tokens(self, task: TaskSpec | str) -> int:
        """The dataset's ``max_new_tokens``, capped by ``max_new_tokens_cap``, raised to ``min_new_tokens``."""
        task = get_task(task) if isinstance(task, str) else task
        budget = task.max_new_tokens
        if self.max_new_tokens_cap is not None:
            budget = min(budget, self.max_new_tokens_cap)
        return budget if self.min_new_tokens is None else max(budget, self.min_new_tokens)

    def examples(
        self, dataset: str, data_dir: str | Path | None = None, *, tokenizer: Any = None, split: Any = None
    ) -> list[Example]:
        """Rows of one dataset of the suite, from its benchmark, with the suite's limit and seed applied.

        ``tokenizer``: the model's, needed by benchmarks whose rows are measured in tokens (probes).
        ``split`` (a `lazybench.protocol.split.RowSplit`, or anything with ``select(examples)``) keeps
        one part of a dev/test split first, so ``limit`` counts rows of that part."""
        if dataset not in self.datasets:
            raise UnknownTaskError(f"dataset of suite {self.name!r}", dataset, self.datasets)
        bench = benchmark_of(dataset)
        rows = bench.load_rows(
            dataset, data_dir=data_dir, tokenizer=tokenizer, options=self.options.get(bench.name)
        )
        if split is not None:
            rows = split.select(rows)
        return select_examples(rows, self.limit, self.seed)


def expand_datasets(
    spec: str | list[str] | tuple[str, ...], every_benchmark: bool = False
) -> tuple[str, ...]:
    """Resolve dataset/category names (or ``"all"``: LongBench's 16) to dataset names, deduplicated,
    in order. LongBench datasets only, unless ``every_benchmark`` (suites: ``passkey``, ``needle``...);
    tools that read LongBench files (profiler, lengths) keep the default."""
    known = list_tasks() if every_benchmark else list(PAPER_DATASETS)
    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if item == "all":
            names = list(PAPER_DATASETS)
        elif item in CATEGORIES:
            names = CATEGORIES[item]
        else:
            if item not in known:
                raise UnknownTaskError("dataset", str(item), [*known, *CATEGORIES, "all"])
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
