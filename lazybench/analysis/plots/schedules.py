"""The LazyLLM schedule sweep: each schedule's nominal keep against its score and speedups."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lazybench.analysis.plots.style import (
    figure_title,
    panel_grid,
)

_SCHEDULE_COLUMNS = [
    "run_dir",
    "method_label",
    "boundaries",
    "keep",
    "unit",
    "num_layers",
    "nominal_keep",
    "schedule",
]


def schedule_points(records: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per LazyLLM method label: its schedule (boundaries, keep, unit), the nominal kept fraction
    (mean over layers of the scheduled keep fraction, resolved on the run's model depth), and the
    label's overall relative score, speedups and measured % of prompt computed."""
    from lazybench.engine.schedule import Schedule

    lazy = records[records["method"] == "lazyllm"]
    rows = []
    for (run_dir, label), group in lazy.groupby(["run_dir", "method_label"], sort=False):
        params = group["method_params"].iloc[0] or {}
        raw = params.get("schedule") if isinstance(params, dict) else None
        layers = len(group["computed_per_layer"].iloc[0] or [])
        try:
            schedule = Schedule.from_config(raw)
            fractions = schedule.resolve(layers).layer_keep_fractions()
        except (ValueError, TypeError):
            continue
        rows.append(
            {
                "run_dir": run_dir,
                "method_label": label,
                "boundaries": list(schedule.boundaries),
                "keep": list(schedule.keep),
                "unit": schedule.unit,
                "num_layers": layers,
                "nominal_keep": float(np.mean(fractions)),
                "schedule": schedule.describe(),
            }
        )
    if not rows:
        return pd.DataFrame(columns=_SCHEDULE_COLUMNS)
    overall = summary[summary["level"] == "overall"]
    cols = ["run_dir", "run", "model", "method", "method_label", "relative_score", "ttft_speedup"]
    cols += ["generation_speedup", "pct_prompt_computed", "score"]
    return pd.DataFrame(rows).merge(overall[cols], on=["run_dir", "method_label"], how="left")


def plot_schedule_sweep(records: pd.DataFrame, summary: pd.DataFrame) -> Figure | None:
    """LazyLLM schedules against their nominal kept fraction: relative score, speedups, and measured
    vs scheduled % of prompt computed. None when the records hold no LazyLLM schedule."""
    pts = schedule_points(records, summary)
    if pts.empty:
        return None
    pts = pts.sort_values("nominal_keep")
    fig, axes = panel_grid(3, 3, (4.4, 3.8))
    xs = pts["nominal_keep"] * 100
    axes[0].plot(xs, pts["relative_score"], "o-")
    axes[0].plot([100], [100], "k*", ms=10, label="baseline")
    axes[0].legend(fontsize="small")
    axes[0].set_ylabel("overall score, % of baseline")
    axes[1].plot(xs, pts["ttft_speedup"], "o-", label="TTFT")
    axes[1].plot(xs, pts["generation_speedup"], "s--", label="generation")
    axes[1].plot([100], [1], "k*", ms=10, label="baseline")
    axes[1].set_ylabel("speedup vs baseline (x)")
    axes[1].legend(fontsize="small")
    axes[2].plot(xs, pts["pct_prompt_computed"], "o")
    lim = [0, 100]
    axes[2].plot(lim, lim, color="0.7", lw=0.8, label="measured = scheduled")
    axes[2].set_ylabel("measured % of prompt computed")
    axes[2].legend(fontsize="small")
    for ax in axes:
        ax.set_xlabel("scheduled keep, mean over layers (%)")
        ax.grid(alpha=0.3)
    if len(pts) <= 12:
        for _, p in pts.iterrows():
            axes[0].annotate(
                p["schedule"],
                (p["nominal_keep"] * 100, p["relative_score"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
    fig.suptitle(figure_title(pts, "LazyLLM schedule sweep (overall)", summary))
    return fig
