"""Speedup against relative score per category, with each panel's Pareto frontier."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lazybench.aggregate import pareto_frontier
from lazybench.analysis.paper import paper_method
from lazybench.analysis.plots.style import (
    AXIS_LABELS,
    MARKERS,
    SHORT,
    figure_title,
    legend_order,
    panel_grid,
    series_colors,
    series_names,
)
from lazybench.columns import group_sort_key


def plot_pareto(
    summary: pd.DataFrame, x: str = "ttft_speedup", y: str = "relative_score", ncols: int = 4
) -> Figure | None:
    """Speedup (x) vs relative score (y), one panel per category present plus overall, each method
    label a series; the Pareto frontier (maximise both) of each panel is drawn and circled."""
    rows = summary[summary["level"].isin(("category", "overall"))].dropna(subset=[x, y])
    if rows.empty:
        return None
    groups = sorted(rows["group"].unique(), key=lambda g: (g != "overall", group_sort_key(g)))
    names, _ = legend_order(rows)
    colors = series_colors(names)
    fig, axes = panel_grid(len(groups), ncols, (4.2, 3.6))
    handles: dict[str, object] = {}
    for ax, group in zip(axes, groups):
        panel = rows[rows["group"] == group]
        series = series_names(panel)
        for name in names:
            pts = panel[series == name]
            if pts.empty:
                continue
            marker = MARKERS.get(paper_method(pts["method"].iloc[0]), "P")
            handles[name] = ax.scatter(
                pts[x],
                pts[y],
                color=colors[name],
                marker=marker,
                s=70 if marker == "*" else 40,
                zorder=3,
                label=name,
            )
        front = pareto_frontier(panel[x], panel[y])
        fx, fy = panel[x].to_numpy()[front], panel[y].to_numpy()[front]
        order = np.argsort(fx)
        ax.plot(fx[order], fy[order], "k--", lw=1, zorder=2)
        ax.scatter(fx, fy, s=180, facecolors="none", edgecolors="k", lw=1, zorder=4)
        ax.axvline(1.0, color="0.8", lw=0.8, zorder=1)
        if y == "relative_score":
            ax.axhline(100.0, color="0.8", lw=0.8, zorder=1)
        ax.set_title(group)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(y, y))
        ax.grid(alpha=0.3)
    frontier = axes[0].scatter([], [], s=180, facecolors="none", edgecolors="k", label="Pareto frontier")
    fig.legend(
        [*handles.values(), frontier],
        [*handles.keys(), "Pareto frontier (dashed)"],
        loc="outside lower center",
        ncols=min(3, len(handles) + 1),
        fontsize="small",
    )
    what = f"{SHORT.get(y, y)} vs {SHORT.get(x, x)} per method (Pareto frontier dashed and circled)"
    fig.suptitle(figure_title(rows, what[0].upper() + what[1:]))
    return fig
