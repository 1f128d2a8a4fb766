"""``python -m lazybench.tasks.lengths``: prompt-length distribution per LongBench dataset.

Why: how much of each dataset a model actually sees depends on its tokenizer and on
``max_length``; pruning results at 3.5k and 7.5k tokens are only interpretable next to how many
prompts were middle-truncated and by how much. Prints one markdown table per ``--max-length``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lazybench.tasks.data import load_examples
from lazybench.tasks.prompting import CHAT_STYLES, build_prompt
from lazybench.tasks.registry import PAPER_DATASETS, get_task
from lazybench.tasks.suites import expand_datasets
from lazybench.tasks.tokenizer import SMOLLM2_ALIAS, load_tokenizer


@dataclass(frozen=True)
class LengthStats:
    """Prompt lengths of one dataset at one ``max_length``."""

    dataset: str
    rows: int
    min_tokens: int
    median_tokens: float
    max_tokens: int
    n_truncated: int
    mean_pct_cut: float | None  # over the truncated rows; None when nothing was cut


def length_stats(
    dataset: str, tokenizer, max_length: int, data_dir=None, chat_style: str = "none"
) -> LengthStats:
    """Token counts of the filled templates of ``dataset`` and what ``max_length`` cuts off."""
    task = get_task(dataset)
    sizes: list[int] = []
    cuts: list[float] = []
    for example in load_examples(dataset, data_dir=data_dir):
        prompt = build_prompt(task, example, tokenizer, max_length, chat_style)
        n = prompt.n_tokens_before_truncation
        sizes.append(n)
        if prompt.truncated:
            kept = 2 * int(max_length / 2)
            cuts.append(100.0 * (n - kept) / n)
    return LengthStats(
        dataset=dataset,
        rows=len(sizes),
        min_tokens=min(sizes),
        median_tokens=statistics.median(sizes),
        max_tokens=max(sizes),
        n_truncated=len(cuts),
        mean_pct_cut=statistics.fmean(cuts) if cuts else None,
    )


def format_table(stats: Sequence[LengthStats]) -> str:
    """Markdown table of `LengthStats` rows."""
    lines = [
        "| dataset | rows | min tok | median tok | max tok | truncated | mean % cut (truncated rows) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        cut = "-" if s.mean_pct_cut is None else f"{s.mean_pct_cut:.1f}"
        lines.append(
            f"| {s.dataset} | {s.rows} | {s.min_tokens} | {s.median_tokens:g} | {s.max_tokens} "
            f"| {s.n_truncated}/{s.rows} | {cut} |"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lazybench.tasks.lengths",
        description="Per-dataset prompt-length distribution (tokens of the filled LongBench template).",
    )
    parser.add_argument(
        "--tokenizer", default=SMOLLM2_ALIAS, help=f"local path, hub id, or {SMOLLM2_ALIAS!r} (default)"
    )
    parser.add_argument(
        "--max-length", type=int, nargs="+", default=[7500], help="one or more max lengths (default 7500)"
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["all"],
        help="dataset or category names, space or comma separated (default: all 16)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="offline (default: the bundled slice, or $LAZYBENCH_LONGBENCH_DIR), hub, or a folder of <dataset>.jsonl",
    )
    parser.add_argument(
        "--chat-style", default="none", choices=CHAT_STYLES, help="chat wrapper (default none)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    names = [part for item in args.datasets for part in item.split(",") if part]
    datasets = expand_datasets(names) if names else PAPER_DATASETS
    tokenizer = load_tokenizer(args.tokenizer)
    for i, max_length in enumerate(args.max_length):
        stats = [length_stats(d, tokenizer, max_length, args.data_dir, args.chat_style) for d in datasets]
        if i:
            print()
        print(f"### max_length={max_length} (tokenizer {args.tokenizer}, chat style {args.chat_style})\n")
        print(format_table(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
