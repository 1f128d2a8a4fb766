"""The operating-point protocol: families, split, selection, points config, tables, both phases.

The analytic FLOP model the families are solved with is checked against the engine's own
accounting on a real (tiny) model; the end-to-end test runs the whole protocol through the real
runner on a random 4-layer model: a 2-family sweep on dev rows, the selection, the test phase at
the chosen points read back from the written config, and the tables and Figure 5.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from transformers import AutoConfig, LlamaConfig

from lazybench.analysis.operating_points import Rule, common_prefix_fraction, method_entries, select
from lazybench.protocol.cost import ModelShape, ideal_speedup, prefill_flops
from lazybench.protocol.families import FAMILIES, PREFILL_FAMILIES, SweepSpec, expand
from lazybench.protocol.points import chosen_frame, points_config, read_points, write_points
from lazybench.protocol.split import RowSplit
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.config import RunConfigError, resolve_methods
from lazybench.runner.testing import compose_cfg, tiny_overrides

LLAMA2_7B = LlamaConfig(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=32, vocab_size=32000,
)  # fmt: skip


def smollm2_config():
    from lazybench.models import smollm2_folder

    return AutoConfig.from_pretrained(smollm2_folder())


# --- the FLOP model against the engine ------------------------------------------------------------


@pytest.mark.parametrize(
    "name,params",
    [
        ("baseline", {}),
        ("lazyllm", {"schedule": {"boundaries": [1, 2, 3], "keep": [0.6, 0.35, 0.2], "unit": "layer"}}),
        ("static", {"schedule": {"boundaries": [2], "keep": [0.4], "unit": "layer"}}),
        ("random_drop", {"keep": 0.45}),
        ("gemfilter", {"filter_layer": 1, "keep": 0.3}),
        ("selective_context", {"keep": 0.5, "compressor": "target", "unit": "token", "context": 128}),
        ("snapkv", {"keep": 0.3}),
        ("h2o", {"heavy_ratio": 0.1, "recent_ratio": 0.1}),
    ],
)
def test_flop_model_matches_the_engines_accounting(tiny_model, name, params):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lazybench.methods import GenerationRequest, build_method

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    method = build_method(name, **params)
    method.setup(model, AutoTokenizer.from_pretrained(tiny_model))
    n = 300
    ids = torch.randint(5, 1000, (n,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.inference_mode():
        result = method.run(model, GenerationRequest(prompt_ids=ids, max_new_tokens=1))
    shape = ModelShape.from_config(model.config)
    assert shape.full_prefill(n) == pytest.approx(result.full_prefill_flops, rel=1e-9)
    assert prefill_flops(shape, name, method.params(), n) == pytest.approx(result.prefill_flops, rel=1e-9)


# --- families ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config,n", [(LLAMA2_7B, 3500), (LLAMA2_7B, 7500), ("smollm2", 1500)])
def test_families_cover_the_speed_range_monotonically(config, n):
    from lazybench.methods import build_method

    config = smollm2_config() if config == "smollm2" else config
    shape = ModelShape.from_config(config)
    spec = SweepSpec.from_config({"families": list(FAMILIES), "points": 6})
    settings = expand(spec, shape, n)
    assert len({s.label for s in settings}) == len(settings)
    for family in PREFILL_FAMILIES:
        mine = [s for s in settings if s.family == family]
        assert len(mine) == 6, family
        speeds = [s.speedup for s in mine]
        assert speeds == sorted(speeds) and len(set(speeds)) == 6, (family, speeds)
        assert speeds[0] == pytest.approx(1.1, rel=0.03) and speeds[-1] == pytest.approx(5.0, rel=0.03), (
            family
        )
        for s in mine:  # each lands on its target (rounding of the kept fractions aside)
            assert s.speedup == pytest.approx(s.target, rel=0.03), s
    for s in settings:
        method = build_method(s.family, **s.params)  # every setting is a valid method configuration
        if s.family == "adaptive":  # its speed follows the prompt: measured, only bounded here
            assert s.speedup is None and 1.0 < s.speed_range[0] < s.speed_range[1]
            continue
        assert s.speedup == pytest.approx(ideal_speedup(shape, s.family, method.params(), n), rel=1e-9)
        if s.family == "lazyllm":
            keep = s.params["schedule"]["keep"]
            assert keep == sorted(keep, reverse=True) and len(keep) >= 3
    compression = [s for s in settings if s.family == "selective_context"]
    assert len(compression) == 6 and all(s.speedup < 1 for s in compression)  # the compressor is the target
    assert [s.params["keep"] for s in compression] == sorted(
        (s.params["keep"] for s in compression), reverse=True
    )
    for family in ("streamingllm", "snapkv", "h2o"):
        assert len([s for s in settings if s.family == family]) == 2
        assert all(s.speedup <= 1.0 for s in settings if s.family == family)


def test_adaptive_family_lists_masses_at_one_template(no_model_load):
    """One setting per mass, largest first, at LazyLLM's default boundaries as layer indices; the
    label names what runs; its FLOP-ideal bounds are LazyLLM keeping the ceiling / the floor."""
    from lazybench.methods import build_method
    from lazybench.protocol.phases import settings_lines

    shape = ModelShape.from_config(LLAMA2_7B)
    spec = SweepSpec.from_config({"families": ["adaptive"], "adaptive_masses": [0.9, 0.99]})
    settings = expand(spec, shape, 3500)
    assert [s.label for s in settings] == [
        "adaptive[p0.99,L9,L19,L28,f0.05,c0.9]",
        "adaptive[p0.9,L9,L19,L28,f0.05,c0.9]",
    ]
    method = build_method("adaptive", **settings[0].params)
    assert method.label() == settings[0].label and method.schedule.resolve(32).starts == (0, 9, 19, 28)
    slow, fast = settings[0].speed_range
    lazy = {"schedule": {"boundaries": [9, 19, 28], "keep": [0.9] * 3, "unit": "layer"}}
    assert slow == pytest.approx(ideal_speedup(shape, "lazyllm", lazy, 3500)) and fast > 2.5 * slow
    with pytest.raises(ValueError, match="measured, not modelled"):
        prefill_flops(shape, "adaptive", settings[0].params, 3500)
    fixed = SweepSpec.from_config(
        {"families": ["adaptive"], "params": {"adaptive": {"floor": 0.2, "ceiling": 0.6}}}
    )
    entries = [s.entry(fixed.params["adaptive"]) for s in expand(fixed, shape, 3500)]
    assert len(entries) == 5 and entries[-1]["label"] == "adaptive[p0.98,L9,L19,L28,f0.2,c0.6]"
    assert (
        build_method(
            "adaptive", **{k: v for k, v in entries[-1].items() if k not in ("name", "label")}
        ).label()
        == entries[-1]["label"]
    )
    with pytest.raises(ValueError, match="adaptive_masses"):
        SweepSpec.from_config({"families": ["adaptive"], "adaptive_masses": [1.5]})
    with pytest.raises(ValueError, match="sweep.params.adaptive: adaptive: floor 0.7 is above ceiling 0.5"):
        expand(
            SweepSpec.from_config(
                {"families": ["adaptive"], "params": {"adaptive": {"floor": 0.7, "ceiling": 0.5}}}
            ),
            shape,
            3500,
        )
    cfg = compose_cfg(["experiment=protocol_cpu"])
    assert list(cfg.sweep.families) == ["lazyllm", "static", "random_drop", "gemfilter", "adaptive"]
    lines = settings_lines(cfg, LLAMA2_7B)
    line = next(x for x in lines if x.startswith("  adaptive"))
    assert "speed measured, not solved" in line and line.count("adaptive[p") == 5


def test_sweep_spec_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="unknown sweep family 'lazy'"):
        SweepSpec.from_config({"families": ["lazy"]})
    with pytest.raises(ValueError, match="unknown sweep keys"):
        SweepSpec.from_config({"families": ["lazyllm"], "pionts": 3})
    with pytest.raises(ValueError, match="min_speedup"):
        SweepSpec.from_config({"families": ["lazyllm"], "min_speedup": 0.5})


# --- split -------------------------------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_per_row(longbench_dir):
    from lazybench.tasks import Suite
    from lazybench.tasks.data import load_examples

    rows = load_examples("lcc", longbench_dir)
    dev, test = RowSplit("dev").select(rows), RowSplit("test").select(rows)
    assert dev and test and len(dev) + len(test) == len(rows)
    assert not {r.id for r in dev} & {r.id for r in test}
    assert [r.id for r in RowSplit("dev").select(rows)] == [r.id for r in dev]  # deterministic
    assert [r.id for r in RowSplit("dev").select(rows[::2])] == [
        r.id for r in dev if r in rows[::2]
    ]  # per row
    assert {r.id for r in RowSplit("dev", seed=1).select(rows)} != {r.id for r in dev}
    assert RowSplit("all").select(rows) == rows
    limited = Suite(name="c", datasets=("lcc",), limit=2).examples(
        "lcc", longbench_dir, split=RowSplit("test")
    )
    assert [r.id for r in limited] == [r.id for r in test[:2]]


def test_split_config_errors_before_any_weights(tiny, no_model_load):
    from lazybench.runner.run import prepare

    with pytest.raises(RunConfigError, match="split.part must be one of"):
        prepare(compose_cfg([*tiny, "split.part=train"]))
    dev = prepare(compose_cfg([*tiny, "split.part=dev"]))
    test = prepare(compose_cfg([*tiny, "split.part=test", "name=t"]))
    assert {r.id for r in dev.rows}.isdisjoint({r.id for r in test.rows})


# --- selection ---------------------------------------------------------------------------------------


def _cands(rows):
    cols = ["category", "family", "method_label", "score", "baseline_score", "ttft_speedup", "flop_speedup",
            "rouge_l_vs_baseline", "prefix_agreement"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=cols)
    frame["run_dir"], frame["model"], frame["run"], frame["method"] = "r", "m", "r", frame["family"]
    for c in ("n_rows", "relative_score", "generation_speedup", "pct_prompt_computed", "first_token_match_pct",
              "same_output_pct"):  # fmt: skip
        frame[c] = math.nan
    return frame


SYNTHETIC = [
    ("qa", "lazyllm", "slow", 50.0, 50.0, 1.2, 1.2, 0.95, 0.9),
    ("qa", "lazyllm", "mid", 49.6, 50.0, 2.0, 2.1, 0.85, 0.7),  # 0.8% below: within 1%
    ("qa", "lazyllm", "fast", 48.0, 50.0, 3.0, 3.2, 0.60, 0.4),  # 4% below
    ("qa", "static", "s1", 45.0, 50.0, 1.5, 1.5, 0.70, 0.5),  # none within 1%: the best score is kept
    ("qa", "static", "s2", 40.0, 50.0, 2.5, 2.6, 0.50, 0.3),
    ("code", "lazyllm", "c1", 30.0, 30.0, 2.4, 1.3, 0.9, 0.8),  # measured faster, FLOP-ideal slower
    ("code", "lazyllm", "c2", 31.0, 30.0, 2.2, 2.0, 0.9, 0.8),  # above the baseline: passes too
]


def test_selection_rules_pick_the_right_point():
    cands = _cands(SYNTHETIC)
    pick = select(cands, Rule("score")).set_index(["category", "family"])
    assert pick.loc[("qa", "lazyllm"), "method_label"] == "mid"
    assert pick.loc[("qa", "static"), "method_label"] == "s1" and not pick.loc[("qa", "static"), "passes"]
    assert pick.loc[("code", "lazyllm"), "method_label"] == "c1" and pick.loc[("code", "lazyllm"), "passes"]
    assert select(cands, Rule("score", epsilon=0.05)).set_index(["category", "family"]).loc[
        ("qa", "lazyllm"), "method_label"] == "fast"  # fmt: skip
    fid = select(cands, Rule("fidelity", min_fidelity=0.8)).set_index(["category", "family"])
    assert fid.loc[("qa", "lazyllm"), "method_label"] == "mid"
    assert fid.loc[("qa", "static"), "method_label"] == "s1" and not fid.loc[("qa", "static"), "passes"]
    prefix = select(cands, Rule("fidelity", min_fidelity=0.8, fidelity_metric="prefix_agreement"))
    assert prefix.set_index(["category", "family"]).loc[("qa", "lazyllm"), "method_label"] == "slow"
    tgt = select(cands, Rule("target", target_speedup=2.0)).set_index(["category", "family"])
    assert tgt.loc[("qa", "lazyllm"), "method_label"] == "mid"  # best score among >= 2x
    assert tgt.loc[("qa", "static"), "method_label"] == "s2"
    by_flops = select(cands, Rule("score", speed="flop_speedup")).set_index(["category", "family"])
    assert by_flops.loc[("code", "lazyllm"), "method_label"] == "c2"


def test_common_prefix_fraction():
    assert common_prefix_fraction("a b c d", "a b c d") == 1.0
    assert common_prefix_fraction("a b x d", "a b c d") == 0.5
    assert common_prefix_fraction("a b", "a b c d") == 0.5
    assert common_prefix_fraction("", "") == 1.0 and common_prefix_fraction("x", "") == 0.0
    with pytest.raises(ValueError, match="unknown selection rule"):
        Rule("fastest")
    with pytest.raises(ValueError, match="unknown selection keys"):
        Rule.from_config({"rule": "score", "eps": 0.1})


# --- the points config -------------------------------------------------------------------------------


def test_points_config_round_trips_through_hydra(tmp_path, tiny, no_model_load):
    cands = _cands(SYNTHETIC[:3] + SYNTHETIC[5:])
    cands["category"] = cands["category"].map({"qa": "multi_doc_qa", "code": "code_completion"})
    chosen = select(cands, Rule("score"))
    records = pd.DataFrame(
        [{"method_label": lab, "method": "lazyllm",
          "method_params": {"schedule": {"boundaries": [1, 2], "keep": [0.5, k], "unit": "layer"}}}
         for lab, k in (("slow", 0.4), ("mid", 0.3), ("fast", 0.2), ("c1", 0.4), ("c2", 0.25))]
    )  # fmt: skip
    entries = method_entries(chosen, records)
    assert [e["label"] for e in entries] == ["mid", "c1"]
    assert entries[0]["categories"] == ["multi_doc_qa"]
    source = {"run": "/x", "model": "m", "rows": 9, "split": {"part": "dev"}, "split_text": "dev rows"}
    folder = tmp_path / "conf" / "experiment"
    config = points_config(entries, chosen, Rule("score").to_dict(), source, None, {"part": "test"})
    path = write_points(folder / "mine_points.yaml", config, Rule("score").describe(), "mine_points")
    back = read_points(path)
    assert back["methods"][1:] == entries and back["split"] == {"part": "test"}
    assert chosen_frame(back)["method_label"].tolist() == chosen["method_label"].tolist()
    cfg = compose_cfg([*tiny, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=mine_points"])
    assert cfg.split.part == "test" and cfg.sweep is None
    methods, _ = resolve_methods(cfg)
    built = {m.label: m for m in methods}
    assert built["mid"].categories == ("multi_doc_qa",) and built["c1"].categories == ("code_completion",)
    assert built["mid"].params["schedule"] == {"boundaries": [1, 2], "keep": [0.5, 0.3], "unit": "layer"}
    assert built["mid"].runs_on("multi_doc_qa") and not built["mid"].runs_on("few_shot")


def test_method_categories_are_validated_and_widened(tiny):
    with pytest.raises(RunConfigError, match="unknown category 'qa'"):
        resolve_methods(compose_cfg([*tiny, "methods=[baseline,{name:random_drop,categories:[qa]}]"]))
    cfg = compose_cfg([*tiny, "methods=[baseline,{name:lazyllm,categories:[few_shot]}]"])
    methods, _ = resolve_methods(cfg)  # the same setting as `method` (every row) widens to every row
    assert [m.categories for m in methods] == [None, None]


# --- the whole protocol, for real, on a tiny model --------------------------------------------------


def _protocol(
    tiny_model,
    longbench_dir,
    out: Path,
    experiment: str = "protocol_cpu",
    families: str = "lazyllm,random_drop",
) -> list[str]:
    """A tiny protocol run: 3 datasets, 1 row each of a part, a 2-family sweep in the dev phase."""
    base = [o for o in tiny_overrides(tiny_model, longbench_dir, out / "runs") if not o.startswith("suite.")]
    sweep = [
        f"sweep.families=[{families}]",
        "sweep.target_speedups=[1.3,2.0]",
        "sweep.adaptive_masses=[0.9,0.5]",
    ]
    return [
        f"experiment={experiment}", *base, "suite.datasets=[hotpotqa,triviaqa,lcc]", "suite.limit=1",
        "suite.max_new_tokens_cap=4", *(sweep if experiment == "protocol_cpu" else []),
    ] + ([] if experiment == "protocol_cpu" else [f"hydra.searchpath=[file://{out / 'conf'}]"])  # fmt: skip


def test_dry_run_lists_both_phases(tiny_model, longbench_dir, tmp_path, no_model_load):
    from lazybench.runner.dryrun import dry_run

    text = dry_run(compose_cfg([*_protocol(tiny_model, longbench_dir, tmp_path), "dry_run=true"]))
    assert "sweep: 4 settings, FLOP-ideal TTFT speedup at 256 prompt tokens:" in text
    assert "lazyllm: lazyllm[L1:" in text and "random_drop: random_drop[" in text
    assert "phase 1 of 2 (dev sweep, 3 rows)" in text
    assert "phase 2 of 2 (test rows at the chosen points: lazybench experiment=protocol_cpu_points)" in text
    # phase 2: 3 test rows x (baseline, lazyllm-chosen, random_drop-chosen, the default schedule)
    assert "  units: 12 in all, 12 pending" in text and "whole protocol:" in text
    assert not list(tmp_path.rglob(RECORDS_FILE))


@pytest.mark.parametrize("preset", ["paper_llama2", "paper_xgen"])
def test_paper_presets_are_the_two_phase_protocol(preset):
    cfg = compose_cfg([f"experiment={preset}"])
    assert (
        cfg.split.part == "dev" and cfg.protocol.phase == "dev" and cfg.protocol.points == f"{preset}_points"
    )
    assert sorted(cfg.sweep.families) == sorted(FAMILIES)
    assert cfg.sweep.params.selective_context.compressor == "target"  # "using LLMs": the target compresses
    assert cfg.warmups == 5 and cfg.model.dtype == "bfloat16" and cfg.suite.datasets == "all"
    assert cfg.name.endswith("-dev")


def test_protocol_end_to_end_on_a_tiny_model(tiny_model, longbench_dir, tmp_path):
    from lazybench.protocol.report import protocol_report, select_points
    from lazybench.runner.run import run

    families = "lazyllm,random_drop,adaptive"
    dev = run(compose_cfg(_protocol(tiny_model, longbench_dir, tmp_path, families=families)))
    dev_records = read_records(dev.records_path).records
    labels = {r["method_label"] for r in dev_records}
    from lazybench.analysis.ladder import write_ladder

    ladder_md = write_ladder(dev.run_dir, tmp_path / "ladder")  # every family at the rungs 1.3x, 2.0x
    assert "| 1.30 | lazyllm |" in ladder_md and "## Ordering" in ladder_md
    assert (tmp_path / "ladder" / "ordering.md").is_file()
    assert len(labels) == 8  # baseline, the default schedule, 2 x 2 solved sweep settings, 2 masses
    adaptive = [r for r in dev_records if r["method"] == "adaptive"]
    assert adaptive and all(r["pruned"] for r in adaptive)  # its speed: the records' FLOP fraction
    conf = tmp_path / "conf" / "experiment"
    selection = select_points(dev.run_dir, {"rule": "target", "target_speedup": 1.5, "speed": "flop_speedup"},
                              out=conf / "tinyproto_points.yaml")  # fmt: skip
    assert set(selection.chosen["family"]) == {"lazyllm", "random_drop", "adaptive"}
    solved = selection.chosen[selection.chosen["family"] != "adaptive"]
    assert (solved["flop_speedup"] >= 1.5).all()  # the FLOP-ideal speed the rule asked for
    one = yaml.safe_load(selection.path.read_text())["protocol"]["selection"]["one_setting"]
    assert one["family"] == "adaptive" and one["method_label"].startswith("adaptive[p")
    assert (dev.run_dir / "protocol" / "selection.md").is_file()
    points = yaml.safe_load(selection.path.read_text())
    assert points["defaults"] == ["protocol_cpu", "_self_"] and points["split"]["part"] == "test"

    test_cfg = compose_cfg(_protocol(tiny_model, longbench_dir, tmp_path, "tinyproto_points", families))
    assert test_cfg.sweep is None and test_cfg.split.part == "test"
    test = run(test_cfg)
    assert test.run_dir != dev.run_dir
    test_records = read_records(test.records_path).records
    assert not {r["example_id"] for r in test_records} & {r["example_id"] for r in dev_records}
    chosen = {(c, lab) for c, lab in zip(selection.chosen["category"], selection.chosen["method_label"])}
    for rec in test_records:  # a chosen setting ran only on the categories it was chosen for
        if rec["method_label"] in {lab for _, lab in chosen} and rec["method_label"] != one["method_label"]:
            assert (rec["category"], rec["method_label"]) in chosen
    # the one setting for every category ran on every test row
    assert sum(r["method_label"] == one["method_label"] for r in test_records) == 3

    report = protocol_report(selection.path, test.run_dir, paper="llama2", out=tmp_path / "tables")
    t1 = report.table1
    assert set(t1["setting"]) >= {lab for _, lab in chosen} | {"baseline"}
    assert (t1["method"] == "lazyllm (default)").sum() == 3  # the default schedule beside every category
    lazy = t1[(t1["method"] == "lazyllm")]
    assert lazy["paper_llama2_ttft_speedup"].notna().all()  # the paper's numbers beside ours
    assert "reported on disjoint rows" in report.markdown
    t_one = report.one_setting
    assert (t_one["method"] == "adaptive (one p)").sum() == 3 and set(t_one["category"]) == set(
        t1["category"]
    )
    assert (t_one["method"] == "lazyllm (chosen per category)").sum() == 3
    assert t_one.loc[t_one["method"] == "adaptive (one p)", "flop_speedup"].notna().all()
    assert "## One p for all categories" in report.markdown
    for name in (
        "table1.md",
        "table2.csv",
        "figure5_score.png",
        "figure5_fidelity.png",
        "report.md",
        "one_setting.md",
    ):
        assert (tmp_path / "tables" / name).is_file(), name
    same = protocol_report(selection.path, None, out=tmp_path / "same", plots=False)
    assert "selected on the reported rows" in same.markdown
