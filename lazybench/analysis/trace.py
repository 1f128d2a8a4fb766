"""Looking inside one generation: the engine's per-stage trace as tables, shaded HTML text and a plot.

The trace is what `lazybench.engine.generate(..., trace=True)` returns as `result.trace`: a list of
StageTrace(step, stage, first_layer, end_layer, active, computed, revived, pruned_to_aux), one per
stage of every step (step 0 is the prefill). `active` holds the positions visible in that stage
(the kept set), `computed` those actually run through its layers, `revived` those brought back from
the Aux Cache, `pruned_to_aux` those dropped at the stage's start whose hidden state was saved.
Only attribute access is used, so any object with those fields works.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

# Stage shades, light to dark: deeper stages keep fewer tokens, so darker = kept longer.
_STAGE_RGB = ((222, 235, 247), (158, 202, 225), (66, 146, 198), (8, 81, 156), (8, 48, 107))
_REVIVED_RGB = (253, 174, 107)


def trace_table(trace: Sequence) -> pd.DataFrame:
    """One row per (step, stage): layers covered and how many tokens were active / computed / revived / pruned."""
    return pd.DataFrame(
        [
            {
                "step": t.step,
                "stage": t.stage,
                "layers": f"{t.first_layer}-{t.end_layer - 1}",
                "active": len(t.active),
                "computed": len(t.computed),
                "revived": len(t.revived),
                "pruned_to_aux": len(t.pruned_to_aux),
            }
            for t in trace
        ],
        columns=["step", "stage", "layers", "active", "computed", "revived", "pruned_to_aux"],
    )


def deepest_stage(trace: Sequence, step: int, n_positions: int) -> np.ndarray:
    """For each position < n_positions, the deepest stage of `step` in which it was active (-1: never)."""
    depth = np.full(n_positions, -1, dtype=int)
    for t in trace:
        if t.step != step:
            continue
        pos = np.asarray([p for p in t.active if p < n_positions], dtype=int)
        depth[pos] = np.maximum(depth[pos], t.stage)
    return depth


def _rgb(stage: int, n_stages: int) -> tuple[int, int, int]:
    if n_stages <= 1:
        return _STAGE_RGB[-1]
    idx = round(stage * (len(_STAGE_RGB) - 1) / (n_stages - 1))
    return _STAGE_RGB[min(idx, len(_STAGE_RGB) - 1)]


def _span(
    text: str, rgb: tuple[int, int, int] | None, title: str, grey: bool = False, border: bool = False
) -> str:
    style = []
    if rgb is not None:
        style.append(f"background:rgb{rgb}")
        if sum(rgb) < 300:
            style.append("color:white")
    if grey:
        style.append("color:#b0b0b0")
    if border:
        style.append(f"outline:2px solid rgb{_REVIVED_RGB}")
    shown = html.escape(text).replace("\n", "&#8629;<br>")
    return f'<span style="{";".join(style)}" title="{html.escape(title)}">{shown}</span>'


def _block(spans: list[str], caption: str) -> str:
    return (
        f'<div style="margin:6px 0"><b>{html.escape(caption)}</b>'
        '<div style="font-family:monospace;font-size:12px;line-height:1.9;white-space:pre-wrap;'
        f'border:1px solid #ddd;padding:6px">{"".join(spans)}</div></div>'
    )


def legend_html(n_stages: int, layers: Sequence[str] | None = None) -> str:
    """Colour key: stage s shade, and the revival outline."""
    items = []
    for s in range(n_stages):
        where = f" (layers {layers[s]})" if layers else ""
        items.append(_span(f" kept through stage {s}{where} ", _rgb(s, n_stages), f"stage {s}"))
    items.append(_span(" revived from the Aux Cache ", None, "revived", border=True))
    return '<div style="font-size:12px;margin:4px 0">' + " ".join(items) + "</div>"


def deepest_stage_html(
    pieces: Sequence[str], trace: Sequence, step: int = 0, caption: str | None = None
) -> str:
    """The text with each token shaded by the deepest stage of `step` it reached (darker = kept longer)."""
    n_stages = 1 + max((t.stage for t in trace if t.step == step), default=0)
    depth = deepest_stage(trace, step, len(pieces))
    revived = {p for t in trace if t.step == step for p in t.revived}
    spans = [
        _span(
            piece,
            _rgb(d, n_stages) if d >= 0 else None,
            f"position {i}: deepest stage {d}",
            grey=d < 0,
            border=i in revived,
        )
        for i, (piece, d) in enumerate(zip(pieces, depth))
    ]
    return _block(spans, caption or f"step {step}: shade = deepest stage reached")


def stages_html(pieces: Sequence[str], trace: Sequence, step: int = 0) -> str:
    """One block per stage of `step`: the tokens kept (active) in that stage shaded, the others greyed;
    tokens computed in that stage are underlined, revived ones outlined."""
    stages = [t for t in trace if t.step == step]
    n_stages = len(stages)
    blocks = []
    for t in stages:
        active, computed, revived = set(t.active), set(t.computed), set(t.revived)
        spans = []
        for i, piece in enumerate(pieces):
            kept = i in active
            span = _span(
                piece,
                _rgb(t.stage, n_stages) if kept else None,
                f"position {i}",
                grey=not kept,
                border=i in revived,
            )
            spans.append(f"<u>{span}</u>" if i in computed and step > 0 else span)
        caption = (
            f"step {step}, stage {t.stage} (layers {t.first_layer}-{t.end_layer - 1}): {len(t.active)} kept, "
            f"{len(t.computed)} computed, {len(t.revived)} revived, {len(t.pruned_to_aux)} pruned into the Aux Cache"
        )
        blocks.append(_block(spans, caption))
    return "".join(blocks)


def plot_kept_per_stage(trace: Sequence, prompt_tokens: int | None = None) -> Figure:
    """Kept (active) tokens per stage over the steps, and tokens computed / revived per step."""
    table = trace_table(trace)
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_kept, ax_work = fig.subplots(1, 2)
    stages = sorted(table["stage"].unique())
    for s in stages:
        part = table[table["stage"] == s]
        color = colormaps["viridis"](0.85 * s / max(1, len(stages) - 1))
        ax_kept.plot(
            part["step"],
            part["active"],
            marker="o",
            ms=3,
            color=color,
            label=f"stage {s} (layers {part['layers'].iloc[0]})",
        )
    if prompt_tokens:
        ax_kept.axhline(prompt_tokens, color="0.6", lw=0.8, ls=":", label="prompt length")
    ax_kept.set_xlabel("step (0 = prefill)")
    ax_kept.set_ylabel("kept tokens (active in the stage)")
    ax_kept.set_title("Kept tokens per stage")
    ax_kept.legend(fontsize="small", loc="best")
    per_step = table.groupby("step")[["computed", "revived", "pruned_to_aux"]].sum()
    decode = per_step.loc[per_step.index > 0]
    ax_work.plot(decode.index, decode["computed"], marker="o", ms=3, label="rows computed (new + revived)")
    ax_work.plot(decode.index, decode["revived"], marker="s", ms=3, label="revived from the Aux Cache")
    ax_work.plot(decode.index, decode["pruned_to_aux"], marker="^", ms=3, label="pruned into the Aux Cache")
    ax_work.set_xlabel("decode step")
    ax_work.set_ylabel("tokens (summed over stages)")
    ax_work.set_title("Work per decode step")
    ax_work.legend(fontsize="small")
    for ax in (ax_kept, ax_work):
        ax.grid(alpha=0.3)
    return fig
