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
    cut_at_stop,
    method_params,
    parse_list,
)
from lazybench.lm_eval_backend.model import check_greedy
from lazybench.lm_eval_backend.tasks import MARKER, doc_to_text, load_longbench, process_results
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
        ("0.3:0.6:0.9", (0.3, 0.6, 0.9)),
        (0.5, (0.5,)),
        (9, (9.0,)),
        ([8, 16], (8.0, 16.0)),
        ("[0.3,0.6]", (0.3, 0.6)),
        ("", ()),
    ],
)
def test_parse_list(value, expected):
    assert parse_list(value, "keep") == expected


def test_parse_list_rejects_garbage():
    with pytest.raises(ValueError, match="separated by ':'"):
        parse_list("0.3:x", "keep")


def test_schedule_from_model_args():
    params = method_params("lazyllm", {"boundaries": "8:16:24", "keep": "0.8:0.5:0.2", "unit": "layer"})
    assert params["schedule"] == Schedule(boundaries=(8, 16, 24), keep=(0.8, 0.5, 0.2), unit="layer")
    assert method_params("lazyllm", {"keep": "0.9:0.5:0.2"})["schedule"].boundaries == (0.3, 0.6, 0.9)
    assert method_params("lazyllm", {"schedule": "full"})["schedule"] == Schedule.full()
    assert method_params("lazyllm", {"schedule": None})["schedule"] == Schedule.full()  # lm-eval's "none"
    assert method_params("lazyllm", {"boundaries": "8:16", "keep": "0.5:0.2", "unit": "layer"})[
        "schedule"
    ].boundaries == (8, 16)
    assert method_params("lazyllm", {}) == {}  # the method's own default schedule
    # for a method without a schedule, keep is the method's own parameter
    assert method_params("random_drop", {"keep": 0.5}) == {"keep": 0.5}
    with pytest.raises(ValueError, match="give both"):
        method_params("lazyllm", {"boundaries": "0.5"})
    with pytest.raises(ValueError, match="increas"):
        method_params("lazyllm", {"boundaries": "0.3:0.6", "keep": "0.4:0.7"})
    with pytest.raises(KeyError, match="unknown method"):
        method_params("nope", {})


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


def test_cli_wrapper(tmp_path, tiny_folder, longbench_dir, monkeypatch):
    """`python -m lazybench.lm_eval_backend` = lm-eval's CLI + registration + include path + accounting."""
    import lm_eval.tasks

    from lazybench.lm_eval_backend.__main__ import main

    monkeypatch.setenv("LAZYBENCH_LONGBENCH_DIR", str(longbench_dir))
    real = lm_eval.tasks.TaskManager
    # indexing lm-eval's ~thousands of built-in task YAMLs takes 10-40 s here and is not what is tested
    monkeypatch.setattr(lm_eval.tasks, "TaskManager", lambda *a, **k: real(*a, **k, include_defaults=False))
    out = tmp_path / "out"
    args = [
        "--model", "lazyllm",
        "--model_args", f"pretrained={tiny_folder},boundaries=1:2,keep=0.5:0.25,unit=layer,max_length=200",
        "--tasks", "lazybench_trec", "--limit", "1", "--device", "cpu",
        "--gen_kwargs", "max_gen_toks=2", "--output_path", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    acc = json.loads((out / "lazybench_accounting.json").read_text())
    assert acc["method_params"]["schedule"] == {"boundaries": [1, 2], "keep": [0.5, 0.25], "unit": "layer"}
    assert acc["summary"]["n_rows"] == 1 and acc["summary"]["pct_prompt_computed"] < 100
    assert list(out.rglob("results_*.json"))


# ------------------------------------------------------------------------------------------------
# the real offline model


@pytest.mark.slow
def test_smollm2_longbench_slice(tmp_path, longbench_dir, smollm2):
    """`model="lazyllm"` by name on SmolLM2: scores come back, and LazyLLM pruned."""
    from lm_eval import simple_evaluate

    acc_path = tmp_path / "acc.json"
    res = simple_evaluate(
        model="lazyllm",
        model_args=f"pretrained=smollm2-135m,method=lazyllm,max_length=512,accounting={acc_path}",
        tasks=["lazybench_hotpotqa", "lazybench_samsum"],
        limit=1,
        task_manager=_task_manager(longbench_dir),
        gen_kwargs="max_gen_toks=3",
    )
    for name in ("lazybench_hotpotqa", "lazybench_samsum"):
        score = res["results"][name]["score,none"]
        assert 0.0 <= score <= 100.0
    acc = json.loads(acc_path.read_text())
    assert acc["summary"]["n_rows"] == 2
    assert acc["summary"]["pruned_pct"] == 100.0
    assert 0 < acc["summary"]["pct_prompt_computed"] < 100
    assert all(r["truncated"] and r["prompt_tokens"] <= 512 + 32 for r in acc["requests"])
    assert all(r["new_tokens"] <= 3 and r["ttft_s"] > 0 for r in acc["requests"])


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
