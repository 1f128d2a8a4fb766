"""The TTFT benchmark command runs end to end (on a toy shape) and writes its table; no timing is asserted."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lazybench.bench.ttft import SCHEDULES, main


def test_benchmark_writes_every_configuration(tmp_path) -> None:
    main(["--model", "tiny-llama", "--device", "cpu", "--dtype", "float32", "--lengths", "48",
          "--repeats", "1", "--warmups", "0", "--decode-steps", "2", "--out", str(tmp_path), "--tag", "t"])  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["config"] for r in rows] == ["baseline", *SCHEDULES, "static-default"]
    by_config = {r["config"]: r for r in rows}
    assert float(by_config["baseline"]["speedup"]) == 1.0
    # pruning configurations really kept fewer tokens, and the ideal speedup says so
    assert float(by_config["lazyllm-default"]["flop_ideal_speedup"]) > 1.3
    assert float(by_config["lazyllm-keep1.0"]["flop_ideal_speedup"]) == 1.0
    assert float(by_config["static-default"]["revived_per_decode_step"]) == 0.0
    assert (tmp_path / "t.md").read_text().count("| 48 |") == len(rows)


def test_benchmark_measures_both_decode_reads(tmp_path) -> None:
    main(["--model", "tiny-llama", "--device", "cpu", "--dtype", "float32", "--lengths", "40",
          "--repeats", "1", "--warmups", "0", "--decode-steps", "2", "--decode-read", "both",
          "--out", str(tmp_path), "--tag", "b"])  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    reads = {(r["config"], r["decode_read"]) for r in rows}
    # configurations that prune are measured both ways; the others read no pruned cache
    assert {
        ("lazyllm-default", "masked"),
        ("lazyllm-default", "gather"),
        ("static-default", "gather"),
    } <= reads
    assert ("baseline", "any") in reads and ("lazyllm-keep1.0", "any") in reads
    assert len(rows) == 2 + 2 * (len(SCHEDULES) - 1 + 1)
    by_read = {r["decode_read"]: r for r in rows if r["config"] == "lazyllm-default"}
    assert by_read["masked"]["pct_prompt_computed"] == by_read["gather"]["pct_prompt_computed"]


def test_revival_profile_writes_windows(tiny_model, longbench_dir, tmp_path) -> None:
    from lazybench.bench.revival import main as revival_main

    revival_main(["--model", str(tiny_model), "--tokens", "96", "--new-tokens", "9", "--window", "4",
                  "--data-dir", str(longbench_dir), "--out", str(tmp_path)])  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "revival_cpu.csv").open()))
    assert [r["steps"] for r in rows] == ["1-4", "5-8"]
    assert all(float(r["revived_per_step"]) >= 0 for r in rows)


def test_overhead_benchmark_writes_paired_ratios(tmp_path) -> None:
    from lazybench.bench.overhead import COMPARISONS
    from lazybench.bench.overhead import main as overhead_main

    overhead_main(["--model", "tiny-llama", "--device", "cpu", "--dtype", "float32", "--lengths", "32", "64",
                   "--rounds", "3", "--warmups", "0", "--decode-steps", "2", "--out", str(tmp_path), "--tag", "o"])  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert [(r["prompt_tokens"], r["comparison"]) for r in rows] == [
        (n, c[0]) for n in ("32", "64") for c in COMPARISONS
    ]
    for r in rows:
        assert (
            float(r["ttft_overhead_q1_pct"])
            <= float(r["ttft_overhead_pct"])
            <= float(r["ttft_overhead_q3_pct"])
        )
    # the decode ratio exists only where both sides are engine runs
    assert [r["decode_overhead_pct"] != "" for r in rows[:3]] == [False, False, True]
    assert (tmp_path / "o.md").read_text().count("| 64 |") == 3


def test_overhead_benchmark_rejects_zero_rounds(tmp_path) -> None:
    from lazybench.bench.overhead import main as overhead_main

    with pytest.raises(SystemExit):
        overhead_main(["--model", "tiny-llama", "--rounds", "0", "--out", str(tmp_path)])


# --- scripts/device_bench.sh: checked here, so that a typo cannot reach a lent GPU ----------------

REPO = Path(__file__).resolve().parents[1]


def _device_script(tmp_path: Path, timeout: int = 400, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    out = tmp_path / "out"
    full_env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "OMP_NUM_THREADS": "1", **env}
    proc = subprocess.run(["bash", "scripts/device_bench.sh"], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    report = (out / "device_bench.md").read_text()
    return proc, report


def test_device_script_dry_run_parses_every_gpu_command(tmp_path, longbench_dir) -> None:
    proc, report = _device_script(tmp_path, DRY="1", DATA_DIR=str(longbench_dir))
    assert proc.returncode == 0, report + proc.stderr[-2000:]
    status = [line for line in report.splitlines() if line.startswith("- [")]
    assert not [s for s in status if s.startswith(("- [FAILED]", "- [skipped]"))], status
    assert status[0].startswith("- [ok] smoke (cpu, float32)")  # the smoke snippet itself ran
    host = REPO / "lazybench" / "bench" / "host.py"
    assert any(s.startswith("- [ok] host" if host.exists() else "- [absent] host") for s in status)
    ttft = [s for s in status if s.startswith("- [ok] ttft")]
    assert [s.split(" (")[0] for s in ttft] == [
        "- [ok] ttft llama2-7b, 3500 tokens", "- [ok] ttft xgen-7b, 3500 tokens", "- [ok] ttft xgen-7b, 7500 tokens",
    ]  # fmt: skip
    assert any(s.startswith("- [ok] runner: lazybench, random llama2-7b on cuda") for s in status)
    assert any(s.startswith("- [ok] overhead") for s in status)
    log = (tmp_path / "out" / "device_bench.log").read_text()
    # the GPU command lines were parsed, not CPU stand-ins; the runner's dry run read the 7B shape
    assert log.count("arguments parse: lazybench.bench.ttft") == 3
    assert "'device': 'cuda', 'dtype': 'bfloat16'" in log and "'lengths': [7500]" in log
    assert "llama, 32 layers" in log and "prompt tokens: min 3500" in log
    assert (tmp_path / "out" / "raw.tar.gz").is_file()
    assert len(list((tmp_path / "out").iterdir())) <= 8  # what the device tool returns


def test_device_script_stops_at_once_without_cuda(tmp_path) -> None:
    proc, report = _device_script(tmp_path, timeout=120, CUDA_VISIBLE_DEVICES="", STEPS="smoke ttft")
    assert proc.returncode == 1
    assert "torch sees no CUDA device" in report and "ABORTED: the smoke step failed" in report
    log = (tmp_path / "out" / "device_bench.log").read_text()
    assert "=== ttft" not in log and "[ok] ttft" not in report  # nothing ran after the smoke


def test_device_script_records_a_failed_step_and_goes_on(tmp_path) -> None:
    fake = tmp_path / "python"  # an interpreter whose every command fails at once
    fake.write_text('#!/bin/sh\necho "boom: $*" >&2\nexit 3\n')
    fake.chmod(0o755)
    proc, report = _device_script(tmp_path, timeout=60, PYTHON=str(fake), DEVICE="cpu", SHAPES="tiny",
                                  STEPS="ttft overhead")  # fmt: skip
    assert proc.returncode == 1
    failed = [line for line in report.splitlines() if line.startswith("- [FAILED]")]
    assert [line.split(":")[0] for line in failed] == [
        "- [FAILED] ttft tiny-llama, 64 tokens", "- [FAILED] ttft tiny-llama, 128 tokens",
        "- [FAILED] overhead (engine vs plain forward)",
    ]  # fmt: skip
    assert all("exit status 3" in line and "boom: -m lazybench.bench." in line for line in failed)
    assert "finished in" in report and "3 failed or skipped step(s)" in report


def test_device_script_times_out_a_hung_step(tmp_path) -> None:
    fake = tmp_path / "python"  # an interpreter that hangs
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    proc, report = _device_script(tmp_path, timeout=60, PYTHON=str(fake), DEVICE="cpu", SHAPES="tiny",
                                  STEPS="overhead", MAX_STEP_S="1")  # fmt: skip
    assert proc.returncode == 1
    assert "- [FAILED] overhead (engine vs plain forward): timed out after 1 s" in report
