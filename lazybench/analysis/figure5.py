"""Figure 5 of the paper, from a sweep: per category, TTFT speedup against score (or fidelity).

One curve per method family (its settings ordered by speed), the baseline at (1, 100%), the chosen
operating points ringed, and, on the score panels, the paper's Table 1 points of the same methods
overlaid as crosses (relative to the paper's baseline; the paper's numbers, not ours). The fidelity
version plots the whole-output agreement with the baseline's output (ROUGE-L by default) and has no
paper points: the paper reports none.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from lazybench.analysis.paper import PAPER_CATEGORIES, check_paper_model, paper_method, paper_table1  # noqa: E402
from lazybench.analysis.protocol_tables import FAMILY_ORDER  # noqa: E402

COLORS = {
    "lazyllm": "tab:red", "static": "tab:blue", "random_drop": "tab:gray", "selective_context": "tab:olive",
    "gemfilter": "tab:purple", "streamingllm": "tab:cyan", "snapkv": "tab:green", "h2o": "tab:brown",
}  # fmt: skip
Y_LABELS = {
    "relative_score": "score, % of baseline",
    "rouge_l_vs_baseline": "ROUGE-L of output vs baseline's",
    "prefix_agreement": "shared output prefix (fraction)",
}


def _paper_points(paper: str) -> pd.DataFrame:
    ref = paper_table1()
    base = ref[ref["method"] == "baseline"].set_index("category")[f"{paper}_score"]
    ref = ref[ref["method"] != "baseline"].copy()
    ref["relative"] = 100.0 * ref[f"{paper}_score"] / ref["category"].map(base)
    ref["speed"] = ref[f"{paper}_ttft_speedup"]
    return ref


def figure5(
    cands: pd.DataFrame,
    chosen: pd.DataFrame | None = None,
    y: str = "relative_score",
    speed: str = "ttft_speedup",
    paper: str | None = None,
    title: str | None = None,
):
    """The figure (matplotlib) for one run's candidates (`operating_points.candidates`)."""
    if y not in Y_LABELS:
        raise ValueError(f"unknown y {y!r}; choose from {', '.join(Y_LABELS)}")
    categories = [c for c in PAPER_CATEGORIES if c in set(cands["category"])]
    cols = min(3, max(1, len(categories)))
    rows = max(1, math.ceil(len(categories) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    ref = _paper_points(check_paper_model(paper)) if paper and y == "relative_score" else None
    families = sorted(set(cands["family"]), key=lambda f: FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99)
    for ax, category in zip(axes.flat, categories):
        here = cands[cands["category"] == category]
        ax.scatter([1.0], [100.0 if y == "relative_score" else 1.0], marker="*", s=140, color="black",
                   zorder=5, label="baseline")  # fmt: skip
        for family in families:
            pts = here[here["family"] == family].sort_values(speed)
            if pts[y].notna().any():
                ax.plot(pts[speed], pts[y], "o-", color=COLORS.get(family), ms=4, lw=1.2, label=family)
        if chosen is not None:
            pick = chosen[chosen["category"] == category][["method_label"]].merge(here, on="method_label")
            ax.scatter(pick[speed], pick[y], s=150, facecolors="none", edgecolors="black", lw=1.5,
                       zorder=6, label="chosen")  # fmt: skip
        if ref is not None:
            for line in ref[ref["category"] == category].itertuples(index=False):
                family = next((f for f in COLORS if paper_method(f) == line.method), None)
                ax.scatter([line.speed], [line.relative], marker="X", s=70, color=COLORS.get(family, "black"),
                           edgecolors="black", lw=0.5, zorder=7)  # fmt: skip
            paper_label = f"paper's Table 1 ({paper}, measured TTFT)"
            ax.scatter([], [], marker="X", color="white", edgecolors="black", label=paper_label)
        if here[y].isna().all():
            ax.text(0.5, 0.5, "baseline scores 0:\nno relative score", transform=ax.transAxes, ha="center")
        ax.axvline(1.0, color="0.8", lw=0.8)
        ax.set_title(category.replace("_", " "))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if round(v * 10) % 5 == 0 else ""))
        ax.set_xlabel(f"{'FLOP-ideal ' if speed == 'flop_speedup' else ''}TTFT speedup (x)")
        ax.set_ylabel(Y_LABELS[y])
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(categories) :]:
        ax.axis("off")
    legend: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 9), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.09 if rows == 1 else 0.05, 1, 0.95 if title else 1))
    return fig


def save_figure5(cands, chosen, out: str | Path, name: str, **kwargs) -> Path:
    path = Path(out) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = figure5(cands, chosen, **kwargs)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
