"""One definition per number: a real tiny run, and every output that reports it agrees.

The run (random-init 4-layer model, 6 rows: two code datasets and one QA dataset) is made by the
real runner, timings and fidelity included. Its printed table, summary files, objective, the
analysis tables, the Pareto table and the lm-eval accounting must give the same overall score and
speedups for each method label. A random model's outputs score 0 everywhere, which would make the
score comparisons 0 == 0, so during the run the metric is replaced by a stand-in that gives each
row a different score from its gold answer (0.1 to 0.9); this tests the aggregation, not a metric.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lazybench import aggregate as agg
from lazybench.columns import COLUMNS
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner import run as run_module
from lazybench.runner.testing import compose_cfg, tiny_overrides

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ["score", "quality", "ttft_speedup", "generation_speedup", "pct_prompt_computed"]


@pytest.fixture(scope="module")
def tiny_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("agg")
    overrides = [
        *tiny_overrides(tiny_model, "offline", out / "runs"),  # the bundled slice
        "timing.prefill_repeats=1",  # one TTFT sample per unit: spread 0, nothing flagged by chance
        "suite.datasets=[lcc,repobench-p,hotpotqa]",
        "methods=[baseline,random_drop]",
        "repeats=2",
        f"objective=[{','.join(OBJECTIVES)}]",
    ]
    run_dir = out / "runs" / "job"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("lazybench.tasks.score_example", stand_in_score)
        outcome = run_module.run(compose_cfg(overrides), run_dir)
    return outcome, run_dir


def stand_in_score(dataset, prediction, answers, all_classes=None) -> float:
    """Test-made, not a metric: a score per row from its first gold answer's length."""
    return 0.1 + 0.08 * (len(answers[0]) % 11)


def overall(frame: pd.DataFrame) -> pd.DataFrame:
    return agg.select_level(frame, agg.OVERALL).set_index("method_label")


def markdown_rows(text: str, first: str) -> dict[str, dict[str, str]]:
    """The lines of a markdown table whose first cell is `first`, keyed by the "method" cell."""
    lines = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    head = [h.strip() for h in lines[0]]
    rows = [dict(zip(head, (c.strip() for c in line))) for line in lines[1:]]
    return {r["method"]: r for r in rows if r[head[0]] == first}


def test_every_output_gives_the_same_numbers(tiny_run, tmp_path):
    from lazybench.analysis import build_report, load_runs, overall_table, table1
    from lazybench.analysis import summarize as analysis_summarize
    from lazybench.lm_eval_backend.accounting import accounting as lm_eval_accounting
    from lazybench.runner.search import pareto_table

    outcome, run_dir = tiny_run
    ours = overall(outcome.summary.frame)
    labels = list(ours.index)
    assert labels[0] == "baseline" and len(labels) == 3 and ours["n_rows"].tolist() == [6, 6, 6]
    assert ours.loc[ours["method"] == "random_drop", "n_records"].tolist() == [12]  # 6 rows x 2 seeds
    assert ours["score"].gt(0).all()  # the comparisons below are not 0 == 0

    # overall = mean of the category scores, not the mean over datasets
    cats = outcome.summary.by_category.set_index(["category", "method_label"])["score"]
    dsets = outcome.summary.by_dataset.set_index(["dataset", "method_label"])["score"]
    for label in labels:
        assert ours.loc[label, "score"] == pytest.approx(
            (cats[("code_completion", label)] + cats[("multi_doc_qa", label)]) / 2
        )
        assert cats[("code_completion", label)] == pytest.approx(
            (dsets[("lcc", label)] + dsets[("repobench-p", label)]) / 2
        )

    numbers = ["score", "ttft_speedup", "generation_speedup"]
    # 1. the printed table and summary.md: the same text, the numbers rounded by the registry's decimals
    printed = markdown_rows(outcome.table, agg.OVERALL)
    in_md = markdown_rows((run_dir / "summary.md").read_text(), agg.OVERALL)
    assert printed == in_md and set(printed) == set(labels)
    for label in labels:
        for name in numbers:
            assert (
                printed[label][COLUMNS[name].header] == f"{ours.loc[label, name]:.{COLUMNS[name].decimals}f}"
            )
    # 2. summary_by_category.csv at full precision
    csv = pd.read_csv(run_dir / "summary_by_category.csv")
    csv = csv[csv["category"] == agg.OVERALL].set_index("method_label")
    # 3. the analysis layer (from the records on disk) and the files lazybench-analyze writes
    records = load_runs(run_dir)
    analysed = overall(analysis_summarize(records))
    report = build_report(records, tmp_path / "analysis", plots=False)
    written = pd.read_csv(tmp_path / "analysis" / "overall.csv").set_index("method_label")
    t1 = table1(report.summary)
    t1 = t1[t1["category"] == agg.OVERALL].set_index("method_label")
    for frame in (csv, analysed, written, overall_table(report.summary).set_index("method_label")):
        for name in [*numbers, "pct_prompt_computed", "first_token_match_pct", "first_token_kl"]:
            pd.testing.assert_series_equal(frame.loc[labels, name], ours[name], check_names=False, rtol=1e-12)
    pd.testing.assert_series_equal(t1.loc[labels, "score"], ours["score"], check_names=False)
    # 4. the objective the job returned to its sweeper (the method under test: lazyllm)
    primary = json.loads((run_dir / "run.json").read_text())["method_under_test"]
    assert outcome.objective == pytest.approx(tuple(ours.loc[primary, OBJECTIVES]))
    # 5. the Pareto table of the folder holding the job
    pareto = pareto_table(run_dir.parent).set_index("method_label")
    for name in [*numbers, "quality", "pct_prompt_computed"]:
        assert pareto.loc[primary, name] == pytest.approx(ours.loc[primary, name], rel=1e-12)
    # 6. the lm-eval backend's accounting of the same rows (requests without a baseline)
    raw = read_records(run_dir / RECORDS_FILE).records
    accounted = lm_eval_accounting([r for r in raw if r["method_label"] == primary])["overall"]
    for name in ("n_rows", "score", "ttft_s", "pct_prompt_computed", "prefill_flop_fraction", "pruned_pct"):
        assert accounted[name] == pytest.approx(ours.loc[primary, name], rel=1e-12)


def test_rows_say_where_they_came_from(tiny_run):
    outcome, run_dir = tiny_run
    assert "- rows: offline slice, 6 rows" in (run_dir / "summary.md").read_text()
    assert agg.source_text(outcome.summary.frame) == "offline slice, 6 rows"
    assert agg.data_source_of(None) == agg.data_source_of("/x/../shared/longbench/") == "offline slice"
    assert agg.data_source_of("hub") == "LongBench (hub)" and agg.data_source_of("/d") == "folder /d"
    # a record's own field wins over run.json
    records = [
        {**r, "data_source": "folder /elsewhere"} for r in read_records(run_dir / RECORDS_FILE).records
    ]
    assert agg.source_text(agg.summarize(records, run_dir=run_dir)) == "folder /elsewhere, 6 rows"


def test_noisy_timings_are_counted_and_footnoted(tiny_run, tmp_path):
    from lazybench.runner.summary import write_run_summaries

    _, run_dir = tiny_run
    copy = Path(shutil.copytree(run_dir, tmp_path / "job"))
    records = read_records(copy / RECORDS_FILE).records
    for record in records:  # the run measured real spreads: noise on a busy machine; set them here
        record["ttft_spread"] = 0.0
    lazy = [r for r in records if r["method"] == "lazyllm"]
    lazy[0]["ttft_spread"] = 2 * agg.SPREAD_LIMIT  # noisy
    lazy[1]["ttft_spread"] = agg.SPREAD_LIMIT / 2  # within the limit
    del lazy[2]["ttft_spread"]  # records older than the field: never flagged
    summary, _ = write_run_summaries(copy, records, plot=False)
    lines = overall(summary.frame)
    assert lines.loc[lazy[0]["method_label"], "noisy_rows"] == 1 and lines["noisy_rows"].sum() == 1
    by_dataset = summary.by_dataset.set_index(["dataset", "method_label"])["noisy_rows"]
    assert by_dataset[(lazy[0]["dataset"], lazy[0]["method_label"])] == 1
    md = (copy / "summary.md").read_text()
    assert "Noisy timings" in md and "noisy rows" in md
    assert "Noisy timings" not in (run_dir / "summary.md").read_text()  # one sample each: nothing flagged


def test_rows_outside_the_paper_categories_stay_out_of_overall(tiny_run):
    _, run_dir = tiny_run
    records = read_records(run_dir / RECORDS_FILE).records
    probe = [
        {**r, "dataset": "passkey", "category": "probe", "example_id": "p-" + r["example_id"], "score": 1.0}
        for r in records
    ]
    frame = agg.summarize(records + probe, run_dir=run_dir)
    base = agg.summarize(records, run_dir=run_dir)
    assert overall(frame)["score"].tolist() == pytest.approx(overall(base)["score"].tolist())
    assert overall(frame)["run_rows"].tolist() == [12, 12, 12]
    probe_only = overall(agg.summarize(probe, run_dir=run_dir))
    assert probe_only["score"].tolist() == [100.0, 100.0, 100.0]


def test_every_summary_column_is_named_and_documented():
    doc = (REPO / "docs" / "results_layout.md").read_text()
    for name in agg.SUMMARY_COLUMNS:
        assert name in COLUMNS, name
        assert f"`{name}`" in doc, f"docs/results_layout.md does not describe {name}"
    assert set(agg.OBJECTIVES) <= set(agg.SUMMARY_COLUMNS)
    assert math.isnan(agg.objective_values(pd.DataFrame(columns=agg.SUMMARY_COLUMNS), "x", ["score"])[0])


def test_the_runner_does_not_load_matplotlib_to_summarise():
    code = "import sys, lazybench.runner.run, lazybench.runner.search, lazybench.aggregate; print('matplotlib' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
