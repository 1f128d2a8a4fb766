"""Resuming: a run killed with SIGKILL part-way, then re-run, ends with the same results as an
uninterrupted run; a half-written last record is dropped and reported; a finished run re-run does
nothing (and loads no model)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner import run as run_module
from lazybench.runner.testing import compose_cfg, tiny_overrides

KILL_AFTER = 3  # row 1 baseline, row 1 lazyllm, row 2 baseline; killed before row 2's lazyllm
COMPARED = [
    "n_rows",
    "n_records",
    "score",
    "pct_prompt_computed",
    "prefill_flop_fraction",
    "pruned_pct",
    "first_token_match_pct",
    "rouge_l_vs_baseline",
]


def _comparable(summary):
    cats = summary.by_category.set_index(["category", "method"])[COMPARED + ["first_token_kl"]]
    return cats.sort_index()


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_model, longbench_dir, tmp_path, monkeypatch):
    overrides = tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")
    run_dir = tmp_path / "runs" / "tiny-tiny"  # ${output_dir}/${model.id}-${suite.name}

    # 1. the real command, killed with SIGKILL right after its 3rd record
    proc = subprocess.run(
        [sys.executable, "-m", "lazybench.cli", *overrides, f"debug.sigkill_after_records={KILL_AFTER}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    records_path = run_dir / RECORDS_FILE
    assert len(read_records(records_path).records) == KILL_AFTER
    assert (run_dir / "config.yaml").is_file()  # written at the start
    # a kill in the middle of a write leaves half a line: simulate it
    with records_path.open("a", encoding="utf-8") as fh:
        fh.write('{"run_id": "tiny-tiny", "example_id": "minilongbench-')

    # 2. the same command again resumes: drops and reports the partial line, redoes only what is missing
    resumed = run_module.run(compose_cfg(overrides), run_dir)
    assert resumed.dropped_partial_line
    assert resumed.skipped_units == KILL_AFTER and resumed.new_records == 8 - KILL_AFTER
    records = read_records(records_path)
    assert not records.dropped_partial_line
    keys = [(r["example_id"], r["method_label"], r["repeat"]) for r in records.records]
    assert len(keys) == len(set(keys)) == 8
    # the row whose baseline was recorded before the kill still gets full fidelity (baseline recomputed)
    lazy = [r for r in records.records if r["method"] == "lazyllm"]
    assert all(r["first_token_kl"] is not None and r["first_token_match"] is not None for r in lazy)

    # 3. an uninterrupted run of the same config elsewhere gives the same table (timings aside)
    fresh = run_module.run(compose_cfg(overrides), tmp_path / "fresh")
    a, b = _comparable(resumed.summary), _comparable(fresh.summary)
    assert list(a.index) == list(b.index)
    assert a[COMPARED].equals(b[COMPARED])
    assert a["first_token_kl"].fillna(-1).to_numpy() == pytest.approx(
        b["first_token_kl"].fillna(-1).to_numpy(), abs=1e-6
    )
    fresh_preds = {
        (r["example_id"], r["method_label"]): r["prediction"]
        for r in read_records(fresh.records_path).records
    }
    assert {(r["example_id"], r["method_label"]): r["prediction"] for r in records.records} == fresh_preds

    # 4. a finished run re-run records nothing and never loads the model
    def boom(*args, **kwargs):
        raise AssertionError("model loaded although nothing was pending")

    monkeypatch.setattr("lazybench.models.load_model", boom)
    again = run_module.run(compose_cfg(overrides), run_dir)
    assert again.new_records == 0 and again.skipped_units == 8 and not again.dropped_partial_line
    assert (run_dir / "summary.md").read_text() and len(read_records(records_path).records) == 8


def test_adding_a_method_to_a_finished_run_reuses_its_baseline(tiny_model, longbench_dir, tmp_path):
    overrides = [*tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs"), "suite.datasets=[triviaqa]"]
    first = run_module.run(compose_cfg([*overrides, "method=baseline"]), tmp_path / "run")
    assert first.new_records == 2
    second = run_module.run(compose_cfg(overrides), tmp_path / "run")  # + lazyllm
    assert second.new_records == 2 and second.skipped_units == 2
    records = read_records(second.records_path).records
    assert [r["method"] for r in records] == ["baseline", "baseline", "lazyllm", "lazyllm"]
    assert all(r["first_token_kl"] is not None for r in records[2:])
