"""Loading LongBench rows into `Example` objects.

Sources, in order:

1. a local folder of official-format ``<dataset>.jsonl`` files (``data_dir=`` or the environment
   variable ``LAZYBENCH_LONGBENCH_DIR``). When a folder is given it is the only source: a missing
   file there is an error, never a silent download;
2. the hub dataset ``THUDM/LongBench`` (config = dataset, split ``test``);
3. its parquet mirror ``Xnhyacinth/LongBench`` (folder = dataset), whose question field is
   ``question`` instead of ``input`` (newer ``datasets`` releases no longer run the loading script
   of ``THUDM/LongBench``, so the mirror is what usually works online).

Validation is strict because a silently dropped or half-parsed row changes a dataset score
without anyone noticing: a bad JSON line or a missing field raises with file and line number.

Row selection (``limit``/``seed``): with ``seed=None`` the first ``limit`` rows in file order;
with an integer seed the ``limit`` rows whose ``sha256(f"{seed}:{id}")`` sort first, returned in
file order. Hashing ids (instead of shuffling positions) makes the pick independent of Python's
RNG and of the file holding extra rows: the same seed picks the same ids from a full or a partial
copy of a dataset, whenever those ids are present.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazybench.tasks.errors import DataFormatError, DataNotFoundError, MissingFieldError
from lazybench.tasks.registry import get_task

#: Environment variable naming a folder of LongBench ``<dataset>.jsonl`` files.
DATA_DIR_ENV = "LAZYBENCH_LONGBENCH_DIR"
HUB = "hub"  # data_dir value that means THUDM/LongBench on the hub, never a local folder
HUB_DATASET = "THUDM/LongBench"
HUB_MIRROR = "Xnhyacinth/LongBench"


@dataclass(frozen=True)
class Example:
    """One benchmark row, source-independent.

    Attributes:
        id: the row's ``_id`` (synthetic ``<dataset>-<index>`` when the source has none).
        dataset: dataset (or probe) name.
        input: the question / query (``""`` for datasets without one, e.g. gov_report, lcc).
        context: the long document(s).
        answers: gold answers; a prediction is scored against each and the best counts.
        all_classes: label set (trec only), else None.
        length: LongBench's ``length`` field (word count); recomputed when absent.
        meta: extra facts, e.g. a probe's depth and needle position; empty for LongBench rows.
    """

    id: str
    dataset: str
    input: str
    context: str
    answers: list[str]
    all_classes: list[str] | None
    length: int
    meta: Mapping[str, Any] = field(default_factory=dict)


def word_count(*texts: str) -> int:
    """Whitespace word count, LongBench's definition of ``length``."""
    return sum(len(t.split()) for t in texts)


def _str_list(value: Any, name: str, where: str, *, allow_empty: bool) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataFormatError(f"{where}: field {name!r} must be a list of strings, got {value!r:.80}")
    if not value and not allow_empty:
        raise DataFormatError(f"{where}: field {name!r} is empty")
    return list(value)


def row_to_example(
    row: Mapping[str, Any], dataset: str, source: str, line: int | None = None, index: int = 0
) -> Example:
    """Validate one raw row (jsonl or hub) and turn it into an `Example`.

    Accepts the mirror's ``question`` in place of ``input``. Raises `MissingFieldError` or
    `DataFormatError` naming ``source`` and ``line``.
    """
    where = f"{source}:{line}" if line is not None else source
    if not isinstance(row, Mapping):
        raise DataFormatError(f"{where}: row must be a JSON object, got {type(row).__name__}")
    if "input" in row:
        question = row["input"]
    elif "question" in row:
        question = row["question"]
    else:
        raise MissingFieldError("input", source, line)
    for name in ("context", "answers"):
        if name not in row:
            raise MissingFieldError(name, source, line)
    context = row["context"]
    if question is None:  # some hub rows store a missing question as null
        question = ""
    for name, value in (("input", question), ("context", context)):
        if not isinstance(value, str):
            raise DataFormatError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    answers = _str_list(row["answers"], "answers", where, allow_empty=False)
    all_classes_raw = row.get("all_classes")
    all_classes = (
        None
        if all_classes_raw is None
        else _str_list(all_classes_raw, "all_classes", where, allow_empty=False)
    )
    row_dataset = row.get("dataset")
    if row_dataset not in (None, dataset):
        raise DataFormatError(f"{where}: row belongs to dataset {row_dataset!r}, expected {dataset!r}")
    length = row.get("length")
    if length is None:
        length = word_count(question, context, *answers)
    elif isinstance(length, bool) or not isinstance(length, int):
        raise DataFormatError(f"{where}: field 'length' must be an integer, got {length!r}")
    row_id = row.get("_id")
    if row_id is None:
        row_id = f"{dataset}-{index:04d}"
    elif not isinstance(row_id, str):
        raise DataFormatError(f"{where}: field '_id' must be a string, got {row_id!r}")
    return Example(
        id=row_id,
        dataset=dataset,
        input=question,
        context=context,
        answers=answers,
        all_classes=all_classes,
        length=length,
    )


def read_jsonl(path: str | Path, dataset: str) -> list[Example]:
    """Read an official-format LongBench jsonl file; every non-blank line must be a valid row."""
    path = Path(path)
    examples: list[Example] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue  # blank lines carry no row (e.g. a trailing newline)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}:{line_no}: malformed JSON line: {err}") from err
            examples.append(row_to_example(row, dataset, str(path), line_no, index=len(examples)))
    if not examples:
        raise DataFormatError(f"{path}: no rows")
    return examples


def _hub_rows(dataset: str) -> tuple[str, Iterable[Mapping[str, Any]]]:
    """Fetch a dataset from the hub (official repo, then the parquet mirror)."""
    hint = (
        f"LongBench dataset {dataset!r} is not available offline. Set data_dir= (or the environment "
        f"variable {DATA_DIR_ENV}) to a folder of LongBench <dataset>.jsonl files"
    )
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - datasets is a declared dependency
        raise DataNotFoundError(f"{hint} (the 'datasets' package is not installed)") from err
    failures: list[str] = []
    attempts: list[tuple[str, dict[str, Any]]] = [
        (HUB_DATASET, {"name": dataset}),
        (HUB_MIRROR, {"data_dir": dataset}),
    ]
    for repo, kwargs in attempts:
        try:
            rows = datasets.load_dataset(repo, split="test", **kwargs)
        except Exception as err:  # any failure (offline, script unsupported...) means: next source
            failures.append(f"{repo}: {type(err).__name__}: {err}")
            continue
        if "answer_prefix" in rows.column_names:
            # kvpress-style copies store the template already applied to `context`; applying
            # LongBench's template again would double it, so refuse instead of guessing.
            failures.append(f"{repo}: rows are pre-templated (column 'answer_prefix'); not supported")
            continue
        return f"hub:{repo}/{dataset}", rows
    raise DataNotFoundError(f"{hint}. Hub attempts failed: " + " | ".join(failures))


def _resolve_dir(data_dir: str | Path | None) -> Path | None:
    if data_dir == HUB:  # asked for the hub: a local folder in the environment must not stand in
        return None
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def select_examples(examples: Sequence[Example], limit: int | None, seed: int | None) -> list[Example]:
    """Deterministic subset: see the module docstring for the rule."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    if limit is None or limit >= len(examples):
        return list(examples)
    if seed is None:
        return list(examples[:limit])

    def rank(ex: Example) -> str:
        return hashlib.sha256(f"{seed}:{ex.id}".encode()).hexdigest()

    chosen = {id(ex) for ex in sorted(examples, key=rank)[:limit]}
    return [ex for ex in examples if id(ex) in chosen]


def load_examples(
    dataset: str,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Example]:
    """Load a LongBench dataset as `Example` objects.

    Args:
        dataset: one of the 16 English datasets.
        data_dir: folder of ``<dataset>.jsonl``; defaults to ``$LAZYBENCH_LONGBENCH_DIR``; when
            neither is set the hub is tried. ``"hub"`` asks for the hub whatever the environment says.
        limit: keep at most this many rows (None: all).
        seed: None keeps the first rows; an int picks a seeded, id-hashed subset.

    Raises:
        UnknownTaskError: unknown dataset (or a probe, which has no rows to load).
        DataNotFoundError: no local file and the hub is unreachable.
        DataFormatError / MissingFieldError: a malformed row (file and line are named).
    """
    task = get_task(dataset)
    if task.is_probe:
        raise ValueError(f"{dataset!r} is a synthetic probe; build its rows with make_probe_examples()")
    folder = _resolve_dir(data_dir)
    if folder is not None:
        path = folder / f"{dataset}.jsonl"
        if not path.is_file():
            raise DataNotFoundError(
                f"{path} not found: the LongBench folder {folder} (from "
                f"{'data_dir=' if data_dir is not None else DATA_DIR_ENV}) has no {dataset}.jsonl"
            )
        examples = read_jsonl(path, dataset)
    else:
        source, rows = _hub_rows(dataset)
        examples = [row_to_example(row, dataset, source, line=i + 1, index=i) for i, row in enumerate(rows)]
    return select_examples(examples, limit, seed)
