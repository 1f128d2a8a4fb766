"""Attention-concentration profiler: where in depth can LazyLLM prune, and how much?

For each prompt, one full prefill runs through the lazybench engine with a recording policy: a
schedule with a boundary before every layer and keep 1.0 everywhere, so the engine asks for the
last token's attention row (head-mean softmax(q_last . K^T), the score LazyLLM prunes by) at layers
0 .. L-2 and nothing is pruned. The scoring is the engine's own (SDPA plus one extra row per layer),
so the numbers are exactly what LazyLLM would see in full prefill. Layer L-1 is not scored: no
boundary can follow it.

Per layer (averaged over rows): the attention mass held by the top 10/30/50% of the prompt's
tokens, the normalised entropy H(s)/log N (1 = uniform, 0 = one token), and the mass on the first
token (the attention sink). From the same scores the profiler proposes a schedule (rule in
`propose_schedule` and docs/profiler.md) and prints it as Hydra overrides for the runner.

    python -m lazybench.profiler --datasets hotpotqa,qmsum,triviaqa,lcc --limit 2 --max-length 2000
    python -m lazybench.profiler --suite smoke --target-mass 0.9 --out runs/profile
    python -m lazybench.profiler --scores runs/profile/scores.pt --target-mass 0.8   # re-propose only

(`lazybench profile ...` once the CLI dispatches to `lazybench.profiler:main`.)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lazybench.engine import LazyEngine, ModelParts, Schedule, Selection, TokenPolicy

#: keep fractions the proposal chooses from (and the x axis of the mass curves).
GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
TOP_FRACTIONS: tuple[float, ...] = (0.1, 0.3, 0.5)


class ProfileError(ValueError):
    """The profile cannot be computed (e.g. a one-layer model, an empty prompt)."""


# ----------------------------------------------------------------------------------------------
# recording the engine's scores


class ScoreRecorder(TokenPolicy):
    """Boundary before every layer, keep 1.0: records `Selection.scores` of prefill, prunes nothing."""

    name = "profile"

    def __init__(self, num_layers: int) -> None:
        if num_layers < 2:
            raise ProfileError(f"a {num_layers}-layer model has no layer boundary to profile")
        super().__init__(
            Schedule(boundaries=tuple(range(1, num_layers)), keep=(1.0,) * (num_layers - 1), unit="layer")
        )
        self.scores: dict[int, torch.Tensor] = {}

    def needs_scores(self, step: int, stage: int) -> bool:
        return step == 0

    def select(self, sel: Selection) -> torch.Tensor | None:
        if sel.step == 0 and sel.scores is not None:
            self.scores[sel.layer - 1] = sel.scores.detach().float().cpu()
        return None


def layer_scores(model: torch.nn.Module, prompt_ids: Sequence[int]) -> torch.Tensor:
    """[L-1, N]: the last prompt token's head-mean attention over the prompt at layers 0..L-2."""
    ids = torch.as_tensor(list(prompt_ids), dtype=torch.long)
    if ids.numel() < 2:
        raise ProfileError("a prompt needs at least 2 tokens to profile")
    recorder = ScoreRecorder(ModelParts.from_model(model).num_layers)
    engine = LazyEngine(model, recorder)
    with engine.attention_hook():
        state = engine.new_state(capacity=ids.numel())
        engine.step(state, ids.to(engine.parts.device))
    n_layers = engine.parts.num_layers - 1
    missing = [layer for layer in range(n_layers) if layer not in recorder.scores]
    if missing:
        raise ProfileError(f"the engine gave no scores at layers {missing}")
    return torch.stack([recorder.scores[layer] for layer in range(n_layers)])


# ----------------------------------------------------------------------------------------------
# statistics


def kept_count(fraction: float, n: int) -> int:
    """Tokens a keep fraction leaves out of n: ceil(fraction * n), at least 1 (as `Selection.n_keep`)."""
    return min(n, max(1, math.ceil(fraction * n - 1e-9)))


def top_mass(scores: torch.Tensor, fractions: Sequence[float]) -> torch.Tensor:
    """[layers, len(fractions)]: mass held by the top `fraction` of tokens at each layer."""
    n = scores.shape[-1]
    cum = torch.sort(scores, dim=-1, descending=True).values.cumsum(-1)
    idx = torch.tensor([kept_count(f, n) - 1 for f in fractions])
    return cum[:, idx].clamp(max=1.0)


def normalized_entropy(scores: torch.Tensor) -> torch.Tensor:
    """[layers]: H(s) / log N, in [0, 1]."""
    n = scores.shape[-1]
    p = scores.clamp(min=0)
    h = -(p * torch.log(p.clamp(min=1e-30))).sum(-1)
    return (h / math.log(n)).clamp(0.0, 1.0) if n > 1 else torch.zeros(scores.shape[0])


def retention(scores: torch.Tensor, grid: Sequence[float] = GRID) -> torch.Tensor:
    """[r, j, g]: mass of layer j's attention on the tokens layer r's scores would keep at grid[g].

    The selection is LazyLLM's: top-k by layer r's scores with the last token always kept. This is
    what a single boundary after layer r with keep grid[g] retains of every layer's attention.
    """
    n_layers, n = scores.shape
    idx = torch.tensor([kept_count(f, n) - 1 for f in grid])
    out = torch.empty(n_layers, n_layers, len(grid))
    for r in range(n_layers):
        ranking = scores[r].clone()
        ranking[-1] = torch.inf
        order = torch.argsort(ranking, descending=True)
        out[r] = scores[:, order].cumsum(-1)[:, idx].clamp(max=1.0)
    return out


def nested_retention(scores: torch.Tensor, boundaries: Sequence[int], keep: Sequence[float]) -> torch.Tensor:
    """[layers]: mass of each layer's attention on the tokens a schedule keeps at that layer.

    Simulates progressive pruning on full-prefill scores: at boundary b the survivors are cut to
    ceil(keep * N) by layer b-1's scores (last token forced). An approximation, since real pruning
    changes the later layers' attention; it is what the proposal is checked against.
    """
    n_layers, n = scores.shape
    kept = torch.ones(n, dtype=torch.bool)
    out = torch.ones(n_layers)
    stage_of = {b: k for b, k in zip(boundaries, keep)}
    for layer in range(n_layers):
        if layer in stage_of:
            ranking = scores[layer - 1].clone()
            ranking[-1] = torch.inf
            ranking[~kept] = -torch.inf
            n_keep = min(int(kept.sum()), kept_count(stage_of[layer], n))
            new = torch.zeros(n, dtype=torch.bool)
            new[torch.topk(ranking, n_keep).indices] = True
            kept = new
        out[layer] = scores[layer, kept].sum().clamp(max=1.0)
    return out


# ----------------------------------------------------------------------------------------------
# schedule proposal


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
            return "method=lazyllm,schedule=full"
        b = ":".join(str(x) for x in self.boundaries)
        k = ":".join(f"{x:g}" for x in self.keep)
        return f"method=lazyllm,boundaries={b},keep={k},unit=layer"


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


# ----------------------------------------------------------------------------------------------
# the profile of a set of prompts


@dataclass
class LayerRow:
    layer: int
    top10: float
    top30: float
    top50: float
    entropy: float
    first_token: float
    keep_for_target: float  # smallest grid fraction whose top tokens hold target_mass at this layer


@dataclass
class Profile:
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


def profile_prompts(
    model: torch.nn.Module, prompts: Sequence[Sequence[int]], metas: Sequence[dict] | None = None
) -> Profile:
    """One recorded full prefill per prompt."""
    num_layers = ModelParts.from_model(model).num_layers
    prof = Profile(num_layers=num_layers)
    for i, ids in enumerate(prompts):
        t0 = time.perf_counter()
        scores = layer_scores(model, ids)
        prof.add(scores, seconds=time.perf_counter() - t0, **(dict(metas[i]) if metas else {}))
    return prof


# ----------------------------------------------------------------------------------------------
# output


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


# ----------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lazybench profile",
        description="Profile per-layer attention concentration of the last prompt token on LongBench rows "
        "and propose a LazyLLM schedule (printed as Hydra overrides).",
    )
    p.add_argument("--model", default="smollm2-135m", help="hub id, local folder, or smollm2-135m (default)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--datasets", default=None, help="comma-separated datasets and/or categories, or 'all'")
    src.add_argument("--suite", default=None, help="a built-in suite (smoke, qa, code, summarization, paper)")
    p.add_argument("--limit", type=int, default=None, help="rows per dataset (default: 2, or the suite's)")
    p.add_argument("--seed", type=int, default=None, help="seeded row subset (default: first rows)")
    p.add_argument("--max-length", type=int, default=2000, help="LongBench middle truncation (default 2000)")
    p.add_argument("--chat-style", default="auto", help="none|llama2|xgen|chat_template|auto (default auto)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="offline (default: the bundled slice, or $LAZYBENCH_LONGBENCH_DIR), hub, or a folder of <dataset>.jsonl",
    )
    p.add_argument("--out", default=None, help="output folder (default runs/profile-<model>)")
    p.add_argument("--target-mass", type=float, default=0.9, help="attention mass to retain (default 0.9)")
    p.add_argument("--stages", type=int, default=3, help="at most this many pruning boundaries (default 3)")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--scores",
        default=None,
        metavar="SCORES_PT",
        help="re-propose from a previous run's scores.pt (no model run; e.g. another --target-mass)",
    )
    return p


def _examples(args) -> list:
    """(task, example) pairs of the selected rows; loaded before the model so bad names fail fast."""
    from lazybench.tasks import expand_datasets, get_suite, get_task, load_examples

    if args.suite:
        suite = get_suite(args.suite)
        datasets = suite.datasets
        limit = args.limit if args.limit is not None else (suite.limit or 2)
        seed = args.seed if args.seed is not None else suite.seed
    else:
        spec = [d.strip() for d in (args.datasets or "hotpotqa,qmsum,triviaqa,lcc").split(",") if d.strip()]
        datasets = expand_datasets(spec)
        limit = args.limit if args.limit is not None else 2
        seed = args.seed
    return [
        (get_task(name), ex)
        for name in datasets
        for ex in load_examples(name, data_dir=args.data_dir, limit=limit, seed=seed)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``lazybench profile ...``: returns the exit status (2 for a usage or data error)."""
    from lazybench.models import ModelNotAvailableError
    from lazybench.tasks import DataFormatError, DataNotFoundError, UnknownTaskError

    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        return _run(args)
    except (
        ProfileError,
        DataNotFoundError,
        DataFormatError,
        UnknownTaskError,
        ModelNotAvailableError,
    ) as err:
        print(f"lazybench profile: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from lazybench.models import ModelSpec, load_model
    from lazybench.tasks import CHAT_STYLES, build_prompt

    if not (0.0 < args.target_mass <= 1.0):
        print(
            f"lazybench profile: error: --target-mass must be in (0, 1], got {args.target_mass}",
            file=sys.stderr,
        )
        return 2
    chat_style = args.chat_style
    t0 = time.perf_counter()
    if args.scores:
        saved = torch.load(args.scores, weights_only=True)
        prof = Profile(
            num_layers=int(saved["num_layers"]), scores=list(saved["scores"]), rows=list(saved["rows"])
        )
    else:
        if chat_style != "auto" and chat_style not in CHAT_STYLES:
            print(f"lazybench profile: error: unknown --chat-style {chat_style!r}", file=sys.stderr)
            return 2
        examples = _examples(args)
        if not examples:
            print("lazybench profile: error: no rows selected", file=sys.stderr)
            return 2
        model, tokenizer = load_model(ModelSpec(name=args.model, dtype=args.dtype, device=args.device))
        if chat_style == "auto":
            chat_style = "chat_template" if getattr(tokenizer, "chat_template", None) else "none"
        prompts, metas = [], []
        for task, ex in examples:
            prompt = build_prompt(task, ex, tokenizer, args.max_length, chat_style)
            prompts.append(prompt.input_ids)
            metas.append({"dataset": task.name, "id": ex.id, "truncated": prompt.truncated})
        t0 = time.perf_counter()
        prof = profile_prompts(model, prompts, metas)
    seconds = time.perf_counter() - t0
    proposal = prof.propose(args.target_mass, args.stages)
    out = Path(args.out or f"runs/profile-{Path(args.model).name}")
    config = {k: v for k, v in vars(args).items()} | {"chat_style": chat_style, "profile_seconds": seconds}
    paths = write_outputs(prof, proposal, out, config, png=not args.no_plot)

    n_tokens = sum(r["tokens"] for r in prof.rows)
    done = "loaded" if args.scores else "profiled"
    print(f"{done} {len(prof.rows)} rows ({n_tokens} tokens) of {args.model} in {seconds:.1f} s")
    print(format_table(prof.table(args.target_mass), args.target_mass))
    print(
        f"\nproposed schedule (target retained mass {args.target_mass:g}, at most {args.stages} boundaries): "
        f"{proposal.schedule.describe()}, {proposal.compute_fraction:.1%} of full-prefill rows, "
        f"min retained mass {proposal.min_retained_mass:.3f}"
    )
    print(f"  runner:  lazybench {proposal.overrides()}")
    print(f"  lm-eval: --model lazyllm --model_args pretrained={args.model},{proposal.model_args()}")
    for path in paths:
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
