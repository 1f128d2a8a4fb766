"""``python -m lazybench.lm_eval_backend.write_tasks``: write or check the LongBench include dir::

python -m lazybench.lm_eval_backend.write_tasks --write DIR [--data-dir LONGBENCH_DIR]
python -m lazybench.lm_eval_backend.write_tasks --check     # is the shipped include dir up to date?
"""

from __future__ import annotations

import argparse
import os
import sys

from lazybench.lm_eval_backend.tasks import DATA_DIR_KEY, TASKS_DIR, render, stale_files, write_include_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lazybench.lm_eval_backend.write_tasks",
        description="Write or check the lm-eval include dir of the lazybench LongBench tasks.",
    )
    parser.add_argument("--write", metavar="DIR", help="write the include dir into DIR")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="bake this LongBench folder into the tasks (default: resolved at run time from "
        f"--metadata {DATA_DIR_KEY}, $LAZYBENCH_LONGBENCH_DIR, else the bundled offline slice); "
        "'hub' or 'offline' bake that source in",
    )
    parser.add_argument("--check", action="store_true", help=f"check that {TASKS_DIR} is up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"{TASKS_DIR} is out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{TASKS_DIR} is up to date")
        return 0
    if not args.write:
        parser.error("give --write DIR or --check")
    out = write_include_dir(args.data_dir, args.write)
    print(f"wrote {len(render())} files into {out}")
    if args.data_dir is None and not os.environ.get("LAZYBENCH_LONGBENCH_DIR"):
        print(
            "note: no data source baked in: the tasks read the bundled offline slice (187 rows, not "
            "LongBench) unless LAZYBENCH_LONGBENCH_DIR or --metadata longbench_dir names a folder"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
