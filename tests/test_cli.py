"""The `lazybench` console command (the Hydra app): a full tiny run, and how bad input is reported."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lazybench import cli
from lazybench.runner import RunConfigError
from lazybench.runner.testing import tiny_overrides


def lazybench_cmd() -> list[str]:
    script = Path(sys.executable).parent / "lazybench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lazybench.cli"]


def run_cli(*args, timeout=120):
    return subprocess.run(
        [*lazybench_cmd(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_cli_runs_and_prints_the_category_table(tiny_model, longbench_dir, tmp_path):
    overrides = tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")
    proc = run_cli(
        *overrides, "plot=true", "progress=true", "warmups=1", "method.schedule.keep=[0.8,0.5,0.2]"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| category | method | rows | score | TTFT x |" in out
    assert (
        "| overall | baseline | 4 |" in out
        and "| overall | lazyllm[depth[0.3:0.8,0.6:0.5,0.9:0.2]] | 4 |" in out
    )
    assert "8 new records" in out
    run_dir = tmp_path / "runs" / "tiny-tiny"
    for name in (
        "records.jsonl",
        "config.yaml",
        "run.json",
        "summary.md",
        "speed_accuracy.png",
        ".hydra/config.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert "4/4" in proc.stderr and "TTFT x" in proc.stderr  # the tqdm bar: rows done/total, running speedup


def test_cli_config_error_is_one_line_and_exit_2(tiny_model, longbench_dir, tmp_path, monkeypatch, capsys):
    # cli.main() in-process (the console script's entry point) saves a subprocess start
    from hydra.core.global_hydra import GlobalHydra

    def boom(*args, **kwargs):
        raise AssertionError("model loaded although the config is invalid")

    monkeypatch.setattr("lazybench.models.load_model", boom)
    overrides = tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")
    # no Hydra logging handlers: they would outlive pytest's captured streams
    argv = ["lazybench", *overrides, "method.schedule.keep=[0.4,0.7,0.1]"]
    argv += ["hydra/job_logging=none", "hydra/hydra_logging=none", f"hydra.run.dir={tmp_path / 'hydra'}"]
    monkeypatch.setattr(sys, "argv", argv)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    GlobalHydra.instance().clear()
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        GlobalHydra.instance().clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    assert exc.value.code == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "lazybench: error: method: bad schedule for method 'lazyllm'" in err
    assert "must not increase" in err and "Traceback" not in err
    assert not any((tmp_path / "runs").rglob("records.jsonl"))


def test_cli_unknown_config_name_lists_the_options():
    proc = run_cli("model=nope", timeout=60)
    assert proc.returncode != 0
    assert "Could not find 'model/nope'" in proc.stderr and "llama2-7b-chat" in proc.stderr


def test_cli_prints_the_composed_config_without_running():
    proc = run_cli("--cfg", "job", "experiment=paper_xgen", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "name: Salesforce/xgen-7b-8k-inst" in proc.stdout and "warmups: 5" in proc.stdout


def test_task_reports_config_errors_as_exit_2(capsys):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {"methods": ["nosuchmethod"], "method": None, "repeats": 1, "seed": 0, "warmups": 0}
    )
    with pytest.raises(SystemExit) as exc:
        cli.task(cfg)
    assert exc.value.code == cli.EXIT_CONFIG_ERROR
    assert "lazybench: error: methods[0]: unknown method 'nosuchmethod'" in capsys.readouterr().err


def test_slurm_launcher_without_the_plugin_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if "submitit" in name else real(name, *a)
    )
    with pytest.raises(RunConfigError, match=r"lazybench\[slurm\]"):
        cli._check_launcher_plugins(["-m", "hydra/launcher=slurm"])
    cli._check_launcher_plugins(["hydra/launcher=joblib"])
