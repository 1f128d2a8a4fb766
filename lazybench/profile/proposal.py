"""A LazyLLM schedule proposed from recorded attention rows (the rule: `propose_schedule`).

The proposal works on score matrices only (see `lazybench.profile.stats`); docs/profiler.md
explains the rule and its caveats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lazybench.engine import Schedule
from lazybench.profile.stats import GRID, ProfileError, nested_retention, retention


@dataclass
class Proposal:
    """A proposed LazyLLM schedule in layer units, and what it is expected to do."""

    num_layers: int
    target_mass: float
    search_target: float  # the per-boundary target the chosen candidate was planned with (>= target_mass)
    boundaries: list[int]
    keep: list[float]
    compute_fraction: float  # mean kept fraction over all layers: prefill rows computed / full prefill
    min_retained_mass: float  # lowest per-layer mean retained mass under nested_retention
    retained_mass: list[float]  # per scored layer
    # per boundary position 1..L-1, at search_target: the least safe keep of one boundary there,
    # and its suffix maximum (the non-increasing envelope)
    needed_keep: list[float]
    envelope: list[float]

    @property
    def schedule(self) -> Schedule:
        return Schedule(boundaries=tuple(self.boundaries), keep=tuple(self.keep), unit="layer")

    def overrides(self) -> str:
        """The runner's Hydra overrides for this schedule."""
        b = ",".join(str(x) for x in self.boundaries)
        k = ",".join(f"{x:g}" for x in self.keep)
        return f"method=lazyllm method.schedule.boundaries=[{b}] method.schedule.keep=[{k}] method.schedule.unit=layer"

    def model_args(self) -> str:
        """The same schedule as `lm_eval --model lazyllm` model_args."""
        if not self.boundaries:
            return "method=lazyllm,schedule.boundaries=[],schedule.keep=[]"
        b = ":".join(str(x) for x in self.boundaries)
        k = ":".join(f"{x:g}" for x in self.keep)
        return f"method=lazyllm,schedule.boundaries={b},schedule.keep={k},schedule.unit=layer"


def _grid_index(value: float, grid: Sequence[float]) -> int:
    return min(i for i, g in enumerate(grid) if g >= value - 1e-9)


def _best_steps(envelope: Sequence[float], num_layers: int, max_stages: int) -> list[int]:
    """Boundaries minimising sum over layers of the kept fraction, with keep = envelope at each stage
    start (enough for every later layer, as the envelope never increases). Exact DP, O(S * L^2)."""
    u = {b: envelope[b - 1] for b in range(1, num_layers)}
    # best[s][b]: least cost of layers b..L-1 when a stage starts at b and s more boundaries may follow
    best: list[dict[int, tuple[float, list[int]]]] = []
    for s in range(max_stages):
        row: dict[int, tuple[float, list[int]]] = {}
        for b in range(num_layers - 1, 0, -1):
            options = [((num_layers - b) * u[b], [b])]
            if s > 0:
                for nxt in range(b + 1, num_layers):
                    cost, path = best[s - 1][nxt]
                    options.append(((nxt - b) * u[b] + cost, [b, *path]))
            row[b] = min(options, key=lambda o: (o[0], len(o[1])))
        best.append(row)
    if max_stages == 0:
        return []
    options = [(float(num_layers), [])] + [(b + best[-1][b][0], best[-1][b][1]) for b in range(1, num_layers)]
    cost, path = min(options, key=lambda o: (o[0], len(o[1])))
    # drop boundaries that do not lower the kept fraction
    out: list[int] = []
    prev = 1.0
    for b in path:
        if u[b] < prev - 1e-9:
            out.append(b)
            prev = u[b]
    return out


def _needed_keep(ret: torch.Tensor, num_layers: int, target: float, grid: Sequence[float]) -> list[float]:
    """Per boundary b = 1..L-1: the smallest grid keep whose selection by layer b-1 retains a mean mass
    >= target of every scored layer j >= b-1 (``ret`` is the row-mean of `retention`)."""
    needed = []
    for b in range(1, num_layers):
        worst = ret[b - 1, b - 1 :, :].min(0).values  # [g]
        ok = [g for g in range(len(grid)) if worst[g] >= target - 1e-6]
        needed.append(grid[ok[0]] if ok else 1.0)
    return needed


def _clean(boundaries: Sequence[int], keep: Sequence[float]) -> tuple[list[int], list[float]]:
    """Drop boundaries whose keep does not go below the previous stage's (they prune nothing)."""
    bs, ks, prev = [], [], 1.0
    for b, k in zip(boundaries, keep):
        if k < prev - 1e-9:
            bs.append(b)
            ks.append(k)
            prev = k
    return bs, ks


def propose_schedule(
    scores: Sequence[torch.Tensor],
    num_layers: int,
    target_mass: float = 0.9,
    max_stages: int = 3,
    grid: Sequence[float] = GRID,
) -> Proposal:
    """Propose a schedule from per-row score matrices ([L-1, N] each, from `layer_scores`).

    1. needed_keep[b] (b = 1..L-1): the smallest grid fraction k such that one boundary at b,
       selecting by layer b-1's scores, keeps a mean (over rows) mass >= target of every scored
       layer j >= b-1 (the ranking layer itself and every later one).
    2. envelope[b] = max over b' >= b of needed_keep[b']: kept sets only shrink with depth, so a
       token needed at a deeper layer must survive every earlier boundary.
    3. At most `max_stages` boundaries, keep = envelope at each, placed to minimise the mean kept
       fraction over layers (exact dynamic programming).
    4. Check under `nested_retention` (the real progressive selection on the recorded scores):
       while some layer's mean retained mass is below `target_mass`, raise the keep of the stage
       holding the worst layer (and of earlier stages, to stay non-increasing) by one grid step.
    Steps 1-3 ignore that later boundaries select among the survivors of earlier ones, so they
    are repeated with the per-boundary target tightened from `target_mass` in steps of 0.01 (at
    most +0.1, at most 1.0); of the candidates (all of which pass step 4) the cheapest wins.
    """
    if not scores:
        raise ProfileError("no rows to propose a schedule from")
    if not (0.0 < target_mass <= 1.0):
        raise ProfileError(f"target mass must be in (0, 1], got {target_mass}")
    if max_stages < 0:
        raise ProfileError(f"max_stages must be >= 0, got {max_stages}")
    n_scored = num_layers - 1
    for s in scores:
        if s.shape[0] != n_scored:
            raise ProfileError(f"score matrix has {s.shape[0]} layers, expected {n_scored}")
    ret = torch.stack([retention(s, grid) for s in scores]).mean(0)  # [r, j, g]

    def check(bs: list[int], ks: list[float]) -> torch.Tensor:
        return torch.stack([nested_retention(s, bs, ks) for s in scores]).mean(0)

    def compute(bs: list[int], ks: list[float]) -> float:
        plan = Schedule(boundaries=tuple(bs), keep=tuple(ks), unit="layer").resolve(num_layers)
        return sum(plan.layer_keep_fractions()) / num_layers

    best = None
    steps = min(10, int(round((1.0 - target_mass) / 0.01)))
    for i in range(steps + 1):
        search_target = min(1.0, target_mass + 0.01 * i)
        needed = _needed_keep(ret, num_layers, search_target, grid)
        envelope = [max(needed[j:]) for j in range(len(needed))]
        boundaries = _best_steps(envelope, num_layers, max_stages)
        boundaries, keep = _clean(boundaries, [envelope[b - 1] for b in boundaries])
        retained = check(boundaries, keep)
        while boundaries and float(retained.min()) < target_mass - 1e-6:
            worst_layer = int(retained.argmin())
            stage = max((j for j, b in enumerate(boundaries) if b <= worst_layer), default=None)
            if stage is None:
                break  # the worst layer is before any boundary: nothing is pruned there
            raised = grid[min(len(grid) - 1, _grid_index(keep[stage], grid) + 1)]
            keep = [max(k, raised) if j <= stage else k for j, k in enumerate(keep)]
            boundaries, keep = _clean(boundaries, keep)
            retained = check(boundaries, keep)
        key = (compute(boundaries, keep), len(boundaries), search_target)
        if best is None or key < best[0]:
            best = (key, search_target, boundaries, keep, retained, needed, envelope)
    (cost, _, _), search_target, boundaries, keep, retained, needed, envelope = best
    return Proposal(
        num_layers=num_layers,
        target_mass=target_mass,
        search_target=search_target,
        boundaries=boundaries,
        keep=keep,
        compute_fraction=cost,
        min_retained_mass=float(retained.min()),
        retained_mass=[float(x) for x in retained],
        needed_keep=needed,
        envelope=envelope,
    )
