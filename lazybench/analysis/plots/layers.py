"""Prompt tokens computed and kept in the KV cache per layer, per method (mean over rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lazybench.analysis.paper import paper_method
from lazybench.analysis.plots.style import (
    MARKERS,
    figure_title,
    legend_order,
    panel_grid,
    series_colors,
)


def layer_profile(records: pd.DataFrame) -> pd.DataFrame:
    """Mean per-layer % of the prompt computed (computed_per_layer / prompt_tokens) and % of the final
    context held in the KV cache (kv_tokens_per_layer / (prompt_tokens + new_tokens - 1)), per model
    and method label (pooled over runs, e.g. a sweep's jobs); long format: model, method, method_label,
    layer, pct_computed, pct_kv."""
    out = []
    for (model, method, label), group in records.groupby(["model", "method", "method_label"], sort=False):
        computed, kv = [], []
        for c, k, p, n in zip(
            group["computed_per_layer"],
            group["kv_tokens_per_layer"],
            group["prompt_tokens"],
            group["new_tokens"],
        ):
            if c and p:
                computed.append(100.0 * np.asarray(c, dtype=float) / p)
            if k and p:
                kv.append(100.0 * np.asarray(k, dtype=float) / max(1, p + n - 1))
        if not computed or len({len(c) for c in computed}) != 1:
            continue  # nothing recorded, or records from models of different depth
        kv_mean = (
            np.mean(kv, axis=0)
            if kv and len({len(k) for k in kv}) == 1
            else np.full(len(computed[0]), np.nan)
        )
        for layer, (pc, pk) in enumerate(zip(np.mean(computed, axis=0), kv_mean)):
            out.append(
                {
                    "model": model,
                    "method": method,
                    "method_label": label,
                    "layer": layer,
                    "pct_computed": pc,
                    "pct_kv": pk,
                }
            )
    return pd.DataFrame(out, columns=["model", "method", "method_label", "layer", "pct_computed", "pct_kv"])


def plot_layer_tokens(records: pd.DataFrame) -> Figure | None:
    """Per layer, per method label: prompt tokens computed (over the whole generation) and KV entries."""
    prof = layer_profile(records)
    if prof.empty:
        return None
    names, series = legend_order(prof)
    colors = series_colors(names)
    fig, axes = panel_grid(2, 2, (5.5, 4.0))
    for name in names:
        part = prof[series == name]
        marker = MARKERS.get(paper_method(part["method"].iloc[0]), "P")
        axes[0].plot(part["layer"], part["pct_computed"], marker=marker, ms=3, color=colors[name], label=name)
        axes[1].plot(part["layer"], part["pct_kv"], marker=marker, ms=3, color=colors[name], label=name)
    axes[0].set_ylabel("prompt tokens computed, % of prompt")
    axes[0].set_title("computed per layer (all steps)")
    axes[1].set_ylabel("KV cache entries, % of final context")
    axes[1].set_title("KV cache per layer (end of generation)")
    for ax in axes:
        ax.set_xlabel("layer")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=min(3, len(names)),
        fontsize="small",
    )
    fig.suptitle(figure_title(records, "Tokens per layer (mean over examples)"))
    return fig
