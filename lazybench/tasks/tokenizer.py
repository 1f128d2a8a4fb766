"""Tokenizer loading for the task layer (prompt lengths, probes, tests), cached per name.

Loading goes through lazybench.models, which knows hub ids, local folders and the built-in
offline model `smollm2-135m`; the cache lets tests and tools share one instance.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from lazybench.models import BUILTIN_SMOLLM2 as SMOLLM2_ALIAS
from lazybench.models import load_tokenizer as _load

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["SMOLLM2_ALIAS", "load_tokenizer"]


@cache
def load_tokenizer(name: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Do not mutate the returned tokenizer: it is shared (runner, tools, tests, in-process sweep jobs)."""
    return _load(name, trust_remote_code)
