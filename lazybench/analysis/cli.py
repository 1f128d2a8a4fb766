"""`lazybench-analyze RUN_DIR... [--out DIR] [--paper llama2|xgen]`: tables, plots and a report of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lazybench.analysis.paper import PAPER_MODELS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lazybench-analyze",
        description="Summarise lazybench runs: the paper's Table 1/2 layouts beside the paper's numbers, "
        "per-dataset scores, fidelity, Pareto / schedule / per-layer / probe plots.",
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories or sweep directories (records.jsonl files are found recursively; the "
        "shards of a sharded run are read as that one run)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <first RUN_DIR>/analysis)"
    )
    parser.add_argument(
        "--paper",
        choices=PAPER_MODELS,
        default="llama2",
        help="which model's numbers of the paper to show beside ours (default: llama2)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write tables only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    from lazybench.analysis.load import load_runs
    from lazybench.analysis.report import build_report

    try:
        records = load_runs(*args.run_dirs)
    except (FileNotFoundError, ValueError) as err:  # ValueError: shards that are not one run
        print(f"lazybench-analyze: {err}", file=sys.stderr)
        return 2
    if records.empty:
        print(f"lazybench-analyze: no records in {', '.join(args.run_dirs)}", file=sys.stderr)
        return 2
    first = Path(args.run_dirs[0])
    out = args.out if args.out is not None else (first.parent if first.is_file() else first) / "analysis"
    report = build_report(records, out, paper=args.paper, plots=not args.no_plots)
    print(report.markdown)
    print(f"wrote {len(report.files)} files to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
