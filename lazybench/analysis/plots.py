"""Plots (matplotlib, PNG). Figures are built with `matplotlib.figure.Figure` directly, never pyplot, so
nothing here needs a display or touches global state; saving goes through the Agg canvas.

Every function returns a Figure (or None when the records hold nothing to plot), so notebooks can
show it and the CLI can save it with `save_figure`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lazybench.aggregate import pareto_frontier, per_row, source_text
from lazybench.analysis.paper import paper_method
from lazybench.analysis.summary import method_sort_key
from lazybench.columns import group_sort_key
from lazybench.tasks.probes import PROBE_TASKS, parse_probe_id

_MARKERS = {
    "baseline": "*",
    "random_token_drop": "s",
    "static_token_pruning": "^",
    "prompt_compression": "D",
    "lazyllm": "o",
}
_SHORT = {
    "ttft_speedup": "TTFT speedup",
    "generation_speedup": "generation speedup",
    "relative_score": "relative score",
}
_AXIS_LABELS = {
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


def _series(frame: pd.DataFrame) -> pd.Series:
    """Legend name per row: the method label (labels carry the hyperparameters, so a sweep's jobs
    share series), prefixed by the model when several models are shown."""
    if "model" in frame.columns and frame["model"].nunique() > 1:
        return frame["model"].astype(str) + ": " + frame["method_label"].astype(str)
    return frame["method_label"].astype(str)


def _legend(frame: pd.DataFrame) -> tuple[list[str], pd.Series]:
    """The series names in legend order (the paper's method order), and each line's series."""
    series = _series(frame)
    keyed = {n: method_sort_key(m, lab) for n, m, lab in zip(series, frame["method"], frame["method_label"])}
    return sorted(keyed, key=lambda n: (keyed[n], n)), series


def _colors(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _title(frame: pd.DataFrame, what: str, source: pd.DataFrame | None = None) -> str:
    """`what`, then the model(s) and run(s), then where the rows came from ("offline slice, 16 rows")."""
    models = sorted({str(m) for m in frame["model"].dropna()})
    runs = sorted({str(r) for r in frame["run"].dropna()})
    where = f"{', '.join(models)}" + (f" — run {runs[0]}" if len(runs) == 1 else f" — {len(runs)} runs")
    return f"{what}\n{where}\n{source_text(frame if source is None else source)}"


# --- Pareto ----------------------------------------------------------------------------------------


def plot_pareto(
    summary: pd.DataFrame, x: str = "ttft_speedup", y: str = "relative_score", ncols: int = 4
) -> Figure | None:
    """Speedup (x) vs relative score (y), one panel per category present plus overall, each method
    label a series; the Pareto frontier (maximise both) of each panel is drawn and circled."""
    rows = summary[summary["level"].isin(("category", "overall"))].dropna(subset=[x, y])
    if rows.empty:
        return None
    groups = sorted(rows["group"].unique(), key=lambda g: (g != "overall", group_sort_key(g)))
    names, _ = _legend(rows)
    colors = _colors(names)
    fig, axes = _grid(len(groups), ncols, (4.2, 3.6))
    handles: dict[str, object] = {}
    for ax, group in zip(axes, groups):
        panel = rows[rows["group"] == group]
        series = _series(panel)
        for name in names:
            pts = panel[series == name]
            if pts.empty:
                continue
            marker = _MARKERS.get(paper_method(pts["method"].iloc[0]), "P")
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
        ax.set_xlabel(_AXIS_LABELS.get(x, x))
        ax.set_ylabel(_AXIS_LABELS.get(y, y))
        ax.grid(alpha=0.3)
    frontier = axes[0].scatter([], [], s=180, facecolors="none", edgecolors="k", label="Pareto frontier")
    fig.legend(
        [*handles.values(), frontier],
        [*handles.keys(), "Pareto frontier (dashed)"],
        loc="outside lower center",
        ncols=min(3, len(handles) + 1),
        fontsize="small",
    )
    what = f"{_SHORT.get(y, y)} vs {_SHORT.get(x, x)} per method (Pareto frontier dashed and circled)"
    fig.suptitle(_title(rows, what[0].upper() + what[1:]))
    return fig


# --- LazyLLM schedule sweep --------------------------------------------------------------------------


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
    fig, axes = _grid(3, 3, (4.4, 3.8))
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
    fig.suptitle(_title(pts, "LazyLLM schedule sweep (overall)", summary))
    return fig


# --- tokens per layer ------------------------------------------------------------------------------


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
    names, series = _legend(prof)
    colors = _colors(names)
    fig, axes = _grid(2, 2, (5.5, 4.0))
    for name in names:
        part = prof[series == name]
        marker = _MARKERS.get(paper_method(part["method"].iloc[0]), "P")
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
    fig.suptitle(_title(records, "Tokens per layer (mean over examples)"))
    return fig


# --- probes ----------------------------------------------------------------------------------------


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
    names, series = _legend(acc)
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
    fig.suptitle(_title(records[records["dataset"].isin(kinds)], "Probe accuracy by depth and length"))
    return fig


# --- everything at once ----------------------------------------------------------------------------


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
