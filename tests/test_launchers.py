"""Hydra's submitit launcher, the path SLURM jobs take, exercised on this machine without SLURM.

`hydra/launcher=submitit_local` sends each job through the same submitit code as
`hydra/launcher=slurm`: the launcher pickles itself (the task function, the composed config and
Hydra's singleton state, the ConfigStore-built `method` group included) and a fresh Python process
unpickles and runs it, writing its logs and result pickle under `.submitit/<job id>/`. Only the
executor differs (a local subprocess instead of sbatch). The SLURM side is checked up to the sbatch
file: conf/hydra/launcher/slurm.yaml composes to the plugin's SLURM launcher, and the file it would
submit asks for what the YAML says; sbatch itself is never called. (The plugin is in the dev extra:
without it these tests fail, they are not skipped.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lazybench.analysis.load import load_runs
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.testing import compose_cfg, run_tiny_multirun


def _job_logs(sweep: Path) -> dict[str, str]:
    """{job id: its stdout log} of the submitit jobs under a sweep folder."""
    folder = sweep / ".submitit"
    assert folder.is_dir(), f"no submitit folder in {sweep}"
    logs = {}
    for job in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "%j"):
        for suffix in ("_submitted.pkl", "_0_result.pkl", "_0_log.out", "_0_log.err"):
            assert (job / f"{job.name}{suffix}").is_file(), f"{job}: no {job.name}{suffix}"
        logs[job.name] = (job / f"{job.name}_0_log.out").read_text()
    return logs


def test_submitit_local_multirun_runs_each_shard_as_a_submitit_job(
    tiny_model, longbench_dir, tmp_path, capsys
):
    # as on SLURM, from the folder the user works in, with the relative default-style output_dir
    proc = run_tiny_multirun(
        tiny_model, longbench_dir, "runs", "submitit", ["hotpotqa", "qasper", "lcc"],
        ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "shard.index=0,1", "shard.count=2"],
        timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Submitit 'local' sweep output dir : runs/sweeps/tiny-submitit" in proc.stdout

    # two submitit jobs, each a process of its own that ran one shard to the end
    logs = _job_logs(tmp_path / "runs" / "sweeps" / "tiny-submitit")
    assert len(logs) == 2
    done = sorted(line for log in logs.values() for line in log.splitlines() if "done; once all are" in line)
    parent = tmp_path / "runs" / "tiny-submitit"
    assert done == [f"lazybench: shard {i}-of-2 done; once all are: lazybench merge {parent}" for i in (0, 1)]
    assert all("Job completed successfully" in log for log in logs.values())

    # the shards' folders, under the run dir as with any launcher (not in the numbered sweep folders)
    files = sorted(parent.rglob(RECORDS_FILE))
    assert [f.relative_to(parent).as_posix() for f in files] == [
        "shards/0-of-2/records.jsonl", "shards/1-of-2/records.jsonl",
    ]  # fmt: skip
    labels = {r["method_label"] for f in files for r in read_records(f).records}
    assert labels == {"baseline", "lazyllm[depth[0.3:0.7,0.6:0.4,0.9:0.1]]"}  # `method` composed in the job

    # read back as one run: the loader, then `lazybench merge` and `lazybench analyze` as a user runs them
    records = load_runs(parent)
    assert set(records["run_dir"]) == {str(parent)}
    assert records["example_id"].nunique() == 3 and len(records) == 6  # 3 rows x (baseline, lazyllm)
    from lazybench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["merge", str(parent), "--no-plot"])
    assert exc.value.code == 0 and f"{parent}: 6 records of 2 shards merged" in capsys.readouterr().out
    assert "merged from shards: all 2 shards present" in (parent / "summary.md").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(parent), "--no-plots"])
    assert exc.value.code == 0 and (parent / "analysis" / "report.md").is_file()


class _Submitted(Exception):
    """Raised where submitit would call sbatch, carrying the submission file's text."""


def test_slurm_launcher_config_composes_to_the_submitit_slurm_launcher(tmp_path, monkeypatch):
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor

    from lazybench.cli import task

    cfg = compose_cfg(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", f"output_dir={tmp_path}"], hydra_config=True
    )
    node = cfg.hydra.launcher
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert node._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (node.gpus_per_node, node.tasks_per_node, node.cpus_per_task) == (1, 1, 8)
    assert (node.timeout_min, node.mem_gb, node.partition) == (720, 64, "gpu")
    assert node.max_num_timeout == 3  # (the config only: no cluster here to requeue a job)
    sweep = tmp_path / "sweeps" / "smollm2-135m-smoke"
    assert node.submitit_folder == f"{sweep}/.submitit/%j"

    # the launcher Hydra would build, run up to the sbatch call: the job array's file and pickles
    launcher = instantiate(node)  # (Hydra's plugin scan loads the module anew: compare by name)
    assert f"{type(launcher).__module__}.{type(launcher).__name__}" == node._target_
    launcher.setup(hydra_context=None, task_function=task, config=cfg)

    def no_sbatch(self, submission_file: Path) -> list[str]:  # submitit's last step before sbatch
        raise _Submitted(Path(submission_file).read_text())

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # as where srun is found
    monkeypatch.setattr(SlurmExecutor, "_make_submission_command", no_sbatch)
    with pytest.raises(_Submitted) as submitted:
        launcher.launch([["shard.index=0", "shard.count=2"], ["shard.index=1", "shard.count=2"]], 0)
    sbatch = submitted.value.args[0].splitlines()
    for flag in ("--gpus-per-node=1", "--ntasks-per-node=1", "--cpus-per-task=8", "--mem=64GB",
                 "--time=720", "--partition=gpu", "--nodes=1", "--job-name=lazybench", "--array=0-1%2",
                 "--signal=USR2@"):  # fmt: skip
        assert any(line.startswith(f"#SBATCH {flag}") for line in sbatch), flag
    run_line = next(line for line in sbatch if line.startswith("srun "))
    assert f"{sys.executable} -u -m submitit.core._submit {sweep}/.submitit/%j" in run_line  # this Python
    assert len(list((sweep / ".submitit").glob("*.pkl"))) == 2  # one pickled job per shard
