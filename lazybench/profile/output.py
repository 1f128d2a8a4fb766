"""What a profile writes: the printed per-layer table, profile.csv/json, scores.pt and profile.png."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lazybench.profile.proposal import Proposal
from lazybench.profile.stats import GRID
from lazybench.profile.summary import LayerRow, Profile


def format_table(rows: Sequence[LayerRow], target_mass: float) -> str:
    head = f"{'layer':>5} {'top10%':>7} {'top30%':>7} {'top50%':>7} {'entropy':>7} {'tok0':>6} {f'keep@{target_mass:g}':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.layer:>5} {r.top10:>7.3f} {r.top30:>7.3f} {r.top50:>7.3f} {r.entropy:>7.3f} "
            f"{r.first_token:>6.3f} {r.keep_for_target:>9.2f}"
        )
    return "\n".join(lines)


def write_outputs(
    prof: Profile, proposal: Proposal, out_dir: Path, config: dict[str, Any], png: bool = True
) -> list[Path]:
    """profile.csv (the per-layer table), profile.json (everything), scores.pt (the raw per-row score
    matrices, for `--scores`) and profile.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = prof.table(proposal.target_mass)
    csv_path = out_dir / "profile.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
    json_path = out_dir / "profile.json"
    curves = prof.curves()
    payload = {
        "config": config,
        "num_layers": prof.num_layers,
        "scored_layers": prof.num_layers - 1,
        "rows": prof.rows,
        "layers": [asdict(r) for r in rows],
        "grid": list(GRID),
        "mass_curves": [[round(float(x), 6) for x in c] for c in curves],
        "proposal": {
            **asdict(proposal),
            "hydra_overrides": proposal.overrides(),
            "lm_eval_model_args": proposal.model_args(),
        },
    }
    json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    scores_path = out_dir / "scores.pt"
    torch.save({"num_layers": prof.num_layers, "rows": prof.rows, "scores": prof.scores}, scores_path)
    paths = [csv_path, json_path, scores_path]
    if png:
        image = plot(prof, proposal, out_dir / "profile.png")
        if image is not None:
            paths.append(image)
    return paths


def plot(prof: Profile, proposal: Proposal, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a declared dependency
        return None
    rows = prof.table(proposal.target_mass)
    layers = [r.layer for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, label in (("top10", "top 10%"), ("top30", "top 30%"), ("top50", "top 50%")):
        ax1.plot(layers, [getattr(r, key) for r in rows], marker="o", ms=3, label=f"mass of {label}")
    ax1.plot(layers, [r.entropy for r in rows], "k--", label="normalised entropy")
    ax1.plot(layers, [r.first_token for r in rows], ":", color="gray", label="mass on token 0")
    ax1.set_xlabel("layer (scores of the last prompt token)")
    ax1.set_ylim(0, 1.02)
    ax1.set_title(f"attention concentration ({len(prof.scores)} rows)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    bounds = list(range(1, prof.num_layers))
    ax2.plot(bounds, proposal.needed_keep, ".", color="gray", label="keep needed (one boundary here)")
    ax2.plot(bounds, proposal.envelope, "-", color="gray", alpha=0.6, label="envelope (non-increasing)")
    plan = proposal.schedule.resolve(prof.num_layers).layer_keep_fractions()
    ax2.step(range(prof.num_layers), plan, where="post", color="C3", lw=2, label="proposed keep")
    ax2.plot(layers, proposal.retained_mass, "C0", marker="o", ms=3, label="retained mass (nested)")
    ax2.axhline(proposal.target_mass, color="C0", ls=":", lw=1)
    ax2.set_xlabel("layer")
    ax2.set_ylim(0, 1.02)
    ax2.set_title(
        f"proposal: {proposal.compute_fraction:.0%} of prefill rows, target {proposal.target_mass:g}"
    )
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
