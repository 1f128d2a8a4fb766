"""The ``lazyllm`` lm-eval model: lm-eval's tasks and metrics, lazybench's engine and methods.

Every request goes through ``build_method(method, **params).run(model, GenerationRequest(...))``,
the same call the lazybench runner makes, so TTFT, "% of prompt computed" and the outputs are the
runner's. Decoding is greedy, batch 1. Only ``generate_until`` is implemented: LazyLLM prunes
tokens for the *next-token* prediction of a prefill, which a log-likelihood request (scoring every
position of a continuation) does not have.

model_args (comma-separated ``key=value``; lists use ``:`` because lm-eval splits on commas)::

    pretrained=smollm2-135m          hub id, local folder, or the built-in offline model
    method=lazyllm                   any lazybench method (baseline, lazyllm, static, random_drop, ...)
    boundaries=0.3:0.6:0.9           schedule of methods that have one (lazyllm, static): where the
    keep=0.7:0.4:0.1                 kept set shrinks, the fraction kept from there on, and the unit
    unit=depth                       of the boundaries (depth in (0,1), or layer indices >= 1)
    schedule=full                    shorthand: full (no pruning) or default (the method's default)
    max_length=3500                  LongBench middle truncation of the filled template (none: off)
    chat_style=auto                  none | llama2 | xgen | chat_template | auto (the tokenizer's
                                     template if it has one)
    max_gen_toks=256                 when a request gives none
    dtype=auto, device=auto, attn_implementation=sdpa, tokenizer=..., trust_remote_code=false,
    random_init=false, seed=0, warmups=0, accounting=PATH (JSON of per-request accounting)

Other ``key=value`` pairs go to the method as parameters (e.g. ``method=random_drop,keep=0.5``:
for a method without a schedule, ``keep`` is its own parameter).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from lazybench import aggregate
from lazybench.lm_eval_backend.tasks import DATA_DIR_KEY, MARKER, doc_to_example

log = logging.getLogger("lazybench.lm_eval")

MODEL_NAME = "lazyllm"
SCHEDULE_KEYS = ("boundaries", "keep", "unit", "schedule")
#: generation kwargs understood; sampling ones are accepted only when they mean greedy decoding.
GEN_KEYS = frozenset({"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "num_beams"})


class SamplingNotSupportedError(ValueError):
    """A request asked for sampling (or beam search): the lazybench engine decodes greedily."""


# ----------------------------------------------------------------------------------------------
# model_args parsing


def parse_list(value: Any, key: str) -> tuple[float, ...]:
    """``0.3:0.6:0.9`` (or a number, a list, ``[0.3,0.6]``, empty) as a tuple of floats."""
    if value is None:
        return ()
    if isinstance(value, bool):
        raise ValueError(f"{key}={value!r} is not a number or a ':'-separated list of numbers")
    if isinstance(value, (int, float)):
        return (float(value),)
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    text = str(value).strip().strip("[]()").strip()
    if not text or text.lower() in ("none", "null"):
        return ()
    parts = [p for p in text.replace(";", ":").replace(",", ":").split(":")]
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"{key}={value!r}: expected numbers separated by ':' (model_args are split on commas), "
            f"e.g. {key}=0.3:0.6:0.9"
        ) from None


def _default_of(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return field.default


def method_params(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Turn model_args meant for the method into `build_method` parameters.

    For a method with a ``schedule`` field, ``boundaries``/``keep``/``unit``/``schedule`` build a
    `Schedule` (missing parts come from the method's default schedule); otherwise they are passed
    through like any other parameter. ``:``-lists become tuples of numbers.
    """
    from lazybench.engine import Schedule
    from lazybench.methods import METHODS, UnknownMethodError, list_methods

    if method not in METHODS:
        raise UnknownMethodError(f"unknown method {method!r}; known methods: {', '.join(list_methods())}")
    fields = {f.name: f for f in dataclasses.fields(METHODS[method])}
    params: dict[str, Any] = {}
    sched = {k: raw[k] for k in SCHEDULE_KEYS if k in raw}
    rest = {k: v for k, v in raw.items() if k not in SCHEDULE_KEYS or "schedule" not in fields}
    if "schedule" in fields and sched:
        default: Schedule = _default_of(fields["schedule"])
        if "schedule" in sched:
            shorthand = sched.pop("schedule")  # lm-eval turns "none" into None
            word = "none" if shorthand is None else str(shorthand).strip().lower()
            if word in ("full", "none"):
                default = Schedule.full()
            elif word not in ("default", "paper"):
                raise ValueError(
                    f"schedule={shorthand!r}: use schedule=full or schedule=default, or give "
                    "boundaries=..., keep=..., unit=... (':'-separated lists)"
                )
        boundaries = parse_list(sched["boundaries"], "boundaries") if "boundaries" in sched else None
        keep = parse_list(sched["keep"], "keep") if "keep" in sched else None
        if boundaries is not None and keep is None and len(boundaries) != len(default.keep):
            raise ValueError(f"boundaries={sched['boundaries']!r} given without keep=...: give both")
        if keep is not None and boundaries is None and len(keep) != len(default.boundaries):
            raise ValueError(f"keep={sched['keep']!r} given without boundaries=...: give both")
        unit = str(sched.get("unit", default.unit))
        if boundaries is not None and unit == "layer":  # layer indices read as floats: 8.0 -> 8
            boundaries = tuple(int(b) if float(b).is_integer() else b for b in boundaries)
        params["schedule"] = Schedule(
            boundaries=default.boundaries if boundaries is None else boundaries,
            keep=default.keep if keep is None else keep,
            unit=unit,
        )
    for key, value in rest.items():
        if isinstance(value, str) and ":" in value:
            value = parse_list(value, key)
        params[key] = value
    return params


def check_greedy(gen_kwargs: dict[str, Any]) -> None:
    unknown = set(gen_kwargs) - GEN_KEYS
    if unknown:
        raise ValueError(
            f"the {MODEL_NAME} model does not understand generation kwargs {sorted(unknown)}; "
            f"it takes {sorted(GEN_KEYS)} (greedy decoding only)"
        )
    do_sample = gen_kwargs.get("do_sample")
    temperature = gen_kwargs.get("temperature")
    sampling = do_sample is True or (do_sample is None and temperature is not None and float(temperature) > 0)
    if sampling:
        raise SamplingNotSupportedError(
            f"the {MODEL_NAME} model decodes greedily (LazyLLM and every lazybench method are measured "
            f"with greedy decoding); got do_sample={do_sample!r}, temperature={temperature!r}. "
            "Use do_sample=false (or temperature=0)"
        )
    beams = gen_kwargs.get("num_beams")
    if beams is not None and int(beams) != 1:
        raise SamplingNotSupportedError(
            f"the {MODEL_NAME} model decodes greedily; num_beams={beams} is not supported"
        )


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """The text up to the first occurrence of any stop string (lm-eval's ``until``)."""
    cut = len(text)
    for stop in until:
        if stop:
            idx = text.find(stop)
            if idx != -1:
                cut = min(cut, idx)
    return text[:cut]


def _until(gen_kwargs: dict[str, Any]) -> list[str]:
    until = gen_kwargs.get("until")
    if until is None:
        return []
    if isinstance(until, str):
        return [until]
    if not isinstance(until, (list, tuple)) or not all(isinstance(u, str) for u in until):
        raise ValueError(f"until must be a string or a list of strings, got {until!r}")
    return list(until)


def _eos_ids(model, tokenizer) -> tuple[int, ...]:
    from lazybench.models import eos_token_ids

    return eos_token_ids(
        getattr(tokenizer, "eos_token_id", None),
        getattr(model.config, "eos_token_id", None),
        getattr(getattr(model, "generation_config", None), "eos_token_id", None),
    )


# ----------------------------------------------------------------------------------------------


@register_model(MODEL_NAME)
class LazyLLMLM(LM):
    """lm-eval model running lazybench methods (LazyLLM by default). See the module docstring."""

    #: where instances without ``accounting=`` write it (set by ``python -m lazybench.lm_eval_backend``
    #: from ``--output_path``); None: nowhere.
    default_accounting: Path | None = None

    def __init__(
        self,
        pretrained: Any = "smollm2-135m",
        method: str = "lazyllm",
        max_length: int | str | None = 3500,
        chat_style: str = "auto",
        truncate: bool = True,
        max_gen_toks: int = 256,
        dtype: str = "auto",
        device: str | None = None,
        attn_implementation: str = "sdpa",
        tokenizer: Any = None,
        trust_remote_code: bool = False,
        random_init: bool = False,
        seed: int = 0,
        warmups: int = 0,
        accounting: str | None = None,
        batch_size: int | str | None = 1,
        max_batch_size: int | None = None,
        **method_args: Any,
    ) -> None:
        super().__init__()
        from lazybench.methods import build_method
        from lazybench.models import ModelSpec, load_model
        from lazybench.tasks import CHAT_STYLES

        # the tasks' data folder: lm-eval merges model_args into the task metadata, where the tasks read it
        method_args.pop(DATA_DIR_KEY, None)
        if str(batch_size).split(":")[0] not in ("None", "1", "auto"):
            log.warning(
                "%s: batch_size=%s ignored: requests run one at a time (batch 1)", MODEL_NAME, batch_size
            )
        self.method_name = str(method)
        self.method = build_method(self.method_name, **method_params(self.method_name, method_args))
        self.max_length = None if max_length in (None, "none", "None", "null") else int(max_length)
        self.truncate = bool(truncate)
        self.max_gen_toks = int(max_gen_toks)
        self.seed = int(seed)
        self.warmups = int(warmups)
        self.accounting_path = Path(accounting) if accounting else LazyLLMLM.default_accounting

        if isinstance(pretrained, torch.nn.Module):
            if tokenizer is None or isinstance(tokenizer, str):
                from lazybench.models import load_tokenizer

                if tokenizer is None:
                    raise ValueError(
                        "pretrained given as a model object needs tokenizer= (an object or a name)"
                    )
                tokenizer = load_tokenizer(tokenizer)
            self.model, self.tokenizer = pretrained.eval(), tokenizer
            self.model_name = type(pretrained).__name__
        else:
            if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
                log.warning(
                    "%s: device=%s requested but CUDA is not available; using the CPU", MODEL_NAME, device
                )
                device = "cpu"
            spec = ModelSpec(
                name=str(pretrained),
                dtype=str(dtype),
                device=str(device or "auto"),
                attn_implementation=str(attn_implementation),
                trust_remote_code=bool(trust_remote_code),
                tokenizer=None if tokenizer is None else str(tokenizer),
                random_init=bool(random_init),
            )
            self.model, self.tokenizer = load_model(spec)
            self.model_name = spec.name
        self._device = next(self.model.parameters()).device

        if chat_style == "auto":
            chat_style = "chat_template" if getattr(self.tokenizer, "chat_template", None) else "none"
        if chat_style not in CHAT_STYLES:
            raise ValueError(f"chat_style={chat_style!r}: expected auto or one of {', '.join(CHAT_STYLES)}")
        self.chat_style = chat_style
        config = self.model.config
        text_config = getattr(config, "text_config", None) or config
        self.context_limit = getattr(text_config, "max_position_embeddings", None)
        self.eos_token_ids = _eos_ids(self.model, self.tokenizer)

        self.method.setup(self.model, self.tokenizer)
        self.method.engine(self.model)  # resolves the schedule against the model now, not at request 1
        self.records: list[dict[str, Any]] = []
        self._warned_context = False
        self._warmed_up = False

    # ------------------------------------------------------------------------------------------
    # lm-eval interface

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "tokenizer")).replace("/", "__")

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return getattr(self.tokenizer, "chat_template", None) or ""

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            f"the {MODEL_NAME} model implements generate_until only: LazyLLM prunes the prompt for the "
            "next-token prediction of a generation step, which log-likelihood scoring (every position "
            "of a continuation) does not have. Use generative tasks (e.g. the lazybench_* LongBench "
            "tasks), or the `hf` model for log-likelihood tasks"
        )

    def loglikelihood_rolling(self, requests) -> list[float]:
        raise NotImplementedError(
            f"the {MODEL_NAME} model implements generate_until only; perplexity "
            "(loglikelihood_rolling) is not supported: use the `hf` model for it"
        )

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        from tqdm import tqdm

        prepared = [self._prepare(req) for req in requests]  # validates every request before any run
        if self.warmups and prepared and not self._warmed_up:
            for _ in range(self.warmups):  # untimed, unrecorded: the paper warms up before timing TTFT
                self._generate(prepared[0])
            self._warmed_up = True
        outputs: list[str] = []
        for req, item in zip(
            requests, tqdm(prepared, disable=disable_tqdm or len(prepared) < 2, desc=MODEL_NAME)
        ):
            text, record = self._generate(item)
            record.update(task=getattr(req, "task_name", None), doc_id=getattr(req, "doc_id", None))
            self.records.append(record)
            outputs.append(text)
            self.cache_hook.add_partial("generate_until", req.args, text)
        if self.accounting_path is not None:
            self.write_accounting(self.accounting_path)
        return outputs

    # ------------------------------------------------------------------------------------------

    def _prepare(self, req) -> dict[str, Any]:
        from lazybench.tasks import build_prompt, generation_settings, get_task, middle_truncate

        context, gen_kwargs = req.args[0], dict(req.args[1] or {})
        check_greedy(gen_kwargs)
        until = _until(gen_kwargs)
        max_new = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
        doc = getattr(req, "doc", None)
        if isinstance(doc, dict) and doc.get(MARKER):
            task = get_task(doc[MARKER])
            if not self._warned_context and context != task.fill(doc["context"], doc["input"]):
                log.warning(
                    "%s: lm-eval changed the prompt of %s (few-shot, system instruction or chat template); "
                    "the lazybench LongBench prompt is rebuilt from the row and those changes are ignored",
                    MODEL_NAME,
                    task.name,
                )
                self._warned_context = True
            prompt = build_prompt(
                task,
                doc_to_example(doc),
                self.tokenizer,
                self.max_length,
                self.chat_style,
                truncate=self.truncate,
                context_limit=self.context_limit,
            )
            settings = generation_settings(task, self.tokenizer)
            return dict(
                task=task,
                ids=list(prompt.input_ids),
                n_before=prompt.n_tokens_before_truncation,
                truncated=prompt.truncated,
                max_new=max_new,
                eos=tuple(sorted({*self.eos_token_ids, *settings.stop_token_ids})),
                min_new=settings.min_new_tokens,
                until=until,
            )
        ids = list(self.tokenizer(context, verbose=False)["input_ids"])
        n_before = len(ids)
        truncated = False
        if self.max_length is not None and len(ids) > self.max_length:
            if not self.truncate:
                raise ValueError(
                    f"prompt of {len(ids)} tokens is over max_length={self.max_length} and truncate=false"
                )
            text = middle_truncate(self.tokenizer, ids, self.max_length)
            # the same special tokens as an uncut prompt gets (the cut's decode dropped the BOS)
            ids = list(self.tokenizer(text, verbose=False)["input_ids"])
            truncated = True
        return dict(
            task=None, ids=ids, n_before=n_before, truncated=truncated, max_new=max_new,
            eos=self.eos_token_ids, min_new=0, until=until,
        )  # fmt: skip

    def _generate(self, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from lazybench.methods import GenerationRequest
        from lazybench.tasks import postprocess

        request = GenerationRequest(
            prompt_ids=item["ids"],
            max_new_tokens=item["max_new"],
            eos_token_ids=item["eos"],
            min_new_tokens=item["min_new"],
            seed=self.seed,
            stop_strings=tuple(item["until"] or ()),
            tokenizer=self.tokenizer,
        )
        t0 = time.perf_counter()
        with torch.inference_mode():
            result = self.method.run(self.model, request)
        wall = time.perf_counter() - t0
        text = self.tokenizer.decode(result.tokens, skip_special_tokens=True)
        if item["task"] is not None:
            text = postprocess(item["task"], text, self.chat_style)
        text = cut_at_stop(text, item["until"])
        record = dict(
            dataset=item["task"].name if item["task"] is not None else None,
            prompt_tokens=len(item["ids"]),
            prompt_tokens_before_truncation=item["n_before"],
            truncated=item["truncated"],
            new_tokens=result.new_tokens,
            stop_reason=result.stop_reason,
            ttft_s=result.ttft_s,
            decode_s=result.decode_s,
            total_s=result.total_s,
            wall_s=wall,
            pct_prompt_computed=result.pct_prompt_computed,
            prefill_flop_fraction=result.prefill_flop_fraction,
            computed_prompt_tokens=sum(result.computed_per_layer),
            full_prompt_tokens=len(result.computed_per_layer) * (result.original_prompt_tokens or result.prompt_tokens),
            pruned=result.pruned,
        )  # fmt: skip
        return text, record

    # ------------------------------------------------------------------------------------------
    # accounting

    def accounting(self) -> dict[str, Any]:
        """Per-request records and their aggregates (overall and per lm-eval task)."""
        return {
            "model": MODEL_NAME,
            "pretrained": self.model_name,
            "method": self.method_name,
            "method_label": self.method.label(),
            "method_params": self.method.params(),
            "max_length": self.max_length,
            "chat_style": self.chat_style,
            "summary": summarize(self.records),
            "per_task": {
                task: summarize([r for r in self.records if r["task"] == task])
                for task in sorted({str(r["task"]) for r in self.records})
            },
            "requests": self.records,
        }

    def write_accounting(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.accounting(), indent=2, default=str), encoding="utf-8")
        tmp.replace(path)
        return path


#: The accounting numbers of a request list (lazybench.aggregate columns; no baseline, no score here).
ACCOUNTING = (
    "n_rows", "ttft_s", "total_s", "prompt_tokens", "new_tokens", "pct_prompt_computed",
    "prefill_flop_fraction", "pruned_pct", "truncated_pct", "noisy_rows",
)  # fmt: skip


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The requests' accounting as `lazybench.aggregate` defines it for a run's rows (one request is
    one row; its task is its dataset): means over requests, % of requests pruned / truncated."""
    if not records:
        return {"n_rows": 0}
    rows = [{**r, "dataset": str(r.get("task")), "example_id": str(i)} for i, r in enumerate(records)]
    line = aggregate.select_level(aggregate.summarize(rows, baseline=None), aggregate.OVERALL).iloc[0]
    return {name: line[name].item() for name in ACCOUNTING}
