"""Methods behind one interface; importing this package registers them all."""

from lazybench.methods.adaptive import AdaptiveLazyLLM
from lazybench.methods.base import (
    METHODS,
    Baseline,
    GenerationRequest,
    Method,
    PreparedPrompt,
    ScheduledMethod,
    UnknownMethodError,
    build_method,
    list_methods,
    register_method,
)
from lazybench.methods.gemfilter import GemFilter
from lazybench.methods.h2o import H2O
from lazybench.methods.lazyllm import LazyLLM
from lazybench.methods.selective_context import SelectiveContext
from lazybench.methods.snapkv import SnapKV
from lazybench.methods.static import StaticPruning
from lazybench.methods.streamingllm import StreamingLLM
from lazybench.methods.token_drop import RandomDrop

__all__ = [
    "AdaptiveLazyLLM",
    "H2O",
    "METHODS",
    "Baseline",
    "GemFilter",
    "GenerationRequest",
    "LazyLLM",
    "Method",
    "PreparedPrompt",
    "RandomDrop",
    "ScheduledMethod",
    "SelectiveContext",
    "SnapKV",
    "StaticPruning",
    "StreamingLLM",
    "UnknownMethodError",
    "build_method",
    "list_methods",
    "register_method",
]
