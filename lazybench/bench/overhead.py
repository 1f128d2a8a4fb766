"""Engine overhead: the plain transformers forward vs the engine's full prefill vs LazyLLM with its
scoring on and nothing pruned (keep 1.0 at every boundary).

The TTFT benchmark's three-round medians cannot resolve a few percent on a shared 2-core machine
(its rounds scatter by ±10%). This command times the three configurations back to back in many
rounds, in an order rotated every round, and reports the median of the per-round ratios with their
interquartile range: pairing within a round cancels the machine's slow drifts, rotation cancels any
bias from running first or last, the median discards the spikes.

    python -m lazybench.bench.overhead --lengths 1024 2048 4096 --rounds 12 --out results/bench
"""

from __future__ import annotations

import argparse
import statistics

import torch

from lazybench.bench.ttft import (
    SCHEDULES,
    add_model_arguments,
    add_output_arguments,
    bench_model_and_prompts,
    plain_forward_ttft,
    write_bench_table,
)
from lazybench.engine import LazyEngine, TokenPolicy, generate
from lazybench.methods.lazyllm import LazyLLMPolicy

# (name, numerator, denominator): the ratios reported, each measured within the same round
COMPARISONS = [
    ("engine full prefill / plain HF forward", "baseline", "plain"),
    ("LazyLLM keep 1.0 / plain HF forward", "keep1.0", "plain"),
    ("LazyLLM keep 1.0 / engine full prefill", "keep1.0", "baseline"),
]


def _pct(ratios: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the ratios, as percent over 1."""
    if len(ratios) == 1:
        q1 = q2 = q3 = ratios[0]
    else:
        q1, q2, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return tuple(round(100.0 * (q - 1.0), 2) for q in (q2, q1, q3))


def measure(
    model, ids_by_length: dict[int, torch.Tensor], rounds: int, warmups: int, decode_steps: int, log
) -> list[dict]:
    engines = {
        "baseline": LazyEngine(model, TokenPolicy()),
        "keep1.0": LazyEngine(model, LazyLLMPolicy(SCHEDULES["lazyllm-keep1.0"])),
    }
    rows = []
    for n, ids in ids_by_length.items():
        ttft: dict[str, list[float]] = {"plain": [], "baseline": [], "keep1.0": []}
        decode: dict[str, list[float]] = {"baseline": [], "keep1.0": []}
        order = ["plain", *engines]
        for r in range(warmups + rounds):
            results, plain = {}, 0.0
            for name in (
                order[r % len(order) :] + order[: r % len(order)]
            ):  # rotated each round: no position bias
                if name == "plain":
                    plain = plain_forward_ttft(model, ids)
                else:
                    results[name] = generate(engines[name], ids, 1 + decode_steps)
            if r < warmups:
                continue
            ttft["plain"].append(plain)
            for name, result in results.items():
                ttft[name].append(result.ttft_s)
                decode[name].append(statistics.median(result.decode_step_s) if decode_steps else 0.0)
            log(f"   {n} tokens, round {r - warmups + 1}/{rounds}: " + " ".join(
                f"{k} {v[-1]:.3f}s" for k, v in ttft.items()))  # fmt: skip
        for comparison, num, den in COMPARISONS:
            median, q1, q3 = _pct([a / b for a, b in zip(ttft[num], ttft[den])])
            row = dict(
                prompt_tokens=n,
                comparison=comparison,
                ttft_overhead_pct=median,
                ttft_overhead_q1_pct=q1,
                ttft_overhead_q3_pct=q3,
                decode_overhead_pct=None,
                rounds=rounds,
            )
            if num in decode and den in decode and decode_steps:
                row["decode_overhead_pct"] = _pct([a / b for a, b in zip(decode[num], decode[den])])[0]
            rows.append(row)
    return rows


def to_markdown(rows: list[dict], header: str) -> str:
    lines = [
        header,
        "",
        "| prompt tokens | comparison | TTFT overhead % (median) | interquartile range % | decode-step overhead % |",
        "|---:|---|---:|---|---:|",
    ]
    for r in rows:
        decode = "–" if r["decode_overhead_pct"] is None else r["decode_overhead_pct"]
        lines.append(
            f"| {r['prompt_tokens']} | {r['comparison']} | {r['ttft_overhead_pct']} | "
            f"[{r['ttft_overhead_q1_pct']}, {r['ttft_overhead_q3_pct']}] | {decode} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--decode-steps", type=int, default=4)
    add_output_arguments(parser, "overhead")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")

    model, ids_by_length, label = bench_model_and_prompts(args)
    header = (
        f"Engine overhead, {label}; "
        f"median (and quartiles) over {args.rounds} rounds of the per-round ratio, each round timing the "
        f"configurations back to back in a rotated order; overhead % = 100 x (ratio - 1)"
    )
    rows = measure(model, ids_by_length, args.rounds, args.warmups, args.decode_steps, print)
    print(write_bench_table(rows, to_markdown(rows, header), args, model, "overhead"))


if __name__ == "__main__":
    main()
