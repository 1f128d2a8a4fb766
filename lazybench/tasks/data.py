"""Loading LongBench rows into `Example` objects.

Where rows come from (the bundled offline slice, the hub, or a local folder) is decided by
`lazybench.tasks.sources.resolve_source`; every `Example` carries the label of its source
(``"offline slice"``, ``"LongBench (hub: <copy>)"``, ``"folder <path>"``) so a run can say what
it measured.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lazybench.tasks.errors import DataFormatError, DataNotFoundError, MissingFieldError
from lazybench.tasks.registry import get_task
from lazybench.tasks.sources import (
    DATA_DIR_ENV,
    HUB,
    OFFLINE,
    OFFLINE_LABEL,
    DataSource,
    hub_label,
    hub_rows,
    offline_text,
    resolve_source,
)

__all__ = [
    "DATA_DIR_ENV",
    "HUB",
    "OFFLINE",
    "DataSource",
    "Example",
    "load_examples",
    "parse_jsonl",
    "read_jsonl",
    "read_source",
    "row_to_example",
    "select_examples",
]


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
        source: label of where the row was read (`DataSource.label`; the concrete hub copy).
    """

    id: str
    dataset: str
    input: str
    context: str
    answers: list[str]
    all_classes: list[str] | None
    length: int
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


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
    row: Mapping[str, Any],
    dataset: str,
    source: str,
    line: int | None = None,
    index: int = 0,
    label: str = "",
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
        source=label,
    )


def parse_jsonl(text: str, dataset: str, where: str, label: str = "") -> list[Example]:
    """Rows of a LongBench jsonl text; every non-blank line must be a valid row (``where`` names
    the file in errors)."""
    examples: list[Example] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines carry no row (e.g. a trailing newline)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{where}:{line_no}: malformed JSON line: {err}") from err
        examples.append(row_to_example(row, dataset, where, line_no, index=len(examples), label=label))
    if not examples:
        raise DataFormatError(f"{where}: no rows")
    return examples


def read_jsonl(path: str | Path, dataset: str) -> list[Example]:
    """Read an official-format LongBench jsonl file (a folder source)."""
    path = Path(path)
    return parse_jsonl(path.read_text(encoding="utf-8"), dataset, str(path), f"folder {path.parent}")


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


def read_source(dataset: str, source: DataSource) -> list[Example]:
    """Every row of one dataset from a resolved source."""
    if source.kind == OFFLINE:
        return parse_jsonl(offline_text(dataset), dataset, f"offline slice {dataset}.jsonl", OFFLINE_LABEL)
    if source.kind == HUB:
        copy, rows = hub_rows(dataset, source.hub)
        where, label = f"hub:{copy}/{dataset}", hub_label(copy)
        return [row_to_example(r, dataset, where, i + 1, index=i, label=label) for i, r in enumerate(rows)]
    path = source.folder / f"{dataset}.jsonl"
    if not path.is_file():
        chosen = "data_dir=" if source.origin == "data_dir=" else source.origin
        raise DataNotFoundError(
            f"{path} not found: the LongBench folder {source.folder} (from {chosen}) has no {dataset}.jsonl"
        )
    return read_jsonl(path, dataset)


def load_examples(
    dataset: str,
    data_dir: str | Path | DataSource | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Example]:
    """Load a LongBench dataset as `Example` objects.

    Args:
        dataset: one of the 16 English datasets.
        data_dir: ``None`` (``$LAZYBENCH_LONGBENCH_DIR`` if set, else the bundled offline slice),
            ``"offline"``, ``"hub"``, ``"hub:<repo or folder>[@<revision>]"``, a folder of
            ``<dataset>.jsonl``, or a resolved `DataSource` (see `lazybench.tasks.sources`).
        limit: keep at most this many rows (None: all).
        seed: None keeps the first rows; an int picks a seeded, id-hashed subset.

    Raises:
        UnknownTaskError: unknown dataset (or a probe, which has no rows to load).
        DataNotFoundError: a folder without the file, or no hub copy reachable.
        DataFormatError / MissingFieldError: a malformed row (file and line are named).
    """
    task = get_task(dataset)
    if task.is_probe:
        raise ValueError(f"{dataset!r} is a synthetic probe; build its rows with make_probe_examples()")
    return select_examples(read_source(dataset, resolve_source(data_dir)), limit, seed)
