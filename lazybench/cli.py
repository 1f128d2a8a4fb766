"""`lazybench [VERB] ...`: one command for everything; without a verb it runs a benchmark.

The default verb `run` is the Hydra app (config tree: `conf/` at the repository root). With no
arguments it runs the embedded CPU demo: SmolLM2-135M over the smoke suite, baseline vs LazyLLM,
then prints a per-category table and writes summaries and a speed/accuracy plot into
``runs/smollm2-135m-smoke``. Everything else is a Hydra override::

    lazybench model=llama2-7b-chat suite=qa warmups=5
    lazybench method=lazyllm method.schedule.keep=[0.8,0.5,0.2]
    lazybench 'methods=[baseline,random_drop]' repeats=5
    lazybench -m 'method.schedule.keep=[0.8,0.5,0.2],[0.6,0.3,0.1]' hydra/launcher=joblib
    lazybench --cfg job          # print the composed config and exit

The other verbs (`VERBS`: analyze, rescore, merge, profile, lengths, lm-eval, bench, protocol) each parse their own
arguments; `lazybench --help` lists them. A verb is a registry entry naming its function by
"module:function", imported only when the verb runs, so `lazybench --help` stays fast.

Configuration mistakes are reported as one line on stderr (exit status 2) before any model loads.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import pkgutil
import runpy
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from lazybench.runner.common import RunConfigError, conf_dir

EXIT_CONFIG_ERROR = 2
DEFAULT_VERB = "run"


@dataclass(frozen=True)
class Verb:
    """One `lazybench VERB`: the function that takes the remaining argv, and its line in --help."""

    name: str
    target: str  # "module:function"; the function takes the argv after the verb, returns an exit status
    summary: str

    def function(self) -> Callable[[list[str]], int | None]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb(
            "run",
            "lazybench.cli:run_app",
            "run a benchmark (the default verb): the Hydra app, key=value overrides",
        ),
        Verb("analyze", "lazybench.analysis.cli:main", "tables, plots and a report of finished runs"),
        Verb("rescore", "lazybench.runner.rescore:main", "re-score finished runs with the current metrics"),
        Verb("merge", "lazybench.runner.merge:main", "a sharded run's summaries from all its shards"),
        Verb(
            "profile",
            "lazybench.profile.cli:main",
            "per-layer attention profile and a proposed LazyLLM schedule",
        ),
        Verb("lengths", "lazybench.tasks.lengths:main", "prompt-length distribution per LongBench dataset"),
        Verb(
            "lm-eval",
            "lazybench.lm_eval_backend.__main__:main",
            "lm-eval's own CLI, with the lazyllm model and the LongBench tasks registered",
        ),  # fmt: skip
        Verb("bench", "lazybench.cli:bench", "engine micro-benchmarks: lazybench bench NAME ..."),
        Verb(
            "protocol",
            "lazybench.protocol.cli:main",
            "operating points: select them on a sweep run; Tables 1-2 and Figure 5 at them",
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# run: the Hydra app


def task(cfg: DictConfig):
    """The Hydra task function: one run (one job of a sweep). Returns the configured objective."""
    # here, not at the top: importing Hydra's state and the runner (torch) would triple the time of
    # `lazybench --help` (python -X importtime: lazybench.cli 0.07 s, hydra.core alone 0.14 s)
    from lazybench.runner.hydra_state import multirun
    from lazybench.runner.run import run

    try:
        if cfg.get("dry_run", False):
            from lazybench.runner.dryrun import dry_run

            print(dry_run(cfg))
            return None
        outcome = run(cfg)
    except RunConfigError as err:
        print(f"lazybench: error: {err}", file=sys.stderr)
        if multirun():
            raise  # let the launcher report the failed job
        sys.exit(EXIT_CONFIG_ERROR)
    done = f"{outcome.new_records} new records" + (
        f", {outcome.skipped_units} already recorded (resumed)" if outcome.skipped_units else ""
    )
    print(f"\nlazybench: {outcome.run_dir}: {done}")
    if cfg.get("print_table", True) and outcome.table:
        print("\n" + outcome.table + "\n")
    for path in outcome.files:
        print(f"  wrote {path}")
    if cfg.get("shard") and cfg.shard.count > 1:  # lazybench.runner.shard
        print(f"lazybench: shard {cfg.shard.index}-of-{cfg.shard.count} done; once all are: lazybench merge "
              f"{outcome.run_dir.parent.parent}")  # fmt: skip
    return outcome.objective


def _check_launcher_plugins(argv: list[str]) -> None:
    """Optional Hydra plugins missing: say which extra to install instead of Hydra's raw error."""
    submitit = [a for a in argv if a.startswith("hydra/launcher=") and ("slurm" in a or "submitit" in a)]
    if submitit and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        raise RunConfigError(
            f"{submitit[0]} needs Hydra's submitit plugin, an optional extra: "
            "pip install 'lazybench[slurm]' (or hydra-submitit-launcher)"
        )
    wants_optuna = any(a in ("experiment=schedule_search", "hydra/sweeper=optuna") for a in argv)
    if wants_optuna and importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        raise RunConfigError(
            "the schedule search needs Hydra's Optuna sweeper, an optional extra: "
            "pip install 'lazybench[search]' (or hydra-optuna-sweeper)"
        )


def run_app(argv: list[str]) -> int | None:
    """`lazybench [run] [key=value ...]`: check what can be checked on argv, then hand it to Hydra."""
    import hydra

    from lazybench.conf_groups import check_group_choices, check_method_keys, register_method_configs

    try:
        _check_launcher_plugins(argv)
        check_group_choices(argv)
        check_method_keys(argv)
        config_path = str(conf_dir())
    except RunConfigError as err:
        print(f"lazybench: error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    register_method_configs()  # the `method` group: one node per registered method, from its class
    saved = sys.argv
    sys.argv = [saved[0] if saved else "lazybench", *argv]  # hydra.main reads sys.argv
    try:
        hydra.main(version_base="1.3", config_path=config_path, config_name="config")(task)()
    finally:
        sys.argv = saved
    return None


# ---------------------------------------------------------------------------------------------
# bench: python -m lazybench.bench.<name>


def bench_modules() -> dict[str, str]:
    """{name: first docstring line} of the modules in lazybench.bench with a `main` (read, not imported)."""
    import lazybench.bench as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        path = Path(info.module_finder.path) / f"{info.name}.py"
        if info.ispkg or info.name.startswith("_") or not path.is_file():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            found[info.name] = " ".join((ast.get_docstring(tree) or "").split("\n\n")[0].split())
    return dict(sorted(found.items()))


def bench(argv: list[str]) -> int | None:
    """`lazybench bench NAME ARGS...` runs `python -m lazybench.bench.NAME ARGS...` in this process."""
    modules = bench_modules()
    if not argv or argv[0] in ("-h", "--help"):
        lines = ["usage: lazybench bench NAME [ARGS...]   (lazybench bench NAME --help: its options)", ""]
        width = max(map(len, modules), default=0)
        for name, summary in modules.items():
            lines += textwrap.wrap(
                summary, 100, initial_indent=f"  {name:<{width}}  ", subsequent_indent=" " * (width + 4)
            )
        print("\n".join(lines), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_CONFIG_ERROR
    name, rest = argv[0], argv[1:]
    if name not in modules:
        print(
            f"lazybench bench: error: unknown benchmark {name!r}{_did_you_mean(name, modules)}; "
            f"choose from {', '.join(modules)}",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    saved = sys.argv
    sys.argv = [f"lazybench bench {name}", *rest]  # argparse's prog, and argv for a main() without one
    try:
        runpy.run_module(f"lazybench.bench.{name}", run_name="__main__", alter_sys=False)
    finally:
        sys.argv = saved
    return None


# ---------------------------------------------------------------------------------------------
# dispatch


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [
        "usage: lazybench [VERB] [ARGS...]",
        "",
        "LazyLLM (dynamic token pruning for long-context prefill) measured against full prefill and",
        "its rivals on LongBench. Without a verb, `lazybench [key=value ...]` runs a benchmark (verb run).",
        "",
        "verbs:",
        *(f"  {v.name:<{width}}  {v.summary}" for v in VERBS.values()),
        "",
        "lazybench VERB --help      a verb's own options (lazybench run --help: config groups and the config)",
        "lazybench --hydra-help     Hydra's own flags (-m for sweeps, --cfg job, ...)",
    ]
    return "\n".join(lines)


def _split(args: list[str]) -> tuple[Verb | None, list[str]]:
    """The verb and its argv; a first argument that is an option or an override means `run`."""
    if not args:
        return VERBS[DEFAULT_VERB], []
    first = args[0]
    if first in VERBS:
        return VERBS[first], args[1:]
    if first.startswith(("-", "+", "~")) or "=" in first:
        return VERBS[DEFAULT_VERB], args
    return None, args


def main(argv: Sequence[str] | None = None) -> None:
    """The console script `lazybench`: dispatch on the first argument, exit with the verb's status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0)
    verb, rest = _split(args)
    if verb is None:
        print(
            f"lazybench: error: unknown verb {args[0]!r}{_did_you_mean(args[0], VERBS)}; verbs are "
            f"{', '.join(VERBS)}, and a run takes key=value overrides (lazybench --help)",
            file=sys.stderr,
        )
        sys.exit(EXIT_CONFIG_ERROR)
    sys.exit(verb.function()(rest))


def _alias(verb: str) -> Callable[[], None]:
    """A console script kept under its old name (`lazybench-analyze`): `lazybench VERB` by another name."""

    def entry() -> None:
        main([verb, *sys.argv[1:]])

    entry.__name__ = entry.__qualname__ = f"{verb.replace('-', '_')}_alias"
    entry.__doc__ = f"`lazybench-{verb} ...`, the old name of `lazybench {verb} ...`."
    return entry


analyze_alias = _alias("analyze")
lengths_alias = _alias("lengths")
lm_eval_alias = _alias("lm-eval")
profile_alias = _alias("profile")


if __name__ == "__main__":
    main()
