"""TTFT that survives a noisy machine: several prefill samples per unit, interleaved, median kept.

A single TTFT per (row, method) is at the mercy of whatever else the machine does during that
one prefill: on a shared 2-core CPU a busy neighbour turned a 1.7x speedup into 0.9x. With
``timing.prefill_repeats: k`` the runner takes k TTFT samples of every (row, method, repeat) unit
and records their median (``ttft_s``), all samples (``ttft_samples_s``) and their spread
(``ttft_spread`` = (max - min) / median, 0 with one sample).

How the k samples are taken (the same for every method, so their clocks stay comparable):

* k - 1 prefill-only rounds come first; each round times one prefill of every pending unit of
  the row, and round r starts at unit r mod n (rotated), so no method always runs first or last
  and a slow stretch of the machine falls on all methods alike;
* the full generation, run once per unit as before (baseline first, each recorded as soon as it
  is done), is the k-th sample: its own TTFT is not thrown away.

A prefill-only sample is `Method.run` with max_new_tokens=1: exactly what a generation's TTFT
counts (prompt rewriting such as Selective Context's compressor or a token drop, the prefill and
the first token; GemFilter's filter pass too, which overrides `run`), with the same seed.

The record's ``total_s`` becomes the median TTFT plus the generation's own time after its first
token, so ``total_s >= ttft_s`` still holds and the generation speedup benefits from the steadier
prefill; ``decode_s`` is the generation's own.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from lazybench.records import spread

__all__ = ["interleaved_samples", "prefill_ttft", "spread", "spread_note", "with_samples"]

U = TypeVar("U", bound=Hashable)


def prefill_ttft(method, model, request) -> float:
    """One TTFT sample of `method` on `request`: its `run` stopped after the first token.

    Prompt rewriting is inside the clock exactly as in a full generation (Method.run adds it to the
    TTFT). Call under torch.inference_mode(), after seeding as for the generation itself.
    """
    once = dataclasses.replace(request, max_new_tokens=1, keep_logits=False, trace=False)
    return float(method.run(model, once).ttft_s)


def interleaved_samples(
    units: Sequence[U], rounds: int, sample: Callable[[U], float]
) -> dict[U, list[float]]:
    """`rounds` rounds of one `sample(unit)` per unit; round r starts at unit r mod len(units)."""
    out: dict[U, list[float]] = {u: [] for u in units}
    n = len(units)
    for r in range(rounds):
        for i in range(n):
            unit = units[(r + i) % n]
            out[unit].append(sample(unit))
    return out


def with_samples(result, earlier: Sequence[float]):
    """The generation's result with TTFT = median of `earlier` + its own TTFT, and total adjusted.

    Returns (result, samples). Decode-step times are the generation's own.
    """
    samples = [*earlier, float(result.ttft_s)]
    if len(samples) == 1:
        return result, samples
    middle = statistics.median(samples)
    adjusted = dataclasses.replace(result, ttft_s=middle, total_s=result.total_s - result.ttft_s + middle)
    return adjusted, samples


def spread_note(records: Iterable[dict[str, Any]], threshold: float) -> str:
    """One line: how many recorded units have a TTFT spread over `threshold` (records without
    samples, written before the setting existed, are left out of the count)."""
    measured = [r for r in records if r.get("ttft_samples_s")]
    if not measured:
        return "timing: no TTFT samples recorded (records predate timing.prefill_repeats)"
    ks = sorted({len(r["ttft_samples_s"]) for r in measured})
    k = str(ks[0]) if len(ks) == 1 else f"{ks[0]}-{ks[-1]}"
    if ks == [1]:
        return (
            f"timing: {len(measured)} (row, method) units timed once each (timing.prefill_repeats=1): "
            "no spread to judge the noise by"
        )
    noisy = sum(1 for r in measured if (r.get("ttft_spread") or 0.0) > threshold)
    return (
        f"timing: {noisy} of {len(measured)} (row, method) units have a TTFT spread over "
        f"{threshold:.0%} of their median ({k} samples each; median recorded)"
        + ("; their speedups are less certain" if noisy else "")
    )
