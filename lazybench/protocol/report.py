"""The protocol's two analysis steps: choose operating points on a sweep run, report them on test rows.

    select_points(dev_run)            -> conf/experiment/<preset>_points.yaml (+ dev_run/protocol/)
    protocol_report(points, test_run) -> Table 1, Table 2, Figure 5 (+ report.md)

`select_points` reads the rule from the run's own config (`protocol.select`, the preset's choice),
overridable per call; the tables say where the points were chosen and on which rows they are
reported (disjoint dev/test rows, or the same rows, as the paper appears to have done).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lazybench import aggregate as agg
from lazybench.analysis.load import load_run_config, load_runs
from lazybench.analysis.operating_points import Rule, candidates, method_entries, select, select_one
from lazybench.analysis.protocol_tables import chosen_lines, one_setting_table, table1, table2
from lazybench.columns import BASELINE
from lazybench.protocol.points import choice, chosen_frame, points_config, read_points, write_points
from lazybench.protocol.split import RowSplit
from lazybench.runner.config import conf_dir
from lazybench.tablewriter import to_markdown, write_table

#: The family also chosen once for every category ("one p for all categories", issue 12 item 4).
ONE_FAMILY = "adaptive"
SELECTION_COLUMNS = ["category", "family", "method_label", "passes", "n_rows", "score", "baseline_score",
                     "ttft_speedup", "flop_speedup", "rouge_l_vs_baseline", "prefix_agreement",
                     "token_agreement"]  # fmt: skip


def _shown(path: Path) -> str:
    """A path as the points config records it: relative to the working directory when inside it
    (a committed config then works from any checkout), else absolute."""
    resolved, here = path.resolve(), Path.cwd().resolve()
    return str(resolved.relative_to(here)) if resolved.is_relative_to(here) else str(resolved)


@dataclass
class Selection:
    path: Path  # the points config written
    chosen: pd.DataFrame
    candidates: pd.DataFrame
    rule: Rule
    files: list[Path] = field(default_factory=list)


def _one_run(records: pd.DataFrame, what: str) -> Path:
    runs = records["run_dir"].unique()
    if len(runs) != 1:
        raise ValueError(f"{what} must be one run directory, found records of {len(runs)}: {list(runs)[:3]}")
    return Path(runs[0])


def select_points(
    run_dir: str | Path, overrides: dict[str, Any] | None = None, out: str | Path | None = None,
    base: str | None = None,
) -> Selection:  # fmt: skip
    """Choose one setting per category and family on a sweep run; write the points config."""
    records = load_runs(run_dir)
    run = _one_run(records, "the selection run")
    cfg = load_run_config(run) or {}
    proto = cfg.get("protocol") or {}
    rule = Rule.from_config({**(proto.get("select") or {}), **(overrides or {})})
    cands = candidates(records)
    if cands.empty:
        raise ValueError(f"{run} has no settings besides the baseline to choose from")
    chosen = select(cands, rule)
    split = RowSplit.from_config(cfg.get("split"))
    source = {
        "run": _shown(run),
        "model": str(records["model"].iloc[0]),
        "rows": int(records["example_id"].nunique()),
        "split": {"part": split.part, "dev_fraction": split.dev_fraction, "seed": split.seed},
        "split_text": split.describe(),
    }
    test_split = {**source["split"], "part": "test"} if split.part == "dev" else None
    base = base or proto.get("experiment")
    name = proto.get("points") or (f"{base}_points" if base else "points")
    path = Path(out) if out is not None else conf_dir() / "experiment" / f"{name}.yaml"
    entries = method_entries(chosen, records)
    one = select_one(records, rule, ONE_FAMILY)
    if one is not None:  # the family's single setting for every category runs on every test row
        entries = _widened(entries, records, one["method_label"])
    config = points_config(entries, chosen, rule.to_dict(), source, base, test_split)
    if one is not None:
        config["protocol"]["selection"]["one_setting"] = choice(one)
    write_points(path, config, rule.describe(), path.stem)
    folder = run / "protocol"
    files = [
        *write_table(cands, folder, "candidates", "Every setting per category (the sweep)"),
        *write_table(
            chosen[SELECTION_COLUMNS], folder, "selection", "Chosen operating points", rule.describe()
        ),
    ]
    return Selection(path, chosen, cands, rule, files)


def _widened(entries: list[dict[str, Any]], records: pd.DataFrame, label: str) -> list[dict[str, Any]]:
    """The entries with `label` running on every row (added from the records when not chosen anywhere)."""
    for entry in entries:
        if entry["label"] == label:
            entry.pop("categories", None)
            return entries
    recorded = records.drop_duplicates("method_label").set_index("method_label").loc[label]
    return [*entries, {"name": recorded["method"], "label": label, **dict(recorded["method_params"] or {})}]


@dataclass
class ProtocolReport:
    markdown: str
    files: list[Path]
    table1: pd.DataFrame
    table2: pd.DataFrame
    one_setting: pd.DataFrame | None = None  # "one p for all categories" (when the points hold one)


def _rows_note(points: dict[str, Any], sweep_ids: set[str] | None, reported: pd.DataFrame, run: Path) -> str:
    sel = points["protocol"]["selection"]
    ids = set(reported["example_id"])
    chosen_on = f"chosen on {sel['rows']} rows ({sel.get('split_text', 'all rows')}) of `{sel['run']}`"
    if sweep_ids is None:
        overlap = (
            "the selection run's rows are not at hand, so their overlap with the reported rows is unknown"
        )
    elif not sweep_ids & ids:
        overlap = "reported on disjoint rows"
    elif sweep_ids == ids:
        overlap = (
            "**selected on the reported rows** (as the paper appears to have done): the numbers favour "
            "the chosen settings"
        )
    else:
        overlap = f"**{len(sweep_ids & ids)} of the reported rows were also selection rows**"
    return f"Operating points {chosen_on}, rule: {Rule.from_config(sel['rule']).describe()}; " + (
        f"reported on {len(ids)} rows of `{run}`; {overlap}."
    )


def protocol_report(
    points_path: str | Path, reported_run: str | Path | None = None, paper: str | None = None,
    out: str | Path | None = None, sweep_run: str | Path | None = None, plots: bool = True,
) -> ProtocolReport:  # fmt: skip
    """Tables 1 and 2 at the chosen points on the reported run, Figure 5 from the sweep run."""
    points = read_points(points_path)
    chosen = chosen_frame(points)
    sel = points["protocol"]["selection"]
    sweep_path = Path(sweep_run or sel["run"])
    sweep = load_runs(sweep_path) if sweep_path.exists() else None
    records = load_runs(reported_run) if reported_run is not None else sweep
    if records is None:
        raise FileNotFoundError(f"neither a reported run nor the selection run {sweep_path} is at hand")
    run = _one_run(records, "the reported run")
    summary = agg.summarize(records)
    reported = candidates(records, summary)
    cats = agg.select_level(summary, "category")
    baseline = cats[cats["method"].eq(BASELINE) | cats["method_label"].eq(BASELINE)]
    default_label = agg.run_info(run).get("method_under_test")
    lines = chosen_lines(reported, chosen, default_label, baseline)
    t1, t2 = table1(lines, paper), table2(lines, paper)
    out = Path(out) if out is not None else run / "analysis" / "protocol"
    note = _rows_note(points, None if sweep is None else set(sweep["example_id"]), records, run)
    paper_note = (
        f" Columns `paper_{paper}_*` are the paper's numbers (Fu et al. 2024), not ours." if paper else ""
    )
    files = [
        *write_table(t1, out, "table1", "Table 1 at the chosen operating points", note + paper_note),
        *write_table(t2, out, "table2", "Table 2 at the chosen operating points", note + paper_note),
    ]
    one_md: list[str] = []
    t_one = None
    one = sel.get("one_setting")
    if one:
        t_one = one_setting_table(reported, lines, one["method_label"])
        one_note = (
            f"`{one['method_label']}` was chosen once over all {sel['rows']} selection rows by the same rule "
            f"(there: {one.get('flop_speedup') or float('nan'):.2f}x FLOP-ideal, ROUGE-L vs baseline "
            f"{one.get('rouge_l_vs_baseline') or float('nan'):.2f}), beside the settings chosen per category; "
            "all measured on the reported rows."
        )
        files += write_table(t_one, out, "one_setting", "One p for all categories", one_note)
        one_md = ["## One p for all categories\n", one_note + "\n", to_markdown(t_one)]
    speed = Rule.from_config(sel["rule"]).speed
    if plots and sweep is not None:
        from lazybench.analysis.figure5 import save_figure5

        sweep_cands = candidates(sweep)
        title = f"{sel.get('model')}: the sweep on {sel['rows']} rows; chosen points ringed"
        files.append(save_figure5(sweep_cands, chosen, out, "figure5_score", y="relative_score", speed=speed,
                                  paper=paper, title=title))  # fmt: skip
        files.append(save_figure5(sweep_cands, chosen, out, "figure5_fidelity", y="rouge_l_vs_baseline",
                                  speed=speed, title=title))  # fmt: skip
    markdown = "\n".join([
        "# Tables 1 and 2 at chosen operating points\n", note + paper_note + "\n",
        "## Table 1\n", to_markdown(t1), "## Table 2\n", to_markdown(t2), *one_md,
        *[f"![{p.stem}]({p.name})\n" for p in files if p.suffix == ".png"],
    ])  # fmt: skip
    report = out / "report.md"
    report.write_text(markdown, encoding="utf-8")
    return ProtocolReport(markdown, [*files, report], t1, t2, t_one)
