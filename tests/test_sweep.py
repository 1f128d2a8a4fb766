"""Sweeps: the schedule_sweep preset, sweep directory naming, and a 2-job joblib multirun on CPU."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.testing import compose_cfg, run_tiny_multirun


def test_schedule_sweep_preset_is_a_multirun_over_schedules():
    cfg = compose_cfg(["experiment=schedule_sweep"], hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    assert set(params) == {"method.schedule.keep", "method.schedule.boundaries"}
    assert cfg.method.name == "lazyllm" and cfg.name.startswith("schedule_sweep-")
    assert cfg.hydra.sweep.dir == "runs/sweeps/schedule_sweep-smollm2-135m-smoke"


def test_joblib_multirun_two_schedules(tiny_model, longbench_dir, tmp_path):
    out = tmp_path / "runs"
    proc = run_tiny_multirun(
        tiny_model, longbench_dir, out, "sweep", ["triviaqa"],
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "method.schedule.keep=[0.7,0.4,0.1],[0.5,0.3,0.1]"],
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = out / "sweeps" / "tiny-sweep"
    assert (sweep / "multirun.yaml").is_file()
    files = sorted(sweep.rglob(RECORDS_FILE))
    assert [f.relative_to(sweep).as_posix() for f in files] == ["0/records.jsonl", "1/records.jsonl"]
    for f, keep in zip(files, ["0.3:0.7,0.6:0.4", "0.3:0.5,0.6:0.3"]):
        labels = [r["method_label"] for r in read_records(f).records]
        assert labels[0] == "baseline" and keep in labels[1] and len(labels) == 2
        for name in ("config.yaml", "run.json", "summary.md", "summary_by_category.csv"):
            assert (f.parent / name).is_file()


def test_a_sweep_job_dir_is_resumed_only_by_the_same_job(tmp_path):
    from lazybench.runner.config import RunConfigError, check_resumable

    cfg = OmegaConf.create({"model": {"name": "m"}, "suite": {"name": "s"}, "seed": 0, "resume": True})
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    job = ["method.schedule.keep=[0.7,0.4,0.1]", "suite.limit=1"]
    (tmp_path / "run.json").write_text(json.dumps({"overrides": job}))
    records = [{"method_label": "baseline", "method_params": {}}]
    check_resumable(tmp_path, cfg, [], records, [*reversed(job), "progress=false", "threads=1"])  # same point
    with pytest.raises(RunConfigError, match="the sweep's points changed"):
        check_resumable(tmp_path, cfg, [], records, ["method.schedule.keep=[0.6,0.3,0.1]", "suite.limit=1"])
    check_resumable(tmp_path, cfg, [], [], ["method.schedule.keep=[0.6,0.3,0.1]"])  # nothing recorded yet
