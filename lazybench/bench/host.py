"""Host cost of a step: the synchronising ops and the ops launched per prefill and per decode step,
and the host time of a decode step on a model with (almost) no compute.

On a GPU the host queues kernels ahead of the device; every op that needs a device value on the
host (an `int(t)`, a `.tolist()`, a boolean-mask index, whose output size is data dependent) or
that copies host data to the device with a blocking copy drains that queue and stalls the stream.
A 7B decode step is host-bound on an A100 class card, so host work per step shows up as a slower
generation. This command counts, for plain transformers (DynamicCache, greedy), the engine's full
prefill, LazyLLM (default and aggressive schedules) and static pruning:

- ops launched: every aten op the step dispatches (a `TorchDispatchMode` sees each one);
- syncs: the ops among them that synchronise on CUDA (see `sync_kind`), plus `Tensor.tolist`,
  which does not dispatch and is patched while counting. On CPU this is a proxy; with
  `--device cuda` the real syncs are also counted (`torch.cuda.set_sync_debug_mode("warn")`).

Counts are split into the engine step and the generation loop around it (the greedy token read,
argmax -> int, one per step and unavoidable). The timing part runs the configurations on a
32-layer Llama of hidden size 64 (compute near zero for one row), advancing all of them in
lockstep and reporting medians of the interleaved steps (with `--repeats K`, the median and range
of K such timings). Besides the methods it steps a diagnostic LazyLLM that revives nothing and the
row references (the baseline computing R rows per decode step), against which each decode step is
also timed at equal rows: on a CPU more rows cost kernel time on the host thread, which a GPU
spends on the device (see `row_matched_ms` and docs/host_path.md).

    python -m lazybench.bench.host --out results/bench [--before results/bench/host_cpu_before.csv]
    python -m lazybench.bench.host --device cuda --dtype bfloat16 --out DIR
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path

import torch

from lazybench.bench.host_configs import (
    ROW_REFERENCES,
    PlainGreedy,
    RowsGeneration,
    compute_free_model,
    engine_configs,
    row_reference,
)
from lazybench.bench.syncs import HostOpCounter, Tally
from lazybench.bench.ttft import add_output_arguments, write_table
from lazybench.engine import Generation, LazyEngine
from lazybench.models import resolve_device, resolve_dtype


def _counted_step(counter: HostOpCounter, rows: Callable[[tuple, object], int]) -> Callable:
    """Wrap a step function so its ops count in the "step" bucket, with the row-layers it computed."""

    def wrap(fn: Callable) -> Callable:
        def step(*args, **kwargs):
            with counter.bucket("step"):
                out = fn(*args, **kwargs)
            counter.tallies.setdefault("step", Tally()).rows += rows(args, out)
            return out

        return step

    return wrap


def count_ops(
    model,
    ids: torch.Tensor,
    decode_steps: int,
    cuda_syncs: bool = False,
    decode_read: str | None = None,
    configs: Collection[str] | None = None,
    warmup: bool = True,
) -> list[dict]:
    """Per configuration (all, or `configs`) and phase: ops and syncs in the step and in the loop
    around it. Counts are deterministic for a given model, prompt and device."""
    accelerator = ids.device.type != "cpu"
    makers: dict[str, Callable] = {}
    layer_rows: dict[str, list[list[int]]] = {}
    engines = engine_configs(model, decode_read)
    for name, engine in engines.items():
        rows_of = layer_rows[name] = []
        makers[name] = lambda counter, e=engine, r=rows_of: _engine_generation(
            e, ids, decode_steps, counter, r
        )
    for n_rows in ROW_REFERENCES:
        makers[row_reference(n_rows)] = lambda counter, n=n_rows: _engine_generation(
            engines["engine-baseline"], ids, decode_steps, counter, [], n
        )
    layers = model.config.num_hidden_layers
    makers["plain-hf"] = lambda counter: PlainGreedy(
        model, ids, 1 + decode_steps, _counted_step(counter, lambda args, out: args[0].numel() * layers)
    )
    rows = []
    for name, make in makers.items():
        if configs is not None and name not in configs:
            continue
        warm = make(HostOpCounter()) if warmup else None  # lazy initialisation is not a per-step cost
        while warm is not None and not warm.done:
            warm.advance()
        if name in layer_rows:
            layer_rows[name].clear()
        counter = HostOpCounter(accelerator, cuda_syncs)
        generation = make(counter)  # allocation happens here, outside the counted steps
        with counter:
            per_advance = []
            while not generation.done:
                generation.advance()
                per_advance.append(counter.take())
        for phase, tallies in (("prefill", per_advance[:1]), ("decode step", per_advance[1:])):
            if phase == "prefill" and name in {row_reference(n) for n in ROW_REFERENCES}:
                continue  # a row reference's prefill is the baseline's
            rows.append(_phase_row(name, phase, tallies, cuda_syncs))
            if phase == "decode step" and layer_rows.get(name):  # rows of every layer of every decode step
                rows[-1]["_layer_rows"] = [n for step in layer_rows[name][1:] for n in step]
    return rows


def _engine_generation(
    engine: LazyEngine,
    ids,
    decode_steps: int,
    counter: HostOpCounter,
    layer_rows: list,
    new_per_step: int = 1,
) -> Generation:
    if new_per_step == 1:
        generation = Generation(engine, ids, 1 + decode_steps)
    else:
        generation = RowsGeneration(engine, ids, 1 + decode_steps, new_per_step)

    def count_rows(args, out) -> int:
        layer_rows.append(out[1].rows_per_layer)
        return sum(out[1].rows_per_layer)

    engine.step = _counted_step(counter, count_rows)(type(engine).step.__get__(engine))
    return generation


def _phase_row(name: str, phase: str, tallies: list[dict[str, Tally]], cuda_syncs: bool) -> dict:
    def mean(values: list[float]) -> float:
        return round(statistics.mean(values), 2) if values else 0.0

    step = [t.get("step", Tally()) for t in tallies]
    loop = [t.get("loop", Tally()) for t in tallies]
    kinds = Counter()
    for t in step:
        kinds.update(t.syncs)
    row = dict(
        config=name,
        phase=phase,
        step_syncs=mean([t.n_syncs for t in step]),
        step_syncs_max=max(t.n_syncs for t in step),
        loop_syncs=mean([t.n_syncs for t in loop]),
        step_ops=mean([t.ops for t in step]),
        row_layers=mean([t.rows for t in step]),
        loop_ops=mean([t.ops for t in loop]),
        step_sync_kinds=" ".join(f"{k}x{v / len(step):g}" for k, v in sorted(kinds.items())),
        loop_sync_kinds=" ".join(
            f"{k}x{v / len(loop):g}" for k, v in sorted(sum((t.syncs for t in loop), Counter()).items())
        ),
    )
    if cuda_syncs:
        row["cuda_step_syncs"] = mean([t.cuda_syncs for t in step])
        row["cuda_loop_syncs"] = mean([t.cuda_syncs for t in loop])
    return row


# --- host time on the compute-free model ---------------------------------------------------------
def time_steps(model, ids: torch.Tensor, rounds: int, decode_steps: int, decode_read=None) -> dict[str, dict]:
    """Median prefill and decode-step time per configuration; every round advances all of them in
    lockstep (rotated order each step), so a shared machine's drift hits them alike.

    On CPU the clock is the thread's CPU time (with one torch thread all the work runs on it), which
    other processes on a shared machine do not inflate; on CUDA it is wall time, device synchronised.
    """
    cuda = ids.device.type == "cuda"
    engines = engine_configs(model, decode_read)
    references = {row_reference(r): r for r in ROW_REFERENCES}
    names = ["plain-hf", *references, *engines]
    times: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(rounds + 1):  # round 0 warms up
        gens = {n: Generation(e, ids, 1 + decode_steps) for n, e in engines.items()}
        base = engines["engine-baseline"]
        gens |= {n: RowsGeneration(base, ids, 1 + decode_steps, k) for n, k in references.items()}
        gens = {"plain-hf": PlainGreedy(model, ids, 1 + decode_steps), **gens}
        steps: dict[str, list[float]] = {n: [] for n in names}
        for turn in range(1 + decode_steps):
            k = (r + turn) % len(names)
            for name in names[k:] + names[:k]:
                if cuda:
                    torch.cuda.synchronize(ids.device)
                t0 = time.perf_counter() if cuda else time.thread_time()
                gens[name].advance()  # synchronises at its end on CUDA
                steps[name].append((time.perf_counter() if cuda else time.thread_time()) - t0)
        if r > 0:
            for name in names:
                times[name].append(steps[name])
    return {
        n: dict(
            prefill_ms=1000 * statistics.median(t[0] for t in times[n]),
            decode_ms=1000 * statistics.median(x for t in times[n] for x in t[1:]),
        )
        for n in names
    }


# --- the table ------------------------------------------------------------------------------------
def row_matched_ms(layer_rows: list[float], times: dict[str, dict], path_as_rows: bool = True) -> float:
    """Host time of the engine baseline's decode step computing, layer by layer, the rows a config
    computed there: the baseline's step time with R rows at every layer, interpolated (piecewise
    linear in R) at the rows of each layer of each step and averaged over them. A config's time over
    it is its own host overhead at equal work.

    Going from one row to two, the baseline's step also takes a different path (a mask, slice
    writes, packing: some 4 more ops per layer), host work a GPU pays too. `path_as_rows` counts
    that jump as the rows' cost (the reading most favourable to a method that computes more rows);
    without it, the references from 2 rows up are lowered by the jump's excess over the per-row
    slope from 2 to 4 rows, so only that slope is counted as rows (the least favourable). The truth
    about a GPU host lies between the two."""
    base = times["engine-baseline"]["decode_ms"]
    refs = [(r, times[row_reference(r)]["decode_ms"]) for r in ROW_REFERENCES]
    if not path_as_rows:
        (r2, t2), (r4, t4) = refs[0], refs[1]
        jump = max(0.0, (t2 - base) - (t4 - t2) / (r4 - r2) * (r2 - 1))
        refs = [(r, t - jump) for r, t in refs]
    points = [(1, base), *refs]

    def at(x: float) -> float:
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x <= x1 or (x1, y1) == points[-1]:  # beyond the last point: the last segment's line
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        raise AssertionError("unreachable")

    return statistics.mean(at(max(1.0, x)) for x in layer_rows)


RANGED = ("host_vs_baseline", "host_vs_row_matched", "host_vs_row_slope")  # ratios shown with their range


def build_rows(counts: list[dict], times: dict[str, dict]) -> list[dict]:
    """Counts joined with the host times, each as a ratio to the engine baseline's same phase; decode
    steps of the engine's configs also at equal rows (`row_matched_ms`, both readings)."""
    base = {r["phase"]: r for r in counts if r["config"] == "engine-baseline"}
    rows = []
    for r in counts:
        r = dict(r)
        layer_rows = r.pop("_layer_rows", None)
        key = "prefill_ms" if r["phase"] == "prefill" else "decode_ms"
        host = times[r["config"]][key]
        base_host = times["engine-baseline"][key]
        b = base[r["phase"]]
        matched = row_matched_ms(layer_rows, times) if layer_rows else None
        slope = row_matched_ms(layer_rows, times, path_as_rows=False) if layer_rows else None
        rows.append(
            dict(
                **r,
                ops_vs_baseline=round(r["step_ops"] / b["step_ops"], 3) if b["step_ops"] else None,
                host_ms=round(host, 3),
                host_vs_baseline=round(host / base_host, 3),
                host_vs_row_matched=None if matched is None else round(host / matched, 3),
                host_vs_row_slope=None if slope is None else round(host / slope, 3),
            )
        )
    return rows


def combine_repeats(repeats: list[list[dict]]) -> list[dict]:
    """One table from several timings of the same counts: each timed value the median over the
    repeats, the ratios with their min and max (`<ratio>_min`, `<ratio>_max`)."""
    rows = []
    for versions in zip(*repeats):
        row = dict(versions[-1])
        for key in ("host_ms", *RANGED):
            values = [v[key] for v in versions if v[key] is not None]
            if values:
                row[key] = round(statistics.median(values), 3)
            if key in RANGED:  # every row has the columns (the CSV's header is the first row's keys)
                row[f"{key}_min"], row[f"{key}_max"] = (min(values), max(values)) if values else (None, None)
        rows.append(row)
    return rows


def read_before(path: Path) -> dict[tuple[str, str], dict]:
    with path.open(newline="") as fh:
        return {(r["config"], r["phase"]): r for r in csv.DictReader(fh)}


def to_markdown(rows: list[dict], header: str, before: dict | None) -> str:
    def both(r: dict, key: str) -> str:
        if r.get(key) in (None, ""):
            return "–"
        now = f"{r[key]:g}" if isinstance(r[key], float) else str(r[key])
        if r.get(f"{key}_min") is not None:  # timed several times: the median and the range
            now += f" [{r[f'{key}_min']:g}–{r[f'{key}_max']:g}]"
        old = (before or {}).get((r["config"], r["phase"]), {}).get(key)
        return now if old in (None, "") else f"{float(old):g} → {now}"

    cols = ["config", "phase", "step syncs", "loop syncs", "step ops", "ops / baseline", "row-layers",
            "host ms", "host / baseline", "host / row-matched", "host / one row + row slope",
            "what syncs in the step"]  # fmt: skip
    cuda = "cuda_step_syncs" in rows[0]
    if cuda:
        cols[4:4] = ["CUDA step syncs", "CUDA loop syncs"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [r["config"], r["phase"], both(r, "step_syncs"), both(r, "loop_syncs")]
        if cuda:
            cells += [f"{r['cuda_step_syncs']:g}", f"{r['cuda_loop_syncs']:g}"]
        cells += [both(r, "step_ops"), both(r, "ops_vs_baseline"), both(r, "row_layers"), both(r, "host_ms"),
                  both(r, "host_vs_baseline"), both(r, "host_vs_row_matched"), both(r, "host_vs_row_slope"),
                  r["step_sync_kinds"] or "–"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--layers", type=int, default=32, help="depth of the compute-free Llama")
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--decode-steps", type=int, default=16, help="decode steps counted and timed")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds (after one warm-up round)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="time it all this many times: medians and ranges of the ratios"
    )
    parser.add_argument("--decode-read", choices=["masked", "gather"], default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: host work, not a thread pool)"
    )
    parser.add_argument(
        "--before", type=Path, default=None, help="an earlier run's CSV, shown as before → after"
    )
    add_output_arguments(parser, "host")
    args = parser.parse_args(argv)
    if (
        args.prompt_tokens < 8
        or args.decode_steps < 1
        or min(args.rounds, args.repeats) < 1
        or args.layers < 8
    ):
        parser.error(
            "need --prompt-tokens >= 8, --decode-steps >= 1, --rounds >= 1, --repeats >= 1, --layers >= 8 "
            "(the aggressive schedule needs 5)"
        )
    if args.before is not None and not args.before.is_file():
        parser.error(f"--before {args.before} is not a file")
    device = resolve_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    dtype = resolve_dtype(args.dtype, device)
    torch.set_num_threads(args.threads)

    model = compute_free_model(device, dtype, args.layers)
    ids = torch.randint(3, model.config.vocab_size, (args.prompt_tokens,),
                        generator=torch.Generator().manual_seed(1)).to(device)  # fmt: skip
    counts = count_ops(model, ids, args.decode_steps, device.type == "cuda", args.decode_read)
    repeats = []
    for _ in range(args.repeats):
        times = time_steps(model, ids, args.rounds, args.decode_steps, args.decode_read)
        repeats.append(build_rows(counts, times))
    rows = repeats[0] if args.repeats == 1 else combine_repeats(repeats)
    label = f"{device.type}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    header = (
        f"Host cost per step, compute-free Llama ({args.layers} layers, hidden 64, 4 heads) on {label}, "
        f"{dtype}, torch threads {torch.get_num_threads()}; {args.prompt_tokens}-token prompt, "
        f"{args.decode_steps} decode steps (counts: mean per step). Syncs: ops that wait for the device "
        "(proxy on CPU, see docs/host_path.md); the loop's sync is the greedy token read. "
        f"Host ms: medians of {args.rounds} lockstep rounds "
        + ("(wall time)" if device.type == "cuda" else "(the thread's CPU time)")
        + (f"; timed {args.repeats} times: medians [min–max] over them." if args.repeats > 1 else ".")
        + " engine-baseline-xR: the baseline computing R rows per decode step (R new positions, its"
        " prompt cut to the same mean context). Host at equal rows, two readings (bench.host.row_matched_ms,"
        " docs/host_path.md): / row-matched, against those references interpolated at each layer's rows"
        " (the baseline's one-row-to-several path counted as rows); / one row + row slope, against the"
        " one-row step plus the per-row slope only (that path counted as the config's overhead)."
    )
    before = read_before(args.before) if args.before else None
    print(write_table(rows, to_markdown(rows, header, before), args.out, args.tag or f"host_{device.type}"))


if __name__ == "__main__":
    main()
