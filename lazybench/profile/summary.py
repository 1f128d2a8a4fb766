"""The profile of a set of prompts: their score matrices, per-layer means, and the proposal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lazybench.profile.proposal import Proposal, propose_schedule
from lazybench.profile.stats import GRID, TOP_FRACTIONS, ProfileError, normalized_entropy, top_mass


@dataclass
class LayerRow:
    """One line of the per-layer table (means over rows), as printed and written to profile.csv."""

    layer: int
    top10: float
    top30: float
    top50: float
    entropy: float
    first_token: float
    keep_for_target: float  # smallest grid fraction whose top tokens hold target_mass at this layer


@dataclass
class Profile:
    """The recorded score matrices of a set of prompts (or of a saved scores.pt) and their means."""

    num_layers: int
    scores: list[torch.Tensor] = field(default_factory=list, repr=False)  # [L-1, N] per row
    rows: list[dict[str, Any]] = field(default_factory=list)  # row metadata

    def add(self, scores: torch.Tensor, **meta: Any) -> None:
        self.scores.append(scores)
        self.rows.append({"tokens": int(scores.shape[1]), **meta})

    def top_mass(self) -> torch.Tensor:
        """[L-1, 3]: mean over rows of the top-10/30/50% mass."""
        return torch.stack([top_mass(s, TOP_FRACTIONS) for s in self.scores]).mean(0)

    def curves(self) -> torch.Tensor:
        """[L-1, len(GRID)]: mean over rows of the top-fraction mass at every grid point."""
        return torch.stack([top_mass(s, GRID) for s in self.scores]).mean(0)

    def entropy(self) -> torch.Tensor:
        return torch.stack([normalized_entropy(s) for s in self.scores]).mean(0)

    def first_token(self) -> torch.Tensor:
        return torch.stack([s[:, 0] for s in self.scores]).mean(0)

    def table(self, target_mass: float = 0.9) -> list[LayerRow]:
        if not self.scores:
            raise ProfileError("no rows profiled")
        top, ent, sink, curves = self.top_mass(), self.entropy(), self.first_token(), self.curves()
        out = []
        for layer in range(self.num_layers - 1):
            ok = [g for g, m in zip(GRID, curves[layer].tolist()) if m >= target_mass - 1e-6]
            out.append(
                LayerRow(
                    layer=layer,
                    top10=float(top[layer, 0]),
                    top30=float(top[layer, 1]),
                    top50=float(top[layer, 2]),
                    entropy=float(ent[layer]),
                    first_token=float(sink[layer]),
                    keep_for_target=ok[0] if ok else 1.0,
                )
            )
        return out

    def propose(self, target_mass: float = 0.9, max_stages: int = 3) -> Proposal:
        return propose_schedule(self.scores, self.num_layers, target_mass, max_stages)
