"""The lm-eval backend: the `lazyllm` model, the LongBench include dir, and the CLI wrapper (offline)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_models import tiny_model

import lazybench.lm_eval_backend as backend
from lazybench.engine import Schedule
from lazybench.lm_eval_backend import (
    LazyLLMLM,
    SamplingNotSupportedError,
    arg_value,
    cut_at_stop,
    lm_method_entry,
    lm_model_node,
)
from lazybench.lm_eval_backend.args import check_greedy
from lazybench.lm_eval_backend.tasks import MARKER, doc_to_text, load_longbench, process_results
from lazybench.records import read_records
from lazybench.tasks import PAPER_DATASETS, get_task, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def tiny_lm(tokenizer):
    model = tiny_model("llama", num_layers=4, vocab_size=len(tokenizer), max_position_embeddings=4096)
    return LazyLLMLM(pretrained=model, tokenizer=tokenizer, max_length=256)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tokenizer) -> Path:
    """A tiny random Llama saved as a folder, with SmolLM2's tokenizer: loadable by name."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    tiny_model(
        "llama", num_layers=4, vocab_size=len(tokenizer), max_position_embeddings=4096
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _task_manager(longbench_dir):
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(backend.TASKS_DIR),
        include_defaults=False,
        metadata={"longbench_dir": str(longbench_dir)},
    )


# ------------------------------------------------------------------------------------------------
# model_args and generation kwargs


def test_registered_on_import():
    from lm_eval.api.registry import get_model

    assert get_model("lazyllm") is LazyLLMLM


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0.3:0.6:0.9", [0.3, 0.6, 0.9]),
        ("8:16", [8, 16]),
        (0.5, 0.5),
        ("depth", "depth"),
        ([8, 16], [8, 16]),
    ],
)
def test_arg_value(value, expected):
    """Values typed as the runner's overrides (YAML), ':' standing for ',' inside a value."""
    assert arg_value(value) == expected


def test_method_from_model_args_is_the_runners():
    """`method=` + the method's fields build the entry the runner builds from the same method node."""
    from omegaconf import OmegaConf

    from lazybench.runner.config import RunConfigError, resolve_methods

    entry = lm_method_entry(
        "lazyllm",
        {"schedule.boundaries": "8:16:24", "schedule.keep": "0.8:0.5:0.2", "schedule.unit": "layer"},
    )
    assert entry.method.schedule == Schedule(boundaries=(8, 16, 24), keep=(0.8, 0.5, 0.2), unit="layer")
    cfg = OmegaConf.create(
        {
            "method": {
                "name": "lazyllm",
                "schedule": {"boundaries": [8, 16, 24], "keep": [0.8, 0.5, 0.2], "unit": "layer"},
            }
        }
    )
    runner = resolve_methods(cfg)[0][-1]
    assert (entry.label, entry.params) == (runner.label, runner.params)
    # missing parts come from the LazyLLM class's defaults, as for the runner
    assert lm_method_entry("lazyllm", {"schedule.keep": "0.9:0.5:0.2"}).method.schedule.boundaries == (
        0.3,
        0.6,
        0.9,
    )
    assert lm_method_entry("random_drop", {"keep": 0.5}).params["keep"] == 0.5
    with pytest.raises(RunConfigError, match="increas"):
        lm_method_entry("lazyllm", {"schedule.boundaries": "0.3:0.6", "schedule.keep": "0.4:0.7"})
    full = lm_method_entry("lazyllm", {"schedule.boundaries": "[]", "schedule.keep": "[]"})
    assert full.method.schedule == Schedule.full()  # what the profiler prints for "no pruning"
    with pytest.raises(RunConfigError, match="unknown method"):
        lm_method_entry("nope", {})
    with pytest.raises(RunConfigError, match="no parameter"):
        lm_method_entry("lazyllm", {"boundaries": "0.5"})


def test_model_from_model_args_is_the_runners():
    """`pretrained=` is the runner's model= (a conf/model key or a name); model fields override it."""
    from lazybench.conf_groups import model_node

    assert lm_model_node("llama2-7b-chat", {}) == model_node("llama2-7b-chat")
    node = lm_model_node("smollm2-135m", {"max_length": 300, "chat_style": "none"})
    assert node == model_node("smollm2-135m", ["model.max_length=300", "model.chat_style=none"])
    assert lm_model_node("some/hub-model", {}).name == "some/hub-model"


def test_greedy_only():
    # lm-eval's own longbench tasks write temperature 1 with do_sample false: greedy
    check_greedy({"until": [], "max_gen_toks": 4, "do_sample": False, "temperature": 1.0})
    check_greedy({"temperature": 0.0})
    for bad in ({"do_sample": True}, {"temperature": 0.7}, {"num_beams": 4}):
        with pytest.raises(SamplingNotSupportedError, match="greedi"):
            check_greedy(bad)
    with pytest.raises(ValueError, match="repetition_penalty"):
        check_greedy({"repetition_penalty": 1.1})


def test_cut_at_stop():
    assert cut_at_stop("Paris.\n\nQuestion: x", ["\n\n", "Question:"]) == "Paris."
    assert cut_at_stop("abc", []) == "abc"
    assert cut_at_stop("abc", [""]) == "abc"


def test_loglikelihood_not_implemented(tiny_lm):
    with pytest.raises(NotImplementedError, match="generate_until only"):
        tiny_lm.loglikelihood([])
    with pytest.raises(NotImplementedError, match="loglikelihood_rolling"):
        tiny_lm.loglikelihood_rolling([])


def test_generate_until_generic_prompt(tiny_lm):
    """A plain lm-eval request (not a lazybench row): until honoured, max_gen_toks honoured, truncation."""
    req = SimpleNamespace(
        args=("word " * 400, {"until": ["\n"], "max_gen_toks": 3}), doc={}, task_name="t", doc_id=0
    )
    n_before = len(tiny_lm.records)
    (out,) = tiny_lm.generate_until([req])
    assert "\n" not in out
    rec = tiny_lm.records[n_before]
    assert rec["new_tokens"] <= 3 and rec["truncated"] and rec["prompt_tokens"] <= 256
    with pytest.raises(SamplingNotSupportedError):
        tiny_lm.generate_until([SimpleNamespace(args=("x", {"do_sample": True}), doc={})])


# ------------------------------------------------------------------------------------------------
# the include dir


def test_include_dir_is_up_to_date():
    assert backend.stale_files() == [], (
        "run: python -m lazybench.lm_eval_backend.write_tasks --write lazybench/data/lm_eval_tasks"
    )
    names = {p.name for p in backend.TASKS_DIR.iterdir() if p.suffix == ".yaml"}
    assert {f"lazybench_{d}.yaml" for d in PAPER_DATASETS} <= names
    assert len(names) == 16 + 6 + 1


def test_write_include_dir_bakes_data_dir(tmp_path, longbench_dir):
    out = backend.write_include_dir(longbench_dir, tmp_path / "inc")
    text = (out / "lazybench_hotpotqa.yaml").read_text()
    assert f'lazybench_data_dir: "{Path(longbench_dir).resolve()}"' in text
    assert (out / "utils.py").is_file()
    with pytest.raises(FileNotFoundError):
        backend.write_include_dir(tmp_path / "missing", tmp_path / "inc2")


def test_hooks(longbench_dir):
    rows = load_longbench("trec", longbench_dir=str(longbench_dir))["test"]
    doc = rows[0]
    assert doc[MARKER] == "trec" and doc["all_classes"]
    assert doc_to_text(doc) == get_task("trec").fill(doc["context"], doc["input"])
    assert process_results(doc, [doc["answers"][0]]) == {"score": 100.0}
    assert process_results(doc, ["nothing at all"])["score"] == 0.0


def test_group_aggregation_tiny(tiny_lm, longbench_dir):
    """A category group through lm-eval's simple_evaluate, on a tiny random model (fast)."""
    from lm_eval import simple_evaluate

    res = simple_evaluate(
        model=tiny_lm,
        tasks=["lazybench_code_completion"],
        limit=1,
        task_manager=_task_manager(longbench_dir),
        gen_kwargs="max_gen_toks=2",
    )
    results = res["results"]
    lcc, repo = results["lazybench_lcc"]["score,none"], results["lazybench_repobench-p"]["score,none"]
    assert results["lazybench_code_completion"]["score,none"] == pytest.approx((lcc + repo) / 2)
    assert all(r["pruned"] for r in tiny_lm.records[-2:])


def test_cli_wrapper_writes_a_run_the_analysis_reads(
    tmp_path, tiny_folder, longbench_dir, monkeypatch, capsys
):
    """`lazybench lm-eval` = lm-eval's CLI + registration + include path, and a lazybench run directory:
    run records the analysis loads, whose numbers are lazybench.aggregate's, and `lazybench analyze`."""
    import lm_eval.tasks
    import pandas as pd

    from lazybench import aggregate
    from lazybench.analysis.cli import main as analyze
    from lazybench.analysis.load import load_runs
    from lazybench.lm_eval_backend.__main__ import main
    from lazybench.runner.config import RunConfigError

    monkeypatch.setenv("LAZYBENCH_LONGBENCH_DIR", str(longbench_dir))
    real = lm_eval.tasks.TaskManager
    # indexing lm-eval's ~thousands of built-in task YAMLs takes 10-40 s here and is not what is tested
    monkeypatch.setattr(lm_eval.tasks, "TaskManager", lambda *a, **k: real(*a, **k, include_defaults=False))
    out = tmp_path / "out"
    model_args = f"pretrained={tiny_folder},schedule.boundaries=1:2,schedule.keep=0.5:0.25,schedule.unit=layer,max_length=200"
    args = [
        "--model", "lazyllm", "--model_args", model_args,
        "--tasks", "lazybench_trec,lazybench_samsum", "--limit", "2", "--device", "cpu",
        "--gen_kwargs", "max_gen_toks=2", "--output_path", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    run_dir = out / "lazybench_run"
    records = load_runs(run_dir)
    assert len(records) == 4 and set(records["dataset"]) == {"trec", "samsum"}
    assert set(records["method_label"]) == {"lazyllm[L1,2:0.5,0.25]"} or records["method"].eq("lazyllm").all()
    assert records["method_params"].iloc[0]["schedule"] == {
        "boundaries": [1, 2],
        "keep": [0.5, 0.25],
        "unit": "layer",
    }
    assert (records["pct_prompt_computed"] < 100).all()
    info = json.loads((run_dir / "run.json").read_text())
    summary = aggregate.summarize(records, baseline=None)
    overall = aggregate.select_level(summary, aggregate.OVERALL).iloc[0]
    for name, value in info["accounting"]["overall"].items():
        assert value == pytest.approx(overall[name], nan_ok=True), name
    per_dataset = aggregate.select_level(summary, "dataset").set_index("group")
    for dataset, line in info["accounting"]["per_dataset"].items():
        assert line["score"] == pytest.approx(per_dataset.loc[dataset, "score"]), dataset
    # lm-eval's own scores of the same rows are the records' (x 100)
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    for dataset in ("trec", "samsum"):
        mine = 100 * records.loc[records["dataset"] == dataset, "score"].mean()
        assert results[f"lazybench_{dataset}"]["score,none"] == pytest.approx(mine)
    # the baseline joins the same run directory (as a runner run gains methods): analyze compares them
    base_args = [
        "--model", "lazyllm", "--model_args", f"pretrained={tiny_folder},method=baseline,max_length=200,output={run_dir}",
        "--tasks", "lazybench_trec,lazybench_samsum", "--limit", "2", "--device", "cpu",
        "--gen_kwargs", "max_gen_toks=2", "--output_path", str(tmp_path / "out_base"),
    ]  # fmt: skip
    assert main(base_args) == 0
    both = aggregate.summarize(load_runs(run_dir))
    lazy = aggregate.select_level(both, aggregate.OVERALL).set_index("method").loc["lazyllm"]
    assert (
        lazy["n_shared"] == 4 and lazy["ttft_speedup"] > 0
    )  # (a random tiny model scores 0: no relative score)
    assert [m["name"] for m in json.loads((run_dir / "run.json").read_text())["methods"]] == [
        "lazyllm",
        "baseline",
    ]
    capsys.readouterr()
    assert analyze([str(run_dir), "--no-plots"]) == 0
    assert "lazyllm" in capsys.readouterr().out
    assert isinstance(pd.read_json(run_dir / "records.jsonl", lines=True), pd.DataFrame)
    with pytest.raises(RunConfigError, match="already holds records of 'baseline'"):
        LazyLLMLM(pretrained=str(tiny_folder), method="baseline", output=str(run_dir))


# ------------------------------------------------------------------------------------------------
# the real offline model


@pytest.mark.slow
def test_smollm2_longbench_slice(tmp_path, longbench_dir, smollm2):
    """`model="lazyllm"` by name on SmolLM2: scores come back, and LazyLLM pruned."""
    from lm_eval import simple_evaluate

    res = simple_evaluate(
        model="lazyllm",
        model_args=f"pretrained=smollm2-135m,method=lazyllm,max_length=512,output={tmp_path / 'run'}",
        tasks=["lazybench_hotpotqa", "lazybench_samsum"],
        limit=1,
        task_manager=_task_manager(longbench_dir),
        gen_kwargs="max_gen_toks=3",
    )
    for name in ("lazybench_hotpotqa", "lazybench_samsum"):
        score = res["results"][name]["score,none"]
        assert 0.0 <= score <= 100.0
    acc = json.loads((tmp_path / "run" / "run.json").read_text())["accounting"]["overall"]
    assert acc["n_rows"] == 2
    assert acc["pruned_pct"] == 100.0
    assert 0 < acc["pct_prompt_computed"] < 100
    requests = read_records(tmp_path / "run" / "records.jsonl").records
    assert all(r["truncated"] and r["prompt_tokens"] <= 512 + 32 for r in requests)
    assert all(r["new_tokens"] <= 3 and r["ttft_s"] > 0 for r in requests)


@pytest.mark.slow
def test_prompt_matches_runner(smollm2, longbench_dir):
    """The prompt the model builds for a lazybench row is lazybench.tasks.build_prompt's, token for token."""
    from lazybench.tasks import build_prompt, load_examples

    model, tok = smollm2
    lm = LazyLLMLM(pretrained=model, tokenizer=tok, max_length=300)
    doc = load_longbench("hotpotqa", longbench_dir=str(longbench_dir))["test"][0]
    req = SimpleNamespace(args=(doc_to_text(doc), {"max_gen_toks": 1}), doc=doc)
    item = lm._prepare(req)
    ex = load_examples("hotpotqa", data_dir=longbench_dir, limit=1)[0]
    assert item["ids"] == build_prompt(get_task("hotpotqa"), ex, tok, 300, "chat_template").input_ids
    assert item["max_new"] == 1 and isinstance(item["ids"][0], int)


def test_lm_eval_and_the_runner_share_the_model_front_end(tiny_folder, longbench_dir, tmp_path):
    """Same model node -> same spec, tokenizer, EOS ids, chat style and context (lazybench.runner.frontend)."""
    from lazybench.runner.config import prepare
    from lazybench.runner.testing import compose_cfg, tiny_overrides

    plan = prepare(
        compose_cfg(tiny_overrides(tiny_folder, longbench_dir, tmp_path / "runs")), tmp_path / "run"
    )
    lm = LazyLLMLM(
        pretrained=str(tiny_folder), method="baseline", max_length=256, dtype="float32", device="cpu"
    )
    assert lm.front.spec == plan.spec
    assert (lm.eos_token_ids, lm.chat_style, lm.front.context_limit) == (
        plan.eos_token_ids,
        plan.chat_style,
        plan.context_limit,
    )
    assert lm.tokenizer("x")["input_ids"] == plan.tokenizer("x")["input_ids"]
