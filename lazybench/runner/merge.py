"""`lazybench merge RUN_DIR...`: a sharded run's summaries, from all its shards' records as one run.

Each shard (``RUN_DIR/shards/<i>-of-<N>/``, lazybench.shards) writes its own summaries of its own
rows. Merging writes the run's: summary.md, summary_by_dataset.csv, summary_by_category.csv and the
plot in RUN_DIR, from `lazybench.aggregate` over every present shard's records (nothing is
aggregated here), and RUN_DIR/config.yaml and run.json (the shards' common config and counts), so
the run dir reads like an unsharded run's. The records stay in the shard folders (a copy beside them
would be read twice). Missing shards are said, and the summary says which rows it covers; merging
again after more shards finish brings it up to date. `lazybench rescore` merges after rescoring.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from lazybench.records import RECORDS_FILE, read_records
from lazybench.shards import ShardSet, merged_config, merged_info, owner, shard_set


@dataclass
class MergeOutcome:
    run_dir: Path
    shards: ShardSet
    records: int
    files: list[Path]


def merge_run(run_dir: str | Path, plot: bool | None = None) -> MergeOutcome:
    """Write a sharded run's summaries, config.yaml and run.json from its shards (module docstring)."""
    from lazybench.runner import summary as S

    run_dir = owner(Path(run_dir))
    found = shard_set(run_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no shards (shards/<i>-of-<N>/): not a sharded run")
    records = [r for folder in found.present.values() for r in read_records(folder / RECORDS_FILE).records]
    if not records:
        raise ValueError(f"{run_dir}: its {len(found.present)} shard folders hold no records yet")
    info = merged_info(found)
    config = merged_config(found) or {}
    unfinished = [name for name, status in info["shards"]["status"].items() if status != "finished"]
    suite = config.get("suite") or {}
    header = [
        f"- run: `{run_dir}`, merged from shards: {found.note().split(': ', 1)[1]}"
        + (f"; not finished: {', '.join(unfinished)}" if unfinished else ""),
        f"- model: `{info.get('model')}` ({info.get('num_layers')} layers, {info.get('device')})",
        f"- suite: `{suite.get('name')}` ({info['rows']} rows in the present shards), "
        f"warm-ups {config.get('warmups')} per shard, seed {config.get('seed')}",
        f"- records: {len(records)}",
    ]
    labels = [m["label"] for m in info.get("methods", [])] or None
    if plot is None:
        plot = bool(config.get("plot", True))
    _, files = S.write_run_summaries(run_dir, records, header, labels, plot=plot)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    return MergeOutcome(run_dir, found, len(records), [*files, run_dir / "config.yaml", run_dir / "run.json"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lazybench merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="sharded run folders (or one of their shards)")
    parser.add_argument("--no-plot", action="store_true", help="write tables only")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        try:
            outcome = merge_run(run_dir, plot=False if args.no_plot else None)
        except (FileNotFoundError, ValueError) as err:
            print(f"lazybench merge: error: {err}", file=sys.stderr)
            return 2
        if outcome.shards.missing:
            print(f"lazybench merge: {outcome.shards.note()}", file=sys.stderr)
        print(f"{outcome.run_dir}: {outcome.records} records of {len(outcome.shards.present)} shards merged")
        for path in outcome.files:
            print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
