"""Plots (matplotlib, PNG). Figures are built with `matplotlib.figure.Figure` directly, never pyplot, so
nothing here needs a display or touches global state; saving goes through the Agg canvas.

Every function returns a Figure (or None when the records hold nothing to plot), so notebooks can
show it and the CLI can save it with `save_figure`.

One module per plot family: `pareto` (speedup vs relative score), `schedules` (the LazyLLM schedule
sweep), `layers` (tokens per layer), `probes` (the depth x length heatmap); `style` holds what they
share. `write_plots` saves every plot the records support.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from lazybench.analysis.plots.layers import layer_profile, plot_layer_tokens
from lazybench.analysis.plots.pareto import plot_pareto
from lazybench.analysis.plots.probes import plot_probe_heatmap, probe_accuracy
from lazybench.analysis.plots.schedules import plot_schedule_sweep, schedule_points
from lazybench.analysis.plots.style import save_figure

__all__ = [
    "layer_profile",
    "plot_layer_tokens",
    "plot_pareto",
    "plot_probe_heatmap",
    "plot_schedule_sweep",
    "probe_accuracy",
    "save_figure",
    "schedule_points",
    "write_plots",
]


def write_plots(records: pd.DataFrame, summary: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Save every plot the records support into out_dir; return the written paths."""
    figures = {
        "pareto_ttft.png": plot_pareto(summary, "ttft_speedup", "relative_score"),
        "pareto_generation.png": plot_pareto(summary, "generation_speedup", "relative_score"),
        "schedule_sweep.png": plot_schedule_sweep(records, summary),
        "layer_tokens.png": plot_layer_tokens(records),
        "probe_heatmap.png": plot_probe_heatmap(records),
    }
    return [save_figure(fig, Path(out_dir) / name) for name, fig in figures.items() if fig is not None]
