"""Benchmarks behind one interface: the registry, a benchmark added in a test and run by the real runner,
the probe suite (options, errors, no middle truncation) run end to end, and the probe id format."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from lazybench.analysis import load_runs
from lazybench.analysis.plots import plot_probe_heatmap, probe_accuracy
from lazybench.records import read_records
from lazybench.runner import RunConfigError, conf_dir
from lazybench.runner import run as run_module
from lazybench.runner.testing import compose_cfg
from lazybench.tasks import (
    BENCHMARKS,
    PAPER_DATASETS,
    PROBE_TASKS,
    SUITES,
    Benchmark,
    Example,
    ProbeGrid,
    PromptTooLongError,
    Suite,
    TaskSpec,
    benchmark_of,
    build_prompt,
    get_task,
    list_tasks,
    load_tokenizer,
    register_benchmark,
    score_example,
)
from lazybench.tasks import registry as registry_module
from lazybench.tasks.probes import RECORD_META, parse_probe_id, probe_id
from lazybench.tasks.registry import LONGBENCH_RULES

GRID = {"depths": [0.0, 1.0], "lengths": [300]}


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")


# --- the registry -----------------------------------------------------------------------------------


def test_every_dataset_belongs_to_one_registered_benchmark():
    assert list(BENCHMARKS) == ["longbench", "probes"]
    assert list_tasks() == [*PAPER_DATASETS, *PROBE_TASKS]
    for name in list_tasks():
        spec = get_task(name)
        assert benchmark_of(name).task(name) is spec and spec.benchmark in BENCHMARKS
    assert BENCHMARKS["longbench"].datasets() == PAPER_DATASETS
    assert BENCHMARKS["probes"].datasets() == PROBE_TASKS


def test_one_line_per_longbench_dataset_and_probe_specs():
    assert [name for name, *_ in LONGBENCH_RULES] == list(PAPER_DATASETS)
    for name, category, metric, rules in LONGBENCH_RULES:
        spec = get_task(name)
        assert (spec.category, spec.metric, spec.chat) == (category, metric, rules.get("chat", True))
        assert spec.middle_truncation and spec.record_meta == () and spec.benchmark == "longbench"
    for name in PROBE_TASKS:
        spec = get_task(name)
        assert not spec.middle_truncation and spec.record_meta == RECORD_META and spec.benchmark == "probes"
        assert BENCHMARKS["probes"].max_new_tokens(name) == spec.max_new_tokens
    assert BENCHMARKS["probes"].category("needle") == "probe"


@pytest.mark.parametrize(
    ("name", "dataset", "metric", "message"),
    [
        ("bad", "bad_ds", "no_such_metric", "unknown metric 'no_such_metric'"),
        ("thief", "hotpotqa", "qa_f1", "already 'longbench'"),
        ("liar", "liar_ds", "qa_f1", "spec says benchmark 'longbench'"),
    ],
)
def test_registration_checks_specs(name, dataset, metric, message):
    owner = "longbench" if name == "liar" else name
    spec = TaskSpec(dataset, "x", metric, 4, "{context}", benchmark=owner)
    bench = type("Named", (Benchmark,), {"name": name, "specs": lambda self: (spec,)})()
    with pytest.raises(ValueError, match=message):
        register_benchmark(bench)
    assert name not in BENCHMARKS and get_task("hotpotqa").benchmark == "longbench"


# --- a benchmark of our own, through suites, the prompt builder, the scorer and the runner -------------


class Countdown(Benchmark):
    """Rows generated in code, a template of its own, a scorer that is not "best over answers"."""

    name = "countdown"

    def specs(self):
        return (
            TaskSpec(
                "countdown",
                category="toy",
                metric="contains",
                max_new_tokens=3,
                template="Numbers: {context}\n{input}",
                record_meta=("n",),
                benchmark="countdown",
            ),
        )

    def check_options(self, options, datasets):
        return {"rows": 3, **(options or {})}

    def load_rows(self, dataset, *, data_dir=None, tokenizer=None, options=None):
        return [
            Example(
                f"cd-{n}",
                dataset,
                "Which is last?",
                " ".join(map(str, range(n, 0, -1))),
                ["1", "one"],
                None,
                n,
                meta={"n": n},
            )  # fmt: skip
            for n in range(5, 5 + options["rows"])
        ]

    def finish_prompt(self, task, example, text):
        return text + " The last one is"  # after the chat wrapper

    def score(self, task, prediction, answers, all_classes):
        return sum(a in prediction for a in answers) / len(answers)  # every answer counts


@pytest.fixture
def countdown():
    saved = dict(BENCHMARKS), dict(registry_module._TASKS)
    yield register_benchmark(Countdown())
    for table, old in zip((BENCHMARKS, registry_module._TASKS), saved):
        table.clear()
        table.update(old)


def test_a_new_benchmark_plugs_in(countdown, tok):
    suite = Suite.from_dict({"name": "mine", "datasets": ["countdown", "trec"], "countdown": {"rows": 2}})
    assert suite.options == {"countdown": {"rows": 2}} and suite.max_new_tokens("countdown") == 3
    rows = suite.examples("countdown")
    assert [r.id for r in rows] == ["cd-5", "cd-6"]
    prompt = build_prompt("countdown", rows[0], tok, max_length=None, chat_style="chat_template")
    assert "Numbers: 5 4 3 2 1\nWhich is last?<|im_end|>" in prompt.text
    assert prompt.text.endswith("assistant\n The last one is")
    assert prompt.input_ids == tok(prompt.text, add_special_tokens=False).input_ids
    assert score_example("countdown", "1, not one", ["1", "one"]) == 1.0
    assert score_example("countdown", "just 1", ["1", "one"]) == 0.5  # its own rule, not the best answer


def test_the_runner_runs_a_new_benchmark(countdown, tiny, tmp_path):
    overrides = [o for o in tiny if not o.startswith("suite.")]
    cfg = compose_cfg(
        [
            *overrides,
            "suite.name=cd",
            "suite.datasets=[countdown]",
            "suite.limit=null",
            "+suite.countdown.rows=2",
        ]
    )
    outcome = run_module.run(cfg, tmp_path / "run")
    records = read_records(outcome.records_path).records
    assert len(records) == 4 and {r["dataset"] for r in records} == {"countdown"}
    assert {r["category"] for r in records} == {"toy"} and {r["extra"]["n"] for r in records} == {5, 6}
    assert all(r["score"] in (0.0, 0.5, 1.0) and r["new_tokens"] <= 3 for r in records)
    assert "| overall | baseline |" in outcome.table


# --- the probe suite --------------------------------------------------------------------------------


def test_probe_suite_config_and_errors():
    suite = Suite.from_dict(OmegaConf.to_container(OmegaConf.load(conf_dir() / "suite" / "probes.yaml")))
    assert suite.name == "probes" and suite.datasets == PROBE_TASKS and "probes" not in SUITES
    grid = suite.options["probes"]
    assert isinstance(grid, ProbeGrid) and grid.depths == (0.0, 0.25, 0.5, 0.75, 1.0) and grid.seeds == (0,)
    assert Suite.from_dict({"name": "p", "datasets": ["needle", "hotpotqa"], "probes": GRID}).datasets == (
        "needle",
        "hotpotqa",
    )
    bad = [
        ({}, "depth x length grid"),
        ({"probes": {"depths": [0.5]}}, "need lengths"),
        ({"probes": {**GRID, "lenghts": [1]}}, r"unknown probes options \['lenghts'\]"),
        ({"probes": {**GRID, "depths": [1.5]}}, "depth must be within"),
        ({"probes": {**GRID, "seeds": []}}, "seeds"),
        ({"probes": {**GRID, "haystack_datasets": ["passkey"]}}, "haystack_datasets"),
    ]
    for extra, message in bad:
        with pytest.raises(ValueError, match=message):
            Suite.from_dict({"name": "p", "datasets": ["passkey"], **extra})
    with pytest.raises(ValueError, match=r"options for \['probes'\]"):
        Suite.from_dict({"name": "p", "datasets": ["hotpotqa"], "probes": GRID})
    with pytest.raises(ValueError, match="unknown suite keys"):
        Suite.from_dict({"name": "p", "datasets": ["hotpotqa"], "probe": GRID})
    with pytest.raises(ValueError, match="tokenizer"):
        Suite.from_dict({"name": "p", "datasets": ["passkey"], "probes": GRID}).examples("passkey")


def test_probe_rows_for_every_seed_and_never_middle_truncated(tok, longbench_dir):
    suite = Suite.from_dict({"name": "p", "datasets": ["needle"], "probes": {**GRID, "seeds": [0, 1]}})
    rows = suite.examples("needle", data_dir=longbench_dir, tokenizer=tok)
    assert [r.id for r in rows] == [probe_id("needle", 300, d, s) for s in (0, 1) for d in (0.0, 1.0)]
    prompt = build_prompt("needle", rows[0], tok, max_length=100, chat_style="chat_template", truncate=False)
    assert not prompt.truncated and prompt.n_tokens > 300 and rows[0].meta["needle"] in prompt.text
    with pytest.raises(PromptTooLongError, match="context of 200"):
        build_prompt("needle", rows[0], tok, max_length=100, chat_style="chat_template", context_limit=200)


def test_the_runner_runs_the_probe_suite(tiny, tmp_path):
    overrides = [o for o in tiny if not o.startswith("suite.")]
    grid = ["suite.probes.lengths=[300]", "suite.probes.depths=[0.0,1.0]", "suite.max_new_tokens_cap=4"]
    outcome = run_module.run(compose_cfg([*overrides, "suite=probes", *grid]), tmp_path / "run")
    records = read_records(outcome.records_path).records
    assert len(records) == 8  # 2 probes x 2 depths x (baseline, lazyllm)
    for rec in records:
        assert rec["category"] == "probe" and rec["dataset"] in PROBE_TASKS
        assert rec["extra"]["target_tokens"] == 300 and rec["extra"]["depth"] in (0.0, 1.0)
        assert not rec["truncated"] and rec["prompt_tokens"] > 300  # model.max_length=256 does not cut
        assert parse_probe_id(rec["example_id"])["depth"] == rec["extra"]["depth"]
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["rows"] == 4
    loaded = load_runs(tmp_path / "run")
    acc = probe_accuracy(loaded)
    assert len(acc) == 8 and set(acc["n"]) == {1} and set(acc["accuracy"]) <= {0.0, 100.0}
    assert plot_probe_heatmap(loaded) is not None
    with pytest.raises(RunConfigError, match="depth must be within"):
        run_module.prepare(
            compose_cfg([*overrides, "suite=probes", "suite.probes.depths=[2.0]"]), tmp_path / "x"
        )


def test_probe_ids_round_trip():
    assert parse_probe_id(probe_id("needle", 2000, 0.25, 3)) == {
        "kind": "needle",
        "target_tokens": 2000,
        "depth": 0.25,
        "seed": 3,
    }
    assert parse_probe_id("minilongbench-hotpotqa-000") is None
