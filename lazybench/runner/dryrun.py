"""`lazybench ... dry_run=true`: what a run would do, where its rows come from, and how long it would
take, without loading any weights.

A paper preset is many GPU-hours; before spending them a user wants to see the data source and its
rows, the methods and repeats, prompt lengths, pending units (resume-aware) and an estimate in
GPU-hours. Everything comes from `prepare()`, which validates the run and reads only tokenizer and
model config. Where something the run names is not on this machine (`NotAvailableHereError`: the
hub unreachable, a model outside the local cache), the dry run still describes the run around it:
the hub's rows by LongBench's published sizes (said to be not downloaded), prompts costed at
`max_length`, the model's shape from its published config.

The time model and its assumed rates are in `lazybench.runner.estimate`; `estimate.*` overrides them.
A sharded run (`shard.count` > 1) also gets its rows and hours per shard and for the whole run
(lazybench.runner.shard_cost); a protocol preset, the whole protocol's (lazybench.protocol.phases).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lazybench.protocol.sweep import sweep_entries
from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.config import (
    NotAvailableHereError,
    RunPlan,
    _build_rows,
    default_run_dir,
    model_spec,
    prepare,
    resolve_data_source,
    resolve_methods,
    resolve_suite,
    to_plain,
)
from lazybench.runner.estimate import KNOWN_SHAPES, RATES, DeviceRates, ModelShape, unit_cost
from lazybench.runner.shard import resolve_shard
from lazybench.runner.shard_cost import ShardHours, assigned_hours, expected_hours
from lazybench.shards import Shard
from lazybench.tasks import HUB, published_sizes

RATE_KEYS = ("prefill_tflops", "decode_gbps", "decode_ms_per_token")


@dataclass
class Work:
    """Pending units of one method at one prompt size: what the estimate multiplies out."""

    entry: object  # MethodEntry
    prompt_tokens: int
    new_tokens: int
    count: int


def device_classes(resolved: str, requested: str) -> tuple[list[str], str]:
    """Which rate classes to print, and a note: the run's own device when known, else both GPUs."""
    import torch

    if resolved.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(resolved)) if torch.cuda.is_available() else ""
        if any(t in name for t in ("H100", "H200", "H800", "GH200")):
            return ["h100"], name
        if any(t in name for t in ("A100", "A800")):
            return ["a100"], name
        return ["a100", "h100"], name or "a GPU"
    if requested == "auto":
        return ["a100", "h100"], "model.device=auto and no GPU here: costed for GPU classes"
    return ["cpu"], ""


def estimate_lines(
    work: list[Work],
    warmup: list[Work],
    shape: ModelShape,
    classes: list[str],
    overrides: dict | None,
    bytes_per: int,
    basis: str,
) -> list[str]:
    """GPU-hours (or CPU hours) of the pending units plus warm-ups, per rate class and per method."""
    lines = []
    for key in classes:
        rates: DeviceRates = RATES[key].with_overrides(overrides)
        per_method: Counter[str] = Counter()
        for w in [*work, *warmup]:
            cost = unit_cost(
                w.entry.name, w.entry.method, shape, rates, w.prompt_tokens, w.new_tokens, bytes_per
            )
            label = w.entry.label if w.entry.repeats == 1 else f"{w.entry.label} x{w.entry.repeats}"
            per_method[label] += w.count * cost.total
        seconds = sum(per_method.values())
        unit = "CPU-hours" if key == "cpu" else "GPU-hours"
        token_ms = shape.num_layers * rates.decode_ms_per_layer
        decode = (
            f"decode {token_ms:.0f} ms/token (host)" if token_ms else f"decode at {rates.decode_gbps:g} GB/s"
        )
        lines.append(
            f"estimate, {rates.name}: {seconds / 3600:.2f} {unit} ({seconds:.0f} s): prefill at "
            f"{rates.prefill_tflops:g} TFLOP/s effective, {decode}, {basis}"
        )
        if per_method:
            lines.append(
                "  per method (h): " + ", ".join(f"{k} {v / 3600:.2f}" for k, v in per_method.items())
            )
    lines.append(
        "  assumed rates and method factors: lazybench/runner/estimate.py (override with "
        + ", ".join(f"estimate.{k}=" for k in RATE_KEYS)
        + "); model loading not included"
    )
    return lines


def _bytes_per(spec, classes: list[str]) -> int:
    """Bytes per weight where the estimate runs (dtype auto: bf16 on a GPU, fp32 on a CPU)."""
    import torch

    from lazybench.models import resolve_dtype

    return resolve_dtype(spec.dtype, torch.device("cpu" if classes == ["cpu"] else "cuda")).itemsize


def _output_lines(plan: RunPlan) -> list[str]:
    """The output budget, and a forced length (suite.min_new_tokens) where one is set."""
    budgets = sorted({r.settings.max_new_tokens for r in plan.rows})
    forced = sorted({r.settings.min_new_tokens for r in plan.rows})
    if not budgets or plan.cfg.suite.get("min_new_tokens") is None:
        return []

    def span(values: list[int]) -> str:
        return str(values[0]) if values[0] == values[-1] else f"{values[0]}..{values[-1]}"

    return [
        f"outputs: {span(budgets)} new tokens, EOS and stop tokens ignored until {span(forced)} are out "
        f"(suite.min_new_tokens={plan.cfg.suite.min_new_tokens}), every method alike"
    ]


def _done(run_dir) -> set[tuple[str, str, int]]:
    return {
        (r["example_id"], r["method_label"], r["repeat"])
        for r in read_records(run_dir / RECORDS_FILE).records
    }


def _work(rows, methods, done: set, warmups: int) -> tuple[list[Work], list[Work], int]:
    """Pending units of `rows` (not in `done`), the warm-ups before them, and all units."""
    work: list[Work] = []
    units = 0
    for row in rows:
        n, new = len(row.prompt.input_ids), row.settings.max_new_tokens
        for m in methods:
            if not m.runs_on(row.task.category):
                continue
            units += m.repeats
            todo = sum((row.id, m.label, r) not in done for r in range(m.repeats))
            if todo:
                work.append(Work(m, n, new, todo))
    warmup = []
    if rows and work:
        n, new = len(rows[0].prompt.input_ids), rows[0].settings.max_new_tokens
        warmup = [Work(m, n, new, warmups) for m in methods]
    return work, warmup, units


def shard_hours(plan: RunPlan, shape: ModelShape, classes: list[str], rates, bytes_per: int) -> ShardHours:
    """Rows and pending hours of every shard of the plan's run (of the run itself when unsharded)."""
    warmups = int(plan.cfg.warmups)
    if not plan.shard.active:
        work, warmup, _ = _work(plan.rows, plan.methods, _done(plan.run_dir), warmups)
        return assigned_hours([(len(plan.rows), work, warmup)], shape, classes, rates, bytes_per)
    suite = resolve_suite(plan.cfg)  # every shard's rows, assigned as the runner assigns them
    rows = _build_rows(plan.cfg, suite, plan.data, plan.tokenizer, plan.context_limit, plan.chat_style)
    parent, per_shard = plan.run_dir.parent.parent, []
    for i in range(plan.shard.count):
        shard = Shard(i, plan.shard.count)
        mine = [r for r in rows if shard.owns(r.id)]
        per_shard.append((len(mine), *_work(mine, plan.methods, _done(shard.run_dir(parent)), warmups)[:2]))
    return assigned_hours(per_shard, shape, classes, rates, bytes_per)


def describe(plan: RunPlan, config, rates: dict | None = None) -> str:
    return describe_parts(plan, config, rates)[0]


def describe_parts(plan: RunPlan, config, rates: dict | None = None) -> tuple[str, ShardHours]:
    """The dry-run text of a plan, and its hours per shard (lazybench.runner.shard_cost)."""
    shape = ModelShape.from_config(config)
    done = _done(plan.run_dir)
    work, warmup, units = _work(plan.rows, plan.methods, done, int(plan.cfg.warmups))
    pending = sum(w.count for w in work)
    classes, note = device_classes(plan.device, plan.spec.device)

    per_dataset = Counter(r.task.name for r in plan.rows)
    tokens = sorted(len(r.prompt.input_ids) for r in plan.rows)
    truncated = sum(r.prompt.truncated for r in plan.rows)
    bytes_per = _bytes_per(plan.spec, classes)
    shards = shard_hours(plan, shape, classes, rates, bytes_per)
    lines = [
        f"dry run: {plan.run_dir}" + (f" (shard {plan.shard.name})" if plan.shard.active else ""),
        f"model {plan.spec.name} ({config.model_type}, {shape.num_layers} layers, {shape.layer_params / 1e9:.2f}B "
        f"layer params), {plan.device}{f' ({note})' if note else ''}, {bytes_per * 8}-bit weights; "
        f"chat style {plan.chat_style}",
        f"data: {plan.data_source}, {len(plan.rows):,} rows",
        f"rows: {len(plan.rows)} over {len(per_dataset)} datasets "
        + ", ".join(f"{k} {v}" for k, v in per_dataset.items()),
        f"prompt tokens: min {tokens[0]}, median {tokens[len(tokens) // 2]}, max {tokens[-1]}; "
        f"{truncated} rows middle-truncated"
        if tokens
        else "prompt tokens: no rows",
        *_output_lines(plan),
        "methods: "
        + ", ".join(
            (f"{m.label} x{m.repeats}" if m.repeats > 1 else m.label)
            + (f" (on {'/'.join(m.categories)})" if m.categories else "")
            for m in plan.methods
        ),
        f"units: {units} in all, {pending} pending "
        f"({len(done)} already recorded), plus {plan.cfg.warmups} warm-up(s) per method",
        *estimate_lines(
            work,
            warmup,
            shape,
            classes,
            rates,
            bytes_per,
            "every unit at its row's prompt length and full output budget",
        ),  # fmt: skip
        *(shards.lines("run", plan.shard.index) if plan.shard.active else []),
        "nothing was run; drop dry_run=true to run it",
    ]
    return "\n".join(lines), shards


def _sweep_entries(cfg, shape: ModelShape | None) -> list[dict]:
    """A sweep's method entries solved from a preset's published shape (none without a shape)."""
    if not cfg.get("sweep") or shape is None:
        return []
    return sweep_entries(cfg, shape.as_config())


def describe_unavailable(cfg, why: str, rates: dict | None = None) -> str:
    """The run described around what is missing here (see the module docstring)."""
    return describe_unavailable_parts(cfg, why, rates)[0]


def describe_unavailable_parts(cfg, why: str, rates: dict | None = None) -> tuple[str, ShardHours | None]:
    """`describe_unavailable`'s text and its hours per shard (None when nothing can be estimated)."""
    suite = resolve_suite(cfg)
    data = resolve_data_source(cfg)
    spec = model_spec(cfg)
    shard = resolve_shard(cfg)
    counts: dict[str, int] = {}
    for task in suite.tasks():
        if data.kind == HUB:
            size = published_sizes()[task.name]
            counts[task.name] = size if suite.limit is None else min(size, suite.limit)
        else:
            counts[task.name] = len(suite.examples(task.name, data_dir=data))
    total = sum(counts.values())
    sizes_note = " (LongBench's published sizes; not downloaded)" if data.kind == HUB else ""
    shape, shape_note = None, ""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(spec.name, trust_remote_code=spec.trust_remote_code)
        shape = ModelShape.from_config(
            config.get_text_config() if hasattr(config, "get_text_config") else config
        )
    except Exception:  # noqa: BLE001 - not in the local cache: the preset's published shape, if known
        shape = KNOWN_SHAPES.get(spec.name)
        shape_note = "published config.json shape" if shape else "shape unknown here"
    max_length = cfg.model.get("max_length") or cfg.model.get("context_limit")
    methods, _ = resolve_methods(cfg, _sweep_entries(cfg, shape))
    split = to_plain(cfg.get("split")) or {}
    part = split.get("part", "all")
    if data.kind == HUB and part in ("dev", "test"):  # ids are not here: the split's expected share
        share = split.get("dev_fraction", 0.5) if part == "dev" else 1 - split.get("dev_fraction", 0.5)
        counts = {name: round(n * share) for name, n in counts.items()}
        total = sum(counts.values())
        sizes_note += f"; about {share:.0%} of them, the {part} part of the split"
    units_per_row = sum(m.repeats for m in methods)
    lines = [
        f"dry run: {default_run_dir(cfg)}{f' (shard {shard.name})' if shard.active else ''} -- partial, not "
        f"everything is available here: {why}",
        f"model {spec.name} (not inspected here{f'; {shape_note}' if shape_note else ''}"
        + (f", {shape.num_layers} layers, {shape.layer_params / 1e9:.2f}B layer params)" if shape else ")")
        + f", model.device={spec.device}, dtype {spec.dtype}",
        f"data: {data.label}, {total:,} rows{sizes_note}",
        f"rows: {total} over {len(counts)} datasets " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        f"prompt tokens: not tokenized here; every row costed at max_length {max_length} (an upper bound)",
        "methods: " + ", ".join(f"{m.label} x{m.repeats}" if m.repeats > 1 else m.label for m in methods),
        f"units: {total * units_per_row} in all, plus {cfg.warmups} warm-up(s) per method",
    ]
    shards = None
    if shape is None or not max_length:
        lines.append("estimate: none (the model's shape or the prompt length is unknown here)")
    else:
        work = [
            Work(m, int(max_length), suite.max_new_tokens(name), count * m.repeats)
            for name, count in counts.items()
            for m in methods
        ]
        first = next(iter(counts), None)
        warmup = [Work(m, int(max_length), suite.max_new_tokens(first), int(cfg.warmups)) for m in methods]
        from lazybench.models import resolve_device

        device = resolve_device(spec.device)
        classes, note = device_classes(str(device), spec.device)
        basis = "every row at max_length and its full output budget" + (f"; {note}" if note else "")
        bytes_per = _bytes_per(spec, classes)
        warmup = warmup if first else []
        lines += estimate_lines(work, warmup, shape, classes, rates, bytes_per, basis)
        shards = expected_hours(total, work, warmup, shard.count, shape, classes, rates, bytes_per)
        if shard.active:
            lines += shards.lines("run", shard.index)
    lines.append("nothing was run; drop dry_run=true to run it")
    return "\n".join(lines), shards


def dry_run(cfg) -> str:
    from lazybench.protocol.phases import protocol_outline, protocol_text

    rates = to_plain(cfg.get("estimate")) or None
    try:
        plan = prepare(cfg)
    except NotAvailableHereError as err:
        why = " ".join(str(err).split())
        why = why if len(why) <= 300 else why[:297] + "..."
        text, hours = describe_unavailable_parts(cfg, why, rates)
        extra = protocol_outline(cfg, hours, why, rates)  # the phases, without a plan (no model or hub here)
        return text + ("\n" + extra if extra else "")
    text, hours = describe_parts(plan, plan.model_config, rates)
    extra = protocol_text(cfg, plan, rates, hours)  # a sweep's settings; both phases of a protocol preset
    return text + ("\n" + extra if extra else "")
