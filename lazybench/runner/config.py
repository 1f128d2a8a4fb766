"""From a composed Hydra config to a validated, typed `RunPlan`, without loading any model weights.

The whole journey of `cfg` is here: `prepare` reads each part of the config once (seed, objective,
methods, timing, suite, data, model, split, run directory), hands the model node to the shared front
end (`lazybench.runner.frontend`) and the method entries to `lazybench.runner.entries`, builds every
prompt, and returns the plan that `lazybench.runner.execute` runs. Everything a user can get wrong (a
method name or parameter, a schedule, a suite, the data folder, a prompt too long, a run directory
that holds a different run) is reported here as `RunConfigError`, so that a typo costs seconds, not
a model load or an hour of generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lazybench import aggregate
from lazybench.protocol.split import RowSplit
from lazybench.records import RECORDS_FILE, SPREAD_LIMIT, read_records
from lazybench.runner.common import (
    NotAvailableHereError,
    RunConfigError,
    absolute,
    conf_dir,
    register_resolvers,
    to_plain,
)
from lazybench.runner.deps import check_run_dependencies
from lazybench.runner.entries import (
    BASELINE,
    RESERVED_METHOD_KEYS,
    MethodEntry,
    method_defaults,
    method_entry,
    resolve_methods,
    validate_schedules,
)
from lazybench.runner.frontend import checked_model, model_front, model_spec
from lazybench.runner.hydra_state import hydra_overrides, multirun, output_dir
from lazybench.runner.rundir import check_resumable, identity
from lazybench.runner.shard import check_layout, resolve_shard, shard_parent
from lazybench.shards import Shard
from lazybench.tasks import (
    HUB,
    OFFLINE,
    DataFormatError,
    DataNotFoundError,
    DataSource,
    PromptTooLongError,
    Suite,
    UnknownTaskError,
    build_prompt,
    generation_settings,
    resolve_source,
)
from lazybench.tasks.sources import data_source_label

__all__ = [  # the runner's config API (several of these live in the modules named above)
    "BASELINE", "OBJECTIVES", "RESERVED_METHOD_KEYS", "MethodEntry", "NotAvailableHereError", "Row",
    "RunConfigError", "RunPlan", "TimingConfig", "absolute", "check_resumable", "conf_dir",
    "default_run_dir", "identity", "method_defaults", "method_entry", "model_spec", "prepare",
    "register_resolvers", "resolve_data_source", "resolve_methods", "resolve_split", "resolve_suite",
    "resolve_timing", "to_plain", "validate_schedules",
]  # fmt: skip

#: What a job may return to its sweeper: columns of the method's overall line (lazybench.aggregate).
OBJECTIVES = aggregate.OBJECTIVES


@dataclass(frozen=True)
class TimingConfig:
    """How TTFT is measured (conf/config.yaml `timing:`; see lazybench.runner.timing).

    prefill_repeats: TTFT samples per (row, method, repeat); the median is the record's `ttft_s`.
    spread_threshold: a unit whose samples spread by more than this fraction of their median, as
    (max - min) / median, is counted as noisy in the end-of-run note; by default the limit the
    summaries flag noisy rows by (`lazybench.records.SPREAD_LIMIT`, its one definition).
    """

    prefill_repeats: int = 1
    spread_threshold: float = SPREAD_LIMIT


def resolve_timing(cfg: DictConfig) -> TimingConfig:
    """The run's `timing:` block, validated (absent keys take the dataclass defaults)."""
    data = to_plain(cfg.get("timing")) or {}
    if not isinstance(data, dict):
        raise RunConfigError(f"`timing` must be a mapping (prefill_repeats, spread_threshold), got {data!r}")
    unknown = sorted(set(data) - {"prefill_repeats", "spread_threshold"})
    if unknown:
        raise RunConfigError(f"timing has no key(s) {unknown}; it takes prefill_repeats and spread_threshold")
    repeats = data.get("prefill_repeats", TimingConfig.prefill_repeats)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise RunConfigError(f"timing.prefill_repeats must be a positive integer, got {repeats!r}")
    threshold = data.get("spread_threshold")
    if threshold is None:
        threshold = TimingConfig.spread_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise RunConfigError(f"timing.spread_threshold must be a number >= 0, got {threshold!r}")
    return TimingConfig(prefill_repeats=repeats, spread_threshold=float(threshold))


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


# ---------------------------------------------------------------------------------------------
# the journey


def prepare(cfg: DictConfig, run_dir: str | Path | None = None) -> RunPlan:
    """Validate everything and build the prompts; loads tokenizer and model config, never weights."""

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
    spec, chat_style, _ = checked_model(cfg.model)
    check_run_dependencies(spec, methods, to_plain(cfg.model.get("requires")))
    front = model_front(cfg.model, spec, chat_style)
    tokenizer, text_config, num_layers = front.tokenizer, front.config, front.num_layers
    if cfg.get("sweep"):  # operating-point families, solved from the model's shape (lazybench.protocol)
        from lazybench.protocol.sweep import sweep_entries

        methods, primary = resolve_methods(cfg, sweep_entries(cfg, text_config))
    validate_schedules(methods, num_layers)
    rows = _build_rows(cfg, suite, data, tokenizer, front.context_limit, front.chat_style, shard)

    parent = Path(run_dir) if run_dir is not None else shard_parent(cfg, multirun()) or default_run_dir(cfg)
    check_layout(parent, shard)
    run_dir = shard.run_dir(parent)  # the run dir itself, or <run dir>/shards/<i>-of-<N>
    existing = read_records(run_dir / RECORDS_FILE).records
    check_resumable(run_dir, cfg, methods, existing, hydra_overrides() if multirun() else None)
    return RunPlan(
        cfg=cfg,
        run_dir=run_dir,
        run_id=_run_id(cfg, parent),  # a shard's records carry the whole run's id
        spec=front.spec,
        chat_style=front.chat_style,
        methods=methods,
        primary_label=primary,
        rows=rows,
        tokenizer=tokenizer,
        num_layers=num_layers,
        context_limit=front.context_limit,
        eos_token_ids=front.eos_token_ids,
        data=data,
        existing=existing,
        device=front.device,
        model_config=text_config,
        data_source=data_source_label(data, [row.example for row in rows]),
        timing=timing,
        shard=shard,
    )


# ---------------------------------------------------------------------------------------------
# its parts


def resolve_suite(cfg: DictConfig):

    data = to_plain(cfg.get("suite"))
    if not isinstance(data, dict):
        raise RunConfigError(
            f"`suite` must be a mapping (name, datasets, limit, seed, max_new_tokens_cap), got {data!r}"
        )
    try:
        return Suite.from_dict(data)
    except UnknownTaskError as err:
        raise RunConfigError(f"suite {data.get('name')!r}: {err}") from None
    except (TypeError, ValueError) as err:
        raise RunConfigError(f"suite {data.get('name')!r}: {err}") from None


def resolve_split(cfg: DictConfig):
    """The run's dev/test row split (`split:`; lazybench.protocol.split), or None for all rows."""

    try:
        split = RowSplit.from_config(to_plain(cfg.get("split")))
    except (TypeError, ValueError) as err:
        raise RunConfigError(str(err)) from None
    return split if split.active else None


def resolve_data_source(cfg: DictConfig):
    """The run's `lazybench.tasks.DataSource` (`data_dir`: unset -> offline slice, ``offline``, ``hub``,
    ``hub:<copy>``, or a folder; see lazybench.tasks.sources). A folder must exist."""

    value = cfg.get("data_dir")
    try:
        source = resolve_source(None if value is None else str(value))
    except ValueError as err:
        raise RunConfigError(str(err)) from None
    if source.kind != "folder":
        return source
    path = absolute(source.folder)
    if not path.is_dir():
        named = f"data_dir={value!r}" if source.origin == "data_dir=" else f"{source.origin}={source.folder}"
        raise RunConfigError(
            f"LongBench data folder {path} does not exist ({named}). Point data_dir= at a folder of LongBench "
            f"<dataset>.jsonl files, or use data_dir=hub (the full benchmark) or data_dir={OFFLINE} (the "
            "bundled 187-row slice)."
        )
    return DataSource("folder", folder=path, origin=source.origin)


def _build_rows(
    cfg: DictConfig, suite, data, tokenizer, context_limit, chat_style, shard: Shard | None = None
) -> list[Row]:
    """The rows of the suite (of this shard, when given): tasks in order, each one's examples in order."""

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


def default_run_dir(cfg: DictConfig) -> Path:
    """The Hydra job's output folder, else output_dir/name."""
    return output_dir() or absolute(cfg.output_dir) / str(cfg.name)


def _run_id(cfg: DictConfig, run_dir: Path) -> str:
    out = absolute(cfg.output_dir)
    try:
        return run_dir.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return run_dir.name
