"""The benchmark runner: config -> validated plan -> interleaved, recorded, resumable runs -> summaries.

`lazybench.runner.run.run(cfg)` is what the `lazybench` console command (the Hydra app in
`lazybench.cli`) calls: `config.prepare(cfg)` validates a config without loading any model weights
and returns a typed `RunPlan`, `execute.execute(plan)` runs it. The layout, module by job, is drawn
in docs/architecture.md; results layout: docs/results_layout.md.

Importing the package stays light (no torch): the CLI imports `common` before Hydra composes.
"""

from lazybench.runner.common import RunConfigError, conf_dir

__all__ = ["RunConfigError", "conf_dir"]
