"""Sharded runs: shards of a run give the records and scores of the run unsharded, and read as one run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lazybench import aggregate as agg
from lazybench.analysis.load import load_run_config, load_runs
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.config import RunConfigError
from lazybench.runner.dryrun import dry_run
from lazybench.runner.merge import merge_run
from lazybench.runner.run import run
from lazybench.runner.testing import compose_cfg, run_tiny_multirun, tiny_overrides
from lazybench.shards import Shard, ShardError, shard_of

#: What a run's records must agree on, sharded or not (timings differ by nature).
SAME = ["run_id", "example_id", "dataset", "category", "method", "method_label", "repeat", "seed", "prompt_tokens",
        "truncated", "new_tokens", "stop_reason", "pct_prompt_computed", "prefill_flop_fraction", "pruned",
        "computed_per_layer", "kv_tokens_per_layer", "prediction", "answers", "score", "first_token_match",
        "first_token_kl", "rouge_l_vs_baseline", "data_source", "first_token_id"]  # fmt: skip
#: Summary columns that do not depend on timings.
SCORES = ["method_label", "level", "group", "n_rows", "n_records", "score", "relative_score",
          "pct_prompt_computed", "first_token_match_pct", "first_token_kl", "rouge_l_vs_baseline"]  # fmt: skip


def _sharded(tiny: list[str]) -> list[str]:
    """The tiny run with random drop over two seeds beside the default LazyLLM, one TTFT sample."""
    return [*tiny, "methods=[baseline,random_drop]", "repeats=2", "timing.prefill_repeats=1"]


def _frame(records: list[dict] | pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame(records).copy()
    df["first_token_id"] = [e["first_token_id"] for e in df["extra"]]
    df = df[SAME].sort_values(["example_id", "method_label", "repeat"]).reset_index(drop=True)
    return df.astype({"first_token_match": object}).where(df.notna(), None)


# --- assignment and config ---------------------------------------------------------------------


def test_rows_go_to_one_shard_by_a_hash_of_their_id():
    ids = [f"ds{d}-{i}" for d in range(4) for i in range(500)]
    for count in (1, 2, 8):
        owners = [[Shard(i, count).owns(x) for i in range(count)] for x in ids]
        assert all(sum(o) == 1 for o in owners)  # every row in exactly one shard
    sizes = pd.Series([shard_of(x, 8) for x in ids]).value_counts()
    assert len(sizes) == 8 and sizes.min() > 2000 / 8 * 0.75  # balanced: 250 expected, sd ~15
    # a row's shard is its id's alone: other rows added or removed move nothing
    assert [shard_of(x, 4) for x in ids[:10]] == [shard_of(x, 4) for x in ids[:10] + ["new-row"]][:10]
    assert not Shard().active and Shard(0, 1).run_dir(Path("r")) == Path("r")
    assert Shard(1, 4).run_dir(Path("r")) == Path("r/shards/1-of-4")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["shard.index=2", "shard.count=2"], "shard.index must be in 0..1 (shard.count=2), got 2"),
        (["shard.count=0"], "shard.count must be >= 1, got 0"),
        (["shard.index=-1", "shard.count=2"], "shard.index must be in 0..1"),
        (["shard.count=two"], "shard.count must be an integer, got 'two'"),
        (["+shard.size=3"], "shard has no key(s) ['size']"),
    ],
)
def test_bad_shard_values_are_one_line_before_any_weights(tiny, overrides, message, no_model_load):
    cfg = compose_cfg([*tiny, *overrides])
    with pytest.raises(RunConfigError) as err:
        run(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RunConfigError, match="shard"):
        dry_run(compose_cfg([*tiny, *overrides, "dry_run=true"]))


# --- two shards = one run ----------------------------------------------------------------------


def test_two_shards_give_the_records_and_scores_of_one_unsharded_run(tiny, tmp_path, capsys):
    whole = run(compose_cfg(_sharded(tiny)), tmp_path / "whole" / "tiny-tiny")
    parent = tmp_path / "runs" / "tiny-tiny"  # ${output_dir}/${name}: where shards go by default
    outcomes = [run(compose_cfg([*_sharded(tiny), f"shard.index={i}", "shard.count=2"])) for i in (0, 1)]
    assert [o.run_dir for o in outcomes] == [parent / "shards" / "0-of-2", parent / "shards" / "1-of-2"]
    per_shard = [read_records(o.records_path).records for o in outcomes]
    rows = [{r["example_id"] for r in recs} for recs in per_shard]
    assert rows[0] and rows[1] and not rows[0] & rows[1]  # both shards have rows, none twice
    assert all(shard_of(x, 2) == i for i, ids in enumerate(rows) for x in ids)
    info = [json.loads((o.run_dir / "run.json").read_text()) for o in outcomes]
    assert [i["shard"] for i in info] == [{"index": 0, "count": 2}, {"index": 1, "count": 2}]
    assert [i["rows"] for i in info] == [len(r) for r in rows]

    # the shards' records, read as one run, are the unsharded run's (run_id included: the run's name)
    merged = load_runs(parent)
    assert set(merged["run_dir"]) == {str(parent)} and set(merged["run"]) == {"tiny-tiny"}
    single = read_records(whole.records_path).records
    assert len(merged) == len(single) == 4 * (1 + 1 + 2)  # 4 rows x (baseline, lazyllm, random drop x2)
    pd.testing.assert_frame_equal(_frame(merged.to_dict("records")), _frame(single))

    # the merged run's summary: lazybench.aggregate over every shard, the same scores as unsharded
    outcome = merge_run(parent)
    assert outcome.records == len(single) and not outcome.shards.missing
    for name in (
        "summary.md",
        "summary_by_category.csv",
        "summary_by_dataset.csv",
        "config.yaml",
        "run.json",
    ):
        assert (parent / name).is_file(), name
    assert not (parent / RECORDS_FILE).exists()  # records stay in the shards
    for level in ("category", "dataset"):
        a = pd.read_csv(parent / f"summary_by_{level}.csv").drop(columns=["run_dir", "run"])
        b = pd.read_csv(whole.run_dir / f"summary_by_{level}.csv").drop(columns=["run_dir", "run"])
        cols = [c for c in SCORES if c in a.columns] + [level]
        pd.testing.assert_frame_equal(a[cols], b[cols])
    assert "merged from shards: all 2 shards present" in (parent / "summary.md").read_text()
    assert agg.run_info(parent)["shards"]["present"] == ["0-of-2", "1-of-2"]
    assert load_run_config(parent)["shard"] == {"index": None, "count": 2}

    # the merge verb and rescore of the merged run: shard by shard, then merged again
    from lazybench.cli import main

    recs = read_records(outcomes[1].records_path).records
    broken = [{**r, "score": 0.5} for r in recs]  # as if scored by an older metric
    outcomes[1].records_path.write_text("".join(json.dumps(r) + "\n" for r in broken))
    with pytest.raises(SystemExit) as exc:
        main(["rescore", str(parent)])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and f"{parent}: the shards' summaries merged" in out
    assert [r["score"] for r in read_records(outcomes[1].records_path).records] == [r["score"] for r in recs]
    a = pd.read_csv(parent / "summary_by_category.csv")
    b = pd.read_csv(whole.run_dir / "summary_by_category.csv")
    assert a["score"].tolist() == b["score"].tolist()
    with pytest.raises(SystemExit) as exc:
        main(["merge", str(parent / "shards" / "0-of-2"), "--no-plot"])  # a shard names its run
    assert (
        exc.value.code == 0
        and f"{parent}: {len(single)} records of 2 shards merged" in capsys.readouterr().out
    )

    # analyze and the protocol's select/report read the shards as the one run
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(parent), "--no-plots"])
    assert exc.value.code == 0 and (parent / "analysis" / "report.md").is_file()
    from lazybench.protocol.report import protocol_report, select_points

    rule = {"rule": "target", "target_speedup": 1.0, "speed": "flop_speedup"}
    selection = select_points(parent, rule, out=tmp_path / "points.yaml")
    assert set(selection.chosen["run_dir"]) == {str(parent)} and set(selection.chosen["n_rows"]) == {2}
    report = protocol_report(tmp_path / "points.yaml", parent, "llama2", plots=False)
    assert "reported on 4 rows" in report.markdown and "lazyllm (default)" in report.markdown


def test_missing_shards_are_said_and_mixed_shards_refused(tiny, tmp_path, capsys):
    parent = tmp_path / "runs" / "tiny-tiny"
    first = run(compose_cfg([*tiny, "shard.index=0", "shard.count=2", "timing.prefill_repeats=1"]))
    with pytest.warns(UserWarning, match=r"1 of 2 shards present \(missing 1-of-2\)"):
        records = load_runs(parent)
    assert set(records["example_id"]) == {r["example_id"] for r in read_records(first.records_path).records}
    from lazybench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["merge", str(parent), "--no-plot"])
    err = capsys.readouterr().err
    assert exc.value.code == 0 and "1 of 2 shards present (missing 1-of-2)" in err
    assert "1 of 2 shards present" in (parent / "summary.md").read_text()

    # a shard made with another config (here: another seed) is not part of this run
    other = parent / "shards" / "1-of-2"
    shutil.copytree(first.run_dir, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    (other / "config.yaml").write_text(
        yaml.safe_dump({**config, "seed": 7, "shard": {"index": 1, "count": 2}})
    )
    with pytest.raises(
        ShardError, match=r"shards 0-of-2 and 1-of-2 were made with different configs \(seed: 0 vs 7\)"
    ):
        load_runs(parent)
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(parent), "--no-plots"])
    assert exc.value.code == 2 and "different configs (seed: 0 vs 7)" in capsys.readouterr().err
    shutil.rmtree(other)
    shutil.copytree(first.run_dir, parent / "shards" / "0-of-3")
    with pytest.raises(ShardError, match=r"shards of 2 different shard counts \(2, 3\)"):
        load_runs(parent)

    # an unsharded run is not written over a sharded one, nor shards of another count beside them
    with pytest.raises(RunConfigError, match=r"holds a sharded run: shard.count=2"):
        run(compose_cfg([*tiny, "shard.count=1"]), parent)
    with pytest.raises(RunConfigError, match=r"holds shards of shard.count=2"):
        run(compose_cfg([*tiny, "shard.index=0", "shard.count=4"]), parent)


# --- launching and estimating ------------------------------------------------------------------


def test_joblib_multirun_puts_every_shard_under_the_run_dir(tiny_model, longbench_dir, tmp_path):
    out = tmp_path / "runs"
    proc = run_tiny_multirun(
        tiny_model, longbench_dir, out, "shards", ["hotpotqa", "qasper", "lcc"],
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "shard.index=0,1", "shard.count=2"], timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent = out / "tiny-shards"
    files = sorted(parent.rglob(RECORDS_FILE))
    assert [f.relative_to(parent).as_posix() for f in files] == [
        "shards/0-of-2/records.jsonl", "shards/1-of-2/records.jsonl",
    ]  # fmt: skip
    assert "lazybench merge" in proc.stdout
    records = load_runs(parent)
    assert records["example_id"].nunique() == 3 and len(records) == 6  # 3 rows x (baseline, lazyllm)
    assert merge_run(parent, plot=False).records == 6


def test_dry_run_prints_rows_and_hours_per_shard(tiny, tmp_path, no_model_load):
    text = dry_run(compose_cfg([*tiny, "shard.index=1", "shard.count=2", "dry_run=true"]))
    assert (
        "(shard 1-of-2)" in text
        and "shards: 2 jobs (this job: shard 1-of-2), each with its own warm-ups" in text
    )
    per = {line.split(":")[0].strip(): line for line in text.splitlines() if "-of-2: " in line}
    rows = {k: int(v.split(": ")[1].split(" rows")[0]) for k, v in per.items()}
    assert set(rows) == {"0-of-2", "1-of-2"} and sum(rows.values()) == 4
    assert "  whole run: 4 rows, CPU (this project's 2 cores) " in text and "CPU-hours (2 shards)" in text


def test_protocol_dry_run_per_shard_names_the_run_to_select_on(
    tiny_model, longbench_dir, tmp_path, no_model_load
):
    base = [
        o for o in tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs") if not o.startswith("suite.")
    ]
    text = dry_run(compose_cfg([
        "experiment=protocol_cpu", *base, "suite.datasets=[hotpotqa,triviaqa,lcc,qasper]", "suite.limit=1",
        "sweep.families=[lazyllm]", "sweep.target_speedups=[1.5]", "shard.count=2", "dry_run=true",
    ]))  # fmt: skip
    assert f"selection: lazybench protocol select {tmp_path / 'runs' / 'protocol_cpu-dev'} ->" in text
    whole = [line for line in text.splitlines() if line.startswith("  whole protocol: ")]
    assert len(whole) == 1 and "(2 shards; both phases" in whole[0]
    rows = [
        int(line.split(": ")[1].split(" rows")[0])
        for line in text.splitlines()
        if re.match(r"  \d-of-2: ", line)  # phase 1 per shard, then both phases
    ]
    assert len(rows) == 4 and sum(rows[2:]) == int(
        whole[0].split(": ")[1].split(" rows")[0]
    )  # both phases' rows, per shard
    assert not any(tmp_path.rglob(RECORDS_FILE))


@pytest.mark.parametrize("preset", ["paper_llama2", "paper_xgen"])
def test_paper_preset_dry_run_per_shard_and_whole_protocol(preset, no_model_load):
    text = dry_run(compose_cfg([f"experiment={preset}", "dry_run=true", "shard.count=8"]))
    assert "shards: 8 jobs (this job: shard 0-of-8)" in text
    lines = [line for line in text.splitlines() if "each of the 8 shards: about" in line]
    assert len(lines) == 2  # the dev sweep's shards; then both phases' per shard
    run_line = next(line for line in text.splitlines() if "whole run: about 1,875 rows" in line)
    whole = next(line for line in text.splitlines() if "whole protocol: about 3,750 rows" in line)
    assert "(8 shards; both phases" in whole

    def hours(line: str) -> float:
        return float(line.split("A100-class ")[1].split(",")[0].split(" ")[0])

    assert hours(lines[0]) * 8 == pytest.approx(hours(run_line), abs=0.05)
    assert hours(lines[1]) * 8 == pytest.approx(hours(whole), abs=0.05)
    assert hours(whole) > hours(run_line) > 0  # phase 2 adds the test rows


def test_a_shard_without_rows_finishes_at_once_and_is_not_missing(tiny, tmp_path, recwarn):
    overrides = [*tiny, "suite.limit=1", "shard.count=8", "timing.prefill_repeats=1"]
    outcomes = [run(compose_cfg([*overrides, f"shard.index={i}"])) for i in range(8)]
    assert sum(o.new_records > 0 for o in outcomes) == 2  # 2 rows: at most 2 shards hold any
    parent = tmp_path / "runs" / "tiny-tiny"
    assert len(load_runs(parent)) == 4 and not [w for w in recwarn if "shards present" in str(w.message)]
    assert not merge_run(parent, plot=False).shards.missing
