"""The analysis layer on hand-built records: every expected number is worked out in a comment.

Records here are fixture data written for the tests (run_id "test"), not measurements.
"""

import hashlib
import math
import re
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from lazybench.analysis import (
    dataset_table,
    load_runs,
    overall_table,
    pareto_frontier,
    per_row,
    select_level,
    summarize,
    table1,
    table2,
    to_markdown,
)
from lazybench.analysis.cli import main as analyze_main
from lazybench.analysis.fixture import write_fixture_run
from lazybench.analysis.plots import layer_profile, plot_probe_heatmap, probe_accuracy, schedule_points
from lazybench.analysis.trace import (
    deepest_stage,
    deepest_stage_html,
    plot_kept_per_stage,
    stages_html,
    trace_table,
)
from lazybench.records import RECORDS_FILE, RunRecord

CATEGORY = {"hotpotqa": "multi_doc_qa", "2wikimqa": "multi_doc_qa", "trec": "few_shot", "passkey": "probe"}


def rec(
    example_id,
    dataset,
    method,
    score,
    ttft,
    *,
    label=None,
    repeat=0,
    total=None,
    pct=100.0,
    match=None,
    layers=(4, 4),
    prompt=4,
    extra=None,
    params=None,
    model="test-model",
):
    compared = method != "baseline"
    return RunRecord(
        run_id="test",
        example_id=example_id,
        dataset=dataset,
        category=CATEGORY.get(dataset, "probe"),
        method=method,
        method_label=label or method,
        method_params=params or {},
        repeat=repeat,
        seed=repeat,
        model=model,
        prompt_tokens=prompt,
        truncated=False,
        ttft_s=ttft,
        decode_s=1.0,
        total_s=ttft + 1.0 if total is None else total,
        decode_step_mean_s=None,
        new_tokens=2,
        stop_reason="eos",
        pct_prompt_computed=pct,
        prefill_flop_fraction=pct / 100,
        pruned=pct < 100,
        computed_per_layer=list(layers),
        kv_tokens_per_layer=list(layers),
        prediction="x",
        answers=["x"],
        score=score,
        first_token_match=match if compared else None,
        first_token_kl=0.1 if compared else None,
        rouge_l_vs_baseline=0.9 if compared else None,
        extra=extra or {},
    )


def write_run(run_dir: Path, records, tail: str = "") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RECORDS_FILE
    path.write_text("".join(r.to_json() + "\n" for r in records) + tail, encoding="utf-8")
    return path


def hand_records():
    return [
        # baseline: hotpotqa h1 1.0, h2 0.5 -> 75; 2wikimqa 0.2 -> 20; trec 1.0 -> 100; passkey 1.0
        rec("h1", "hotpotqa", "baseline", 1.0, 2.0),
        rec("h2", "hotpotqa", "baseline", 0.5, 4.0),
        rec("w1", "2wikimqa", "baseline", 0.2, 6.0),
        rec("t1", "trec", "baseline", 1.0, 8.0),
        rec("p1", "passkey", "baseline", 1.0, 10.0, extra={"depth": 0.5, "target_tokens": 512}),
        # lazyllm: hotpotqa 1.0, 0.0 -> 50; 2wikimqa 0.4 -> 40; trec 0.5 -> 50; passkey 0.0
        rec("h1", "hotpotqa", "lazyllm", 1.0, 1.0, pct=60.0, match=True, layers=(4, 2)),
        rec("h2", "hotpotqa", "lazyllm", 0.0, 1.0, pct=70.0, match=False, layers=(4, 3)),
        rec("w1", "2wikimqa", "lazyllm", 0.4, 3.0, pct=80.0, match=True, layers=(4, 2)),
        rec("t1", "trec", "lazyllm", 0.5, 4.0, pct=50.0, match=True, layers=(4, 1)),
        rec(
            "p1",
            "passkey",
            "lazyllm",
            0.0,
            5.0,
            pct=40.0,
            match=False,
            extra={"depth": 0.5, "target_tokens": 512},
        ),
        # random token drop: h1 twice (scores 1.0 and 0.0, TTFT 1.0 and 3.0), h2 once; nothing else
        rec("h1", "hotpotqa", "random_token_drop", 1.0, 1.0, label="rtd", repeat=0, match=True),
        rec("h1", "hotpotqa", "random_token_drop", 0.0, 3.0, label="rtd", repeat=1, match=False),
        rec("h2", "hotpotqa", "random_token_drop", 1.0, 4.0, label="rtd", repeat=0, match=True),
    ]


@pytest.fixture
def run_dir(tmp_path):
    write_run(tmp_path / "run", hand_records())
    return tmp_path / "run"


@pytest.fixture
def summary(run_dir):
    return summarize(load_runs(run_dir))


def row(summary, label, group):
    hit = summary[(summary["method_label"] == label) & (summary["group"] == group)]
    assert len(hit) == 1, (label, group, hit)
    return hit.iloc[0]


# --- loading ---------------------------------------------------------------------------------------


def test_load_runs_finds_records_recursively_and_skips_a_half_written_last_line(tmp_path):
    write_run(tmp_path / "sweep" / "a", hand_records()[:2])
    write_run(tmp_path / "sweep" / "b" / "deep", hand_records()[2:4], tail='{"run_id": "te')
    with pytest.warns(UserWarning, match="half-written"):
        df = load_runs(tmp_path / "sweep")
    assert len(df) == 4
    assert sorted(df["run"].unique()) == ["a", "deep"]
    assert set(df["run_dir"]) == {str(tmp_path / "sweep" / "a"), str(tmp_path / "sweep" / "b" / "deep")}
    # None fidelity values become NaN; booleans become 1.0 / 0.0
    assert df["first_token_match"].isna().all()


def test_load_runs_fidelity_columns_are_numeric(run_dir):
    df = load_runs(run_dir)
    lazy = df[df["method"] == "lazyllm"].set_index("example_id")
    assert lazy.loc["h1", "first_token_match"] == 1.0 and lazy.loc["h2", "first_token_match"] == 0.0
    assert df["first_token_kl"].dtype == float


def test_load_runs_rejects_a_corrupt_middle_line_and_missing_paths(tmp_path):
    path = write_run(tmp_path / "run", hand_records()[:2])
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n{broken\n" + lines[1] + "\n")
    with pytest.raises(ValueError, match="malformed"):
        load_runs(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load_runs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        load_runs(tmp_path / "nowhere")


def test_same_folder_names_in_different_sweeps_get_distinct_run_names(tmp_path):
    write_run(tmp_path / "s1" / "run", hand_records()[:1])
    write_run(tmp_path / "s2" / "run", hand_records()[1:2])
    df = load_runs(tmp_path / "s1", tmp_path / "s2")
    assert sorted(df["run"].unique()) == ["s1/run", "s2/run"]


# --- scores ----------------------------------------------------------------------------------------


def test_dataset_and_category_scores(summary):
    assert row(summary, "baseline", "hotpotqa")["score"] == pytest.approx(75.0)
    assert row(summary, "baseline", "2wikimqa")["score"] == pytest.approx(20.0)
    # category = mean of its datasets: (75 + 20) / 2, (50 + 40) / 2
    assert row(summary, "baseline", "multi_doc_qa")["score"] == pytest.approx(47.5)
    assert row(summary, "lazyllm", "multi_doc_qa")["score"] == pytest.approx(45.0)
    assert row(summary, "lazyllm", "few_shot")["score"] == pytest.approx(50.0)
    # overall = mean of the paper categories; the probe stays out: (47.5 + 100) / 2, (45 + 50) / 2
    assert row(summary, "baseline", "overall")["score"] == pytest.approx(73.75)
    assert row(summary, "lazyllm", "overall")["score"] == pytest.approx(47.5)
    # the probe has its own category row
    assert row(summary, "lazyllm", "probe")["score"] == pytest.approx(0.0)


def test_relative_score_is_percent_of_baseline(summary):
    assert row(summary, "lazyllm", "overall")["relative_score"] == pytest.approx(100 * 47.5 / 73.75)
    assert row(summary, "lazyllm", "multi_doc_qa")["relative_score"] == pytest.approx(100 * 45.0 / 47.5)
    assert row(summary, "baseline", "overall")["relative_score"] == pytest.approx(100.0)
    # baseline scored 0 nowhere here, but a 0 baseline gives NaN rather than inf (see below)


def test_relative_score_is_nan_when_the_baseline_scores_zero(tmp_path):
    write_run(
        tmp_path / "r", [rec("t1", "trec", "baseline", 0.0, 1.0), rec("t1", "trec", "lazyllm", 1.0, 1.0)]
    )
    s = summarize(load_runs(tmp_path / "r"))
    assert math.isnan(row(s, "lazyllm", "trec")["relative_score"])


def test_ttft_speedup_is_pooled_not_a_mean_of_ratios(summary):
    # hotpotqa: baseline mean (2 + 4) / 2 = 3, lazyllm mean (1 + 1) / 2 = 1 -> 3
    assert row(summary, "lazyllm", "hotpotqa")["ttft_speedup"] == pytest.approx(3.0)
    # multi_doc_qa: baseline (2 + 4 + 6) / 3 = 4, lazyllm (1 + 1 + 3) / 3 = 5/3 -> 2.4
    assert row(summary, "lazyllm", "multi_doc_qa")["ttft_speedup"] == pytest.approx(2.4)
    # overall (no probe): baseline (2+4+6+8)/4 = 5, lazyllm (1+1+3+4)/4 = 2.25 -> 20/9 (mean of ratios: 2.5)
    assert row(summary, "lazyllm", "overall")["ttft_speedup"] == pytest.approx(20 / 9)
    assert row(summary, "baseline", "overall")["ttft_speedup"] == pytest.approx(1.0)


def test_generation_speedup_uses_total_time(summary):
    # total = ttft + 1: baseline overall mean (3+5+7+9)/4 = 6, lazyllm (2+2+4+5)/4 = 3.25
    assert row(summary, "lazyllm", "overall")["generation_speedup"] == pytest.approx(6 / 3.25)


def test_repeats_are_averaged_per_example_first_and_only_shared_examples_compared(summary):
    r = row(summary, "rtd", "hotpotqa")
    # h1 repeats average to 0.5, h2 is 1.0 -> 75 (a plain mean over the three records would give 66.67)
    assert r["score"] == pytest.approx(75.0)
    assert r["n_rows"] == 2 and r["n_records"] == 3 and r["n_shared"] == 2
    # TTFT: h1 (1 + 3) / 2 = 2, h2 4 -> mean 3 = baseline mean 3 -> 1.0 (record mean 8/3 would give 1.125)
    assert r["ttft_speedup"] == pytest.approx(1.0)
    # rtd ran only hotpotqa: its overall compares with the baseline on h1, h2 only: 75 / 75
    overall = row(summary, "rtd", "overall")
    assert overall["relative_score"] == pytest.approx(100.0)
    assert overall["ttft_speedup"] == pytest.approx(1.0)


def test_accounting_and_fidelity_means(summary):
    lazy = row(summary, "lazyllm", "overall")
    assert lazy["pct_prompt_computed"] == pytest.approx((60 + 70 + 80 + 50) / 4)
    assert row(summary, "lazyllm", "multi_doc_qa")["pct_prompt_computed"] == pytest.approx(70.0)
    assert lazy["first_token_match_pct"] == pytest.approx(75.0)
    assert lazy["first_token_kl"] == pytest.approx(0.1)
    assert lazy["pruned_pct"] == pytest.approx(100.0) and lazy["truncated_pct"] == 0.0
    assert math.isnan(row(summary, "baseline", "overall")["first_token_match_pct"])
    # rtd: h1 repeats (1, 0) -> 0.5, h2 1 -> 75%
    assert row(summary, "rtd", "overall")["first_token_match_pct"] == pytest.approx(75.0)


def test_per_row_collapses_repeats(run_dir):
    ex = per_row(load_runs(run_dir))
    h1 = ex[(ex["method_label"] == "rtd") & (ex["example_id"] == "h1")].iloc[0]
    assert h1["n_records"] == 2 and h1["score"] == pytest.approx(0.5) and h1["ttft_s"] == pytest.approx(2.0)


def test_levels_and_row_counts(run_dir):
    records = load_runs(run_dir)
    s = summarize(records)
    ds = select_level(s, "dataset").set_index(["method_label", "group"])
    assert ds.loc[("lazyllm", "2wikimqa"), "score"] == pytest.approx(40.0)
    overall = select_level(s, "overall").set_index("method_label")
    # overall counts the paper categories' rows only (the probe stays out); run_rows counts every row
    assert overall.loc["baseline", "n_rows"] == 4 and overall.loc["baseline", "run_rows"] == 5
    assert (s["data_source"] == "offline slice").all()  # no field, no run.json: the bundled rows
    with pytest.raises(ValueError, match="unknown level"):
        select_level(s, "row")


def test_speedups_are_per_run_against_that_runs_baseline(tmp_path):
    write_run(tmp_path / "a", [rec("t1", "trec", "baseline", 1, 4.0), rec("t1", "trec", "lazyllm", 1, 2.0)])
    write_run(tmp_path / "b", [rec("t1", "trec", "baseline", 1, 9.0), rec("t1", "trec", "lazyllm", 1, 1.0)])
    s = summarize(load_runs(tmp_path))
    lazy = s[(s["method_label"] == "lazyllm") & (s["group"] == "overall")].set_index("run")["ttft_speedup"]
    assert lazy["a"] == pytest.approx(2.0) and lazy["b"] == pytest.approx(9.0)


def test_a_run_without_baseline_gives_nan_comparisons_and_warns(tmp_path):
    write_run(tmp_path / "r", [rec("t1", "trec", "lazyllm", 1.0, 1.0)])
    with pytest.warns(UserWarning, match="no 'baseline'"):
        s = summarize(load_runs(tmp_path / "r"))
    r = row(s, "lazyllm", "overall")
    assert r["score"] == pytest.approx(100.0)
    assert math.isnan(r["ttft_speedup"]) and math.isnan(r["relative_score"]) and r["n_shared"] == 0


def test_probe_only_run_has_an_overall_over_the_probes(tmp_path):
    extra = {"depth": 0.0, "target_tokens": 256}
    write_run(
        tmp_path / "r",
        [
            rec("p1", "passkey", "baseline", 1.0, 2.0, extra=extra),
            rec("p1", "passkey", "lazyllm", 0.0, 1.0, extra=extra),
        ],
    )
    s = summarize(load_runs(tmp_path / "r"))
    assert row(s, "baseline", "overall")["score"] == pytest.approx(100.0)
    assert row(s, "lazyllm", "overall")["ttft_speedup"] == pytest.approx(2.0)


# --- Pareto frontier --------------------------------------------------------------------------------


def test_pareto_frontier():
    x = [1.0, 2.0, 1.5, 1.5, 2.0, np.nan, 3.0, 0.5]
    y = [100, 90, 95, 80, 90, 50, 70, 100]
    # (1.5, 80) is dominated by (2, 90); (0.5, 100) by (1, 100); equal points (2, 90) both stay; NaN never
    assert pareto_frontier(x, y).tolist() == [True, True, True, False, True, False, True, False]
    assert pareto_frontier([], []).tolist() == []
    with pytest.raises(ValueError):
        pareto_frontier([1, 2], [1])


# --- tables ----------------------------------------------------------------------------------------


def test_table1_layout_and_paper_numbers(summary):
    t = table1(summary, paper="llama2")
    assert list(t.columns) == [
        "run",
        "category",
        "method_label",
        "method",
        "paper_method",
        "n_rows",
        "score",
        "ttft_speedup",
        "relative_score",
        "paper_llama2_score",
        "paper_llama2_ttft_speedup",
    ]
    # paper categories present (paper order), then overall; the probe is not a Table 1 row
    assert list(pd.unique(t["category"])) == ["multi_doc_qa", "few_shot", "overall"]
    # methods in the paper's order within a category
    assert list(t[t["category"] == "multi_doc_qa"]["method_label"]) == ["baseline", "rtd", "lazyllm"]
    lazy = t[(t["category"] == "multi_doc_qa") & (t["method_label"] == "lazyllm")].iloc[0]
    assert lazy["paper_llama2_score"] == 22.31 and lazy["paper_llama2_ttft_speedup"] == 2.34
    assert lazy["score"] == pytest.approx(45.0) and lazy["ttft_speedup"] == pytest.approx(2.4)
    assert t[t["category"] == "overall"]["paper_llama2_score"].isna().all()
    x = table1(summary, paper="xgen")
    assert "paper_xgen_score" in x.columns and "paper_llama2_score" not in x.columns
    assert x[(x["category"] == "few_shot") & (x["method"] == "baseline")]["paper_xgen_score"].item() == 56.40
    with pytest.raises(ValueError, match="unknown paper model"):
        table1(summary, paper="llama3")


def test_table2_layout_has_paper_values_on_lazyllm_rows_only(summary):
    t = table2(summary, paper="llama2")
    assert list(t.columns) == [
        "run",
        "category",
        "method_label",
        "method",
        "paper_method",
        "n_rows",
        "pct_prompt_computed",
        "generation_speedup",
        "paper_llama2_pct_prompt_tokens_computed",
        "paper_llama2_generation_speedup",
    ]
    lazy = t[(t["category"] == "few_shot") & (t["method"] == "lazyllm")].iloc[0]
    assert lazy["paper_llama2_pct_prompt_tokens_computed"] == 69.98
    assert lazy["paper_llama2_generation_speedup"] == 1.28
    assert lazy["pct_prompt_computed"] == pytest.approx(50.0)
    assert t[t["method"] != "lazyllm"]["paper_llama2_generation_speedup"].isna().all()


def test_dataset_and_overall_tables(summary):
    d = dataset_table(summary, paper="llama2")
    base = d[(d["dataset"] == "hotpotqa") & (d["method"] == "baseline")].iloc[0]
    assert base["longbench_llama2_score"] == 25.4 and base["score"] == pytest.approx(75.0)
    assert d[d["method"] != "baseline"]["longbench_llama2_score"].isna().all()
    assert list(pd.unique(d["dataset"])) == ["hotpotqa", "2wikimqa", "trec", "passkey"]
    o = overall_table(summary)
    assert list(o["method_label"]) == ["baseline", "rtd", "lazyllm"]
    assert {"first_token_match_pct", "first_token_kl", "rouge_l_vs_baseline", "relative_score"} <= set(
        o.columns
    )


def test_to_markdown():
    frame = pd.DataFrame({"run": ["r", "r"], "a": ["x|y", "z"], "b": [1.23456, float("nan")]})
    assert to_markdown(frame) == "| a | b |\n|---|---:|\n| x\\|y | 1.23 |\n| z | – |\n"
    # known columns: the registry's header and decimals (lazybench.columns.COLUMNS)
    known = pd.DataFrame({"method_label": ["m"], "n_rows": [3], "first_token_kl": [0.123456]})
    assert to_markdown(known) == "| method | rows | 1st-token KL |\n|---|---:|---:|\n| m | 3 | 0.1235 |\n"


def test_paper_data_are_the_verbatim_copies():
    readme = (files("lazybench") / "data" / "paper" / "README.md").read_text(encoding="utf-8")
    expected = dict(re.findall(r"\| (\S+\.csv) \| `([0-9a-f]{64})` \|", readme))
    assert set(expected) == {"table1.csv", "table2.csv", "longbench_official_scores.csv"}
    for name, digest in expected.items():
        data = (files("lazybench") / "data" / "paper" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


# --- plot data ---------------------------------------------------------------------------------------


def test_layer_profile_normalises_by_prompt_length(tmp_path):
    write_run(
        tmp_path / "r",
        [
            rec("t1", "trec", "lazyllm", 1, 1.0, layers=(10, 5), prompt=10),
            rec("t2", "trec", "lazyllm", 1, 1.0, layers=(20, 20), prompt=20),
        ],
    )
    prof = layer_profile(load_runs(tmp_path / "r"))
    # layer 0: 100 and 100 -> 100; layer 1: 50 and 100 -> 75
    assert prof["pct_computed"].tolist() == pytest.approx([100.0, 75.0])


def test_probe_accuracy_and_no_heatmap_without_probes(run_dir, tmp_path):
    acc = probe_accuracy(load_runs(run_dir)).set_index("method_label")
    assert acc.loc["baseline", "accuracy"] == 100.0 and acc.loc["lazyllm", "accuracy"] == 0.0
    assert acc.loc["lazyllm", "depth"] == 0.5 and acc.loc["lazyllm", "target_tokens"] == 512
    write_run(tmp_path / "np", hand_records()[:2])
    assert plot_probe_heatmap(load_runs(tmp_path / "np")) is None


def test_probe_position_falls_back_to_the_probe_example_id(tmp_path):
    # records without depth / target_tokens in extra: read from lazybench.tasks.probes' id format
    write_run(
        tmp_path / "r",
        [
            rec("needle-len256-depth0.75-seed0", "needle", "baseline", 1.0, 1.0),
            rec("needle-len256-depth0.75-seed0", "needle", "lazyllm", 0.0, 1.0),
        ],
    )
    acc = probe_accuracy(load_runs(tmp_path / "r")).set_index("method_label")
    assert acc.loc["lazyllm", ["depth", "target_tokens", "accuracy"]].tolist() == [0.75, 256, 0.0]


def test_schedule_points_nominal_keep(tmp_path):
    sched = {"boundaries": [0.3, 0.6, 0.9], "keep": [0.7, 0.4, 0.1], "unit": "depth"}
    write_run(
        tmp_path / "r",
        [
            rec("t1", "trec", "baseline", 1, 2.0, layers=[8] * 30),
            rec("t1", "trec", "lazyllm", 1, 1.0, label="lazy-a", params={"schedule": sched}, layers=[8] * 30),
        ],
    )
    records = load_runs(tmp_path / "r")
    pts = schedule_points(records, summarize(records))
    # 30 layers: stages start at 9, 18, 27 -> (9*1 + 9*0.7 + 9*0.4 + 3*0.1) / 30 = 0.64
    assert pts["nominal_keep"].item() == pytest.approx(0.64)
    assert pts["ttft_speedup"].item() == pytest.approx(2.0)


# --- command line ------------------------------------------------------------------------------------


def test_cli_writes_tables_plots_and_report(tmp_path, capsys):
    run = tmp_path / "fixture_run"
    write_fixture_run(run)
    out = tmp_path / "out"
    assert analyze_main([str(run), "--out", str(out), "--paper", "xgen"]) == 0
    expected = {
        "report.md",
        "summary.csv",
        "runs.csv",
        "runs.md",
        "table1.csv",
        "table1.md",
        "table2.csv",
        "table2.md",
        "overall.csv",
        "overall.md",
        "datasets.csv",
        "datasets.md",
        "probes.csv",
        "probes.md",
        "pareto_ttft.png",
        "pareto_generation.png",
        "schedule_sweep.png",
        "layer_tokens.png",
        "probe_heatmap.png",
    }
    assert {p.name for p in out.iterdir()} == expected
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "paper_xgen_score" in printed and "FIXTURE DATA" in printed
    t1 = pd.read_csv(out / "table1.csv")
    assert "paper_xgen_ttft_speedup" in t1.columns


def test_cli_default_out_dir_and_errors(tmp_path, capsys):
    write_run(tmp_path / "run", hand_records())
    assert analyze_main([str(tmp_path / "run"), "--no-plots"]) == 0
    assert (tmp_path / "run" / "analysis" / "table1.md").exists()
    assert not list((tmp_path / "run" / "analysis").glob("*.png"))
    # the analysis folder written inside a run dir is not mistaken for records on a second pass
    assert analyze_main([str(tmp_path / "run"), "--no-plots"]) == 0
    (tmp_path / "empty").mkdir()
    assert analyze_main([str(tmp_path / "empty")]) == 2
    assert "no records.jsonl" in capsys.readouterr().err


# --- one example's trace -----------------------------------------------------------------------------


def stage(step, s, first, end, active, computed, revived=(), pruned=()):
    return SimpleNamespace(
        step=step,
        stage=s,
        first_layer=first,
        end_layer=end,
        active=list(active),
        computed=list(computed),
        revived=list(revived),
        pruned_to_aux=list(pruned),
    )


def toy_trace():
    # 4-token prompt, 2 stages (layers 0-1, 2-3). Prefill keeps 0 and 3 at stage 1; decode step 1
    # (new token at position 4) keeps 1, 3, 4 at stage 1, reviving 1 from the Aux Cache.
    return [
        stage(0, 0, 0, 2, [0, 1, 2, 3], [0, 1, 2, 3]),
        stage(0, 1, 2, 4, [0, 3], [0, 3], pruned=[1, 2]),
        stage(1, 0, 0, 2, [0, 1, 2, 3, 4], [4]),
        stage(1, 1, 2, 4, [1, 3, 4], [1, 4], revived=[1]),
    ]


def test_trace_table_and_deepest_stage():
    table = trace_table(toy_trace())
    assert table["active"].tolist() == [4, 2, 5, 3]
    assert table["revived"].tolist() == [0, 0, 0, 1] and table["pruned_to_aux"].tolist() == [0, 2, 0, 0]
    assert table["layers"].tolist() == ["0-1", "2-3", "0-1", "2-3"]
    assert deepest_stage(toy_trace(), 0, 4).tolist() == [1, 0, 0, 1]
    assert deepest_stage(toy_trace(), 1, 5).tolist() == [0, 1, 0, 1, 1]
    assert deepest_stage(toy_trace(), 0, 6).tolist() == [1, 0, 0, 1, -1, -1]


def test_trace_html_shades_kept_tokens_and_outlines_revived_ones():
    pieces = ["<a>", " b", "\n", " d", " e"]
    page = deepest_stage_html(pieces, toy_trace(), step=1)
    spans = re.findall(r"<span [^>]*>.*?</span>", page)
    assert len(spans) == 5
    assert "&lt;a&gt;" in spans[0] and "<br>" in spans[2]  # escaped, newline shown
    assert "outline" in spans[1] and not any("outline" in s for s in spans[:1] + spans[2:])
    # stage 1 (deepest) is the darkest shade, stage 0 the lightest
    assert "rgb(8, 48, 107)" in spans[1] and "rgb(222, 235, 247)" in spans[0]
    per_stage = stages_html(pieces[:4], toy_trace(), step=0)
    assert per_stage.count("<b>step 0, stage") == 2 and "2 pruned into the Aux Cache" in per_stage


def test_plot_kept_per_stage_draws_one_line_per_stage():
    fig = plot_kept_per_stage(toy_trace(), prompt_tokens=4)
    kept_axis = fig.axes[0]
    assert [line.get_ydata().tolist() for line in kept_axis.get_lines()[:2]] == [[4, 5], [2, 3]]
