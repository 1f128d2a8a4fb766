"""Benchmarks behind one small interface: where a dataset's rows come from, how its prompt is built
and how a prediction is scored.

A benchmark owns datasets, each declared by a `TaskSpec` (category, metric, template, output
length, chat and truncation rules). The runner, `lazybench rescore`, the lm-eval backend and the
analysis never ask which benchmark a row belongs to: they call `build_prompt`, `generation_settings`
and `score_example`, which read the spec and call the dataset's benchmark where it may differ (the
end of the prompt text, the score). Two implementations ship:

- `LongBench` (here): the 16 English LongBench v1 datasets, rows from the offline slice, a folder of
  ``<dataset>.jsonl`` or the hub (`lazybench.tasks.data`), the protocol of ``pred.py``/``eval.py``.
- `lazybench.tasks.probes.Probes`: passkey and needle-in-a-haystack rows generated over a
  depth x length grid that a suite gives as options (``probes: {depths, lengths, seeds}``).

Adding one (RULER, say) is a subclass that declares its specs and loads its rows, registered with
`register_benchmark`; docs/benchmarks.md walks through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lazybench.tasks.data import Example, load_examples
from lazybench.tasks.errors import UnknownTaskError
from lazybench.tasks.metrics import METRICS, best_answer_score
from lazybench.tasks.registry import BENCHMARKS, TaskSpec, add_benchmark, longbench_specs

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class Benchmark:
    """The interface. Subclasses set `name`, implement `specs` and `load_rows`, and may override
    `check_options`, `finish_prompt` and `score` (the defaults follow LongBench's protocol)."""

    #: Registry name; also the key under which a suite gives this benchmark's options.
    name: ClassVar[str]

    def specs(self) -> tuple[TaskSpec, ...]:
        """Every dataset's spec, in report order (each with ``benchmark=self.name``)."""
        raise NotImplementedError

    def load_rows(
        self,
        dataset: str,
        *,
        data_dir: Any = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        options: Any = None,
    ) -> list[Example]:
        """All rows of one dataset (a suite then applies its ``limit`` and ``seed``).

        ``data_dir`` is the run's LongBench source (as `load_examples` takes it); ``tokenizer`` the
        model's, for rows measured in tokens; ``options`` what `check_options` returned.
        """
        raise NotImplementedError

    # --- with defaults ---------------------------------------------------------------------------

    def datasets(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs())

    def task(self, dataset: str) -> TaskSpec:
        for spec in self.specs():
            if spec.name == dataset:
                return spec
        raise UnknownTaskError(f"{self.name} dataset", dataset, self.datasets())

    def category(self, dataset: str) -> str:
        return self.task(dataset).category

    def max_new_tokens(self, dataset: str) -> int:
        return self.task(dataset).max_new_tokens

    def check_options(self, options: Mapping[str, Any] | None, datasets: Sequence[str]) -> Any:
        """Validate the options a suite gives this benchmark for ``datasets``; return them in the form
        `load_rows` takes. The default takes none."""
        if options:
            raise ValueError(f"benchmark {self.name!r} takes no options, got {dict(options)}")
        return None

    def finish_prompt(self, task: TaskSpec, example: Example, text: str) -> str:
        """The prompt text after template, middle truncation and chat wrapper, before tokenization
        (`build_prompt`); a benchmark may add to it (RULER: its answer prefix). Default: unchanged."""
        return text

    def score(
        self, task: TaskSpec, prediction: str, answers: Sequence[str], all_classes: Sequence[str] | None
    ) -> float:
        """One prediction's score in [0, 1]: the spec's metric, best over the gold answers."""
        return best_answer_score(task, prediction, answers, all_classes)


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    """Check a benchmark's specs and make its datasets known to `get_task`, suites and the runner."""
    specs = benchmark.specs()
    for spec in specs:
        if spec.benchmark != benchmark.name:
            raise ValueError(f"{spec.name!r}: spec says benchmark {spec.benchmark!r}, not {benchmark.name!r}")
        if spec.metric not in METRICS:
            raise ValueError(f"{spec.name!r}: unknown metric {spec.metric!r}; known: {', '.join(METRICS)}")
    add_benchmark(benchmark, specs)
    return benchmark


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UnknownTaskError("benchmark", name, list(BENCHMARKS)) from None


class LongBench(Benchmark):
    """LongBench v1, the 16 English datasets (their protocol: `lazybench.tasks.registry.LONGBENCH_RULES`
    and the upstream config files)."""

    name = "longbench"

    def __init__(self) -> None:
        self._specs = longbench_specs()

    def specs(self) -> tuple[TaskSpec, ...]:
        return self._specs

    def load_rows(
        self,
        dataset: str,
        *,
        data_dir: str | Path | Any = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        options: Any = None,
    ) -> list[Example]:
        return load_examples(dataset, data_dir=data_dir)


LONGBENCH = register_benchmark(LongBench())
