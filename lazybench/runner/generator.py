"""One method on one row: the request (seeded per repeat), the generation, an extra prefill-only TTFT
sample, and the record (`RunRecord.from_result` plus the row's prompt, prediction and score).
"""

from __future__ import annotations

import torch

from lazybench import tasks
from lazybench.methods import GenerationRequest
from lazybench.records import RunRecord, result_extra
from lazybench.runner.config import Row, RunPlan
from lazybench.runner.entries import MethodEntry
from lazybench.runner.frontend import device_label, versions
from lazybench.runner.timing import prefill_ttft


class Generator:
    """Runs one method on one row, turning the result into a record."""

    def __init__(self, plan: RunPlan, model) -> None:

        self.plan = plan
        self.model = model
        self.versions = versions()
        self.device = device_label(plan.device)
        self.seed = int(plan.cfg.seed)

    def request(self, row: Row, repeat: int, keep_logits: bool):
        """The method's request for this row and repeat, with the torch seed set for it."""

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

        request = self.request(row, repeat, keep_logits)
        with torch.inference_mode():
            result = entry.method.run(self.model, request)
        result.step_logits = None  # only the first token's logits are used
        return result

    def prefill_sample(self, entry: MethodEntry, row: Row, repeat: int) -> float:
        """One extra TTFT sample of the unit (lazybench.runner.timing), nothing recorded."""

        request = self.request(row, repeat, keep_logits=False)
        with torch.inference_mode():
            return prefill_ttft(entry.method, self.model, request)

    def record(
        self, entry: MethodEntry, row: Row, repeat: int, result, samples: list[float] | None = None
    ) -> RunRecord:
        """`result` carries the median TTFT when `samples` (all TTFT samples, its own included) are given.
        Fidelity fields stay unset here: they need the prediction against the baseline's (execute)."""

        text = self.plan.tokenizer.decode(result.tokens, skip_special_tokens=True)
        prediction = tasks.postprocess(row.task, text, self.plan.chat_style)
        score = tasks.score_example(row.task, prediction, row.example.answers, row.example.all_classes)
        m = self.plan.cfg.model
        return RunRecord.from_result(
            result,
            samples=samples,
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
            prediction=prediction,
            answers=list(row.example.answers),
            score=score,
            device=self.device,
            versions=self.versions,
            extra={
                "model_id": m.get("id"),
                "chat_style": self.plan.chat_style,
                "max_length": m.get("max_length"),
                "prompt_tokens_before_truncation": row.prompt.n_tokens_before_truncation,
                "max_new_tokens": row.settings.max_new_tokens,
                "min_new_tokens": row.settings.min_new_tokens,  # stops ignored before (suite.min_new_tokens)
                **result_extra(result),
                "dtype": str(self.model.dtype),
                **{k: row.example.meta[k] for k in row.task.record_meta if k in row.example.meta},
            },
        )
