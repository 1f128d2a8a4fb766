"""Re-score a finished run with the current metrics, without generating anything again.

Metrics get fixed (this project's rouge-L once sat 3-12 points below LongBench's own scorer on
summaries); the records keep every prediction and its gold answers, so a run, a sweep or a
committed reference can be brought up to date in seconds instead of re-running the model. The
previous records are kept beside the new ones, and the run's summaries and plot are rewritten.

    lazybench rescore runs/smollm2-135m-smoke runs/sweeps/<sweep> [--data-dir DIR]

A sharded run (lazybench.shards) is rescored shard by shard, then merged (lazybench.runner.merge).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lazybench.records import RECORDS_FILE, read_records
from lazybench.runner.config import RunConfigError
from lazybench.runner.merge import merge_run
from lazybench.runner.run import exclusive_run_dir
from lazybench.shards import owner

BEFORE_FILE = "records.before-rescore.jsonl"


@dataclass
class RescoreOutcome:
    run_dir: Path
    records: int
    changed: int
    largest_change: float  # on the 0..1 score scale


def _label_sets(records: list[dict], data_dir: str | None) -> dict[tuple[str, str], list[str]]:
    """{(dataset, example id): all_classes} for the datasets whose metric needs the label set
    (records do not store it): read back from the run's data (None: the default source, as
    `load_examples`: the bundled offline slice unless $LAZYBENCH_LONGBENCH_DIR is set)."""
    from lazybench.tasks import get_task, load_examples

    needed = sorted({r["dataset"] for r in records if get_task(r["dataset"]).metric == "classification"})
    classes = {}
    for dataset in needed:
        for example in load_examples(dataset, data_dir=data_dir or None):
            classes[(dataset, example.id)] = example.all_classes
    return classes


def rescore_records(records: list[dict], data_dir: str | None) -> tuple[list[dict], int, float]:
    """The records with `score` recomputed; also how many changed and the largest change."""
    from lazybench.tasks import resolve_source, score_example

    classes = _label_sets(records, data_dir)
    out, changed, largest = [], 0, 0.0
    for record in records:
        key = (record["dataset"], record["example_id"])
        if key not in classes and any(k[0] == record["dataset"] for k in classes):
            where = resolve_source(data_dir or None).label
            raise ValueError(
                f"example {key[1]!r} of {key[0]} is not in the {where}, whose label set it is scored "
                "against: pass --data-dir (the data the run read)"
            )
        score = score_example(record["dataset"], record["prediction"], record["answers"], classes.get(key))
        delta = abs(score - record["score"])
        changed += delta > 1e-12
        largest = max(largest, delta)
        out.append({**record, "score": score})
    return out, changed, largest


def _header(run_dir: Path, n_records: int, differ: int) -> list[str]:
    """The existing summary's run description, with the record count and the rescoring noted."""
    lines = []
    summary_md = run_dir / "summary.md"
    if summary_md.exists():
        for line in summary_md.read_text(encoding="utf-8").splitlines()[1:]:
            if line.startswith("- ") and not line.startswith(("- records:", "- rescored:")):
                lines.append(line)
            elif lines and not line.strip():
                break
    return lines + [
        f"- records: {n_records}",
        f"- rescored: with the current lazybench metrics ({differ} scores differ from the "
        f"original records, kept in {BEFORE_FILE})",
    ]


def _replace_records(run_dir: Path, records: list[dict]) -> int:
    """Swap in the re-scored records (the first original kept aside); how many scores differ from it."""
    records_path, before = run_dir / RECORDS_FILE, run_dir / BEFORE_FILE
    if not before.exists():  # keep the original scoring, not an intermediate one
        before.write_bytes(records_path.read_bytes())
    original = [r["score"] for r in read_records(before).records]
    tmp = records_path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, records_path)  # atomic: a crash leaves the old or the new file, never half
    return sum(abs(a - r["score"]) > 1e-12 for a, r in zip(original, records))


def rescore_run(run_dir: str | Path, data_dir: str | None = None) -> RescoreOutcome:
    from lazybench.runner import summary as S

    run_dir = Path(run_dir)
    records_path = run_dir / RECORDS_FILE
    if not records_path.exists():
        raise FileNotFoundError(f"no {RECORDS_FILE} in {run_dir}: not a run folder")
    run_info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    data_dir = data_dir or run_info.get("data_dir")  # None: the default source (offline slice)
    with exclusive_run_dir(run_dir):  # never rewrite records a running process is appending to
        loaded = read_records(records_path)
        if not loaded.records:
            raise ValueError(f"{records_path} holds no records")
        records, changed, largest = rescore_records(loaded.records, data_dir)
        differ = _replace_records(run_dir, records)

    labels = [m["label"] for m in run_info.get("methods", [])] or None
    header = _header(run_dir, len(records), differ)
    plot = (run_dir / "speed_accuracy.png").exists()
    S.write_run_summaries(run_dir, records, header, labels, plot=plot)
    return RescoreOutcome(run_dir, len(records), changed, largest)


def rescore_sweep(sweep_dir: Path) -> None:
    """A schedule search's Pareto table is computed from its jobs' scores: recompute it."""
    from lazybench.runner.search import PARETO_FILE, pareto_table, write_pareto

    if (sweep_dir / f"{PARETO_FILE}.csv").exists():
        write_pareto(sweep_dir, pareto_table(sweep_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lazybench rescore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run folders, or sweep folders holding runs")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="LongBench rows, for trec's label set (default: the run's data_dir, else the bundled offline slice)",
    )
    args = parser.parse_args(argv)
    for folder in args.dirs:
        run_dirs = sorted({p.parent for p in folder.rglob(RECORDS_FILE)}) if folder.is_dir() else []
        if not run_dirs:
            print(f"lazybench rescore: no {RECORDS_FILE} under {folder}: not a run folder", file=sys.stderr)
            return 2
        for run_dir in run_dirs:
            try:
                outcome = rescore_run(run_dir, args.data_dir)
            except (FileNotFoundError, ValueError, RunConfigError) as err:
                print(f"lazybench rescore: {err}", file=sys.stderr)
                return 2
            print(
                f"{run_dir}: {outcome.changed} of {outcome.records} scores changed "
                f"(largest change {100 * outcome.largest_change:.2f} points); summaries rewritten"
            )
        for parent in dict.fromkeys(owner(d) for d in run_dirs if owner(d) != d):
            try:
                merged = merge_run(parent)
            except ValueError as err:  # shards that are not one run
                print(f"lazybench rescore: {err}", file=sys.stderr)
                return 2
            missing = f"; {merged.shards.note()}" if merged.shards.missing else ""
            print(f"{parent}: the shards' summaries merged{missing}")
        rescore_sweep(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
