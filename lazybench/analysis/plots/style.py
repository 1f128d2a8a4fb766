"""What every plot family shares: markers per paper method, axis labels, legend order, colours,
panel grids, titles naming model, run and rows, and saving (Agg canvas, no pyplot)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from lazybench.aggregate import source_text
from lazybench.analysis.summary import method_sort_key

MARKERS = {
    "baseline": "*",
    "random_token_drop": "s",
    "static_token_pruning": "^",
    "prompt_compression": "D",
    "lazyllm": "o",
}
SHORT = {
    "ttft_speedup": "TTFT speedup",
    "generation_speedup": "generation speedup",
    "relative_score": "relative score",
}
AXIS_LABELS = {
    "ttft_speedup": "TTFT speedup vs baseline (x)",
    "generation_speedup": "generation speedup vs baseline (x)",
    "relative_score": "score, % of baseline",
    "score": "score",
}


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def series_names(frame: pd.DataFrame) -> pd.Series:
    """Legend name per row: the method label (labels carry the hyperparameters, so a sweep's jobs
    share series), prefixed by the model when several models are shown."""
    if "model" in frame.columns and frame["model"].nunique() > 1:
        return frame["model"].astype(str) + ": " + frame["method_label"].astype(str)
    return frame["method_label"].astype(str)


def legend_order(frame: pd.DataFrame) -> tuple[list[str], pd.Series]:
    """The series names in legend order (the paper's method order), and each line's series."""
    series = series_names(frame)
    keyed = {n: method_sort_key(m, lab) for n, m, lab in zip(series, frame["method"], frame["method_label"])}
    return sorted(keyed, key=lambda n: (keyed[n], n)), series


def series_colors(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def panel_grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def figure_title(frame: pd.DataFrame, what: str, source: pd.DataFrame | None = None) -> str:
    """`what`, then the model(s) and run(s), then where the rows came from ("offline slice, 16 rows")."""
    models = sorted({str(m) for m in frame["model"].dropna()})
    runs = sorted({str(r) for r in frame["run"].dropna()})
    where = f"{', '.join(models)}" + (f" — run {runs[0]}" if len(runs) == 1 else f" — {len(runs)} runs")
    return f"{what}\n{where}\n{source_text(frame if source is None else source)}"
