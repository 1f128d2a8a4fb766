"""`lazybench`: the Hydra app that runs a benchmark (config tree: `conf/` at the repository root).

With no arguments it runs the embedded CPU demo: SmolLM2-135M over the smoke suite, baseline vs
LazyLLM, then prints a per-category table and writes summaries and a speed/accuracy plot into
``runs/smollm2-135m-smoke``. Everything else is a Hydra override::

    lazybench model=llama2-7b-chat suite=qa warmups=5
    lazybench method=lazyllm method.schedule.keep=[0.8,0.5,0.2]
    lazybench 'methods=[baseline,random_drop]' repeats=5
    lazybench -m 'method.schedule.keep=[0.8,0.5,0.2],[0.6,0.3,0.1]' hydra/launcher=joblib
    lazybench --cfg job          # print the composed config and exit

Subcommands outside Hydra: `lazybench profile|lm-eval|lengths|analyze|rescore|protocol ...` (each has --help).

Configuration mistakes are reported as one line on stderr (exit status 2) before any model loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from omegaconf import DictConfig

from lazybench.runner.config import RunConfigError, conf_dir

EXIT_CONFIG_ERROR = 2


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001
        return False


def task(cfg: DictConfig):
    """The Hydra task function: one run (one job of a sweep). Returns the configured objective."""
    from lazybench.runner.run import run

    try:
        if cfg.get("dry_run", False):
            from lazybench.runner.dryrun import dry_run

            print(dry_run(cfg))
            return None
        outcome = run(cfg)
    except RunConfigError as err:
        print(f"lazybench: error: {err}", file=sys.stderr)
        if _multirun():
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
    return outcome.objective


def _check_launcher_plugins(argv: list[str]) -> None:
    """Optional Hydra plugins missing: say which extra to install instead of Hydra's raw error."""
    wants_slurm = any(a.startswith("hydra/launcher=") and ("slurm" in a or "submitit" in a) for a in argv)
    if wants_slurm and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        raise RunConfigError(
            "the SLURM launcher needs Hydra's submitit plugin, an optional extra: "
            "pip install 'lazybench[slurm]' (or hydra-submitit-launcher)"
        )
    wants_optuna = any(a in ("experiment=schedule_search", "hydra/sweeper=optuna") for a in argv)
    if wants_optuna and importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        raise RunConfigError(
            "the schedule search needs Hydra's Optuna sweeper, an optional extra: "
            "pip install 'lazybench[search]' (or hydra-optuna-sweeper)"
        )


SUBCOMMANDS = {
    "profile": ("lazybench.profiler", "main"),  # per-layer attention profile and a proposed schedule
    "lm-eval": ("lazybench.lm_eval_backend.__main__", "main"),  # lm-eval's CLI with our model registered
    "lengths": ("lazybench.tasks.lengths", "main"),  # prompt-length distribution per dataset
    "analyze": ("lazybench.analysis.cli", "main"),  # tables and plots from run folders
    "rescore": ("lazybench.runner.rescore", "main"),  # re-score finished runs with the current metrics
    "protocol": ("lazybench.protocol.cli", "main"),  # choose operating points; Tables 1-2, Figure 5 at them
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        module, func = SUBCOMMANDS[sys.argv[1]]
        sys.exit(getattr(importlib.import_module(module), func)(sys.argv[2:]))
    import hydra

    try:
        _check_launcher_plugins(sys.argv[1:])
        config_path = str(conf_dir())
    except RunConfigError as err:
        print(f"lazybench: error: {err}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
    app = hydra.main(version_base="1.3", config_path=config_path, config_name="config")(task)
    app()


if __name__ == "__main__":
    main()
