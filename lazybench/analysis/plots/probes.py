"""The passkey / needle probes: accuracy by needle depth and prompt length, a heatmap per method."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lazybench.aggregate import per_row
from lazybench.analysis.plots.style import (
    figure_title,
    legend_order,
)
from lazybench.tasks.probes import PROBE_TASKS, parse_probe_id


def _probe_position(example_id: str, extra) -> tuple[float, float]:
    """(depth, target_tokens) of a probe record: from record["extra"], else from the probe's example id
    (`lazybench.tasks.probes.probe_id`)."""
    extra = extra if isinstance(extra, dict) else {}
    if extra.get("depth") is not None and extra.get("target_tokens") is not None:
        return float(extra["depth"]), float(extra["target_tokens"])
    parsed = parse_probe_id(example_id)
    return (parsed["depth"], float(parsed["target_tokens"])) if parsed else (np.nan, np.nan)


def probe_accuracy(records: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (100 x mean score, repeats averaged first) of the passkey / needle probes per model,
    method label, probe, depth and target length (record["extra"]["depth" / "target_tokens"], or the
    probe's example id when the record lacks them)."""
    rows = records[records["dataset"].isin(PROBE_TASKS)].copy()
    cols = ["model", "method", "method_label", "dataset", "depth", "target_tokens", "accuracy", "n"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    where = [_probe_position(i, e) for i, e in zip(rows["example_id"], rows["extra"])]
    rows["depth"] = [d for d, _ in where]
    rows["target_tokens"] = [t for _, t in where]
    rows = rows.dropna(subset=["depth", "target_tokens"])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    ex = per_row(rows.drop(columns=["depth", "target_tokens"]))
    where = rows.drop_duplicates(["run_dir", "method_label", "example_id"])[
        ["run_dir", "method_label", "example_id", "depth", "target_tokens"]
    ]
    ex = ex.merge(where, on=["run_dir", "method_label", "example_id"])
    out = (
        ex.groupby(["model", "method", "method_label", "dataset", "depth", "target_tokens"], sort=False)[
            "score"
        ]
        .agg(accuracy=lambda s: 100.0 * s.mean(), n="size")
        .reset_index()
    )
    out["target_tokens"] = out["target_tokens"].astype(int)
    return out[cols]


def plot_probe_heatmap(records: pd.DataFrame) -> Figure | None:
    """Depth x length heatmap of probe accuracy: one row of panels per probe, one panel per method label."""
    acc = probe_accuracy(records)
    if acc.empty:
        return None
    names, series = legend_order(acc)
    kinds = [k for k in PROBE_TASKS if k in set(acc["dataset"])]
    depths = sorted(acc["depth"].unique())
    lengths = sorted(acc["target_tokens"].unique())
    ncols = len(names)
    fig = Figure(figsize=(0.5 + 2.6 * ncols, 0.8 + 2.6 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), ncols, squeeze=False)
    image = None
    for r, kind in enumerate(kinds):
        for c, name in enumerate(names):
            ax = axes[r][c]
            part = acc[(acc["dataset"] == kind) & (series == name)]
            grid = part.pivot_table(index="depth", columns="target_tokens", values="accuracy", aggfunc="mean")
            grid = grid.reindex(index=depths, columns=lengths)
            image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
            for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(lengths)), [str(n) for n in lengths], fontsize=7)
            ax.set_yticks(range(len(depths)), [f"{d:g}" for d in depths], fontsize=7)
            ax.set_title(f"{kind}\n{name}", fontsize=8)
            if c == 0:
                ax.set_ylabel("needle depth (0 = start)")
            if r == len(kinds) - 1:
                ax.set_xlabel("prompt length (tokens)")
    if image is not None:
        fig.colorbar(image, ax=axes, label="accuracy (%)", shrink=0.8)
    fig.suptitle(figure_title(records[records["dataset"].isin(kinds)], "Probe accuracy by depth and length"))
    return fig
