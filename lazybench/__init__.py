"""lazybench: LazyLLM (dynamic token pruning for long-context prefill) and its rivals on LongBench."""

__version__ = "0.1.0"
