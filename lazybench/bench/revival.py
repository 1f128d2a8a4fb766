"""How LazyLLM's decoding cost evolves over a long output: revived tokens and step time per window.

Every decode step re-selects from the whole context, so tokens pruned earlier come back from the
Aux Cache and are computed (at most once per layer). This measures, on one prompt, how many tokens
are revived per step and how long steps take, in windows of steps, against full-prefill decoding.
The two generations advance in lockstep (one step of each, in alternating order), so the shared
machine's drift hits both alike. The TTFT benchmark's 8 decode steps only see the start of this curve.

    python -m lazybench.bench.revival --tokens 2048 --new-tokens 128 --out results/bench
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import torch

from lazybench.bench.ttft import longbench_token_ids, write_table
from lazybench.engine import LazyEngine, TokenPolicy, generate
from lazybench.engine.generate import Generation, GenerationResult
from lazybench.methods.lazyllm import LazyLLMPolicy
from lazybench.models import ModelSpec, load_model


def lockstep(generations: dict[str, Generation]) -> dict[str, GenerationResult]:
    """Advance the generations one step each, in alternating order, until all have stopped: the
    shared machine's drift then hits them alike (generate() would run one after the other)."""
    names = list(generations)
    for turn in itertools.count():
        pending = [n for n in (names if turn % 2 == 0 else names[::-1]) if not generations[n].done]
        if not pending:
            break
        for name in pending:
            generations[name].advance()
    return {name: g.result() for name, g in generations.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument(
        "--data-dir", default=None, help="LongBench rows (default: the bundled offline slice)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)

    model, tokenizer = load_model(ModelSpec(name=args.model))
    ids = torch.tensor(longbench_token_ids(tokenizer, args.tokens, args.data_dir))
    generate(LazyEngine(model, TokenPolicy()), ids[:256], 4)  # warm-up
    engines = {"baseline": LazyEngine(model, TokenPolicy()), "lazyllm": LazyEngine(model, LazyLLMPolicy())}
    runs = lockstep({name: Generation(e, ids, args.new_tokens, trace=True) for name, e in engines.items()})
    base, lazy = runs["baseline"], runs["lazyllm"]
    revived = [0] * args.new_tokens
    for stage in lazy.trace:
        revived[stage.step] += len(stage.revived)
    rows = []
    for start in range(1, args.new_tokens, args.window):
        end = min(start + args.window, args.new_tokens)
        rows.append(
            dict(
                steps=f"{start}-{end - 1}",
                revived_per_step=round(statistics.mean(revived[start:end]), 1),
                lazyllm_step_ms=round(1000 * statistics.mean(lazy.decode_step_s[start - 1 : end - 1]), 1),
                baseline_step_ms=round(1000 * statistics.mean(base.decode_step_s[start - 1 : end - 1]), 1),
            )
        )
    header = (
        f"{args.model}, {args.tokens}-token LongBench prompt, {args.new_tokens} new tokens (greedy, no EOS stop; "
        f"the two advanced in lockstep): TTFT {base.ttft_s:.2f} s -> {lazy.ttft_s:.2f} s, whole generation {base.total_s:.2f} s "
        f"-> {lazy.total_s:.2f} s, % prompt computed {lazy.pct_prompt_computed:.1f}"
    )
    lines = [
        header,
        "",
        "| steps | revived per step | LazyLLM step ms | baseline step ms |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['steps']} | {r['revived_per_step']} | {r['lazyllm_step_ms']} | {r['baseline_step_ms']} |"
        for r in rows
    ]
    print(write_table(rows, "\n".join(lines) + "\n", args.out, "revival_cpu"))


if __name__ == "__main__":
    main()
