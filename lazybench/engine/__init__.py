"""The LazyLLM engine: progressive, dynamic token pruning over a transformers model's own layers.

What this package exports is the whole API methods may use (`lazybench.methods` imports nothing
else from the engine): the engine and its generation loop, and the hooks a method supplies or
calls. A token policy (`TokenPolicy`: `select` at each boundary from a `Selection`, `needs_scores`,
and for KV selection `layer_scores` with a `LayerScores` sink and `end_step`, which may set
`TokenState.kv_reads`, a `KVReads`: the method's own cache reads in decoding), the selection
helpers (`top_k_indices`, `mask_indices`, `kept_count`, `check_fraction`), the scorers' building
blocks (`last_query_scores`, `grouped_logits`, `score_flops`, `as_fp32`, `full_attention_layers`)
and the device clock helper (`sync_device`).
"""

from lazybench.engine.adapter import ModelParts, UnsupportedModelError
from lazybench.engine.attention import as_fp32, last_query_scores
from lazybench.engine.engine import EngineInvariantError, LazyEngine
from lazybench.engine.generate import Generation, GenerationResult, generate, sync_device
from lazybench.engine.policy import (
    LayerScores,
    Selection,
    TokenPolicy,
    full_attention_layers,
    grouped_logits,
    mask_indices,
    score_flops,
    top_k_indices,
    top_k_mask,
)
from lazybench.engine.schedule import LayerPlan, Schedule, ScheduleError, check_fraction, kept_count
from lazybench.engine.state import KVReads, StageTrace, TokenState

__all__ = [
    "EngineInvariantError",
    "Generation",
    "GenerationResult",
    "KVReads",
    "LayerPlan",
    "LayerScores",
    "LazyEngine",
    "ModelParts",
    "Schedule",
    "ScheduleError",
    "Selection",
    "StageTrace",
    "TokenPolicy",
    "TokenState",
    "UnsupportedModelError",
    "as_fp32",
    "check_fraction",
    "full_attention_layers",
    "generate",
    "grouped_logits",
    "kept_count",
    "last_query_scores",
    "mask_indices",
    "score_flops",
    "sync_device",
    "top_k_indices",
    "top_k_mask",
]
