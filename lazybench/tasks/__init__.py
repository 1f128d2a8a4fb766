"""The task layer: benchmarks (LongBench v1, the synthetic probes), suites, data, prompts, metrics.

Typical use by a runner::

    from lazybench.tasks import get_suite, get_task, build_prompt, generation_settings, score_example

    suite = get_suite("smoke")
    for task in suite.tasks():
        for ex in suite.examples(task.name):
            prompt = build_prompt(task, ex, tokenizer, max_length=3500, chat_style="chat_template")
            gen = generation_settings(task, tokenizer, suite.max_new_tokens_cap)
            ...  # generate greedily with gen.max_new_tokens / stop_token_ids / min_new_tokens
            score = score_example(task, postprocess(task, text, "chat_template"), ex.answers, ex.all_classes)

Probes (passkey, needle) are rows like any other: a suite with ``probes: {depths, lengths}``
(conf/suite/probes.yaml) holds them over a depth x length grid. Every dataset belongs to a registered
`Benchmark` (`BENCHMARKS`: ``longbench``, ``probes``), which declares its `TaskSpec`s and loads its
rows; the functions above dispatch to it.

Rows come from the bundled offline slice by default, from the hub with ``data_dir="hub"``, or from a
folder of ``<dataset>.jsonl`` (`lazybench.tasks.sources`); each `Example` names its source.
"""

from lazybench.tasks.benchmark import LONGBENCH, Benchmark, LongBench, get_benchmark, register_benchmark
from lazybench.tasks.data import Example, load_examples, read_jsonl, select_examples
from lazybench.tasks.errors import (
    DataFormatError,
    DataNotFoundError,
    MissingFieldError,
    PromptTooLongError,
    UnknownTaskError,
)
from lazybench.tasks.metrics import (
    METRICS,
    best_answer_score,
    category_scores,
    classification,
    code_sim,
    count,
    dataset_score,
    normalize_answer,
    qa_f1,
    retrieval,
    rouge_l,
    score_example,
)
from lazybench.tasks.probes import PROBE_TASKS, PROBES, ProbeGrid, Probes, make_probe_examples, probe_id
from lazybench.tasks.prompting import (
    CHAT_STYLES,
    XGEN_HEADER,
    ChatStyle,
    GenerationSettings,
    Prompt,
    apply_chat,
    build_prompt,
    generation_settings,
    middle_truncate,
    postprocess,
)
from lazybench.tasks.registry import (
    BENCHMARKS,
    CATEGORIES,
    PAPER_DATASETS,
    PROBE_CATEGORY,
    LongBenchTask,
    TaskSpec,
    benchmark_of,
    get_task,
    list_tasks,
)
from lazybench.tasks.sources import (
    DATA_DIR_ENV,
    HUB,
    OFFLINE,
    OFFLINE_LABEL,
    DataSource,
    HubCopy,
    published_sizes,
    resolve_source,
    write_offline_slice,
)
from lazybench.tasks.suites import SUITES, Suite, expand_datasets, get_suite
from lazybench.tasks.tokenizer import load_tokenizer

__all__ = [
    "BENCHMARKS",
    "CATEGORIES",
    "CHAT_STYLES",
    "DATA_DIR_ENV",
    "HUB",
    "LONGBENCH",
    "METRICS",
    "OFFLINE",
    "OFFLINE_LABEL",
    "PAPER_DATASETS",
    "PROBES",
    "PROBE_CATEGORY",
    "PROBE_TASKS",
    "SUITES",
    "XGEN_HEADER",
    "Benchmark",
    "ChatStyle",
    "DataFormatError",
    "DataNotFoundError",
    "DataSource",
    "Example",
    "GenerationSettings",
    "HubCopy",
    "LongBench",
    "LongBenchTask",
    "MissingFieldError",
    "ProbeGrid",
    "Probes",
    "Prompt",
    "PromptTooLongError",
    "Suite",
    "TaskSpec",
    "UnknownTaskError",
    "apply_chat",
    "benchmark_of",
    "best_answer_score",
    "build_prompt",
    "category_scores",
    "classification",
    "code_sim",
    "count",
    "dataset_score",
    "expand_datasets",
    "generation_settings",
    "get_benchmark",
    "get_suite",
    "get_task",
    "list_tasks",
    "load_examples",
    "load_tokenizer",
    "make_probe_examples",
    "middle_truncate",
    "normalize_answer",
    "postprocess",
    "probe_id",
    "published_sizes",
    "qa_f1",
    "read_jsonl",
    "register_benchmark",
    "resolve_source",
    "retrieval",
    "rouge_l",
    "score_example",
    "select_examples",
    "write_offline_slice",
]
