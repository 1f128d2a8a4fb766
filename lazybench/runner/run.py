"""The runner: every method of a run on every row's prompt, interleaved, recorded, resumable.

`prepare` turns a composed config into a `RunPlan` and checks everything that can be checked
without model weights (methods, schedules against the model's depth read from its config, suite,
data, every prompt against max_length and the model's context, the run directory); `execute` loads
the model once, runs warm-ups on the first pending prompt, then, row by row, the baseline first
and every other (method, repeat) after it on the same prompt, appending one `RunRecord` per unit
to ``records.jsonl`` as soon as it is done. At the end it writes the summaries.

TTFT: with ``timing.prefill_repeats: k`` every unit's TTFT is the median of k samples, k - 1 of them
prefill-only rounds interleaved across the row's methods before its generations
(lazybench.runner.timing); records keep the samples and their spread.

Resuming: units whose (example_id, method_label, repeat) key is already in ``records.jsonl`` are
skipped. A half-written last line (a kill during a write) is cut off and reported. When a row still
needs a non-baseline method but its baseline record exists, the baseline is run again on that row,
untimed for the records and not recorded, only to get its first-token logits for fidelity (greedy
decoding is deterministic, so this reproduces the recorded baseline; ROUGE-L uses the recorded
baseline prediction).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from lazybench.runner.config import OBJECTIVES, Row, RunPlan, default_run_dir, prepare
from lazybench.runner.execute import RunOutcome, execute
from lazybench.runner.rundir import exclusive_run_dir

__all__ = ["OBJECTIVES", "Row", "RunOutcome", "RunPlan", "execute", "exclusive_run_dir", "prepare", "run"]
_default_run_dir = default_run_dir  # the dry run's name for it (lazybench.runner.dryrun)


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> RunOutcome:
    """Validate (no weights loaded), then execute; see the module docstring."""
    return execute(prepare(cfg, run_dir))
