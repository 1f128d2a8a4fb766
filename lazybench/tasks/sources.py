"""Where LongBench rows come from, and how a run names that source.

Three kinds of source, chosen by one setting (``data_dir`` in the config, ``--data-dir`` in tools):

- ``offline`` (the default): the bundled *offline slice*, 187 rows (4-26 per dataset) shipped as
  package data (``lazybench/data/longbench/offline``, see its SOURCES.md). It lets everything run
  on a machine with nothing but the repository; it is not LongBench, and every record read from
  it says so (``data_source: "offline slice"``).
- ``hub``: the full benchmark from the Hugging Face hub. Copies are tried in order: the hub's own
  Parquet conversion of ``THUDM/LongBench`` (revision ``refs/convert/parquet``, one folder per
  dataset; the repo's ``main`` holds a loading script that ``datasets`` 4 and later refuse), then
  the Parquet mirror ``Xnhyacinth/LongBench`` that lm-evaluation-harness reads.
  ``hub:<repo or folder>[@<revision>]`` names one copy and nothing else (a pinned revision, or a
  local folder laid out like the mirror: ``<folder>/<dataset>/test-*.parquet`` or ``.jsonl``).
- a folder of official-format ``<dataset>.jsonl`` files (a local copy). When a folder is named it
  is the only source: a missing file there is an error, never a silent fallback.

Unset (``None``/``""``), the source is the folder in ``$LAZYBENCH_LONGBENCH_DIR`` when that
variable is set (an optional override, e.g. to point every tool at a local full copy), else the
offline slice. A value given explicitly (``offline``, ``hub``...) is never replaced by the
variable, so a preset that says ``hub`` always reads the hub.
"""

from __future__ import annotations

import json
import lzma
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from lazybench.tasks.errors import DataNotFoundError

#: Environment variable naming a folder of LongBench ``<dataset>.jsonl`` files (optional override).
DATA_DIR_ENV = "LAZYBENCH_LONGBENCH_DIR"
OFFLINE = "offline"  # data_dir value: the bundled offline slice
HUB = "hub"  # data_dir value: the hub copies of DEFAULT_HUB, in order; "hub:<copy>" names one
OFFLINE_LABEL = "offline slice"


@dataclass(frozen=True)
class HubCopy:
    """One copy of LongBench that `datasets.load_dataset` can read: a hub repo id (at a revision)
    or a local folder, holding one sub-folder of split files per dataset."""

    repo: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{self.repo}@{self.revision}" if self.revision else self.repo


#: The official repo's Parquet conversion (made by the hub's parquet-converter bot).
OFFICIAL_PARQUET = HubCopy("THUDM/LongBench", "refs/convert/parquet")
#: The Parquet mirror lm-evaluation-harness uses (question column named `question`).
MIRROR = HubCopy("Xnhyacinth/LongBench")
DEFAULT_HUB: tuple[HubCopy, ...] = (OFFICIAL_PARQUET, MIRROR)


@dataclass(frozen=True)
class DataSource:
    """A resolved data source. `label` is what records and summaries show; `spec` is the
    ``data_dir`` value that selects this source again (written to run.json)."""

    kind: str  # "offline" | "hub" | "folder"
    folder: Path | None = None
    hub: tuple[HubCopy, ...] = ()
    origin: str = "default"  # what chose it: "data_dir=", the environment variable, or "default"

    @property
    def label(self) -> str:
        if self.kind == OFFLINE:
            return OFFLINE_LABEL
        if self.kind == "folder":
            return f"folder {self.folder}"
        return f"LongBench (hub: {' or '.join(str(c) for c in self.hub)})"

    @property
    def spec(self) -> str:
        if self.kind == OFFLINE:
            return OFFLINE
        if self.kind == "folder":
            return str(self.folder)
        if self.hub == DEFAULT_HUB:
            return HUB
        return f"{HUB}:" + "|".join(str(c) for c in self.hub)


def hub_label(copy: HubCopy) -> str:
    """The label of rows actually read from one hub copy."""
    return f"LongBench (hub: {copy})"


def data_source_label(source: DataSource, examples: Iterable[Any]) -> str:
    """What a run's rows were read from: their own labels (the hub copy that answered), else the
    source's. Several (a dataset from each hub copy) are joined with " + "."""
    labels = sorted({ex.source for ex in examples if getattr(ex, "source", "")})
    return " + ".join(labels) if labels else source.label


def parse_hub(value: str) -> tuple[HubCopy, ...]:
    """``hub`` -> the default copies; ``hub:<repo>[@<revision>]`` (``|`` between several) -> those."""
    if value == HUB:
        return DEFAULT_HUB
    rest = value.removeprefix(f"{HUB}:")
    copies = []
    for part in rest.split("|"):
        repo, _, revision = part.strip().partition("@")
        if not repo:
            raise ValueError(f"data_dir={value!r}: expected hub:<repo or folder>[@<revision>]")
        copies.append(HubCopy(repo, revision or None))
    return tuple(copies)


def resolve_source(data_dir: str | Path | DataSource | None) -> DataSource:
    """The source a ``data_dir`` value selects (see the module docstring for the rules)."""
    if isinstance(data_dir, DataSource):
        return data_dir
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(DATA_DIR_ENV)
        if env:
            return DataSource("folder", folder=Path(env), origin=f"${DATA_DIR_ENV}")
        return DataSource(OFFLINE)
    if isinstance(data_dir, str):
        if data_dir == OFFLINE:
            return DataSource(OFFLINE, origin="data_dir=")
        if data_dir == HUB or data_dir.startswith(f"{HUB}:"):
            return DataSource(HUB, hub=parse_hub(data_dir), origin="data_dir=")
    return DataSource("folder", folder=Path(data_dir), origin="data_dir=")


# ---------------------------------------------------------------------------------------------
# the bundled offline slice


def _offline_dir():
    return files("lazybench") / "data" / "longbench" / "offline"


@cache
def offline_manifest() -> dict[str, Any]:
    """Row counts and sha256 (of the decompressed jsonl) per dataset of the offline slice."""
    return json.loads((_offline_dir() / "manifest.json").read_text(encoding="utf-8"))


def offline_text(dataset: str) -> str:
    """The decompressed ``<dataset>.jsonl`` of the offline slice."""
    item = _offline_dir() / f"{dataset}.jsonl.xz"
    if not item.is_file():
        raise DataNotFoundError(
            f"the offline slice has no {dataset}.jsonl.xz (it holds {', '.join(offline_manifest()['datasets'])})"
        )
    return lzma.decompress(item.read_bytes()).decode("utf-8")


def write_offline_slice(folder: str | Path) -> Path:
    """Write the offline slice as a folder of plain ``<dataset>.jsonl`` files (tools that want files)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for dataset in offline_manifest()["datasets"]:
        (folder / f"{dataset}.jsonl").write_text(offline_text(dataset), encoding="utf-8")
    return folder


@cache
def published_sizes() -> dict[str, int]:
    """LongBench's published test-set sizes (English v1): what a full hub run has, not downloaded."""
    data = json.loads(
        (files("lazybench") / "data" / "longbench" / "published_sizes.json").read_text(encoding="utf-8")
    )
    return dict(data["sizes"])


# ---------------------------------------------------------------------------------------------
# the hub


def _first_line(err: Exception, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def hub_rows(dataset: str, copies: Iterable[HubCopy]) -> tuple[HubCopy, Iterable[Mapping[str, Any]]]:
    """The dataset's ``test`` split from the first copy that loads; the copy is returned with it.

    Raises `DataNotFoundError` (one line naming every attempt) when none does.
    """
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - datasets is a declared dependency
        raise DataNotFoundError(f"LongBench {dataset!r} from the hub needs the 'datasets' package") from err
    failures: list[str] = []
    for copy in copies:
        kwargs: dict[str, Any] = {"data_dir": dataset, "split": "test"}
        if copy.revision:
            kwargs["revision"] = copy.revision
        try:
            rows = datasets.load_dataset(copy.repo, **kwargs)
        except Exception as err:  # noqa: BLE001 - any failure (offline, no such folder...) means: next copy
            failures.append(f"{copy}: {_first_line(err)}")
            continue
        if "answer_prefix" in rows.column_names:
            # kvpress-style copies store the template already applied to `context`; applying
            # LongBench's template again would double it, so refuse instead of guessing.
            failures.append(f"{copy}: rows are pre-templated (column 'answer_prefix'); not supported")
            continue
        return copy, rows
    raise DataNotFoundError(
        f"LongBench dataset {dataset!r} could not be read from the hub ({'; '.join(failures)}). "
        f"Where the hub is unreachable use data_dir=/path/to/a/folder of LongBench <dataset>.jsonl "
        f"files, or data_dir={OFFLINE} for the bundled {OFFLINE_LABEL} (187 rows, not LongBench)"
    )
