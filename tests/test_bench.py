"""The TTFT benchmark command runs end to end (on a toy shape) and writes its table; no timing is asserted."""

from __future__ import annotations

import csv

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
