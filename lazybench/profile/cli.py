"""``lazybench profile``: profile LongBench rows and print the proposed schedule as runner overrides.

The model is named as the runner names it: ``--model`` is a conf/model key (``llama2-7b-chat``) or a
hub id / folder on the default model config, and ``model.<field>=<value>`` arguments override that
config (``model.max_length=3500 model.device=cuda``). Prompts are built from the model config's
chat style, max_length, truncate and context_limit, as the runner builds them.

    lazybench profile --datasets hotpotqa,qmsum,triviaqa,lcc --limit 2
    lazybench profile --suite smoke --target-mass 0.9 --out runs/profile
    lazybench profile --model llama2-7b-chat model.device=cuda --datasets qa --limit 4
    lazybench profile --scores runs/profile/scores.pt --target-mass 0.8   # re-propose only, no model
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from lazybench.profile.output import format_table, write_outputs
from lazybench.profile.record import profile_prompts
from lazybench.profile.stats import ProfileError
from lazybench.profile.summary import Profile

DEFAULT_DATASETS = "hotpotqa,qmsum,triviaqa,lcc"
PROG = "lazybench profile"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Profile per-layer attention concentration of the last prompt token on LongBench rows "
        "and propose a LazyLLM schedule (printed as the runner's Hydra overrides).",
    )
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="a conf/model key (as the runner's model=), or a hub id / folder on the default model config "
        "(as model.name=); default smollm2-135m",
    )
    p.add_argument(
        "model_overrides",
        nargs="*",
        metavar="model.FIELD=VALUE",
        help="overrides of the model config, as on the runner's command line (model.max_length=3500 ...)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--datasets", default=None, help=f"comma-separated datasets and/or categories, or 'all' "
                     f"(default {DEFAULT_DATASETS})")  # fmt: skip
    src.add_argument("--suite", default=None, help="a built-in suite (smoke, qa, code, summarization, paper)")
    p.add_argument("--limit", type=int, default=None, help="rows per dataset (default: 2, or the suite's)")
    p.add_argument("--seed", type=int, default=None, help="seeded row subset (default: first rows)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="offline (default: the bundled slice, or $LAZYBENCH_LONGBENCH_DIR), hub, or a folder of <dataset>.jsonl",
    )
    p.add_argument("--out", default=None, help="output folder (default runs/profile-<model>)")
    p.add_argument("--target-mass", type=float, default=0.9, help="attention mass to retain (default 0.9)")
    p.add_argument("--stages", type=int, default=3, help="at most this many pruning boundaries (default 3)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--scores",
        default=None,
        metavar="SCORES_PT",
        help="re-propose from a previous run's scores.pt (no model run; e.g. another --target-mass)",
    )
    return p


def _examples(args: argparse.Namespace) -> list:
    """(task, example) pairs of the selected rows; loaded before the model so bad names fail fast."""
    from lazybench.tasks import expand_datasets, get_suite, get_task, load_examples

    if args.suite:
        suite = get_suite(args.suite)
        datasets = suite.datasets
        limit = args.limit if args.limit is not None else (suite.limit or 2)
        seed = args.seed if args.seed is not None else suite.seed
    else:
        spec = [d.strip() for d in (args.datasets or DEFAULT_DATASETS).split(",") if d.strip()]
        datasets = expand_datasets(spec)
        limit = args.limit if args.limit is not None else 2
        seed = args.seed
    return [
        (get_task(name), ex)
        for name in datasets
        for ex in load_examples(name, data_dir=args.data_dir, limit=limit, seed=seed)
    ]


def _profile_rows(args: argparse.Namespace) -> tuple[Profile, dict[str, Any], float]:
    """Build the selected rows' prompts as the runner does and record one full prefill per row."""
    from lazybench.conf_groups import model_node
    from lazybench.runner.frontend import checked_model, model_front
    from lazybench.tasks import build_prompt

    node = model_node(args.model, args.model_overrides)
    spec, chat_style, _ = checked_model(node)
    examples = _examples(args)
    if not examples:
        raise ProfileError("no rows selected")
    front = model_front(node, spec, chat_style)  # the runner's tokenizer, chat style and context size
    model, tokenizer, chat_style, context_limit = (
        front.load(),
        front.tokenizer,
        front.chat_style,
        front.context_limit,
    )
    prompts, metas = [], []
    for task, ex in examples:
        try:
            prompt = build_prompt(
                task,
                ex,
                tokenizer,
                node.get("max_length"),
                chat_style,
                truncate=bool(node.get("truncate", True)),
                context_limit=context_limit,
            )
        except ValueError as err:  # PromptTooLongError is one
            raise ProfileError(f"dataset {task.name!r}, row {ex.id}: {err}") from None
        prompts.append(prompt.input_ids)
        metas.append({"dataset": task.name, "id": ex.id, "truncated": prompt.truncated})
    model_config = OmegaConf.to_container(node, resolve=True)
    recorded = {key: model_config.get(key) for key in ("max_length", "chat_style", "dtype", "device")}
    t0 = time.perf_counter()  # the clock leaves out the model load, as it always did
    prof = profile_prompts(model, prompts, metas)
    info = {"model_name": spec.name, **recorded, "model_config": model_config}
    return prof, info, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    """``lazybench profile ...``: returns the exit status (2 for a usage or data error)."""
    from lazybench.models import ModelNotAvailableError
    from lazybench.runner.common import RunConfigError
    from lazybench.tasks import DataFormatError, DataNotFoundError, UnknownTaskError

    args = build_parser().parse_intermixed_args(list(argv) if argv is not None else None)
    try:
        return _run(args)
    except (
        ProfileError,
        RunConfigError,
        DataNotFoundError,
        DataFormatError,
        UnknownTaskError,
        ModelNotAvailableError,
    ) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if not (0.0 < args.target_mass <= 1.0):
        raise ProfileError(f"--target-mass must be in (0, 1], got {args.target_mass}")
    if args.scores:
        t0 = time.perf_counter()
        saved = torch.load(args.scores, weights_only=True)
        prof = Profile(
            num_layers=int(saved["num_layers"]), scores=list(saved["scores"]), rows=list(saved["rows"])
        )
        model_info: dict[str, Any] = {"model_name": args.model}
        seconds = time.perf_counter() - t0
    else:
        prof, model_info, seconds = _profile_rows(args)
    proposal = prof.propose(args.target_mass, args.stages)
    out = Path(args.out or f"runs/profile-{Path(args.model).name}")
    config = vars(args) | model_info | {"profile_seconds": seconds}
    paths = write_outputs(prof, proposal, out, config, png=not args.no_plot)

    n_tokens = sum(r["tokens"] for r in prof.rows)
    done = "loaded" if args.scores else "profiled"
    print(f"{done} {len(prof.rows)} rows ({n_tokens} tokens) of {args.model} in {seconds:.1f} s")
    print(format_table(prof.table(args.target_mass), args.target_mass))
    print(
        f"\nproposed schedule (target retained mass {args.target_mass:g}, at most {args.stages} boundaries): "
        f"{proposal.schedule.describe()}, {proposal.compute_fraction:.1%} of full-prefill rows, "
        f"min retained mass {proposal.min_retained_mass:.3f}"
    )
    print(f"  runner:  lazybench {proposal.overrides()}")
    pretrained = model_info["model_name"]
    print(f"  lm-eval: --model lazyllm --model_args pretrained={pretrained},{proposal.model_args()}")
    for path in paths:
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
