"""The dry run's time model: seconds per (method, row), from a model's shape and a device's rates.

Nothing here is measured by the dry run itself; the rates are stated assumptions, chosen from
published measurements, and `estimate.*` in the config overrides them once a user has measured
their own (`lazybench.bench.ttft` on the target GPU gives both numbers).

Per unit (one method on one row): prefill FLOPs / effective TFLOP/s, plus every generated token at
the per-token decode time, times the method's factors (below), plus its own extra work.

Rates (bf16, batch 1, HF transformers eager with SDPA, the path lazybench drives):

- Decode is host-bound on a GPU: Python launches ~10 kernels per layer per token and the GPU waits.
  Measured: a plain eager PyTorch Llama-7B generates 25.5 tokens/s on an A100-80GB (39 ms/token,
  "heavily CPU overhead bound"; PyTorch blog "Accelerating Generative AI with PyTorch II: GPT, Fast",
  2023, https://pytorch.org/blog/accelerating-generative-ai-2/); transformers' own CI benchmark
  (hf-internal-testing/benchmark_results, 2024) times gemma-2b, 18 layers, eager with a dynamic cache
  at 19.5 ms/token, about 1.1 ms per layer. We assume 1.0 ms per layer per token on A100-class hosts
  (32 ms/token for a 32-layer 7B) and 0.8 ms on H100-class hosts (faster host CPUs; an assumption,
  not a measurement). Weight and KV reads at HBM bandwidth (A100 ~2.0 TB/s, H100 ~3.35 TB/s peak;
  75% assumed effective) take ~9 ms (A100) for a 7B and are hidden under the host time; the larger
  of the two counts.
- Prefill is compute-bound. Effective rates are assumptions derived from published kernel
  measurements, not end-to-end HF measurements: FlashAttention-2 (Dao, 2023, arXiv 2307.08691)
  reaches 50-73% of the A100's 312 TFLOP/s in attention and 225 TFLOP/s (72%) end-to-end in GPT
  training; dense bf16 GEMMs of a 3.5k-8k token prefill run at 70-80% of peak. With eager norms,
  rotary and element-wise kernels between them, we assume 190 TFLOP/s on an A100 (61% of peak) and
  450 TFLOP/s on an H100 SXM (45% of 989; SDPA uses FlashAttention-2 kernels there, not Hopper's).
- CPU: 0.13 TFLOP/s and 9 GB/s, measured on this project's 2-core CPU with SmolLM2 (fp32).

Method factors (relative to the baseline run through the same engine):

- lazyllm / static: prefill FLOPs times the schedule's mean kept fraction over layers. LazyLLM's
  decode step costs more host time than the baseline's (it re-selects from the whole context):
  measured 1.23-1.50x on a compute-free 32-layer model (issue 10), costed at 1.25x.
- random_drop: prefill on `keep` of the prompt; its seeds are separate units (repeats).
- selective_context: the target's prefill on `keep` of the prompt, plus the compressor's forward
  over the whole prompt in chunks of `context` tokens (host-bound like a decode step per chunk, or
  compute-bound if larger) and ~40 us of Python per prompt token for units and scores (token_pieces
  alone measured 21 us/token on this project's CPU).
- gemfilter: a filter pass over the whole prompt through layers 0..r, then a full prefill of the
  `topk` selected tokens.
- h2o: full prefill plus its attention-mass pass: fp32 logits of every query against every key,
  per layer and head, written, masked, soft-maxed and summed (~20 bytes per element at HBM speed);
  its decode step updates the masses (1.1x host).
- snapkv / streamingllm: full prefill (SnapKV's window scores are negligible); decode reads each
  head's kept positions with a gather (1.05x host).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from lazybench.protocol.cost import ModelShape


@dataclass(frozen=True)
class DeviceRates:
    name: str
    prefill_tflops: float  # effective prefill throughput
    decode_ms_per_layer: float  # host time per layer per generated token (0: bandwidth-bound only)
    decode_gbps: float  # effective bandwidth for weight + KV reads per generated token

    def with_overrides(self, overrides: dict[str, Any] | None) -> DeviceRates:
        """`estimate.prefill_tflops`, `estimate.decode_gbps`, `estimate.decode_ms_per_token` (per 7B
        32-layer token, converted to per-layer) from the config, where set."""
        values = {k: v for k, v in (overrides or {}).items() if v is not None}
        out = replace(
            self,
            prefill_tflops=float(values.get("prefill_tflops", self.prefill_tflops)),
            decode_gbps=float(values.get("decode_gbps", self.decode_gbps)),
        )
        if "decode_ms_per_token" in values:
            out = replace(out, decode_ms_per_layer=float(values["decode_ms_per_token"]) / 32.0)
        return out


RATES = {
    "cpu": DeviceRates("CPU (this project's 2 cores)", 0.13, 0.0, 9.0),
    "a100": DeviceRates("A100-class", 190.0, 1.0, 1500.0),
    "h100": DeviceRates("H100-class", 450.0, 0.8, 2500.0),
}
#: Decode host-time factors relative to the baseline, and the bytes per element of H2O's mass pass.
DECODE_HOST_FACTOR = {"lazyllm": 1.25, "h2o": 1.1, "snapkv": 1.05, "streamingllm": 1.05}
H2O_BYTES_PER_SCORE = 20.0
COMPRESSOR_PYTHON_S_PER_TOKEN = 40e-6


#: Published config.json shapes of the shipped 7B model configs, for a dry run where the config
#: cannot be read (weights not downloaded, no hub): meta-llama/Llama-2-7b-chat-hf,
#: Salesforce/xgen-7b-8k-inst, mistralai/Mistral-7B-Instruct-v0.2, Qwen/Qwen2.5-7B-Instruct.
KNOWN_SHAPES = {
    "meta-llama/Llama-2-7b-chat-hf": ModelShape.from_dims(32, 4096, 32, 32, 128, 11008, 32000),
    "Salesforce/xgen-7b-8k-inst": ModelShape.from_dims(32, 4096, 32, 32, 128, 11008, 51200),
    "mistralai/Mistral-7B-Instruct-v0.2": ModelShape.from_dims(32, 4096, 32, 8, 128, 14336, 32000),
    "Qwen/Qwen2.5-7B-Instruct": ModelShape.from_dims(28, 3584, 28, 4, 128, 18944, 152064),
}
#: SmolLM2-135M, the default compressor (30 layers, hidden 576).
COMPRESSOR_SHAPE = ModelShape.from_dims(30, 576, 9, 3, 64, 1536, 49152)


def _schedule_fraction(method, layers: int) -> float:
    schedule = getattr(method, "schedule", None)
    if schedule is None or not hasattr(schedule, "resolve"):
        return 1.0
    fractions = schedule.resolve(layers).layer_keep_fractions()
    return sum(fractions) / len(fractions)


@dataclass
class UnitCost:
    prefill_s: float
    decode_s: float
    extra_s: float  # work outside the target's prefill/decode: a compressor, a scoring pass

    @property
    def total(self) -> float:
        return self.prefill_s + self.decode_s + self.extra_s


def unit_cost(
    method_name: str, method, shape: ModelShape, rates: DeviceRates, n: int, new: int, bytes_per: int
) -> UnitCost:
    """Seconds of one method on one prompt of n tokens generating `new` tokens (see module doc)."""
    rate = rates.prefill_tflops * 1e12
    prefill = shape.prefill_flops(n) / rate
    extra = 0.0
    # adaptive's schedule keeps its ceiling at every boundary: an upper bound on its prefill
    if method_name in ("lazyllm", "static", "adaptive"):
        prefill *= _schedule_fraction(method, shape.num_layers)
    elif method_name in ("random_drop", "selective_context"):
        kept = max(1, math.ceil(float(getattr(method, "keep", 1.0)) * n))
        prefill = shape.prefill_flops(kept) / rate
        if method_name == "selective_context":
            chunk = max(2, int(getattr(method, "context", 1024))) - 1
            chunks = math.ceil(n / chunk)
            comp = shape if getattr(method, "compressor", "") == "target" else COMPRESSOR_SHAPE
            host = chunks * comp.num_layers * rates.decode_ms_per_layer / 1e3
            extra = max(host, (comp.prefill_flops(n) + 2 * n * comp.hidden_size * comp.vocab_size) / rate)
            extra += n * COMPRESSOR_PYTHON_S_PER_TOKEN
    elif method_name == "gemfilter" and hasattr(method, "budget"):
        k = min(n, int(method.budget(n)))
        if k < n:
            layer = method.layer_index(shape.num_layers)
            prefill = (shape.prefill_flops(n, layers=layer + 1) + shape.prefill_flops(k)) / rate
    elif method_name == "h2o":
        scores = shape.num_layers * shape.num_heads * float(n) * n
        extra = scores * H2O_BYTES_PER_SCORE / (rates.decode_gbps * 1e9)
    kv_bytes = 2 * shape.num_layers * shape.kv_heads * shape.head_dim * bytes_per * (n + new / 2)
    bandwidth = (shape.weights * bytes_per + kv_bytes) / (rates.decode_gbps * 1e9)
    host = shape.num_layers * rates.decode_ms_per_layer / 1e3 * DECODE_HOST_FACTOR.get(method_name, 1.0)
    return UnitCost(prefill, new * max(host, bandwidth), extra)
