"""`lazybench rescore`: a finished run re-scored with the current metrics, nothing regenerated."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lazybench.records import read_records
from lazybench.runner.rescore import BEFORE_FILE, rescore_run
from lazybench.tasks import score_example

DEMO = Path(__file__).resolve().parents[1] / "results" / "reference" / "demo"


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def scores(run_dir: Path) -> list[float]:
    return [r["score"] for r in read_records(run_dir / "records.jsonl").records]


def test_rescore_recomputes_every_score_and_keeps_the_old_file(demo_copy, longbench_dir):
    original = (demo_copy / "records.jsonl").read_bytes()
    records = read_records(demo_copy / "records.jsonl").records
    # tamper with one score: rescoring must put the metric's value back
    records[0]["score"] = 0.123
    (demo_copy / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    outcome = rescore_run(demo_copy, str(longbench_dir))
    assert outcome.records == len(records) and outcome.changed >= 1
    rescored = read_records(demo_copy / "records.jsonl").records
    assert [r["score"] for r in rescored] == [
        score_example(r["dataset"], r["prediction"], r["answers"]) for r in rescored
    ]
    assert [{k: v for k, v in r.items() if k != "score"} for r in rescored] == [
        {k: v for k, v in r.items() if k != "score"} for r in records
    ]
    assert (demo_copy / BEFORE_FILE).read_text() != original.decode()  # the tampered file was kept
    summary = (demo_copy / "summary.md").read_text()
    assert (
        "- rescored:" in summary and "- model: `smollm2-135m`" in summary and summary.count("- records:") == 1
    )
    # idempotent: a second pass changes nothing and keeps the first "before" file
    before = (demo_copy / BEFORE_FILE).read_bytes()
    assert rescore_run(demo_copy, str(longbench_dir)).changed == 0
    assert (demo_copy / BEFORE_FILE).read_bytes() == before


def test_trec_needs_its_label_set(tmp_path, longbench_dir, monkeypatch):
    monkeypatch.delenv("LAZYBENCH_LONGBENCH_DIR", raising=False)
    row = json.loads((longbench_dir / "trec.jsonl").read_text().splitlines()[0])
    record = dict(json.loads((DEMO / "records.jsonl").read_text().splitlines()[0]))
    record.update(dataset="trec", category="few_shot", example_id=row["_id"], answers=row["answers"])
    record.update(prediction=row["answers"][0], score=0.0)
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(json.dumps(record) + "\n")
    other = tmp_path / "other"  # a folder whose trec rows are not the run's: the label set is missing
    other.mkdir()
    (other / "trec.jsonl").write_text(json.dumps({**row, "_id": "another"}) + "\n")
    with pytest.raises(ValueError, match="label set"):
        rescore_run(run, str(other))
    assert rescore_run(run, str(longbench_dir)).changed == 1
    assert scores(run) == [1.0]
    # no data given and no run.json: the default source, the bundled offline slice, holds the row
    (run / "records.jsonl").write_text(json.dumps(record) + "\n")
    assert rescore_run(run, None).changed == 1


def test_cli_reports_and_rejects_a_non_run(demo_copy, tmp_path, longbench_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "lazybench.cli", "rescore", str(demo_copy), "--data-dir", str(longbench_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "scores changed" in proc.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "lazybench.cli", "rescore", str(empty)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "not a run folder" in proc.stderr


def test_a_sweep_folder_rescores_every_job_and_its_pareto_table(tmp_path, longbench_dir):
    from lazybench.runner.rescore import main

    sweep = Path(shutil.copytree(DEMO.parent / "schedule_search", tmp_path / "sweep"))
    for job in ("0", "1", "2", "3"):
        records = read_records(sweep / job / "records.jsonl").records
        records[0]["score"] = 0.5
        (sweep / job / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (sweep / "pareto_schedules.md").write_text("stale")
    assert main([str(sweep), "--data-dir", str(longbench_dir)]) == 0
    for job in ("0", "1", "2", "3"):
        first = read_records(sweep / job / "records.jsonl").records[0]
        assert first["score"] == score_example(first["dataset"], first["prediction"], first["answers"])
    assert (sweep / "pareto_schedules.md").read_text().startswith("## Pareto set of")


def test_a_running_run_is_not_rewritten(demo_copy, longbench_dir):
    import fcntl

    from lazybench.runner import RunConfigError

    before = (demo_copy / "records.jsonl").read_bytes()
    with open(demo_copy / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running lazybench holds it
        with pytest.raises(RunConfigError, match="another lazybench process"):
            rescore_run(demo_copy, str(longbench_dir))
    assert (demo_copy / "records.jsonl").read_bytes() == before
