"""Tiny random-init models and configs for fast runner tests (and quick smoke runs on any CPU).

`make_tiny_model(folder)` saves a 4-layer Llama (hidden 64) with SmolLM2's tokenizer;
`lazybench model.name=<folder> model.id=tiny model.max_length=256 ...` runs it (see `tiny_overrides`).
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_model(folder: str | Path, num_layers: int = 4, seed: int = 0) -> Path:
    """Save a random-init Llama (hidden 64) with the SmolLM2 tokenizer (it has a chat template)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lazybench.models import smollm2_folder

    folder = Path(folder)
    if (folder / "config.json").exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_overrides(model_dir: str | Path, data_dir: str | Path, output_dir: str | Path) -> list[str]:
    """Hydra overrides for a run of a few seconds: 2 datasets x 2 rows, 256-token prompts, 4 new tokens."""
    return [
        f"model.name={model_dir}",
        "model.id=tiny",
        "model.max_length=256",
        "model.device=cpu",
        "model.dtype=float32",
        "suite.name=tiny",
        "suite.datasets=[hotpotqa,triviaqa]",
        "suite.limit=2",
        "suite.max_new_tokens_cap=4",
        f"data_dir={data_dir}",
        f"output_dir={output_dir}",
        "warmups=0",
        "progress=false",
        "plot=false",
    ]


def compose_cfg(overrides=(), hydra_config: bool = False):
    """The composed lazybench config for these overrides, as the `lazybench` command would see it."""
    from hydra import compose, initialize_config_dir

    from lazybench.runner.config import conf_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra_config)


def run_tiny_multirun(
    model_dir: str | Path, data_dir: str | Path, output_dir: str | Path, suite: str, datasets: list[str],
    sweep_args: list[str], timeout: int = 300,
):  # fmt: skip
    """Run `lazybench -m` in a subprocess on a one-row-per-dataset tiny suite, one thread per job."""
    import os
    import subprocess
    import sys

    overrides = [o for o in tiny_overrides(model_dir, data_dir, output_dir) if not o.startswith("suite.")]
    overrides += [f"suite.name={suite}", f"suite.datasets=[{','.join(datasets)}]", "suite.limit=1",
                  "suite.max_new_tokens_cap=2"]  # fmt: skip
    cmd = [sys.executable, "-m", "lazybench.cli", "-m", *sweep_args, "threads=1", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
