"""Random-init models and configs: fast runner tests, quick smoke runs on any CPU, GPU speed rows.

`make_tiny_model(folder)` saves a 4-layer Llama (hidden 64) with SmolLM2's tokenizer;
`lazybench model.name=<folder> model.id=tiny model.max_length=256 ...` runs it (see `tiny_overrides`).

`make_shaped_model(shape)` writes only a config of a benchmark shape (Llama-2-7B, XGen-7B: see
lazybench.bench.ttft.GPU_SHAPES) and a byte-level tokenizer built in code, no weights and nothing
downloaded: `lazybench model=llama2-7b-random` (random_init) builds the weights on the device, so
the real runner times a 7B-shaped model on a machine that has no hub access::

    python -m lazybench.runner.testing shape llama2-7b     # prints the folder it wrote
"""

from __future__ import annotations

import sys
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


def byte_tokenizer():
    """A byte-level tokenizer made in code (ids 0-2: <unk>, <s>, </s>; 3-258: the bytes): any text
    encodes, nothing is downloaded. Ids past its vocabulary decode to nothing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(alphabet)}}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def shaped_model_dir(shape: str) -> Path:
    """Where `make_shaped_model` writes a shape by default (conf/model/*-random.yaml read it there)."""
    from lazybench.models import cache_dir

    return cache_dir() / "shapes" / shape


def make_shaped_model(shape: str, folder: str | Path | None = None) -> Path:
    """Save the config of a benchmark shape and a byte-level tokenizer, no weights (see the module
    docstring); run it with model.random_init=true. Returns the folder."""
    from transformers import LlamaConfig

    from lazybench.bench.ttft import GPU_SHAPES

    if shape not in GPU_SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(GPU_SHAPES)}")
    folder = Path(folder) if folder is not None else shaped_model_dir(shape)
    folder.mkdir(parents=True, exist_ok=True)
    # LlamaConfig's defaults are Llama-2-7B's shape; bos 1 and eos 2 are the tokenizer's <s>, </s>
    config = LlamaConfig(**GPU_SHAPES[shape], bos_token_id=1, eos_token_id=2)
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
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
    from lazybench.conf_groups import compose_config

    return compose_config(overrides, hydra_config)


def run_tiny_multirun(
    model_dir: str | Path, data_dir: str | Path, output_dir: str | Path, suite: str, datasets: list[str],
    sweep_args: list[str], timeout: int = 300, cwd: str | Path | None = None,
):  # fmt: skip
    """Run `lazybench -m` in a subprocess on a one-row-per-dataset tiny suite, one thread per job.

    `cwd`: the folder the command starts in (relative paths in the overrides are relative to it)."""
    import os
    import subprocess
    import sys

    overrides = [o for o in tiny_overrides(model_dir, data_dir, output_dir) if not o.startswith("suite.")]
    overrides += [f"suite.name={suite}", f"suite.datasets=[{','.join(datasets)}]", "suite.limit=1",
                  "suite.max_new_tokens_cap=2"]  # fmt: skip
    cmd = [sys.executable, "-m", "lazybench.cli", "-m", *sweep_args, "threads=1", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # the jobs import this lazybench, whatever folder they start in (a launcher's jobs inherit env)
    source = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def main(argv: list[str] | None = None) -> None:
    """`python -m lazybench.runner.testing shape <name> [folder]`: write a shape's config folder."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or args[0] != "shape":
        raise SystemExit(
            "usage: python -m lazybench.runner.testing shape <llama2-7b|xgen-7b|tiny-llama> [folder]"
        )
    try:
        print(make_shaped_model(args[1], args[2] if len(args) == 3 else None))
    except ValueError as err:
        raise SystemExit(f"lazybench: error: {err}") from None


if __name__ == "__main__":
    main()
