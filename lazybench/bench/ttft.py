"""TTFT benchmark: full prefill vs LazyLLM schedules through one engine, plus the plain HF forward.

Timings on shared machines are noisy, so every configuration is measured in one process,
interleaved round-robin within each repeat, after warm-ups, and reported as medians and as ratios
to the baseline measured in the same rounds. Alongside each measured speedup the table gives the
FLOP-ideal speedup for the token counts the run actually kept, so "faster" can be judged against
what the pruning could possibly buy.

    python -m lazybench.bench.ttft --lengths 1024 2048 4096 8192 --out results/bench
"""

from __future__ import annotations

import argparse
import csv
import inspect
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lazybench.engine import LazyEngine, Schedule, TokenPolicy, generate
from lazybench.engine.generate import sync_device
from lazybench.methods.lazyllm import LazyLLMPolicy
from lazybench.methods.static import StaticPruningPolicy
from lazybench.models import ModelSpec, load_model

SCHEDULES: dict[str, Schedule] = {
    "lazyllm-default": Schedule(),  # paper figure: 30/30/30/10% of layers keeping 100/70/40/10%
    "lazyllm-keep1.0": Schedule(keep=(1.0, 1.0, 1.0)),  # scoring on, nothing pruned: the engine's overhead
    "lazyllm-mild": Schedule(boundaries=(0.5, 0.75), keep=(0.7, 0.5)),
    "lazyllm-aggressive": Schedule(boundaries=(0.2, 0.5, 0.8), keep=(0.5, 0.25, 0.1)),
}

# Llama-2-7B- and XGen-7B-shaped configs for GPU timing with random weights (speed ignores weights).
GPU_SHAPES = {
    "llama2-7b": dict(vocab_size=32000, max_position_embeddings=4096),
    "xgen-7b": dict(vocab_size=51200, max_position_embeddings=8192),
    # the same code path at toy size, for tests and for checking the script before a device call
    "tiny-llama": dict(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=10,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
}


def longbench_token_ids(tokenizer, n_tokens: int, data_dir: Path | None = None) -> list[int]:
    """A prompt of exactly n_tokens cut from real LongBench contexts, ending with a real question
    (data_dir: as `load_examples`; None reads the bundled offline slice)."""
    from lazybench.tasks import load_examples

    rows = [
        ex
        for name in ("narrativeqa", "gov_report", "hotpotqa", "qasper")
        for ex in load_examples(name, data_dir)
    ]
    question = f"\n\nQuestion: {rows[0].input}\nAnswer:"
    tail = tokenizer(question, add_special_tokens=False)["input_ids"]
    body: list[int] = []
    for row in rows:
        body.extend(tokenizer(row.context, add_special_tokens=False)["input_ids"])
        if len(body) >= n_tokens:
            break
    if len(body) + len(tail) < n_tokens:
        raise ValueError(f"not enough LongBench text in {rows[0].source} for {n_tokens} tokens")
    return body[: n_tokens - len(tail)] + tail


@dataclass
class Timing:
    ttft: list[float]
    decode_step: list[float]
    total: list[float]
    revived_per_step: list[float]
    prefill_flop_fraction: float
    pct_prompt_computed: float


def plain_forward_ttft(model, ids: torch.Tensor) -> float:
    """The plain transformers forward (last-row logits only) plus argmax: the reference clock."""
    sync_device(ids.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        logits = model(ids[None], logits_to_keep=1, use_cache=True).logits
        int(logits[0, -1].argmax())
    sync_device(ids.device)
    return time.perf_counter() - t0


def plain_decode_step(model, ids: torch.Tensor, steps: int) -> float:
    """Median decode-step time of transformers' own cache loop, for reference."""
    times = []
    # transformers renamed the cache argument (5.2x: `cache`); the lent GPUs may run an older 5.x
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        out = model(ids[None], logits_to_keep=1, use_cache=True)
        cache, token = getattr(out, cache_arg), out.logits[0, -1].argmax().view(1, 1)
        for _ in range(steps):
            sync_device(ids.device)
            t0 = time.perf_counter()
            out = model(token, use_cache=True, **{cache_arg: cache})
            token = out.logits[0, -1].argmax().view(1, 1)
            sync_device(ids.device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def revived_per_decode_step(engine: LazyEngine, ids: torch.Tensor, decode_steps: int) -> float:
    """Tokens revived per decode step, from a traced run outside every clock (tracing reads the
    device to list positions, so the timed runs are untraced)."""
    if not decode_steps:
        return 0.0
    trace = generate(engine, ids, 1 + decode_steps, trace=True).trace
    return sum(len(s.revived) for s in trace if s.step > 0) / decode_steps


def bench_engines(model, decode_reads: tuple[str, ...]) -> dict[tuple[str, str], LazyEngine]:
    """One engine per (configuration, decode read). The read setting only changes configurations
    that prune (a decode step reads a pruned cache); the others get one engine, read "any"."""
    configs: dict[str, TokenPolicy] = {"baseline": TokenPolicy()}
    configs.update({name: LazyLLMPolicy(s) for name, s in SCHEDULES.items()})
    # Same kept sets in prefill as lazyllm-default, but no re-selection or revival while decoding: its
    # decode steps isolate the engine's own decode overhead (gathered KV, selection) from revival work.
    configs["static-default"] = StaticPruningPolicy(SCHEDULES["lazyllm-default"])
    engines = {}
    for name, policy in configs.items():
        prunes = any(k < 1.0 for k in policy.schedule.keep)
        for read in decode_reads if prunes else ("any",):
            engines[(name, read)] = LazyEngine(model, policy, decode_read=read if prunes else "masked")
    return engines


def run_benchmark(
    model,
    ids_by_length: dict[int, torch.Tensor],
    repeats: int,
    warmups: int,
    decode_steps: int,
    log: Callable,
    decode_reads: tuple[str, ...] = ("masked",),
) -> list[dict]:
    engines = bench_engines(model, decode_reads)
    base_key = ("baseline", "any")
    rows = []
    for n, ids in ids_by_length.items():
        log(f"== {n} tokens: {warmups} warm-up round(s), {repeats} timed round(s)")
        for _ in range(warmups):
            plain_forward_ttft(model, ids)
            for engine in engines.values():
                generate(engine, ids, 2)
        plain: list[float] = []
        timings = {key: Timing([], [], [], [], 0.0, 0.0) for key in engines}
        for rep in range(repeats):
            plain.append(plain_forward_ttft(model, ids))
            for key, engine in engines.items():
                result = generate(
                    engine, ids, 1 + decode_steps
                )  # untraced: nothing but the step in the clock
                t = timings[key]
                t.ttft.append(result.ttft_s)
                t.decode_step.extend(result.decode_step_s)
                t.total.append(result.total_s)
                t.prefill_flop_fraction = result.prefill_flop_fraction
                t.pct_prompt_computed = result.pct_prompt_computed
            log(f"   round {rep + 1}: plain {plain[-1]:.3f}s " + " ".join(
                f"{k[0]}{'' if k[1] == 'any' else '/' + k[1]} {v.ttft[-1]:.3f}s" for k, v in timings.items()))  # fmt: skip
        for key, engine in engines.items():
            timings[key].revived_per_step.append(revived_per_decode_step(engine, ids, decode_steps))
        hf_decode = plain_decode_step(model, ids, decode_steps)
        base_ttft = statistics.median(timings[base_key].ttft)
        base_decode = statistics.median(timings[base_key].decode_step)
        base_total = statistics.median(timings[base_key].total)
        plain_ttft = statistics.median(plain)
        for (name, read), t in timings.items():
            ttft = statistics.median(t.ttft)
            speedup = base_ttft / ttft
            ideal = 1.0 / t.prefill_flop_fraction
            decode = statistics.median(t.decode_step)
            rows.append(
                dict(
                    prompt_tokens=n,
                    config=name,
                    decode_read=read,
                    schedule=engines[(name, read)].policy.schedule.describe(),
                    ttft_s=round(ttft, 4),
                    plain_hf_ttft_s=round(plain_ttft, 4),
                    speedup=round(speedup, 3),
                    flop_ideal_speedup=round(ideal, 3),
                    measured_over_ideal=round(speedup / ideal, 3),
                    overhead_vs_plain_hf_pct=round(100.0 * (ttft / plain_ttft - 1.0), 2),
                    pct_prompt_computed=round(t.pct_prompt_computed, 2),
                    decode_step_ms=round(1000 * decode, 3),
                    decode_vs_baseline=round(decode / base_decode, 3),
                    plain_hf_decode_step_ms=round(1000 * hf_decode, 3),
                    revived_per_decode_step=round(statistics.mean(t.revived_per_step), 1),
                    generation_speedup=round(base_total / statistics.median(t.total), 3),
                    repeats=repeats,
                )
            )
    return rows


def to_markdown(rows: list[dict], header: str) -> str:
    cols = ["prompt_tokens", "config", "decode_read", "ttft_s", "speedup", "flop_ideal_speedup", "measured_over_ideal",
            "overhead_vs_plain_hf_pct", "pct_prompt_computed", "decode_step_ms", "decode_vs_baseline",
            "revived_per_decode_step", "generation_speedup"]  # fmt: skip
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], markdown: str, out: Path, stem: str) -> str:
    """Write `rows` as <stem>.csv and the rendered table as <stem>.md; returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{stem}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / f"{stem}.md").write_text(markdown)
    return markdown


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Model and prompt options shared by the benchmark commands."""
    parser.add_argument(
        "--model", default="smollm2-135m", help="model name/folder, or llama2-7b/xgen-7b shapes"
    )
    parser.add_argument("--random-init", action="store_true", help="random weights (GPU shape benchmarks)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--data-dir", default=None, help="LongBench rows (default: the bundled offline slice)"
    )


def add_output_arguments(parser: argparse.ArgumentParser, prefix: str) -> None:
    """Where a benchmark command writes its table: <out>/<tag>.{csv,md}, tag <prefix>_<device>."""
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--tag", default=None, help=f"file name stem; default {prefix}_<device>")


def write_bench_table(rows: list[dict], markdown: str, args: argparse.Namespace, model, prefix: str) -> str:
    device = next(model.parameters()).device
    return write_table(rows, markdown, args.out, args.tag or f"{prefix}_{device.type}")


def bench_model_and_prompts(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[int, torch.Tensor], str]:
    """The model to time and one prompt per length: real LongBench text for a real model, random ids
    for the GPU shapes (random weights, built directly in the target dtype on the device)."""
    torch.manual_seed(0)
    if args.model in GPU_SHAPES:
        from transformers import LlamaConfig, LlamaForCausalLM

        from lazybench.models import resolve_device, resolve_dtype

        device = resolve_device(args.device)
        config = LlamaConfig(**GPU_SHAPES[args.model])  # LlamaConfig defaults are Llama-2-7B's shape
        config._attn_implementation = "sdpa"
        dtype = resolve_dtype(args.dtype, device)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # build 7B of random weights directly in bf16, on the device
        try:
            with torch.device(device):
                model = LlamaForCausalLM(config).eval()
        finally:
            torch.set_default_dtype(previous)
        vocab = config.vocab_size
        ids_by_length = {
            n: torch.randint(3, vocab, (n,), generator=torch.Generator().manual_seed(n)).to(device)
            for n in args.lengths
        }
    else:
        model, tokenizer = load_model(
            ModelSpec(name=args.model, device=args.device, dtype=args.dtype, random_init=args.random_init)
        )
        device = next(model.parameters()).device
        ids_by_length = {
            n: torch.tensor(longbench_token_ids(tokenizer, n, args.data_dir), device=device)
            for n in args.lengths
        }
    label = f"{args.model} on {device.type}" + (
        f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""
    )
    label += f", {next(model.parameters()).dtype}, torch threads {torch.get_num_threads()}"
    return model, ids_by_length, label


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--decode-steps", type=int, default=8)
    parser.add_argument(
        "--decode-read",
        choices=["masked", "gather", "both"],
        default="masked",
        help="how single-token decode steps read a pruned cache (both: every pruning config twice)",
    )
    add_output_arguments(parser, "ttft")
    args = parser.parse_args(argv)
    decode_reads = ("masked", "gather") if args.decode_read == "both" else (args.decode_read,)

    model, ids_by_length, label = bench_model_and_prompts(args)
    header = (
        f"TTFT, {label}; medians of {args.repeats} interleaved rounds after {args.warmups} warm-up "
        "round(s), untraced; speedup = baseline TTFT / config TTFT; decode_read: how single-token decode "
        "steps read a pruned cache (masked prefix or gathered KV; any: nothing pruned)"
    )
    rows = run_benchmark(
        model, ids_by_length, args.repeats, args.warmups, args.decode_steps, print, decode_reads
    )
    print(write_bench_table(rows, to_markdown(rows, header), args, model, "ttft"))


if __name__ == "__main__":
    main()
