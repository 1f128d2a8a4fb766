"""Attention-concentration profiler: where in depth can LazyLLM prune, and how much?

One full prefill per prompt records the engine's own pruning scores at every layer boundary
(`record`); per-layer statistics summarise them (`stats`, `summary`: the mass held by the top
10/30/50% of the prompt's tokens, the normalised entropy, the mass on the first token); a schedule
is proposed from them (`proposal`, rule in docs/profiler.md); `output` prints and writes the
results and `cli` is the ``lazybench profile`` command, which prints the proposal as the runner's
Hydra overrides.
"""

from lazybench.profile.cli import main
from lazybench.profile.output import format_table, plot, write_outputs
from lazybench.profile.proposal import Proposal, propose_schedule
from lazybench.profile.record import ScoreRecorder, layer_scores, profile_prompts
from lazybench.profile.stats import (
    GRID,
    TOP_FRACTIONS,
    ProfileError,
    kept_count,
    nested_retention,
    normalized_entropy,
    retention,
    top_mass,
)
from lazybench.profile.summary import LayerRow, Profile

__all__ = [
    "GRID",
    "TOP_FRACTIONS",
    "LayerRow",
    "Profile",
    "ProfileError",
    "Proposal",
    "ScoreRecorder",
    "format_table",
    "kept_count",
    "layer_scores",
    "main",
    "nested_retention",
    "normalized_entropy",
    "plot",
    "profile_prompts",
    "propose_schedule",
    "retention",
    "top_mass",
    "write_outputs",
]
