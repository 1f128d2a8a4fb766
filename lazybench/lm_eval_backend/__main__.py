"""``python -m lazybench.lm_eval_backend ...``: lm-eval's CLI with the ``lazyllm`` model registered.

lm-eval 0.4.13 finds external models only when their module is imported; this wrapper imports the
registration, adds ``--include_path`` of the lazybench LongBench tasks unless one is given, and runs
lm-eval's own ``cli_evaluate``; the ``lazyllm`` model writes a lazybench run directory (one
`RunRecord` per request in ``records.jsonl``, and ``run.json``) to ``<output_path>/lazybench_run``
(when ``--output_path`` is given and the model_args have no ``output=``), which
``lazybench analyze`` reads like any run. Every other argument is lm-eval's, e.g.::

    lazybench lm-eval --model lazyllm \
        --model_args pretrained=smollm2-135m,method=lazyllm,schedule.keep=0.7:0.4:0.1,max_length=2000 \
        --tasks lazybench_longbench --device cpu --limit 2 --output_path runs/lm_eval
"""

from __future__ import annotations

import sys
from pathlib import Path

from lm_eval.__main__ import cli_evaluate

from lazybench.lm_eval_backend import TASKS_DIR, LazyLLMLM

#: The lazybench run directory inside ``--output_path``.
RUN_FOLDER = "lazybench_run"


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def run_dir_of(output_path: str) -> Path:
    """Where the run's records go: inside ``--output_path`` (its folder when it names a .json file)."""
    out = Path(output_path)
    return (out.parent if out.suffix == ".json" else out) / RUN_FOLDER


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    helping = not args or args[0] in ("-h", "--help")
    if not helping and _option(args, "--include_path") is None:
        args += ["--include_path", str(TASKS_DIR)]
    output_path = _option(args, "--output_path") or _option(args, "-o")
    saved = sys.argv, LazyLLMLM.default_output
    sys.argv = ["lm-eval", *args]
    if output_path:
        LazyLLMLM.default_output = run_dir_of(output_path)
    try:
        cli_evaluate()
    finally:
        sys.argv, LazyLLMLM.default_output = saved
    if output_path and (run_dir_of(output_path) / "records.jsonl").is_file():
        print(
            f"lazybench: run records in {run_dir_of(output_path)} (lazybench analyze {run_dir_of(output_path)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
