"""Recording the engine's own pruning scores during an ordinary full prefill.

For each prompt, one full prefill runs through the lazybench engine with a recording policy: a
schedule with a boundary before every layer and keep 1.0 everywhere, so the engine asks for the
last token's attention row (head-mean softmax(q_last . K^T), the score LazyLLM prunes by) at layers
0 .. L-2 and nothing is pruned. The scoring is the engine's own (SDPA plus one extra row per layer),
so the numbers are exactly what LazyLLM would see in full prefill. Layer L-1 is not scored: no
boundary can follow it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from lazybench.engine import LazyEngine, ModelParts, Schedule, Selection, TokenPolicy
from lazybench.profile.stats import ProfileError
from lazybench.profile.summary import Profile


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
