"""``python -m lazybench.lm_eval_backend ...``: lm-eval's CLI with the ``lazyllm`` model registered.

lm-eval 0.4.13 finds external models only when their module is imported; this wrapper imports the
registration, adds ``--include_path`` of the lazybench LongBench tasks unless one is given, and runs
lm-eval's own ``cli_evaluate``; the ``lazyllm`` model writes its per-request accounting to
``<output_path>/lazybench_accounting.json`` (when ``--output_path`` is given and the model_args
have no ``accounting=``). Every other argument
is lm-eval's, e.g.::

    python -m lazybench.lm_eval_backend --model lazyllm \
        --model_args pretrained=smollm2-135m,method=lazyllm,boundaries=0.3:0.6:0.9,keep=0.7:0.4:0.1,max_length=2000 \
        --tasks lazybench_longbench --device cpu --limit 2 --output_path runs/lm_eval
"""

from __future__ import annotations

import sys
from pathlib import Path

ACCOUNTING_FILE = "lazybench_accounting.json"


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def accounting_path(output_path: str) -> Path:
    """Where the accounting goes: inside ``--output_path`` (its folder when it names a .json file)."""
    out = Path(output_path)
    return (out.parent if out.suffix == ".json" else out) / ACCOUNTING_FILE


def main(argv: list[str] | None = None) -> int:
    from lm_eval.__main__ import cli_evaluate

    from lazybench.lm_eval_backend import TASKS_DIR, LazyLLMLM

    args = list(sys.argv[1:] if argv is None else argv)
    helping = not args or args[0] in ("-h", "--help")
    if not helping and _option(args, "--include_path") is None:
        args += ["--include_path", str(TASKS_DIR)]
    output_path = _option(args, "--output_path") or _option(args, "-o")
    saved = sys.argv, LazyLLMLM.default_accounting
    sys.argv = ["lm-eval", *args]
    if output_path:
        LazyLLMLM.default_accounting = accounting_path(output_path)
    try:
        cli_evaluate()
    finally:
        sys.argv, LazyLLMLM.default_accounting = saved
    if output_path and accounting_path(output_path).is_file():
        print(f"lazybench: per-request accounting in {accounting_path(output_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
