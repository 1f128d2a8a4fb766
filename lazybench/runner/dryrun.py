"""`lazybench ... dry_run=true`: what a run would do and roughly how long it would take, no weights.

A paper preset is hours of GPU time; before spending it a user wants to see the rows, methods,
repeats, prompt lengths and pending units (resume-aware), and an estimate. Everything here comes
from `prepare()`, which validates the run and reads only tokenizer and model config.

The estimate is deliberately simple and stated as such: every unit is costed as a full-prefill
baseline (an upper bound for the pruning methods) with analytic FLOPs at an assumed effective
throughput, plus one weight read per generated token at an assumed memory bandwidth, for the
dataset's full output budget. Override the assumptions with `estimate.*`.
"""

from __future__ import annotations

from collections import Counter

from lazybench.runner.run import RunPlan, prepare

# Effective (not peak) rates; measured on this project's 2-core CPU for SmolLM2, and typical
# bf16 numbers for an A100/H100-class GPU.
DEFAULT_RATES = {
    "cpu": {"prefill_tflops": 0.13, "decode_gbps": 9.0},
    "cuda": {"prefill_tflops": 150.0, "decode_gbps": 1500.0},
}


def _model_numbers(config) -> tuple[float, float]:
    """(non-embedding parameters, bytes per weight read in one decode step) from a config alone."""
    h = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or h // heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    attn = h * head_dim * (2 * heads + 2 * kv)
    mlp = 3 * h * config.intermediate_size
    layer_params = config.num_hidden_layers * (attn + mlp)
    return float(layer_params), float(layer_params + config.vocab_size * h)


def describe(plan: RunPlan, config, rates: dict[str, float] | None = None) -> str:
    from lazybench.models import resolve_dtype
    from lazybench.records import RECORDS_FILE, read_records

    device_type = "cuda" if plan.device.startswith("cuda") else "cpu"
    rate = {**DEFAULT_RATES[device_type], **{k: v for k, v in (rates or {}).items() if v is not None}}
    dtype = resolve_dtype(plan.spec.dtype, __import__("torch").device(plan.device))
    bytes_per_weight = dtype.itemsize
    layer_params, weights = _model_numbers(config)
    layers, d_model = config.num_hidden_layers, config.hidden_size

    def unit_seconds(prompt_tokens: int, new_tokens: int) -> float:
        flops = (
            2 * layer_params * prompt_tokens + 2 * layers * d_model * prompt_tokens**2
        )  # linear + attention
        prefill = flops / (rate["prefill_tflops"] * 1e12)
        decode = new_tokens * weights * bytes_per_weight / (rate["decode_gbps"] * 1e9)
        return prefill + decode

    done = {
        (r["example_id"], r["method_label"], r["repeat"])
        for r in read_records(plan.run_dir / RECORDS_FILE).records
    }
    units = sum(m.repeats for row in plan.rows for m in plan.methods if m.runs_on(row.task.category))
    pending = seconds = 0.0
    for row in plan.rows:
        todo = sum(
            (row.id, m.label, r) not in done
            for m in plan.methods if m.runs_on(row.task.category) for r in range(m.repeats)
        )  # fmt: skip
        pending += todo
        seconds += todo * unit_seconds(len(row.prompt.input_ids), row.settings.max_new_tokens)
    if plan.rows and pending:
        first = plan.rows[0]
        seconds += (
            plan.cfg.warmups
            * len(plan.methods)
            * unit_seconds(len(first.prompt.input_ids), first.settings.max_new_tokens)
        )

    per_dataset = Counter(r.task.name for r in plan.rows)
    tokens = sorted(len(r.prompt.input_ids) for r in plan.rows)
    truncated = sum(r.prompt.truncated for r in plan.rows)
    lines = [
        f"dry run: {plan.run_dir}",
        f"model {plan.spec.name} ({config.model_type}, {layers} layers, {layer_params / 1e9:.2f}B layer params), "
        f"{plan.device}, {dtype}; chat style {plan.chat_style}",
        f"rows: {len(plan.rows)} over {len(per_dataset)} datasets "
        + ", ".join(f"{k} {v}" for k, v in per_dataset.items()),
        f"prompt tokens: min {tokens[0]}, median {tokens[len(tokens) // 2]}, max {tokens[-1]}; "
        f"{truncated} rows middle-truncated"
        if tokens
        else "prompt tokens: no rows",
        "methods: "
        + ", ".join(
            (f"{m.label} x{m.repeats}" if m.repeats > 1 else m.label)
            + (f" (on {'/'.join(m.categories)})" if m.categories else "")
            for m in plan.methods
        ),
        f"units: {units} in all, {int(pending)} pending "
        f"({len(done)} already recorded), plus {plan.cfg.warmups} warm-up(s) per method",
        f"estimated time: {seconds / 3600:.2f} h ({seconds:.0f} s) -- upper bound: every unit costed as full "
        f"prefill at {rate['prefill_tflops']} TFLOP/s effective plus the full output budget at "
        f"{rate['decode_gbps']} GB/s of weight reads (override with estimate.prefill_tflops=, "
        "estimate.decode_gbps=)",
        "nothing was run; drop dry_run=true to run it",
    ]
    return "\n".join(lines)


def dry_run(cfg) -> str:
    from lazybench.protocol.phases import protocol_text
    from lazybench.runner.config import to_plain

    plan = prepare(cfg)
    rates = to_plain(cfg.get("estimate")) or None
    text = describe(plan, plan.model_config, rates)
    extra = protocol_text(cfg, plan, rates, text)  # a sweep's settings; both phases of a protocol preset
    return text + ("\n" + extra if extra else "")
