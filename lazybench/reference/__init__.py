"""A slow, plainly written LazyLLM: the oracle the engine is tested against (see docs/reference.md)."""

from lazybench.reference.layers import ReferenceModelError
from lazybench.reference.lazyllm import (
    ReferenceInvariantError,
    ReferenceResult,
    StageRecord,
    reference_generate,
)

__all__ = [
    "ReferenceInvariantError",
    "ReferenceModelError",
    "ReferenceResult",
    "StageRecord",
    "reference_generate",
]
