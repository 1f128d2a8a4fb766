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

import json
import logging
import os
import platform
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lazybench import aggregate
from lazybench.records import RECORDS_FILE, RunRecord, append_record, read_records, truncate_partial_tail
from lazybench.runner.config import (
    BASELINE,
    MethodEntry,
    NotAvailableHereError,
    RunConfigError,
    TimingConfig,
    absolute,
    check_resumable,
    model_spec,
    resolve_data_source,
    resolve_methods,
    resolve_split,
    resolve_suite,
    resolve_timing,
    to_plain,
    validate_schedules,
)
from lazybench.runner.shard import check_layout, resolve_shard, shard_parent
from lazybench.shards import Shard

log = logging.getLogger("lazybench.runner")

#: What a job may return to its sweeper: columns of the method's overall line (lazybench.aggregate).
OBJECTIVES = aggregate.OBJECTIVES


@dataclass
class Row:
    """One benchmark row, its prompt and decoding settings, built before any model loads."""

    task: Any  # LongBenchTask
    example: Any  # Example
    prompt: Any  # Prompt
    settings: Any  # GenerationSettings

    @property
    def id(self) -> str:
        return self.example.id


@dataclass
class RunPlan:
    cfg: DictConfig
    run_dir: Path
    run_id: str
    spec: Any  # ModelSpec
    chat_style: str
    methods: list[MethodEntry]
    primary_label: str | None
    rows: list[Row]
    tokenizer: Any
    num_layers: int
    context_limit: int | None
    eos_token_ids: tuple[int, ...]
    data: Any  # lazybench.tasks.DataSource: what data_dir selected
    existing: list[dict]
    device: str
    model_config: Any = None  # the (text) config read in prepare(); no weights
    data_source: str = ""  # label of where the rows were read ("offline slice", ...): every record's
    timing: TimingConfig = field(default_factory=TimingConfig)
    shard: Shard = field(default_factory=Shard)  # this job's share of the rows (lazybench.runner.shard)


@dataclass
class RunOutcome:
    run_dir: Path
    records_path: Path
    new_records: int
    skipped_units: int
    dropped_partial_line: bool
    summary: Any = None  # lazybench.runner.summary.Summary
    table: str = ""
    objective: Any = None
    files: list[Path] = field(default_factory=list)
    timing_note: str = ""  # one line: how many units have a large TTFT spread (lazybench.runner.timing)


# ---------------------------------------------------------------------------------------------
# prepare


def _default_run_dir(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - not under Hydra
        pass
    return absolute(cfg.output_dir) / str(cfg.name)


def _run_id(cfg: DictConfig, run_dir: Path) -> str:
    out = absolute(cfg.output_dir)
    try:
        return run_dir.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return run_dir.name


def _inspect_model(spec) -> tuple[Any, Any]:
    """Tokenizer and model config (no weights): depth, context size, EOS ids, engine support."""
    from transformers import AutoConfig

    from lazybench.engine.adapter import SUPPORTED_MODEL_TYPES
    from lazybench.models import BUILTIN_SMOLLM2, ModelNotAvailableError, smollm2_folder
    from lazybench.tasks.tokenizer import load_tokenizer

    try:
        tokenizer = load_tokenizer(spec.tokenizer or spec.name, spec.trust_remote_code)
        source = str(smollm2_folder()) if spec.name == BUILTIN_SMOLLM2 else spec.name
        config = AutoConfig.from_pretrained(source, trust_remote_code=spec.trust_remote_code)
    except ModelNotAvailableError as err:
        raise NotAvailableHereError(str(err)) from None
    except (OSError, ValueError) as err:
        raise RunConfigError(
            f"cannot read model {spec.name!r}: {err}. Use a model config (model=<name>), a hub id in the local "
            "cache, or a local folder with config.json and tokenizer files as model.name="
        ) from None
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    model_type = getattr(text_config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise RunConfigError(
            f"model {spec.name!r} is of type {model_type!r}, which the engine does not drive; "
            f"supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))}"
        )
    return tokenizer, text_config


def _eos_ids(tokenizer, config, spec) -> tuple[int, ...]:
    from lazybench.models import BUILTIN_SMOLLM2, eos_token_ids, smollm2_folder

    generation_eos = None
    try:
        from transformers import GenerationConfig

        source = str(smollm2_folder()) if spec.name == BUILTIN_SMOLLM2 else spec.name
        generation_eos = GenerationConfig.from_pretrained(source).eos_token_id
    except Exception:  # noqa: BLE001 - no generation_config.json: the tokenizer's EOS is enough
        pass
    return eos_token_ids(tokenizer.eos_token_id, getattr(config, "eos_token_id", None), generation_eos)


def _build_rows(
    cfg: DictConfig, suite, data, tokenizer, context_limit, chat_style, shard: Shard | None = None
) -> list[Row]:
    """The rows of the suite (of this shard, when given): tasks in order, each one's examples in order."""
    from lazybench.tasks import (
        HUB,
        DataFormatError,
        DataNotFoundError,
        PromptTooLongError,
        build_prompt,
        generation_settings,
    )

    m = cfg.model
    max_length = m.get("max_length")
    truncate = bool(m.get("truncate", True))
    rows: list[Row] = []
    split = resolve_split(cfg)
    for task in suite.tasks():
        try:
            examples = suite.examples(task.name, data_dir=data, tokenizer=tokenizer, split=split)
        except DataNotFoundError as err:
            error = NotAvailableHereError if data.kind == HUB else RunConfigError
            raise error(f"dataset {task.name!r}: {err}") from None
        except (DataFormatError, ValueError) as err:  # ValueError: e.g. a probe grid
            raise RunConfigError(f"dataset {task.name!r}: {err}") from None
        settings = generation_settings(task, tokenizer, suite.max_new_tokens_cap, suite.min_new_tokens)
        for ex in examples:
            if shard is not None and not shard.owns(ex.id):
                continue
            try:
                prompt = build_prompt(
                    task,
                    ex,
                    tokenizer,
                    max_length,
                    chat_style,
                    truncate=truncate,
                    context_limit=context_limit,
                )
            except PromptTooLongError as err:
                raise RunConfigError(
                    f"prompt too long: {err} (config: model.max_length={max_length}, model.truncate={truncate}, "
                    f"context {context_limit})"
                ) from None
            except ValueError as err:
                raise RunConfigError(f"dataset {task.name!r}, row {ex.id}: {err}") from None
            rows.append(Row(task, ex, prompt, settings))
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise RunConfigError(
            f"the suite holds duplicate row ids {dupes}; records (keyed by row id) could not be told apart"
        )
    return rows


def prepare(cfg: DictConfig, run_dir: str | Path | None = None) -> RunPlan:
    """Validate everything and build the prompts; loads tokenizer and model config, never weights."""
    from lazybench.models import resolve_device, resolve_dtype
    from lazybench.runner.deps import check_run_dependencies
    from lazybench.tasks import CHAT_STYLES
    from lazybench.tasks.sources import data_source_label

    for key in ("seed", "warmups"):
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RunConfigError(f"{key} must be a non-negative integer, got {value!r}")
    objective = to_plain(cfg.get("objective"))
    for name in [objective] if isinstance(objective, str) else objective or []:
        if name not in OBJECTIVES:
            raise RunConfigError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")

    methods, primary = resolve_methods(cfg)
    timing = resolve_timing(cfg)
    shard = resolve_shard(cfg)
    suite = resolve_suite(cfg)
    data = resolve_data_source(cfg)
    spec = model_spec(cfg)
    check_run_dependencies(spec, methods, to_plain(cfg.model.get("requires")))
    if spec.name.startswith((".", "/", "~")) or Path(spec.name).expanduser().exists():
        folder = absolute(Path(spec.name).expanduser())
        if not folder.is_dir():
            raise RunConfigError(f"model folder {folder} does not exist (model.name={spec.name!r})")
        spec = type(spec)(**{**spec.__dict__, "name": str(folder)})
    chat_style = str(cfg.model.get("chat_style", "none"))
    if chat_style not in CHAT_STYLES:
        raise RunConfigError(
            f"unknown model.chat_style {chat_style!r}; expected one of {', '.join(CHAT_STYLES)}"
        )
    try:
        device = resolve_device(spec.device)
        resolve_dtype(spec.dtype, device)
    except (ValueError, RuntimeError) as err:
        raise RunConfigError(f"model {spec.name!r}: {err}") from None
    if device.type == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RunConfigError(
                f"model.device={spec.device!r} but no CUDA device is available here; use model.device=cpu"
            )

    tokenizer, text_config = _inspect_model(spec)
    num_layers = int(text_config.num_hidden_layers)
    if cfg.get("sweep"):  # operating-point families, solved from the model's shape (lazybench.protocol)
        from lazybench.protocol.sweep import sweep_entries

        methods, primary = resolve_methods(cfg, sweep_entries(cfg, text_config))
    validate_schedules(methods, num_layers)
    context_limit = cfg.model.get("context_limit") or getattr(text_config, "max_position_embeddings", None)
    rows = _build_rows(cfg, suite, data, tokenizer, context_limit, chat_style, shard)

    parent = Path(run_dir) if run_dir is not None else shard_parent(cfg, _multirun()) or _default_run_dir(cfg)
    check_layout(parent, shard)
    run_dir = shard.run_dir(parent)  # the run dir itself, or <run dir>/shards/<i>-of-<N>
    existing = read_records(run_dir / RECORDS_FILE).records
    check_resumable(run_dir, cfg, methods, existing, _hydra_overrides() if _multirun() else None)
    return RunPlan(
        cfg=cfg,
        run_dir=run_dir,
        run_id=_run_id(cfg, parent),  # a shard's records carry the whole run's id
        spec=spec,
        chat_style=chat_style,
        methods=methods,
        primary_label=primary,
        rows=rows,
        tokenizer=tokenizer,
        num_layers=num_layers,
        context_limit=context_limit,
        eos_token_ids=_eos_ids(tokenizer, text_config, spec),
        data=data,
        existing=existing,
        device=str(device),
        model_config=text_config,
        data_source=data_source_label(data, [row.example for row in rows]),
        timing=timing,
        shard=shard,
    )


# ---------------------------------------------------------------------------------------------
# execute


def versions() -> dict[str, str]:
    import torch
    import transformers

    import lazybench

    out = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lazybench": lazybench.__version__,
        "python": platform.python_version(),
    }
    if torch.version.cuda:
        out["cuda"] = str(torch.version.cuda)
    return out


def _hydra_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return list(HydraConfig.get().overrides.task)
    except Exception:  # noqa: BLE001
        pass
    return []


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001
        return False


def _write_run_files(plan: RunPlan, status: str, extra: dict | None = None) -> None:
    """config.yaml (the resolved config) and run.json (what the runner resolved and did)."""
    resolved = OmegaConf.to_container(plan.cfg, resolve=True)
    resolved["data_dir"] = plan.data.spec
    (plan.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)), encoding="utf-8")
    info = {
        "run_id": plan.run_id,
        "status": status,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_dir": str(plan.run_dir),
        "model": plan.spec.name,
        "device": plan.device,
        "num_layers": plan.num_layers,
        "context_limit": plan.context_limit,
        "data_dir": plan.data.spec,
        "data_source": plan.data_source,
        "rows": len(plan.rows),
        "methods": [
            {
                "label": m.label,
                "name": m.name,
                "params": m.params,
                "repeats": m.repeats,
                "categories": m.categories,
            }
            for m in plan.methods
        ],
        "method_under_test": plan.primary_label,
        "shard": {"index": plan.shard.index, "count": plan.shard.count},
        "overrides": _hydra_overrides(),
        "command": sys.argv,
        "versions": versions(),
        **(extra or {}),
    }
    (plan.run_dir / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")


class _Generator:
    """Runs one method on one row, turning the result into a record."""

    def __init__(self, plan: RunPlan, model) -> None:

        self.plan = plan
        self.model = model
        self.versions = versions()
        self.device = device_label(plan.device)
        self.seed = int(plan.cfg.seed)

    def request(self, row: Row, repeat: int, keep_logits: bool):
        """The method's request for this row and repeat, with the torch seed set for it."""
        import torch

        from lazybench.methods import GenerationRequest

        seed = self.seed + repeat
        torch.manual_seed(seed)
        return GenerationRequest(
            prompt_ids=list(row.prompt.input_ids),
            max_new_tokens=row.settings.max_new_tokens,
            eos_token_ids=tuple(sorted({*self.plan.eos_token_ids, *row.settings.stop_token_ids})),
            min_new_tokens=row.settings.min_new_tokens,
            keep_logits=keep_logits,
            seed=seed,
        )

    def generate(self, entry: MethodEntry, row: Row, repeat: int, keep_logits: bool):
        import torch

        request = self.request(row, repeat, keep_logits)
        with torch.inference_mode():
            result = entry.method.run(self.model, request)
        result.step_logits = None  # only the first token's logits are used
        return result

    def prefill_sample(self, entry: MethodEntry, row: Row, repeat: int) -> float:
        """One extra TTFT sample of the unit (lazybench.runner.timing), nothing recorded."""
        import torch

        from lazybench.runner.timing import prefill_ttft

        request = self.request(row, repeat, keep_logits=False)
        with torch.inference_mode():
            return prefill_ttft(entry.method, self.model, request)

    def record(
        self, entry: MethodEntry, row: Row, repeat: int, result, fid=None, samples: list[float] | None = None
    ) -> RunRecord:
        """`result` carries the median TTFT when `samples` (all TTFT samples, its own included) are given."""
        from lazybench.runner.timing import spread
        from lazybench.tasks import postprocess, score_example

        text = self.plan.tokenizer.decode(result.tokens, skip_special_tokens=True)
        prediction = postprocess(row.task, text, self.plan.chat_style)
        score = score_example(row.task, prediction, row.example.answers, row.example.all_classes)
        m = self.plan.cfg.model
        return RunRecord(
            run_id=self.plan.run_id,
            example_id=row.id,
            dataset=row.task.name,
            category=row.task.category,
            method=entry.name,
            method_label=entry.label,
            method_params=entry.params,
            repeat=repeat,
            seed=self.seed + repeat,
            model=self.plan.spec.name,
            data_source=self.plan.data_source,
            prompt_tokens=row.prompt.n_tokens,
            truncated=row.prompt.truncated,
            ttft_s=result.ttft_s,
            decode_s=result.decode_s,
            total_s=result.total_s,
            decode_step_mean_s=fmean(result.decode_step_s) if result.decode_step_s else None,
            new_tokens=result.new_tokens,
            stop_reason=result.stop_reason,
            pct_prompt_computed=result.pct_prompt_computed,
            prefill_flop_fraction=result.prefill_flop_fraction,
            pruned=result.pruned,
            computed_per_layer=list(result.computed_per_layer),
            kv_tokens_per_layer=list(result.kv_tokens_per_layer),
            prediction=prediction,
            answers=list(row.example.answers),
            score=score,
            first_token_match=None if fid is None else fid.first_token_match,
            first_token_kl=None if fid is None else fid.first_token_kl,
            rouge_l_vs_baseline=None if fid is None else fid.rouge_l_vs_baseline,
            ttft_samples_s=list(samples or [result.ttft_s]),
            ttft_spread=spread(samples or [result.ttft_s]),
            device=self.device,
            versions=self.versions,
            extra={
                "model_id": m.get("id"),
                "chat_style": self.plan.chat_style,
                "max_length": m.get("max_length"),
                "prompt_tokens_before_truncation": row.prompt.n_tokens_before_truncation,
                "max_new_tokens": row.settings.max_new_tokens,
                "min_new_tokens": row.settings.min_new_tokens,  # stops ignored before (suite.min_new_tokens)
                "first_token_id": result.tokens[0] if result.tokens else None,
                "original_prompt_tokens": result.original_prompt_tokens,
                "prompt_rewrite_s": result.prompt_rewrite_s,
                "prompt_rewrite_flops": result.prompt_rewrite_flops,
                "prefill_flops": result.prefill_flops,
                "full_prefill_flops": result.full_prefill_flops,
                "total_flops": result.total_flops,
                "dtype": str(self.model.dtype),
                **{k: row.example.meta[k] for k in row.task.record_meta if k in row.example.meta},
            },
        )


def _objective(plan: RunPlan, summary) -> Any:
    wanted = to_plain(plan.cfg.get("objective"))
    if not wanted or summary is None or plan.primary_label is None:
        return None
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    values = aggregate.objective_values(summary.frame, plan.primary_label, names)
    return values[0] if len(values) == 1 else values


def device_label(device: str) -> str:
    """What a record says it was timed on: the device kind, and the GPU's name on CUDA."""
    import torch

    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


@contextmanager
def exclusive_run_dir(run_dir: Path):
    """One lazybench process per run directory: two would both run the pending units and append
    duplicates. An advisory lock on run_dir/.lock, released when the process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unguarded
        yield
        return
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunConfigError(
                f"another lazybench process is running in {run_dir}; wait for it, or use another name="
            ) from None
        yield


def execute(plan: RunPlan) -> RunOutcome:
    """Run what is pending, record it, write the summaries; returns what was done."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_run_dir(plan.run_dir):
        return _execute(plan)


def _execute(plan: RunPlan) -> RunOutcome:
    records_path = plan.run_dir / RECORDS_FILE
    dropped = truncate_partial_tail(records_path)
    if dropped:
        msg = f"{records_path}: dropped a half-written last record (an interrupted write); that unit will be redone"
        log.warning(msg)
        print(f"lazybench: {msg}", file=sys.stderr)
    existing = read_records(records_path).records
    foreign = sorted({r["example_id"] for r in existing} - {row.id for row in plan.rows})
    if foreign:  # the config is the same, so the data under it changed: do not merge two row sets
        raise RunConfigError(
            f"{plan.run_dir} holds records of {len(foreign)} rows this run does not have (e.g. "
            f"{foreign[0]!r}): its data source changed (now {plan.data_source}). Resume it with the "
            "data_dir it was made with, or use another name= (or output_dir=)."
        )
    here = device_label(plan.device)
    devices = sorted({r.get("device", here) for r in existing} - {here})
    if devices:  # speedups pair a row's methods across sessions: their clocks must be the same kind
        raise RunConfigError(
            f"{plan.run_dir} holds records timed on {', '.join(devices)}; this session runs on {here}. "
            "Resume it there (model.device=...), or use another name= (or output_dir=)."
        )
    done: dict[tuple[str, str, int], dict] = {
        (r["example_id"], r["method_label"], r["repeat"]): r for r in existing
    }
    _write_run_files(plan, "running", {"dropped_partial_line": dropped, "records_at_start": len(existing)})

    keys = {
        row.id: [
            (row.id, m.label, r)
            for m in plan.methods
            if m.runs_on(row.task.category)
            for r in range(m.repeats)
        ]
        for row in plan.rows
    }
    pending_rows = [row for row in plan.rows if any(k not in done for k in keys[row.id])]
    skipped = sum(k in done for ks in keys.values() for k in ks)
    if existing:
        log.info(
            "resuming %s: %d units already recorded, %d rows pending",
            plan.run_dir,
            skipped,
            len(pending_rows),
        )

    new_records = 0
    if pending_rows:
        new_records = _run_pending(plan, pending_rows, done, records_path)

    outcome = RunOutcome(plan.run_dir, records_path, new_records, skipped, dropped)
    records = read_records(records_path).records
    if records:
        _finish(plan, records, outcome)
        from lazybench.runner.timing import spread_note

        outcome.timing_note = spread_note(records, plan.timing.spread_threshold)
        print(f"lazybench: {outcome.timing_note}")
    _write_run_files(
        plan,
        "finished",
        {
            "dropped_partial_line": dropped,
            "records_at_start": len(existing),
            "new_records": new_records,
            "records": len(records),
            "timing": {**plan.timing.__dict__, "note": outcome.timing_note},
        },
    )
    outcome.objective = _objective(plan, outcome.summary)
    return outcome


def _run_pending(plan: RunPlan, pending_rows: list[Row], done: dict, records_path: Path) -> int:
    import torch
    import transformers

    from lazybench.models import load_model
    from lazybench.runner.fidelity import fidelity
    from lazybench.runner.progress import RunningSpeedup, RunProgress
    from lazybench.runner.timing import interleaved_samples, with_samples

    cfg = plan.cfg
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("absl").setLevel(logging.WARNING)  # rouge-score logs "Using default tokenizer." per use
    t0 = time.perf_counter()
    model, _ = load_model(plan.spec)
    log.info("loaded %s in %.1f s", plan.spec.name, time.perf_counter() - t0)
    for entry in plan.methods:
        entry.method.setup(model, plan.tokenizer)  # e.g. a prompt compressor loads its own model here
    gen = _Generator(plan, model)
    want_fidelity = bool(cfg.get("fidelity", True))
    kill_after = cfg.get("debug", {}).get("sigkill_after_records")

    speed = RunningSpeedup(BASELINE, plan.primary_label)
    for rec in done.values():
        speed.add(rec["example_id"], rec["method_label"], rec["ttft_s"])
    progress = RunProgress(
        total_rows=len(plan.rows),
        done_rows=len(plan.rows) - len(pending_rows),
        speedup=speed,
        desc=plan.run_id,
        enabled=bool(cfg.get("progress", True)),
    )

    # Warm-ups: every method on the first pending prompt, not recorded.
    first = pending_rows[0]
    n_warm = int(cfg.warmups) * len(plan.methods)
    for i in range(int(cfg.warmups)):
        for j, entry in enumerate(plan.methods):
            progress.note(f"warm-up {i * len(plan.methods) + j + 1}/{n_warm}")
            gen.generate(entry, first, 0, keep_logits=want_fidelity)
    progress.note(None)
    baseline = next(m for m in plan.methods if m.is_baseline)
    new_records = 0

    def write(record: RunRecord) -> None:
        nonlocal new_records
        append_record(records_path, record)
        done[record.key()] = json.loads(record.to_json())
        speed.add(record.example_id, record.method_label, record.ttft_s)
        new_records += 1
        if kill_after is not None and new_records >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection for the resume tests

    try:
        for row in pending_rows:
            todo = [
                (m, r)
                for m in plan.methods
                if m.runs_on(row.task.category)
                for r in range(m.repeats)
                if (row.id, m.label, r) not in done
            ]
            others = [(m, r) for m, r in todo if not m.is_baseline]
            keep = want_fidelity and bool(others)
            # k - 1 prefill-only rounds over the row's pending units; the generation is sample k
            entries = {(m.label, r): m for m, r in todo}
            earlier = interleaved_samples(
                list(entries),
                plan.timing.prefill_repeats - 1,
                lambda key, row=row, entries=entries: gen.prefill_sample(entries[key], row, key[1]),
            )
            base_key = (row.id, baseline.label, 0)
            base_logits = base_tokens = None
            if base_key not in done:
                result = gen.generate(baseline, row, 0, keep_logits=keep)
                base_logits, base_tokens = result.first_logits, result.tokens
                result, samples = with_samples(result, earlier[(baseline.label, 0)])
                write(gen.record(baseline, row, 0, result, samples=samples))
            elif keep:  # resumed row: recompute the baseline's first-token logits and tokens, record nothing
                again = gen.generate(baseline, row, 0, keep_logits=True)
                base_logits, base_tokens = again.first_logits, again.tokens
            base_prediction = done[base_key]["prediction"]
            for entry, repeat in others:
                result = gen.generate(entry, row, repeat, keep_logits=keep)
                result, samples = with_samples(result, earlier[(entry.label, repeat)])
                record = gen.record(entry, row, repeat, result, samples=samples)
                if want_fidelity:
                    record_fid = fidelity(
                        base_logits, base_prediction, result.first_logits, record.prediction,
                        result.tokens, base_tokens,
                    )  # fmt: skip
                    record.first_token_match = record_fid.first_token_match
                    record.first_token_kl = record_fid.first_token_kl
                    record.rouge_l_vs_baseline = record_fid.rouge_l_vs_baseline
                    record.token_agreement = record_fid.token_agreement
                write(record)
            del base_logits, base_tokens
            progress.row_done()
    finally:
        progress.close()
    return new_records


def _finish(plan: RunPlan, records: list[dict], outcome: RunOutcome) -> None:
    from lazybench.runner import summary as S

    cfg = plan.cfg
    header = [
        f"- run: `{plan.run_id}` ({plan.run_dir})",
        f"- model: `{plan.spec.name}` ({plan.num_layers} layers, {plan.device}), chat style `{plan.chat_style}`, "
        f"max_length {cfg.model.get('max_length')}",
        f"- suite: `{cfg.suite.name}` ({len(plan.rows)} rows), warm-ups {cfg.warmups}, seed {cfg.seed}",
        f"- records: {len(records)}",
    ]
    labels = [m.label for m in plan.methods]
    outcome.summary, outcome.files = S.write_run_summaries(
        plan.run_dir, records, header, labels, plot=bool(cfg.get("plot", True))
    )
    outcome.table = S.category_table(outcome.summary)


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> RunOutcome:
    """Validate (no weights loaded), then execute; see the module docstring."""
    return execute(prepare(cfg, run_dir))
