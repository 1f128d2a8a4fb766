"""The hub source, offline: local copies laid out like the hub's read by the real `datasets.load_dataset`.

The hub copies are plain `HubCopy(repo, revision)` values, so a test names a tmp folder
(`data_dir=hub:<folder>`, or the default chain patched to folders) and `datasets` reads
``<folder>/<dataset>/test-*.parquet`` (or ``.jsonl``) exactly as it reads the mirror's files.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from lazybench.records import read_records
from lazybench.runner import run as run_module
from lazybench.runner.config import NotAvailableHereError, RunConfigError, resolve_data_source
from lazybench.runner.testing import compose_cfg
from lazybench.tasks import DataNotFoundError, HubCopy, load_examples, resolve_source
from lazybench.tasks import sources as sources_module

DATASETS = ("hotpotqa", "triviaqa")


def _rows(longbench_dir: Path, dataset: str) -> list[dict]:
    return [
        json.loads(line) for line in (longbench_dir / f"{dataset}.jsonl").read_text().splitlines() if line
    ]


def _mirror(
    folder: Path, longbench_dir: Path, fmt: str = "parquet", name: str = "test-00000-of-00001"
) -> Path:
    """A copy laid out like Xnhyacinth/LongBench: <dataset>/<split files>, question column `question`."""
    for dataset in DATASETS:
        (folder / dataset).mkdir(parents=True)
        rows = [
            {("question" if k == "input" else k): v for k, v in r.items()}
            for r in _rows(longbench_dir, dataset)
        ]
        if fmt == "parquet":
            pd.DataFrame(rows).to_parquet(folder / dataset / f"{name}.parquet")
        else:
            (folder / dataset / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("parquet", "test-00000-of-00001"), ("json", "test"), ("parquet", "long_bench-test")],
    ids=["mirror-parquet", "mirror-json", "official-conversion-name"],
)
def test_hub_reads_a_local_copy_with_datasets(tmp_path, longbench_dir, fmt, name):
    copy = _mirror(tmp_path / "mirror", longbench_dir, fmt, name)
    rows = load_examples("hotpotqa", data_dir=f"hub:{copy}")
    expected = load_examples("hotpotqa", data_dir=longbench_dir)
    assert [(e.id, e.input, e.context, e.answers) for e in rows] == [
        (e.id, e.input, e.context, e.answers) for e in expected
    ]
    assert {e.source for e in rows} == {f"LongBench (hub: {copy})"}


def test_default_hub_is_the_official_conversion_then_the_mirror(tmp_path, longbench_dir, monkeypatch):
    assert sources_module.DEFAULT_HUB == (
        HubCopy("THUDM/LongBench", "refs/convert/parquet"),
        HubCopy("Xnhyacinth/LongBench", None),
    )
    empty = tmp_path / "official"
    empty.mkdir()  # the first copy answers nothing: the second one is read and named
    mirror = _mirror(tmp_path / "mirror", longbench_dir)
    monkeypatch.setattr(sources_module, "DEFAULT_HUB", (HubCopy(str(empty)), HubCopy(str(mirror))))
    rows = load_examples("triviaqa", data_dir="hub", limit=3)
    assert len(rows) == 3 and {e.source for e in rows} == {f"LongBench (hub: {mirror})"}


def test_hub_calls_load_dataset_with_the_pinned_revision_first(monkeypatch):
    calls = []

    class Rows(list):
        column_names: ClassVar[list[str]] = ["question", "context", "answers", "_id"]

    def fake_load_dataset(repo, **kwargs):
        calls.append((repo, kwargs))
        if repo == "THUDM/LongBench":
            raise RuntimeError("not reachable")
        return Rows([{"question": "Who?", "context": "ctx", "answers": ["Bob"], "_id": "h1"}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    (ex,) = load_examples("hotpotqa", data_dir="hub")
    assert ex.input == "Who?" and ex.id == "h1" and ex.source == "LongBench (hub: Xnhyacinth/LongBench)"
    assert calls == [
        ("THUDM/LongBench", {"data_dir": "hotpotqa", "split": "test", "revision": "refs/convert/parquet"}),
        ("Xnhyacinth/LongBench", {"data_dir": "hotpotqa", "split": "test"}),
    ]


def test_no_copy_reachable_is_one_line_naming_every_attempt(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.setattr(sources_module, "DEFAULT_HUB", (HubCopy(str(first)), HubCopy(str(second), "v1")))
    with pytest.raises(DataNotFoundError) as info:
        load_examples("hotpotqa", data_dir="hub")
    text = str(info.value)
    assert "\n" not in text and f"{first}:" in text and f"{second}@v1:" in text
    assert "data_dir=offline" in text and "data_dir=/path/to/a/folder" in text
    # the real hub, offline (the tests run with HF_DATASETS_OFFLINE=1): the same kind of line
    with pytest.raises(DataNotFoundError, match="THUDM/LongBench@refs/convert/parquet: ") as info:
        load_examples("hotpotqa", data_dir="hub:THUDM/LongBench@refs/convert/parquet")
    assert "\n" not in str(info.value)


def test_hub_rejects_pretemplated_rows(monkeypatch):
    class Pretemplated(list):
        column_names: ClassVar[list[str]] = ["context", "question", "answer_prefix", "answers"]

    monkeypatch.setitem(
        sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda repo, **kw: Pretemplated())
    )
    with pytest.raises(DataNotFoundError, match="pre-templated"):
        load_examples("hotpotqa", data_dir="hub:some/copy")


def test_hub_spec_parsing():
    assert resolve_source("hub").spec == "hub"
    source = resolve_source("hub:org/copy@abc123|/local/mirror")
    assert source.hub == (HubCopy("org/copy", "abc123"), HubCopy("/local/mirror"))
    assert source.label == "LongBench (hub: org/copy@abc123 or /local/mirror)"
    assert resolve_source(source.spec) == source
    with pytest.raises(ValueError, match="hub:<repo"):
        resolve_source("hub:@rev")


@pytest.mark.parametrize("preset", ["paper_llama2", "paper_xgen"])
def test_paper_presets_pin_the_hub_whatever_the_environment(preset, longbench_dir, monkeypatch):
    monkeypatch.setenv("LAZYBENCH_LONGBENCH_DIR", str(longbench_dir))
    cfg = compose_cfg([f"experiment={preset}"])
    source = resolve_data_source(cfg)
    assert source.kind == "hub" and source.hub == (HubCopy("THUDM/LongBench", "refs/convert/parquet"),)
    assert source.label == "LongBench (hub: THUDM/LongBench@refs/convert/parquet)"


def test_run_from_a_hub_copy_records_its_source(tiny, tmp_path, longbench_dir):
    mirror = _mirror(tmp_path / "mirror", longbench_dir)
    cfg = compose_cfg(
        [*tiny, f"data_dir=hub:{mirror}", "suite.limit=1", "methods=[baseline]", "method=baseline"]
    )
    outcome = run_module.run(cfg, tmp_path / "run")
    label = f"LongBench (hub: {mirror})"
    assert {r["data_source"] for r in read_records(outcome.records_path).records} == {label}
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["data_source"] == label and info["data_dir"] == f"hub:{mirror}"


def test_unreachable_hub_fails_in_prepare_before_any_weights(tiny, tmp_path, no_model_load):
    cfg = compose_cfg([*tiny, "data_dir=hub"])
    with pytest.raises(NotAvailableHereError, match="could not be read from the hub") as info:
        run_module.prepare(cfg, tmp_path / "run")
    assert isinstance(info.value, RunConfigError) and "\n" not in str(info.value)
