"""LongBench v1 task layer: datasets, suites, data loading, prompts, metrics and probes.

Typical use by a runner::

    from lazybench.tasks import get_suite, get_task, build_prompt, generation_settings, score_example

    suite = get_suite("smoke")
    for task in suite.tasks():
        for ex in suite.examples(task.name):
            prompt = build_prompt(task, ex, tokenizer, max_length=3500, chat_style="chat_template")
            gen = generation_settings(task, tokenizer, suite.max_new_tokens_cap)
            ...  # generate greedily with gen.max_new_tokens / stop_token_ids / min_new_tokens
            score = score_example(task, postprocess(task, text, "chat_template"), ex.answers, ex.all_classes)

Probes (passkey, needle) are tasks too; their rows come from `make_probe_examples`.

Rows come from the bundled offline slice by default, from the hub with ``data_dir="hub"``, or from a
folder of ``<dataset>.jsonl`` (`lazybench.tasks.sources`); each `Example` names its source.
"""

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
from lazybench.tasks.probes import make_probe_examples
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
    CATEGORIES,
    PAPER_DATASETS,
    PROBE_TASKS,
    LongBenchTask,
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
    "CATEGORIES",
    "CHAT_STYLES",
    "DATA_DIR_ENV",
    "HUB",
    "METRICS",
    "OFFLINE",
    "OFFLINE_LABEL",
    "PAPER_DATASETS",
    "PROBE_TASKS",
    "SUITES",
    "XGEN_HEADER",
    "ChatStyle",
    "DataFormatError",
    "DataNotFoundError",
    "DataSource",
    "Example",
    "GenerationSettings",
    "HubCopy",
    "LongBenchTask",
    "MissingFieldError",
    "Prompt",
    "PromptTooLongError",
    "Suite",
    "UnknownTaskError",
    "apply_chat",
    "build_prompt",
    "category_scores",
    "classification",
    "code_sim",
    "count",
    "dataset_score",
    "expand_datasets",
    "generation_settings",
    "get_suite",
    "get_task",
    "list_tasks",
    "load_examples",
    "load_tokenizer",
    "make_probe_examples",
    "middle_truncate",
    "normalize_answer",
    "postprocess",
    "published_sizes",
    "qa_f1",
    "read_jsonl",
    "resolve_source",
    "retrieval",
    "rouge_l",
    "score_example",
    "select_examples",
    "write_offline_slice",
]
