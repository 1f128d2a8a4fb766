"""The benchmark runner: config -> validated plan -> interleaved, recorded, resumable runs -> summaries.

`lazybench.runner.run.run(cfg)` is what the `lazybench` console command (the Hydra app in
`lazybench.cli`) calls; `lazybench.runner.run.prepare(cfg)` validates a config without loading any
model weights. Results layout: docs/results_layout.md.
"""

from lazybench.runner.config import RunConfigError, conf_dir, resolve_methods

__all__ = ["RunConfigError", "conf_dir", "resolve_methods"]
