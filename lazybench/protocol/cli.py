"""`lazybench protocol select|report`: the analysis steps of the operating-point protocol.

    lazybench protocol select RUN_DIR [--rule score|fidelity|target] [--epsilon 0.01] [--out FILE]
    lazybench protocol report POINTS.yaml [--reported TEST_RUN_DIR] [--paper llama2|xgen]
    lazybench protocol ladder RUN_DIR [--metric token_agreement] [--out DIR]

`select` chooses one setting per category and method family on a sweep run and writes the points
config the test phase runs (`lazybench experiment=<preset>_points`); `report` writes Tables 1 and 2
at those points (the paper's numbers beside ours) and Figure 5; `ladder` tables every family's
whole-output fidelity at equal FLOP-ideal speeds (e.g. `experiment=protocol_cpu_long`).
docs/protocol.md has the whole flow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lazybench.analysis.operating_points import FIDELITY_METRICS, RULES, SPEEDS
from lazybench.analysis.paper import PAPER_MODELS
from lazybench.tablewriter import to_markdown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazybench protocol", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    sel = verbs.add_parser("select", help="choose operating points on a sweep run, write the points config")
    sel.add_argument("run_dir", type=Path, help="the sweep (dev phase) run directory")
    sel.add_argument("--rule", choices=RULES, help="default: the run's protocol.select.rule, else score")
    sel.add_argument("--epsilon", type=float, help="score rule: relative loss allowed (0.01 = 1%%)")
    sel.add_argument("--min-fidelity", type=float, help="fidelity rule: the agreement a setting must keep")
    sel.add_argument("--fidelity-metric", choices=FIDELITY_METRICS)
    sel.add_argument("--target-speedup", type=float, help="target rule: the speed a setting must reach")
    sel.add_argument("--target-metric", choices=("score", *FIDELITY_METRICS))
    sel.add_argument("--speed", choices=SPEEDS, help="what 'fastest' means (measured or FLOP-ideal TTFT)")
    sel.add_argument(
        "--base", help="the experiment preset the points build on (default: protocol.experiment)"
    )
    sel.add_argument("--out", type=Path, help="the points config (default: conf/experiment/<points>.yaml)")
    rep = verbs.add_parser("report", help="Tables 1 and 2 at the chosen points, and Figure 5")
    rep.add_argument("points", type=Path, help="the points config written by `select`")
    rep.add_argument("--reported", type=Path, help="the run whose rows are reported (default: the sweep run)")
    rep.add_argument("--sweep", type=Path, help="the sweep run (default: the one the points name)")
    rep.add_argument("--paper", choices=PAPER_MODELS, help="show this paper model's numbers beside ours")
    rep.add_argument("--out", type=Path, help="output folder (default: <reported run>/analysis/protocol)")
    rep.add_argument("--no-plots", action="store_true")
    lad = verbs.add_parser("ladder", help="whole-output fidelity of every family at equal FLOP-ideal speeds")
    lad.add_argument("run_dir", type=Path, help="a run that swept families at sweep.target_speedups")
    lad.add_argument("--metric", choices=FIDELITY_METRICS, default="token_agreement")
    lad.add_argument("--out", type=Path, help="output folder (default: <run>/analysis/ladder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lazybench.protocol.report import SELECTION_COLUMNS, protocol_report, select_points

    try:
        if args.verb == "select":
            keys = (
                "rule",
                "epsilon",
                "min_fidelity",
                "fidelity_metric",
                "target_speedup",
                "target_metric",
                "speed",
            )
            overrides = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
            result = select_points(args.run_dir, overrides, args.out, args.base)
            print(to_markdown(result.chosen[SELECTION_COLUMNS]))
            print(f"rule: {result.rule.describe()}\nwrote {result.path}", file=sys.stderr)
        elif args.verb == "ladder":
            from lazybench.analysis.ladder import write_ladder

            print(write_ladder(args.run_dir, args.out, args.metric))
        else:
            report = protocol_report(
                args.points, args.reported, args.paper, args.out, args.sweep, not args.no_plots
            )
            print(report.markdown)
            print(f"wrote {len(report.files)} files", file=sys.stderr)
    except (FileNotFoundError, ValueError) as err:
        print(f"lazybench protocol: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
