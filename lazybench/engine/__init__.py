"""The LazyLLM engine: progressive, dynamic token pruning over a transformers model's own layers."""

from lazybench.engine.adapter import ModelParts, UnsupportedModelError
from lazybench.engine.engine import EngineInvariantError, LazyEngine
from lazybench.engine.generate import Generation, GenerationResult, generate
from lazybench.engine.policy import (
    LazyLLMPolicy,
    Selection,
    StaticPruningPolicy,
    TokenPolicy,
    top_k_indices,
    top_k_mask,
)
from lazybench.engine.schedule import LayerPlan, Schedule, ScheduleError, check_fraction, kept_count
from lazybench.engine.state import StageTrace, TokenState

__all__ = [
    "EngineInvariantError",
    "Generation",
    "GenerationResult",
    "LayerPlan",
    "LazyEngine",
    "LazyLLMPolicy",
    "ModelParts",
    "Schedule",
    "ScheduleError",
    "Selection",
    "StageTrace",
    "StaticPruningPolicy",
    "TokenPolicy",
    "TokenState",
    "UnsupportedModelError",
    "check_fraction",
    "generate",
    "kept_count",
    "top_k_indices",
    "top_k_mask",
]
