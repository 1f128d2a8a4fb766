"""`dry_run=true` says what would run, from what data, and how long it might take, without weights."""

from __future__ import annotations

import math
import re

import pytest

from lazybench.methods import build_method
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.dryrun import dry_run
from lazybench.runner.estimate import KNOWN_SHAPES, RATES, ModelShape, unit_cost
from lazybench.runner.run import run
from lazybench.runner.testing import compose_cfg

LLAMA2 = KNOWN_SHAPES["meta-llama/Llama-2-7b-chat-hf"]


def test_dry_run_describes_the_run_without_weights(tiny, tmp_path, longbench_dir, no_model_load):
    cfg = compose_cfg([*tiny, "methods=[baseline,{name:random_drop,label:rd}]", "repeats=3", "dry_run=true"])
    text = dry_run(cfg)
    assert f"data: folder {longbench_dir}, 4 rows" in text
    assert "rows: 4 over 2 datasets hotpotqa 2, triviaqa 2" in text
    # baseline + lazyllm once each, random drop three times, per row
    assert "units: 20 in all, 20 pending (0 already recorded)" in text
    assert "estimate, CPU (this project's 2 cores):" in text and "CPU-hours" in text
    assert "per method (h): baseline " in text and "rd x3 " in text
    assert not any(tmp_path.rglob(RECORDS_FILE))


def test_dry_run_of_the_demo_names_the_offline_slice(no_model_load):
    text = dry_run(compose_cfg(["dry_run=true"]))
    assert "data: offline slice, 6 rows" in text


def test_dry_run_counts_only_pending_units(tiny, tmp_path, longbench_dir):
    cfg = compose_cfg([*tiny, "suite.limit=1"])
    outcome = run(cfg)
    records = read_records(outcome.records_path).records
    assert len(records) == 4 and {r["data_source"] for r in records} == {f"folder {longbench_dir}"}
    text = dry_run(compose_cfg([*tiny, "suite.limit=1", "dry_run=true"]))
    assert "units: 4 in all, 0 pending (4 already recorded)" in text
    assert "0.00 CPU-hours (0 s)" in text


def _hours(text: str, device: str) -> tuple[float, dict[str, float]]:
    total = float(re.search(rf"estimate, {device}-class: ([\d.]+) GPU-hours", text).group(1))
    line = text.split(f"estimate, {device}-class:")[1].split("per method (h): ")[1].splitlines()[0]
    per = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\S+(?: x\d+)?) ([\d.]+)(?:, |$)", line)}
    return total, per


@pytest.mark.parametrize(("preset", "shape"), [("paper_llama2", LLAMA2), ("paper_xgen", None)])
def test_paper_preset_dry_run_offline_says_hub_rows_and_gpu_hours(preset, shape, no_model_load):
    """Offline, neither the weights nor the hub are here: the dry run still describes the run, with
    LongBench's published sizes (said to be not downloaded), and prints GPU-hours per GPU class."""
    text = dry_run(compose_cfg([f"experiment={preset}", "dry_run=true"]))
    assert "partial, not everything is available here:" in text
    assert (
        "data: LongBench (hub: THUDM/LongBench@refs/convert/parquet), 1,875 rows "
        "(LongBench's published sizes; not downloaded); about 50% of them, the dev part of the split"
    ) in text
    # the dev phase of the protocol: half the rows (expected share of the id split), every family's settings
    assert "about 50% of them, the dev part of the split" in text
    assert "multifieldqa_en 75" in text and "lcc 250" in text and "repobench-p 250" in text
    assert "phase 1 of 2" in text and "phase 2 of 2" in text
    for device in ("A100", "H100"):
        total, per = _hours(text, device)
        assert math.isclose(total, sum(per.values()), abs_tol=0.05)
        families = {label.split("[")[0] for label in per}
        assert {"baseline", "lazyllm", "static", "random_drop", "gemfilter", "h2o"} <= families
    a100, _ = _hours(text, "A100")
    h100, _ = _hours(text, "H100")
    assert 20 < h100 < a100 < 1000  # a 7B's dev sweep: tens to hundreds of GPU-hours (host-bound decoding)


def test_paper_xgen_dry_run_names_a_missing_tiktoken(monkeypatch, no_model_load):
    from lazybench.runner import deps

    monkeypatch.setattr(deps, "module_missing", lambda name: name == "tiktoken")
    text = dry_run(compose_cfg(["experiment=paper_xgen", "dry_run=true"]))
    assert "pip install 'lazybench[xgen]'" in text.splitlines()[0]


# --- the estimate's arithmetic --------------------------------------------------------------------


def test_llama2_shape_and_prefill_flops():
    per_layer = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096  # projections, gated MLP, two norms
    assert LLAMA2.layer_params == 32 * per_layer  # 6.48B
    n = 3500
    # the engine's cost model (lazybench.protocol.cost): 2 x rows x params + 4 x causal pairs x width
    expected = 32 * (2 * per_layer * n + 4 * (n * (n + 1) / 2) * 32 * 128)
    assert LLAMA2.prefill_flops(n) == pytest.approx(expected, rel=1e-12)


def test_baseline_unit_on_gpu_classes_is_host_bound():
    """A 7B decode step costs tens of ms in HF eager decoding (not the ~9 ms of a weight read)."""
    baseline = build_method("baseline")
    for key, token_ms in (("a100", 32.0), ("h100", 25.6)):
        cost = unit_cost("baseline", baseline, LLAMA2, RATES[key], 3500, 100, 2)
        assert math.isclose(cost.prefill_s, LLAMA2.prefill_flops(3500) / (RATES[key].prefill_tflops * 1e12))
        assert math.isclose(cost.decode_s, 100 * token_ms / 1e3) and cost.extra_s == 0
        weight_read_ms = LLAMA2.weights * 2 / (RATES[key].decode_gbps * 1e9) * 1e3
        assert weight_read_ms < 10 < 20 <= token_ms <= 40
    cpu = unit_cost("baseline", baseline, LLAMA2, RATES["cpu"], 1000, 10, 4)
    assert math.isclose(cpu.decode_s, 10 * (LLAMA2.weights * 4 + 2 * 32 * 32 * 128 * 4 * 1005) / 9e9)


def test_estimate_overrides():
    rates = RATES["a100"].with_overrides(
        {"prefill_tflops": 95, "decode_ms_per_token": 20, "decode_gbps": None}
    )
    assert rates.prefill_tflops == 95 and math.isclose(rates.decode_ms_per_layer * 32, 20)
    assert rates.decode_gbps == RATES["a100"].decode_gbps
    base = unit_cost("baseline", build_method("baseline"), LLAMA2, RATES["a100"], 2000, 10, 2)
    slow = unit_cost("baseline", build_method("baseline"), LLAMA2, rates, 2000, 10, 2)
    assert math.isclose(slow.prefill_s, 2 * base.prefill_s) and math.isclose(slow.decode_s, 10 * 0.020)


def test_dry_run_honours_estimate_overrides(no_model_load):
    text = dry_run(
        compose_cfg(["experiment=paper_llama2", "dry_run=true", "estimate.decode_ms_per_token=64"])
    )
    assert "decode 64 ms/token (host)" in text


def test_method_factors():
    a100, n, new = RATES["a100"], 4000, 50
    base = unit_cost("baseline", build_method("baseline"), LLAMA2, a100, n, new, 2)
    lazy = build_method("lazyllm")
    cost = unit_cost("lazyllm", lazy, LLAMA2, a100, n, new, 2)
    fractions = lazy.schedule.resolve(32).layer_keep_fractions()
    assert math.isclose(cost.prefill_s, base.prefill_s * sum(fractions) / 32)
    assert math.isclose(cost.decode_s, 1.25 * base.decode_s)
    drop = unit_cost("random_drop", build_method("random_drop"), LLAMA2, a100, n, new, 2)
    assert math.isclose(drop.prefill_s, LLAMA2.prefill_flops(2400) / (a100.prefill_tflops * 1e12))
    gem = build_method("gemfilter")
    cost = unit_cost("gemfilter", gem, LLAMA2, a100, n, new, 2)
    assert math.isclose(cost.prefill_s, (LLAMA2.prefill_flops(n, 14) + LLAMA2.prefill_flops(1024)) / 190e12)
    h2o = unit_cost("h2o", build_method("h2o"), LLAMA2, a100, n, new, 2)
    assert math.isclose(h2o.extra_s, 32 * 32 * n * n * 20 / 1500e9) and h2o.prefill_s == base.prefill_s
    sc = unit_cost("selective_context", build_method("selective_context"), LLAMA2, a100, n, new, 2)
    assert math.isclose(sc.prefill_s, LLAMA2.prefill_flops(2600) / 190e12)
    assert sc.extra_s >= math.ceil(n / 1023) * 30 * 1e-3 + n * 40e-6  # compressor chunks + Python per token
    for name in ("snapkv", "streamingllm"):
        cost = unit_cost(name, build_method(name), LLAMA2, a100, n, new, 2)
        assert cost.prefill_s == base.prefill_s and math.isclose(cost.decode_s, 1.05 * base.decode_s)


def test_warmups_are_costed(no_model_load):
    def a100_hours(warmups: int) -> float:
        text = dry_run(compose_cfg(["experiment=paper_llama2", "dry_run=true", f"warmups={warmups}"]))
        return float(re.search(r"A100-class: ([\d.]+) GPU-hours \((\d+) s\)", text).group(2))

    assert a100_hours(5) > a100_hours(0)


def test_model_shape_from_a_config():
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=100)  # fmt: skip
    shape = ModelShape.from_config(config)
    assert (shape.num_layers, shape.kv_heads, shape.head_dim) == (4, 2, 16)
    assert shape.layer_params == 4 * (64 * 16 * (2 * 4 + 2 * 2) + 3 * 64 * 128 + 2 * 64)
    assert shape == ModelShape.from_dims(4, 64, 4, 2, 16, 128, 100)  # a preset's numbers give the same shape
