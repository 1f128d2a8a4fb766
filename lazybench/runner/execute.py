"""Executing a `RunPlan`: load the model once, warm up, then row by row the baseline first and every
other (method, repeat) after it on the same prompt, each record appended (fsynced) as soon as it is
done; resumable, one process per run directory; at the end the summaries and the objective.
See `lazybench.runner.run` for the whole story (TTFT sampling, resuming, fidelity).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers

from lazybench import aggregate, models
from lazybench.records import RECORDS_FILE, RunRecord, append_record, read_records, truncate_partial_tail
from lazybench.runner import summary as S
from lazybench.runner.common import RunConfigError, to_plain
from lazybench.runner.config import Row, RunPlan
from lazybench.runner.entries import BASELINE
from lazybench.runner.fidelity import fidelity
from lazybench.runner.frontend import device_label
from lazybench.runner.generator import Generator
from lazybench.runner.progress import RunningSpeedup, RunProgress
from lazybench.runner.rundir import exclusive_run_dir, write_run_files
from lazybench.runner.timing import interleaved_samples, spread_note, with_samples

log = logging.getLogger("lazybench.runner")


@dataclass
class RunOutcome:
    run_dir: Path
    records_path: Path
    new_records: int
    skipped_units: int
    dropped_partial_line: bool
    summary: Any = None  # lazybench.runner.summary.Summary
    table: str = ""
    objective: Any = None
    files: list[Path] = field(default_factory=list)
    timing_note: str = ""  # one line: how many units have a large TTFT spread (lazybench.runner.timing)


def _objective(plan: RunPlan, summary) -> Any:
    wanted = to_plain(plan.cfg.get("objective"))
    if not wanted or summary is None or plan.primary_label is None:
        return None
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    values = aggregate.objective_values(summary.frame, plan.primary_label, names)
    return values[0] if len(values) == 1 else values


def execute(plan: RunPlan) -> RunOutcome:
    """Run what is pending, record it, write the summaries; returns what was done."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_run_dir(plan.run_dir):
        return _execute(plan)


def _execute(plan: RunPlan) -> RunOutcome:
    records_path = plan.run_dir / RECORDS_FILE
    dropped = truncate_partial_tail(records_path)
    if dropped:
        msg = f"{records_path}: dropped a half-written last record (an interrupted write); that unit will be redone"
        log.warning(msg)
        print(f"lazybench: {msg}", file=sys.stderr)
    existing = read_records(records_path).records
    foreign = sorted({r["example_id"] for r in existing} - {row.id for row in plan.rows})
    if foreign:  # the config is the same, so the data under it changed: do not merge two row sets
        raise RunConfigError(
            f"{plan.run_dir} holds records of {len(foreign)} rows this run does not have (e.g. "
            f"{foreign[0]!r}): its data source changed (now {plan.data_source}). Resume it with the "
            "data_dir it was made with, or use another name= (or output_dir=)."
        )
    here = device_label(plan.device)
    devices = sorted({r.get("device", here) for r in existing} - {here})
    if devices:  # speedups pair a row's methods across sessions: their clocks must be the same kind
        raise RunConfigError(
            f"{plan.run_dir} holds records timed on {', '.join(devices)}; this session runs on {here}. "
            "Resume it there (model.device=...), or use another name= (or output_dir=)."
        )
    done: dict[tuple[str, str, int], dict] = {
        (r["example_id"], r["method_label"], r["repeat"]): r for r in existing
    }
    write_run_files(plan, "running", {"dropped_partial_line": dropped, "records_at_start": len(existing)})

    keys = {
        row.id: [
            (row.id, m.label, r)
            for m in plan.methods
            if m.runs_on(row.task.category)
            for r in range(m.repeats)
        ]
        for row in plan.rows
    }
    pending_rows = [row for row in plan.rows if any(k not in done for k in keys[row.id])]
    skipped = sum(k in done for ks in keys.values() for k in ks)
    if existing:
        log.info(
            "resuming %s: %d units already recorded, %d rows pending",
            plan.run_dir,
            skipped,
            len(pending_rows),
        )

    new_records = 0
    if pending_rows:
        new_records = _run_pending(plan, pending_rows, done, records_path)

    outcome = RunOutcome(plan.run_dir, records_path, new_records, skipped, dropped)
    records = read_records(records_path).records
    if records:
        _finish(plan, records, outcome)

        outcome.timing_note = spread_note(records, plan.timing.spread_threshold)
        print(f"lazybench: {outcome.timing_note}")
    write_run_files(
        plan,
        "finished",
        {
            "dropped_partial_line": dropped,
            "records_at_start": len(existing),
            "new_records": new_records,
            "records": len(records),
            "timing": {**plan.timing.__dict__, "note": outcome.timing_note},
        },
    )
    outcome.objective = _objective(plan, outcome.summary)
    return outcome


def _run_pending(plan: RunPlan, pending_rows: list[Row], done: dict, records_path: Path) -> int:

    cfg = plan.cfg
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("absl").setLevel(logging.WARNING)  # rouge-score logs "Using default tokenizer." per use
    t0 = time.perf_counter()
    model, _ = models.load_model(plan.spec)  # looked up at call time: tests guard it (no_model_load)
    log.info("loaded %s in %.1f s", plan.spec.name, time.perf_counter() - t0)
    for entry in plan.methods:
        entry.method.setup(model, plan.tokenizer)  # e.g. a prompt compressor loads its own model here
    gen = Generator(plan, model)
    want_fidelity = bool(cfg.get("fidelity", True))
    kill_after = cfg.get("debug", {}).get("sigkill_after_records")

    speed = RunningSpeedup(BASELINE, plan.primary_label)
    for rec in done.values():
        speed.add(rec["example_id"], rec["method_label"], rec["ttft_s"])
    progress = RunProgress(
        total_rows=len(plan.rows),
        done_rows=len(plan.rows) - len(pending_rows),
        speedup=speed,
        desc=plan.run_id,
        enabled=bool(cfg.get("progress", True)),
    )

    # Warm-ups: every method on the first pending prompt, not recorded.
    first = pending_rows[0]
    n_warm = int(cfg.warmups) * len(plan.methods)
    for i in range(int(cfg.warmups)):
        for j, entry in enumerate(plan.methods):
            progress.note(f"warm-up {i * len(plan.methods) + j + 1}/{n_warm}")
            gen.generate(entry, first, 0, keep_logits=want_fidelity)
    progress.note(None)
    baseline = next(m for m in plan.methods if m.is_baseline)
    new_records = 0

    def write(record: RunRecord) -> None:
        nonlocal new_records
        append_record(records_path, record)
        done[record.key()] = json.loads(record.to_json())
        speed.add(record.example_id, record.method_label, record.ttft_s)
        new_records += 1
        if kill_after is not None and new_records >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection for the resume tests

    try:
        for row in pending_rows:
            todo = [
                (m, r)
                for m in plan.methods
                if m.runs_on(row.task.category)
                for r in range(m.repeats)
                if (row.id, m.label, r) not in done
            ]
            others = [(m, r) for m, r in todo if not m.is_baseline]
            keep = want_fidelity and bool(others)
            # k - 1 prefill-only rounds over the row's pending units; the generation is sample k
            entries = {(m.label, r): m for m, r in todo}
            earlier = interleaved_samples(
                list(entries),
                plan.timing.prefill_repeats - 1,
                lambda key, row=row, entries=entries: gen.prefill_sample(entries[key], row, key[1]),
            )
            base_key = (row.id, baseline.label, 0)
            base_logits = base_tokens = None
            if base_key not in done:
                result = gen.generate(baseline, row, 0, keep_logits=keep)
                base_logits, base_tokens = result.first_logits, result.tokens
                result, samples = with_samples(result, earlier[(baseline.label, 0)])
                write(gen.record(baseline, row, 0, result, samples=samples))
            elif keep:  # resumed row: recompute the baseline's first-token logits and tokens, record nothing
                again = gen.generate(baseline, row, 0, keep_logits=True)
                base_logits, base_tokens = again.first_logits, again.tokens
            base_prediction = done[base_key]["prediction"]
            for entry, repeat in others:
                result = gen.generate(entry, row, repeat, keep_logits=keep)
                result, samples = with_samples(result, earlier[(entry.label, repeat)])
                record = gen.record(entry, row, repeat, result, samples=samples)
                if want_fidelity:
                    record_fid = fidelity(
                        base_logits, base_prediction, result.first_logits, record.prediction,
                        result.tokens, base_tokens,
                    )  # fmt: skip
                    for name, value in asdict(record_fid).items():  # the record's fidelity fields
                        setattr(record, name, value)
                write(record)
            del base_logits, base_tokens
            progress.row_done()
    finally:
        progress.close()
    return new_records


def _finish(plan: RunPlan, records: list[dict], outcome: RunOutcome) -> None:

    cfg = plan.cfg
    header = [
        f"- run: `{plan.run_id}` ({plan.run_dir})",
        f"- model: `{plan.spec.name}` ({plan.num_layers} layers, {plan.device}), chat style `{plan.chat_style}`, "
        f"max_length {cfg.model.get('max_length')}",
        f"- suite: `{cfg.suite.name}` ({len(plan.rows)} rows), warm-ups {cfg.warmups}, seed {cfg.seed}",
        f"- records: {len(records)}",
    ]
    labels = [m.label for m in plan.methods]
    outcome.summary, outcome.files = S.write_run_summaries(
        plan.run_dir, records, header, labels, plot=bool(cfg.get("plot", True))
    )
    outcome.table = S.console_table(outcome.summary)
