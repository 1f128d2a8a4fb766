"""One interface for every method: full prefill, LazyLLM and the rivals.

A method is a small class (kvpress style) that may rewrite the prompt before the model sees it
(token drop, prompt compression) and supplies the token policy the engine applies inside the model
(LazyLLM, static pruning, KV selection). Everything runs through the same engine and the same
generation loop, so every method is timed by the same clock and reports the same accounting.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from lazybench.engine import GenerationResult, LazyEngine, Schedule, TokenPolicy, generate


class UnknownMethodError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class PreparedPrompt:
    """The ids the model will see, and the wall time and FLOPs spent producing them (counted in
    TTFT and in the prefill's FLOPs)."""

    ids: list[int]
    seconds: float = 0.0
    flops: float = 0.0


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    max_new_tokens: int
    eos_token_ids: Sequence[int] = ()
    min_new_tokens: int = 0
    keep_logits: bool = False
    trace: bool = False
    seed: int = 0
    stop_strings: Sequence[str] = ()
    tokenizer: Any = None  # needed with stop_strings

    def options(self) -> dict[str, Any]:
        """The decoding settings as keyword arguments of `generate` / `Generation`."""
        return {name: getattr(self, name) for name in GENERATE_OPTIONS}


#: GenerationRequest fields that are decoding settings of the generation loop.
GENERATE_OPTIONS = ("eos_token_ids", "min_new_tokens", "keep_logits", "trace", "stop_strings", "tokenizer")


@dataclass
class Method:
    """Base class. Subclasses are dataclasses whose fields are the method's hyperparameters."""

    name: ClassVar[str] = "method"
    query_aware: ClassVar[bool] = False  # does selection look at the question (the last tokens)?
    saves: ClassVar[str] = "nothing"  # "prefill", "decode", "both" or "nothing"
    stochastic: ClassVar[bool] = False  # the runner repeats stochastic methods over seeds
    # The row this method is in the LazyLLM paper's tables ("Static Token Pruning"), None if absent.
    # The analysis derives its table keys from it (`paper_key`): no mapping is kept anywhere else.
    paper_name: ClassVar[str | None] = None

    @classmethod
    def paper_key(cls) -> str | None:
        """The paper row as the committed paper tables spell it: "static_token_pruning"."""
        return None if cls.paper_name is None else cls.paper_name.lower().replace(" ", "_")

    def params(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return out

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The hyperparameters' defaults as plain config data (dicts, lists, scalars): the one place a
        method's defaults live. The `method` config group is made from it (`lazybench.conf_groups`),
        and a `methods` entry merges over it, so no YAML copy exists to drift from the class."""
        return _plain(cls().params())

    def label(self) -> str:
        """Short, unique-within-a-run name, e.g. for plot legends: 'lazyllm[depth[0.3:0.7,...]]'."""
        return self.name

    def setup(self, model: torch.nn.Module, tokenizer) -> None:
        """Called once per model before any generation (load a compressor, etc.)."""

    def policy(self) -> TokenPolicy:
        return TokenPolicy()

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        return PreparedPrompt(ids=list(request.prompt_ids))

    def engine(self, model: torch.nn.Module) -> LazyEngine:
        return LazyEngine(model, self.policy())

    @staticmethod
    def generate(engine: LazyEngine, ids: Sequence[int], request: GenerationRequest) -> GenerationResult:
        """The one generation call every method makes, with the request's decoding settings."""
        return generate(engine, ids, request.max_new_tokens, **request.options())

    def run(self, model: torch.nn.Module, request: GenerationRequest) -> GenerationResult:
        t0 = time.perf_counter()
        prepared = self.prepare(request)
        prep_s = prepared.seconds or (time.perf_counter() - t0 if prepared.ids != request.prompt_ids else 0.0)
        engine = self.engine(model)
        result = self.generate(engine, prepared.ids, request)
        if len(prepared.ids) != len(request.prompt_ids) or prep_s > 0.0:
            result = result.with_prompt_rewrite(
                len(request.prompt_ids),
                prep_s,
                engine.full_prefill_flops(len(request.prompt_ids)),
                prepared.flops,
            )
        return result


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: the types a YAML config (and Hydra's override grammar) holds."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    def wrap(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def list_methods() -> list[str]:
    return sorted(METHODS)


def build_method(name: str, **params: Any) -> Method:
    """Instantiate a registered method from config values (a schedule may be given as a dict)."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; known methods: {', '.join(list_methods())}"
        ) from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(params) - set(fields)
    if unknown:
        raise ValueError(f"method {name!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(fields)}")
    if "schedule" in params and not isinstance(params["schedule"], Schedule):
        params["schedule"] = Schedule.from_config(params["schedule"])
    return cls(**params)


@register_method("baseline")
@dataclass
class Baseline(Method):
    """Full prefill and full-context decoding, through the same engine as every other method."""

    paper_name: ClassVar[str | None] = "Baseline"


@dataclass
class ScheduledMethod(Method):
    """A method configured by a pruning schedule that its token policy applies inside the model
    (LazyLLM, static pruning): label and policy follow from the schedule and `policy_class`."""

    query_aware: ClassVar[bool] = True
    saves: ClassVar[str] = "both"
    policy_class: ClassVar[type[TokenPolicy]] = TokenPolicy
    schedule: Schedule = dataclasses.field(default_factory=Schedule)

    def label(self) -> str:
        return f"{self.name}[{self.schedule.describe()}]"

    def policy(self) -> TokenPolicy:
        return self.policy_class(self.schedule)
