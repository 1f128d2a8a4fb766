"""The runner in-process: records, interleaving, fidelity, summaries, config tree, early errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from lazybench.conf_groups import group_options, method_node
from lazybench.methods import METHODS
from lazybench.records import RECORDS_FILE, RunRecord, read_records
from lazybench.runner import RunConfigError, conf_dir
from lazybench.runner import run as run_module
from lazybench.runner.config import resolve_methods
from lazybench.runner.fidelity import fidelity, first_token_kl, rouge_l_vs_baseline
from lazybench.runner.summary import summarize
from lazybench.runner.testing import compose_cfg
from lazybench.tasks import SUITES, Suite

LAZY = "lazyllm[depth[0.3:0.7,0.6:0.4,0.9:0.1]]"


# --- a whole run -------------------------------------------------------------------------------


def test_run_writes_interleaved_records_and_summaries(tiny, tmp_path):
    cfg = compose_cfg([*tiny, "objective=[score,ttft_speedup]"])
    outcome = run_module.run(cfg, tmp_path / "run")
    records = read_records(outcome.records_path).records
    assert outcome.new_records == len(records) == 8  # 2 datasets x 2 rows x (baseline, lazyllm)
    # interleaved per row, baseline first
    labels = [r["method_label"] for r in records]
    assert labels == ["baseline", LAZY] * 4
    ids = [r["example_id"] for r in records]
    assert ids[0::2] == ids[1::2] and len(set(ids)) == 4
    fields = {f for f in RunRecord.__dataclass_fields__}
    for rec in records:
        assert set(rec) == fields
        assert rec["model"] == str(tiny[0].split("=", 1)[1])
        assert rec["prompt_tokens"] > 200 and rec["truncated"] is True
        assert rec["ttft_s"] > 0 and rec["total_s"] >= rec["ttft_s"]
        assert 1 <= rec["new_tokens"] <= 4 and 0.0 <= rec["score"] <= 1.0
        assert set(rec["versions"]) >= {"torch", "transformers", "lazybench"}
        assert rec["device"] == "cpu" and rec["seed"] == 0 and rec["repeat"] == 0
        assert rec["answers"] and isinstance(rec["prediction"], str)
        if rec["method"] == "baseline":
            assert rec["pruned"] is False and rec["pct_prompt_computed"] == 100.0
            assert rec["first_token_match"] is None and rec["first_token_kl"] is None
        else:
            assert rec["pruned"] is True and rec["pct_prompt_computed"] < 100.0
            assert rec["method_params"]["schedule"]["keep"] == [0.7, 0.4, 0.1]
            assert isinstance(rec["first_token_match"], bool)
            assert rec["first_token_kl"] >= 0.0 and 0.0 <= rec["rouge_l_vs_baseline"] <= 1.0
    # no logits on disk
    assert "logits" not in outcome.records_path.read_text()
    for name in (
        "config.yaml",
        "run.json",
        "summary_by_dataset.csv",
        "summary_by_category.csv",
        "summary.md",
    ):
        assert (tmp_path / "run" / name).is_file(), name
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.model.id == "tiny" and saved.suite.limit == 2
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "finished" and [m["label"] for m in info["methods"]] == ["baseline", LAZY]
    cats = outcome.summary.by_category
    base_all = cats[(cats["category"] == "overall") & (cats["method_label"] == "baseline")].iloc[0]
    lazy_all = cats[(cats["category"] == "overall") & (cats["method_label"] == LAZY)].iloc[0]
    assert base_all["ttft_speedup"] == pytest.approx(1.0) and base_all["n_rows"] == 4
    assert lazy_all["n_records"] == 4 and lazy_all["pct_prompt_computed"] < 100
    assert set(cats["category"]) == {"multi_doc_qa", "few_shot", "overall"}
    assert "| overall | baseline |" in outcome.table
    assert outcome.objective == (lazy_all["score"], pytest.approx(lazy_all["ttft_speedup"]))  # for sweepers


def test_stochastic_repeats_and_extra_methods(tiny, tmp_path, monkeypatch):
    from lazybench.methods import LazyLLM

    monkeypatch.setattr(LazyLLM, "stochastic", True)  # pretend: repeats apply to stochastic methods only
    cfg = compose_cfg([*tiny, "suite.datasets=[triviaqa]", "suite.limit=1", "repeats=2"])
    outcome = run_module.run(cfg, tmp_path / "run")
    records = read_records(outcome.records_path).records
    assert [(r["method"], r["repeat"], r["seed"]) for r in records] == [
        ("baseline", 0, 0),
        ("lazyllm", 0, 0),
        ("lazyllm", 1, 1),
    ]


# --- fidelity and summary arithmetic -------------------------------------------------------------


def test_fidelity_measures():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    assert first_token_kl(logits, logits) == pytest.approx(0.0, abs=1e-12)
    other = torch.tensor([1.0, 2.0, 0.0, -1.0])
    p, q = torch.softmax(logits.double(), 0), torch.softmax(other.double(), 0)
    assert first_token_kl(logits, other) == pytest.approx(float((p * (p / q).log()).sum()))
    masked = torch.tensor([2.0, 1.0, -math.inf, 0.0])  # e.g. EOS suppressed: 0 * log 0 counts as 0
    assert math.isfinite(first_token_kl(masked, masked + 0.5))
    fid = fidelity(logits, "the cat sat", other, "the cat sat down")
    assert fid.first_token_match is False and fid.first_token_kl > 0
    assert fid.rouge_l_vs_baseline == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rouge_l_vs_baseline("", "") == 1.0 and rouge_l_vs_baseline("x", "") == 0.0
    assert fidelity(None, "a", None, "a").first_token_kl is None


def _rec(example, dataset, category, label, ttft, total, score, repeat=0, **kw):
    base = dict(
        example_id=example, dataset=dataset, category=category, method=label.split("[")[0], method_label=label,
        repeat=repeat, ttft_s=ttft, total_s=total, score=score, prompt_tokens=100, new_tokens=4,
        pct_prompt_computed=100.0 if label == "baseline" else 50.0, prefill_flop_fraction=1.0, pruned=label != "baseline",
        first_token_match=None if label == "baseline" else True,
        first_token_kl=None if label == "baseline" else 0.1,
        rouge_l_vs_baseline=None if label == "baseline" else 0.5,
    )  # fmt: skip
    base.update(kw)
    return base


def test_summary_speedups_over_shared_rows_and_macro_average():
    recs = [
        _rec("a", "hotpotqa", "multi_doc_qa", "baseline", 4.0, 8.0, 1.0),
        _rec("a", "hotpotqa", "multi_doc_qa", "m", 1.0, 4.0, 0.5),
        # no "m" on row b: excluded from m's speedup
        _rec("b", "hotpotqa", "multi_doc_qa", "baseline", 2.0, 4.0, 0.0),
        _rec("c", "2wikimqa", "multi_doc_qa", "baseline", 6.0, 6.0, 1.0),
        _rec("c", "2wikimqa", "multi_doc_qa", "m", 2.0, 3.0, 0.0, repeat=0, first_token_match=False),
        _rec("c", "2wikimqa", "multi_doc_qa", "m", 4.0, 3.0, 1.0, repeat=1),
    ]
    s = summarize(recs, "baseline", ["baseline", "m"])
    ds = s.by_dataset.set_index(["dataset", "method"])
    assert ds.loc[("hotpotqa", "m"), "ttft_speedup"] == pytest.approx(4.0)
    assert ds.loc[("hotpotqa", "baseline"), "score"] == 50.0
    assert ds.loc[("2wikimqa", "m"), "score"] == 50.0  # repeats averaged per row
    assert ds.loc[("2wikimqa", "m"), "ttft_speedup"] == pytest.approx(6.0 / 3.0)
    assert ds.loc[("2wikimqa", "m"), "n_records"] == 2 and ds.loc[("2wikimqa", "m"), "n_rows"] == 1
    cat = s.by_category.set_index(["category", "method"])
    # pooled over the shared rows a and c: (4 + 6) / (1 + 3)
    assert cat.loc[("multi_doc_qa", "m"), "ttft_speedup"] == pytest.approx(10.0 / 4.0)
    assert cat.loc[("multi_doc_qa", "m"), "generation_speedup"] == pytest.approx(14.0 / 7.0)
    assert cat.loc[("multi_doc_qa", "baseline"), "score"] == pytest.approx((50.0 + 100.0) / 2)  # macro
    # row a matches (1), row c half its repeats (0.5)
    assert cat.loc[("multi_doc_qa", "m"), "first_token_match_pct"] == pytest.approx(75.0)
    assert list(s.by_category["method"][:2]) == ["baseline", "m"]


# --- config tree ------------------------------------------------------------------------------


def test_default_config_is_the_cpu_demo():
    cfg = compose_cfg()
    assert cfg.model.name == "smollm2-135m" and cfg.model.device == "cpu" and cfg.model.dtype == "float32"
    assert cfg.suite.name == "smoke" and cfg.warmups == 1
    entries, primary = resolve_methods(cfg)
    assert [e.label for e in entries] == ["baseline", LAZY] and primary == LAZY
    demo = compose_cfg(["experiment=demo"])
    assert OmegaConf.to_container(demo, resolve=False) == OmegaConf.to_container(cfg, resolve=False)


@pytest.mark.parametrize("preset", ["paper_llama2", "paper_xgen"])
def test_paper_presets(preset):
    cfg = compose_cfg([f"experiment={preset}"])
    assert cfg.warmups == 5 and cfg.suite.name == "paper" and cfg.repeats == 5
    assert cfg.model.max_length == (3500 if preset == "paper_llama2" else 7500)
    assert cfg.model.chat_style == ("llama2" if preset == "paper_llama2" else "xgen")
    assert cfg.method.name == "lazyllm" and "random_drop" in cfg.sweep.families  # docs/protocol.md


def test_suite_configs_match_builtin_suites():
    for path in sorted((conf_dir() / "suite").glob("*.yaml")):
        suite = Suite.from_dict(OmegaConf.to_container(OmegaConf.load(path)))
        if suite.name in SUITES:
            assert suite == SUITES[suite.name], path.name


def test_model_configs_are_complete():
    keys = set(OmegaConf.load(conf_dir() / "model" / "smollm2-135m.yaml"))
    names = {}
    for path in (conf_dir() / "model").glob("*.yaml"):
        node = OmegaConf.load(path)
        assert set(node) == keys, path.name
        names[path.stem] = node
    assert names["llama2-7b-chat"].name == "meta-llama/Llama-2-7b-chat-hf"
    assert (
        names["xgen-7b-8k-inst"].trust_remote_code is True and names["xgen-7b-8k-inst"].chat_style == "xgen"
    )
    assert {"mistral-7b-instruct", "qwen2.5-7b-instruct"} <= set(names)


def test_method_group_is_made_from_the_classes():
    """A method's defaults live in its class only: no conf/method YAML copies them, and the node
    `method=<name>` composes is its name, `label: null` and the class's defaults, for every method."""
    assert not list((conf_dir() / "method").glob("*.yaml"))  # a file would shadow the class's defaults
    assert group_options("method") == sorted(METHODS)
    for name, cls in METHODS.items():
        node = OmegaConf.to_container(compose_cfg([f"method={name}"]).method)
        assert node == method_node(name) == {"name": name, "label": None, **cls.defaults()}, name
        assert cls.defaults() == json.loads(json.dumps(cls().params())), name  # plain YAML types
        entries, _ = resolve_methods(compose_cfg([f"method={name}"]))
        assert entries[-1].name == name and entries[-1].params == cls.defaults()
    # the default method of conf/config.yaml, and presets that pick and set a method
    assert compose_cfg([]).method.name == "lazyllm"
    assert compose_cfg(["experiment=protocol_cpu_long"]).method == {"name": "baseline", "label": None}
    assert compose_cfg(["experiment=compare_cpu"]).method.schedule.keep == [0.7, 0.4, 0.1]


def test_method_params_override_without_plus():
    cfg = compose_cfg(["method=snapkv", "method.window=16"])
    entries, primary = resolve_methods(cfg)
    assert cfg.method.window == 16 and entries[-1].params["window"] == 16
    assert entries[-1].params["budget_tokens"] == 1024  # the rest from the class
    cfg = compose_cfg(["method=static", "method.schedule.keep=[0.3]"])
    assert resolve_methods(cfg)[0][-1].params["schedule"] == {
        "boundaries": [0.3],
        "keep": [0.3],
        "unit": "depth",
    }
    # a `methods` entry merges over the same defaults; a parameter the class lacks is one line
    cfg = compose_cfg(["methods=[{name:snapkv,label:w8,window:8}]", "method=baseline"])
    assert resolve_methods(cfg)[0][-1].params == {**METHODS["snapkv"].defaults(), "window": 8}
    with pytest.raises(
        RunConfigError, match=r"methods\[0\]: method 'static' has no parameter\(s\) \['keep'\]"
    ):
        resolve_methods(compose_cfg(["methods=[{name:static,keep:0.3}]"]))


def test_method_overrides_and_lists():
    cfg = compose_cfg(["method.schedule.keep=[0.8,0.5,0.2]"])
    entries, primary = resolve_methods(cfg)
    assert primary == "lazyllm[depth[0.3:0.8,0.6:0.5,0.9:0.2]]"
    assert [e.label for e in entries] == ["baseline", primary]
    cfg = compose_cfg(["methods=[baseline,lazyllm,{name:lazyllm,label:late,schedule:{keep:[0.9,0.8,0.5]}}]"])
    entries, primary = resolve_methods(cfg)
    assert [e.label for e in entries] == ["baseline", LAZY, "late"]
    assert entries[2].params["schedule"] == {
        "boundaries": [0.3, 0.6, 0.9],
        "keep": [0.9, 0.8, 0.5],
        "unit": "depth",
    }
    assert primary == LAZY
    entries, primary = resolve_methods(compose_cfg(["method=baseline"]))
    assert [e.label for e in entries] == ["baseline"] and primary is None
    with pytest.raises(RunConfigError, match="label 'x' is already used"):
        resolve_methods(compose_cfg(["methods=[{name:baseline,label:x}]", "method.label=x"]))


# --- bad input: clear errors before any model loads ----------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["methods=[baseline,nosuchmethod]"], "unknown method 'nosuchmethod'"),
        (["+method.bogus=1"], "has no parameter"),
        (["method.schedule.keep=[0.4,0.7,0.1]"], "must not increase"),
        (["method.schedule.keep=[0.7,0.4]"], "3 boundaries but 2 keep"),
        (["method.schedule.unit=layer", "method.schedule.boundaries=[1,2,7]"], "4-layer model"),
        (["suite.datasets=[hotpotqa,nosuchdataset]"], "unknown dataset 'nosuchdataset'"),
        (["data_dir=/nonexistent/longbench"], "does not exist"),
        (["model.truncate=false"], "truncation is disabled"),
        (["model.max_length=null", "model.context_limit=200"], "over the model's context of 200"),
        (["model.name=/nonexistent/model"], "model folder /nonexistent/model does not exist"),
        (["model.chat_style=fancy"], "unknown model.chat_style"),
        (["warmups=-1"], "warmups must be"),
        (["objective=speed"], "unknown objective"),
    ],
)
def test_bad_config_fails_before_model_load(tiny, tmp_path, no_model_load, overrides, message):
    cfg = compose_cfg([*tiny, *overrides])
    with pytest.raises(RunConfigError, match=message):
        run_module.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / RECORDS_FILE).exists()


def test_hub_model_offline_is_a_clear_error(tiny, tmp_path, no_model_load, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = [o for o in tiny if not o.startswith("model.")]
    cfg = compose_cfg([*overrides, "model=llama2-7b-chat", "model.device=cpu"])
    with pytest.raises(RunConfigError, match="local folder"):
        run_module.prepare(cfg, tmp_path / "run")


@pytest.mark.parametrize("override", ["model=nope", "suite=nope", "method=nope", "experiment=nope"])
def test_unknown_config_names_fail_at_composition(override):
    with pytest.raises(MissingConfigException, match="Could not find"):
        compose_cfg([override])


def test_resume_with_other_data_is_refused(tiny, tmp_path, longbench_dir):
    """Same config, different rows under it (data_dir changed): refuse rather than merge two row sets."""
    first, second = tmp_path / "data_a", tmp_path / "data_b"
    first.mkdir()
    second.mkdir()
    lines = (longbench_dir / "triviaqa.jsonl").read_text().splitlines()
    (first / "triviaqa.jsonl").write_text(lines[0] + "\n")
    other = json.loads(lines[0])
    other["_id"] = "another-" + str(other.get("_id"))
    (second / "triviaqa.jsonl").write_text(json.dumps(other) + "\n")
    overrides = [*tiny, "suite.datasets=[triviaqa]", "suite.limit=1"]
    run_module.run(compose_cfg([*overrides, f"data_dir={first}"]), tmp_path / "run")
    with pytest.raises(RunConfigError, match="data source changed"):
        run_module.run(compose_cfg([*overrides, f"data_dir={second}"]), tmp_path / "run")
    assert len(read_records(tmp_path / "run" / "records.jsonl").records) == 2  # nothing lost or added


def test_resume_on_another_device_is_refused(tiny, tmp_path):
    """A resumed row's baseline was timed in the earlier session: other hardware would skew speedups."""
    overrides = [*tiny, "suite.datasets=[triviaqa]", "suite.limit=1"]
    run_module.run(compose_cfg(overrides), tmp_path / "run")
    path = tmp_path / "run" / "records.jsonl"
    records = read_records(path).records
    records[0]["device"] = "cuda (NVIDIA H100 80GB HBM3)"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(RunConfigError, match="timed on cuda"):
        run_module.run(compose_cfg(overrides), tmp_path / "run")


def test_data_dir_hub_never_reads_the_local_folder(monkeypatch, longbench_dir):
    from lazybench.tasks import data as data_module

    monkeypatch.setenv("LAZYBENCH_LONGBENCH_DIR", str(longbench_dir))
    asked = []

    def hub_rows(dataset, copies):
        asked.append(dataset)
        raise data_module.DataNotFoundError("offline")

    monkeypatch.setattr(data_module, "hub_rows", hub_rows)
    with pytest.raises(data_module.DataNotFoundError):
        data_module.load_examples("trec", data_dir="hub")
    assert asked == ["trec"]
    (row,) = data_module.load_examples("trec", limit=1)  # unset: the environment's folder
    assert row.source == f"folder {longbench_dir}"


def test_run_dir_of_another_run_is_not_resumed(tiny, tmp_path):
    run_module.run(compose_cfg([*tiny, "suite.datasets=[triviaqa]", "suite.limit=1"]), tmp_path / "run")
    with pytest.raises(RunConfigError, match="suite.limit: 1 -> 2"):
        run_module.prepare(compose_cfg([*tiny, "suite.datasets=[triviaqa]"]), tmp_path / "run")
    with pytest.raises(RunConfigError, match="resume=false"):
        run_module.prepare(
            compose_cfg([*tiny, "suite.datasets=[triviaqa]", "suite.limit=1", "resume=false"]),
            tmp_path / "run",
        )


def test_two_processes_cannot_run_in_one_directory(tiny, tmp_path):
    import fcntl

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process's lock, as flock sees it
        with pytest.raises(RunConfigError, match="another lazybench process"):
            run_module.run(compose_cfg([*tiny, "suite.datasets=[triviaqa]", "suite.limit=1"]), run_dir)
    assert not (run_dir / "records.jsonl").exists()
    run_module.run(compose_cfg([*tiny, "suite.datasets=[triviaqa]", "suite.limit=1"]), run_dir)  # released
