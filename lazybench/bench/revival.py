"""How LazyLLM's decoding cost evolves over a long output: revived tokens and step time per window.

Every decode step re-selects from the whole context, so tokens pruned earlier come back from the
Aux Cache and are computed (at most once per layer). This measures, on one prompt, how many tokens
are revived per step and how long steps take, in windows of steps, against full-prefill decoding in
the same process; the TTFT benchmark's 8 decode steps only see the start of this curve.

    python -m lazybench.bench.revival --tokens 2048 --new-tokens 128 --out results/bench
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from lazybench.bench.ttft import longbench_token_ids, write_table
from lazybench.engine import LazyEngine, LazyLLMPolicy, TokenPolicy, generate
from lazybench.models import ModelSpec, load_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/longbench"))
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)

    model, tokenizer = load_model(ModelSpec(name=args.model))
    ids = torch.tensor(longbench_token_ids(tokenizer, args.tokens, args.data_dir))
    generate(LazyEngine(model, TokenPolicy()), ids[:256], 4)  # warm-up
    base = generate(LazyEngine(model, TokenPolicy()), ids, args.new_tokens)
    lazy = generate(LazyEngine(model, LazyLLMPolicy()), ids, args.new_tokens, trace=True)
    revived = [0] * len(lazy.tokens)
    for stage in lazy.trace:
        if stage.step > 0:
            revived[stage.step] += len(stage.revived)
    rows = []
    for start in range(1, len(lazy.tokens), args.window):
        end = min(start + args.window, len(lazy.tokens))
        rows.append(
            dict(
                steps=f"{start}-{end - 1}",
                revived_per_step=round(statistics.mean(revived[start:end]), 1),
                lazyllm_step_ms=round(1000 * statistics.mean(lazy.decode_step_s[start - 1 : end - 1]), 1),
                baseline_step_ms=round(1000 * statistics.mean(base.decode_step_s[start - 1 : end - 1]), 1),
            )
        )
    header = (
        f"{args.model}, {args.tokens}-token LongBench prompt, {len(lazy.tokens)} new tokens (greedy, no EOS stop "
        f"unless generated): TTFT {base.ttft_s:.2f} s -> {lazy.ttft_s:.2f} s, whole generation {base.total_s:.2f} s "
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
