"""Methods behind one interface; importing this package registers them all."""

from lazybench.methods.base import (
    METHODS,
    Baseline,
    GenerationRequest,
    LazyLLM,
    Method,
    PreparedPrompt,
    UnknownMethodError,
    build_method,
    list_methods,
    register_method,
)

__all__ = [
    "METHODS",
    "Baseline",
    "GenerationRequest",
    "LazyLLM",
    "Method",
    "PreparedPrompt",
    "UnknownMethodError",
    "build_method",
    "list_methods",
    "register_method",
]
