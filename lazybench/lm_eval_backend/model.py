"""The ``lazyllm`` lm-eval model: lm-eval's tasks and metrics on the lazybench runner's front end.

The model is read from ``model_args`` as the runner reads its config (`lazybench.lm_eval_backend.args`):
``pretrained=`` is a conf/model key or a hub id / folder, model fields override it, ``method=`` and
the method's own fields build the method through the runner's method builder. The model spec ->
tokenizer, model config, EOS ids and chat style come from `lazybench.runner.frontend`, the runner's
own front end, and every request goes through ``method.run(model, GenerationRequest(...))``, the
call the runner makes. Each request becomes a `lazybench.records.RunRecord`; with ``output=DIR``
(set from ``--output_path`` by ``lazybench lm-eval``) they are appended to ``DIR/records.jsonl`` as
they are made, and ``DIR/run.json`` gets the run's description and its summary, so
``lazybench analyze DIR`` reads an lm-eval run like any other. The numbers are
`lazybench.aggregate`'s (one request is one row; its lm-eval task is its dataset unless it is a
lazybench LongBench row).

Decoding is greedy, batch 1. Only ``generate_until`` is implemented: LazyLLM prunes tokens for the
*next-token* prediction of a prefill, which a log-likelihood request (scoring every position of a
continuation) does not have.

model_args: see `lazybench.lm_eval_backend.args` (``pretrained=``, model fields, ``method=`` and the
method's fields), plus ``max_gen_toks`` (when a request gives none), ``seed``, ``warmups`` and
``output=DIR`` (the run directory; none: the records stay in memory, ``records``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from lazybench.lm_eval_backend.accounting import accounting, check_run_dir, summary, write_run_json
from lazybench.lm_eval_backend.args import (
    MODEL_NAME,
    check_greedy,
    cut_at_stop,
    lm_method_entry,
    lm_model_node,
    split_args,
    until_of,
)
from lazybench.lm_eval_backend.tasks import DATA_DIR_KEY, MARKER, doc_to_example
from lazybench.methods import GenerationRequest
from lazybench.models import load_tokenizer
from lazybench.records import RECORDS_FILE, RunRecord, append_record, result_extra
from lazybench.runner.common import to_plain
from lazybench.runner.deps import check_run_dependencies
from lazybench.runner.entries import validate_schedules
from lazybench.runner.frontend import (
    ModelFront,
    checked_model,
    device_label,
    loaded_front,
    model_front,
    versions,
)
from lazybench.tasks import (
    build_prompt,
    generation_settings,
    get_task,
    middle_truncate,
    postprocess,
    score_example,
)

log = logging.getLogger("lazybench.lm_eval")


@register_model(MODEL_NAME)
class LazyLLMLM(LM):
    """lm-eval model running lazybench methods (LazyLLM by default). See the module docstring."""

    #: where instances without ``output=`` write their run (set by ``lazybench lm-eval`` from
    #: ``--output_path``); None: records stay in memory.
    default_output: Path | None = None

    def __init__(
        self,
        pretrained: Any = None,
        method: str = "lazyllm",
        max_gen_toks: int = 256,
        tokenizer: Any = None,
        seed: int = 0,
        warmups: int = 0,
        output: str | None = None,
        batch_size: int | str | None = 1,
        max_batch_size: int | None = None,
        **args: Any,
    ) -> None:
        super().__init__()
        # the tasks' data folder: lm-eval merges model_args into the task metadata, where the tasks read it
        args.pop(DATA_DIR_KEY, None)
        if str(batch_size).split(":")[0] not in ("None", "1", "auto"):
            log.warning("%s: batch_size=%s ignored: requests run one at a time", MODEL_NAME, batch_size)
        device = args.get("device")
        if device is None:
            args.pop("device", None)  # lm-eval passes device=None without --device: the config's
        elif str(device).startswith("cuda") and not torch.cuda.is_available():
            log.warning(
                "%s: device=%s requested but CUDA is not available; using the CPU", MODEL_NAME, device
            )
            args["device"] = "cpu"
        model_args, method_args = split_args(args)
        if not isinstance(pretrained, torch.nn.Module) and tokenizer is not None:
            model_args["tokenizer"] = str(tokenizer)
        self.entry = lm_method_entry(method, method_args)
        self.max_gen_toks = int(max_gen_toks)
        self.seed = int(seed)
        self.warmups = int(warmups)

        if isinstance(pretrained, torch.nn.Module):  # a model object (from Python): its own config
            if tokenizer is None:
                raise ValueError("pretrained given as a model object needs tokenizer= (an object or a name)")
            if isinstance(tokenizer, str):
                tokenizer = load_tokenizer(tokenizer)
            self.node = lm_model_node(None, model_args)
            self.front: ModelFront = loaded_front(pretrained.eval(), tokenizer, self.node)
            self.model = pretrained
        else:
            self.node = lm_model_node(None if pretrained is None else str(pretrained), model_args)
            spec, chat_style, _ = checked_model(self.node)
            check_run_dependencies(spec, [self.entry], to_plain(self.node.get("requires")))
            self.front = model_front(self.node, spec, chat_style)
        validate_schedules([self.entry], self.front.num_layers)  # before any weights load
        if not isinstance(pretrained, torch.nn.Module):
            self.model = self.front.load()
        self.tokenizer = self.front.tokenizer
        self.max_length = self.node.get("max_length")
        self.truncate = bool(self.node.get("truncate", True))
        self.entry.method.setup(self.model, self.tokenizer)
        self.entry.method.engine(self.model)  # resolves the schedule against the model now, not at request 1
        self.versions = versions()
        self._device = next(self.model.parameters()).device  # lm-eval's LM.device
        self.device_label = device_label(str(self._device))
        self.records: list[dict[str, Any]] = []
        self.run_dir = Path(output) if output else LazyLLMLM.default_output
        self._started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._warned_context = False
        self._warmed_up = False
        if self.run_dir is not None:
            check_run_dir(self.run_dir, self.entry.label, self.front.spec.name)

    @property
    def chat_style(self) -> str:
        return self.front.chat_style

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return self.front.eos_token_ids

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
        prepared = [self._prepare(req) for req in requests]  # validates every request before any run
        if self.warmups and prepared and not self._warmed_up:
            for _ in range(self.warmups):  # untimed, unrecorded: the paper warms up before timing TTFT
                self._run(prepared[0])
            self._warmed_up = True
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        outputs: list[str] = []
        for req, item in zip(
            requests, tqdm(prepared, disable=disable_tqdm or len(prepared) < 2, desc=MODEL_NAME)
        ):
            result = self._run(item)
            text, record = self._record(req, item, result)
            self.records.append(json.loads(record.to_json()))
            if self.run_dir is not None:
                append_record(self.run_dir / RECORDS_FILE, record)
            outputs.append(text)
            self.cache_hook.add_partial("generate_until", req.args, text)
        if self.run_dir is not None:
            self.write_run_json()
        return outputs

    # ------------------------------------------------------------------------------------------

    def _prepare(self, req) -> dict[str, Any]:
        context, gen_kwargs = req.args[0], dict(req.args[1] or {})
        check_greedy(gen_kwargs)
        until = until_of(gen_kwargs)
        max_new = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
        doc = getattr(req, "doc", None)
        if isinstance(doc, dict) and doc.get(MARKER):  # a lazybench row: the runner's prompt
            task = get_task(doc[MARKER])
            if not self._warned_context and context != task.fill(doc["context"], doc["input"]):
                log.warning(
                    "%s: lm-eval changed the prompt of %s (few-shot, system instruction or chat template); "
                    "the lazybench LongBench prompt is rebuilt from the row and those changes are ignored",
                    MODEL_NAME,
                    task.name,
                )
                self._warned_context = True
            example = doc_to_example(doc)
            prompt = build_prompt(
                task,
                example,
                self.tokenizer,
                self.max_length,
                self.chat_style,
                truncate=self.truncate,
                context_limit=self.front.context_limit,
            )
            settings = generation_settings(task, self.tokenizer)
            return dict(
                task=task, example=example, ids=list(prompt.input_ids),
                n_before=prompt.n_tokens_before_truncation, truncated=prompt.truncated, max_new=max_new,
                eos=tuple(sorted({*self.eos_token_ids, *settings.stop_token_ids})),
                min_new=settings.min_new_tokens, until=until,
            )  # fmt: skip
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
            task=None, example=None, ids=ids, n_before=n_before, truncated=truncated, max_new=max_new,
            eos=self.eos_token_ids, min_new=0, until=until,
        )  # fmt: skip

    def _run(self, item: dict[str, Any]):
        request = GenerationRequest(
            prompt_ids=item["ids"],
            max_new_tokens=item["max_new"],
            eos_token_ids=item["eos"],
            min_new_tokens=item["min_new"],
            seed=self.seed,
            stop_strings=tuple(item["until"] or ()),
            tokenizer=self.tokenizer,
        )
        torch.manual_seed(self.seed)
        with torch.inference_mode():
            return self.entry.method.run(self.model, request)

    def _record(self, req, item: dict[str, Any], result) -> tuple[str, RunRecord]:
        """lm-eval's answer text and the request's run record (a lazybench row scored as the runner does)."""
        task, example = item["task"], item["example"]
        lm_task = str(getattr(req, "task_name", None) or "lm-eval")
        text = self.tokenizer.decode(result.tokens, skip_special_tokens=True)
        if task is not None:
            text = postprocess(task, text, self.chat_style)
        text = cut_at_stop(text, item["until"])
        if task is not None:
            row_id, dataset, category = example.id, task.name, task.category
            answers, score = (
                list(example.answers),
                score_example(task, text, example.answers, example.all_classes),
            )
        else:  # a task of lm-eval's own: lm-eval scores it, the record carries no score
            row_id, dataset, category = (
                f"{lm_task}/{getattr(req, 'doc_id', len(self.records))}",
                lm_task,
                "other",
            )
            answers, score = [], None
        record = RunRecord.from_result(
            result,
            run_id=self.run_dir.name if self.run_dir is not None else MODEL_NAME,
            example_id=str(row_id),
            dataset=dataset,
            category=category,
            method=self.entry.name,
            method_label=self.entry.label,
            method_params=self.entry.params,
            repeat=0,
            seed=self.seed,
            model=self.front.spec.name,
            data_source=f"lm-eval task {lm_task}",
            prompt_tokens=len(item["ids"]),
            truncated=item["truncated"],
            prediction=text,
            answers=answers,
            score=score,
            device=self.device_label,
            versions=self.versions,
            extra={
                "model_id": self.node.get("id"),
                "chat_style": self.chat_style,
                "max_length": self.max_length,
                "prompt_tokens_before_truncation": item["n_before"],
                "max_new_tokens": item["max_new"],
                **result_extra(result),
                "dtype": str(self.model.dtype),
                "lm_eval_task": lm_task,
                "lm_eval_doc_id": getattr(req, "doc_id", None),
            },
        )
        return text, record

    # ------------------------------------------------------------------------------------------
    # the run's numbers and files (lazybench.lm_eval_backend.accounting)

    def summary(self) -> pd.DataFrame:
        """`lazybench.aggregate.summarize` of the requests so far (no baseline: one method)."""
        return summary(self.records, self.run_dir)

    def accounting(self) -> dict[str, Any]:
        """The overall line and one line per dataset (lm-eval task) of `summary`."""
        return accounting(self.records, self.run_dir)

    def write_run_json(self) -> Path:
        """run.json: what the run was (model, method, where it ran) and its accounting."""
        assert self.run_dir is not None
        return write_run_json(
            self.run_dir,
            self.records,
            {
                "started_at": self._started,
                "model": self.front.spec.name,
                "model_config": to_plain(self.node),
                "device": self.device_label,
                "num_layers": self.front.num_layers,
                "context_limit": self.front.context_limit,
                "methods": [
                    {"label": self.entry.label, "name": self.entry.name, "params": self.entry.params}
                ],
                "method_under_test": self.entry.label,
                "versions": self.versions,
            },
        )
