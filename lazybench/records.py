"""The run record: one JSON line per (example, method, repeat), the contract between runner and analysis.

Records are flat and self-describing so a notebook can `pd.read_json(path, lines=True)` a run (or a
whole sweep) without this package. Field meanings are part of the public interface (README,
"Results layout"); add fields, never rename them.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDS_FILE = "records.jsonl"
#: A unit's TTFT is noisy when its samples spread by more than this (`spread`, the records'
#: `ttft_spread`): the summaries' noisy_rows and the runner's end-of-run note count by it.
SPREAD_LIMIT = 0.25


@dataclass
class RunRecord:
    # identity
    run_id: str
    example_id: str
    dataset: str
    category: str
    method: str  # registry name, e.g. "lazyllm"
    method_label: str  # name plus the hyperparameters that distinguish it within a run
    method_params: dict[str, Any]
    repeat: int  # seed index for stochastic methods (random token drop), else 0
    seed: int
    model: str
    # prompt
    prompt_tokens: int  # tokens of the prompt given to the method (after truncation)
    truncated: bool
    # timing (seconds; TTFT = prefill + first token, including any prompt rewriting)
    ttft_s: float
    decode_s: float
    total_s: float
    decode_step_mean_s: float | None
    new_tokens: int
    stop_reason: str
    # accounting
    pct_prompt_computed: (
        float  # paper Table 2: prompt-token computations over all steps/layers, % of full prefill
    )
    prefill_flop_fraction: float  # prefill FLOPs / full-prefill FLOPs (analytic model)
    pruned: bool  # did this run skip any prompt token in prefill (guards against silently unapplied pruning)
    computed_per_layer: list[int]
    kv_tokens_per_layer: list[int]
    # output and score
    prediction: str
    answers: list[str]
    score: float  # the dataset's official metric, 0..1
    # fidelity to the full model on the same prompt (None on baseline records)
    first_token_match: bool | None = None
    first_token_kl: float | None = None
    rouge_l_vs_baseline: float | None = None
    # the fraction of the output generated token for token as the baseline's, from the start
    # (lazybench.runner.fidelity.token_agreement); None on records written before it existed
    token_agreement: float | None = None
    # provenance: where the row was read ("offline slice", "LongBench (hub: <copy>)", "folder <path>")
    data_source: str | None = None
    # TTFT samples (timing.prefill_repeats; lazybench.runner.timing): ttft_s is their median; None
    # on records written before the setting existed
    ttft_samples_s: list[float] | None = None
    ttft_spread: float | None = None  # (max - min) / median of the samples; 0 with one sample
    # environment
    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: Any, *, samples: Sequence[float] | None = None, **fields: Any) -> RunRecord:
        """The record of one generation: `result` (a `GenerationResult`) gives the timing, the
        accounting and the per-layer counts; `fields` everything else (identity, prompt, output,
        score, environment, `extra`, to which `result_extra(result)` belongs). `samples`: the unit's
        TTFT samples when `result.ttft_s` is their median (lazybench.runner.timing); default one."""
        samples = list(samples or [result.ttft_s])
        return cls(
            ttft_s=result.ttft_s,
            decode_s=result.decode_s,
            total_s=result.total_s,
            decode_step_mean_s=statistics.fmean(result.decode_step_s) if result.decode_step_s else None,
            new_tokens=result.new_tokens,
            stop_reason=result.stop_reason,
            pct_prompt_computed=result.pct_prompt_computed,
            prefill_flop_fraction=result.prefill_flop_fraction,
            pruned=result.pruned,
            computed_per_layer=list(result.computed_per_layer),
            kv_tokens_per_layer=list(result.kv_tokens_per_layer),
            ttft_samples_s=samples,
            ttft_spread=spread(samples),
            **fields,
        )

    def key(self) -> tuple[str, str, int]:
        """What identifies a finished unit of work for resuming."""
        return (self.example_id, self.method_label, self.repeat)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def result_extra(result: Any) -> dict[str, Any]:
    """The `extra` entries a generation's result gives a record (first token, rewriting, FLOPs)."""
    return {
        "first_token_id": result.tokens[0] if result.tokens else None,
        "original_prompt_tokens": result.original_prompt_tokens,
        "prompt_rewrite_s": result.prompt_rewrite_s,
        "prompt_rewrite_flops": result.prompt_rewrite_flops,
        "prefill_flops": result.prefill_flops,
        "full_prefill_flops": result.full_prefill_flops,
        "total_flops": result.total_flops,
    }


def spread(samples: Sequence[float]) -> float:
    """(max - min) / median of the samples: 0 for one sample, 0.5 when they scatter by half the median."""
    if len(samples) < 2:
        return 0.0
    middle = statistics.median(samples)
    return (max(samples) - min(samples)) / middle if middle > 0 else 0.0


@dataclass
class LoadedRecords:
    records: list[dict[str, Any]]
    dropped_partial_line: bool  # the last line was cut mid-write (a crash) and was ignored


def read_records(path: Path) -> LoadedRecords:
    """Read a records file written by the runner, tolerating only a half-written *last* line.

    Any other malformed line means the file was edited or corrupted, which must not pass silently.
    """
    if not path.exists():
        return LoadedRecords([], False)
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records: list[dict[str, Any]] = []
    dropped = False
    for i, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i == len(lines):
                dropped = True
                break
            raise ValueError(f"{path}:{i}: malformed record line ({err})") from err
    return LoadedRecords(records, dropped)


def append_record(path: Path, record: RunRecord) -> None:
    """Append one record and flush it to disk, so a kill loses at most the record in flight."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(record.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_partial_tail(path: Path) -> bool:
    """Cut a half-written last line (no trailing newline) off the file; True if one was cut."""
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    path.write_bytes(data[:cut])
    return True


def prefix_agreement(items: Sequence, baseline_items: Sequence) -> float:
    """Leading items (token ids, words) two outputs share, over the longer one's length (1.0 for two
    empty outputs): the one definition of "generated exactly as the full model did, up to here"."""
    longer = max(len(items), len(baseline_items))
    if longer == 0:
        return 1.0
    shared = 0
    for a, b in zip(items, baseline_items):
        if a != b:
            break
        shared += 1
    return shared / longer
