"""Fidelity of a method's output to the full model's (the baseline's) on the same prompt.

Three numbers per non-baseline record, all against the baseline record of the same row:

- first-token match: the greedy first token equals the baseline's (argmax of the first-token logits);
- first-token KL: KL(baseline || method) of the first-token distributions, in nats;
- ROUGE-L (rouge-score, F-measure, no stemming) of the method's output against the baseline's
  output (1.0 when the two outputs are identical, including both empty);
- token agreement: the generated token ids the two outputs share from the first one up to the first
  difference, over the longer output's length (1.0 when identical, both empty included): the fraction
  of the output generated exactly as the full model generated it. With outputs forced to one length
  (suite.min_new_tokens) it is the common prefix over that length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import torch

from lazybench.records import prefix_agreement


@dataclass(frozen=True)
class Fidelity:
    first_token_match: bool | None
    first_token_kl: float | None
    rouge_l_vs_baseline: float | None
    token_agreement: float | None = None


def first_token_kl(baseline_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """KL(p_baseline || p_method) over the vocabulary, in float64; 0 * log 0 counts as 0."""
    if baseline_logits.shape != logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(baseline_logits.shape)} vs {tuple(logits.shape)}")
    log_p = torch.log_softmax(baseline_logits.double().reshape(-1), dim=-1)
    log_q = torch.log_softmax(logits.double().reshape(-1), dim=-1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return max(float(terms.sum()), 0.0)


@cache
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l_vs_baseline(prediction: str, baseline_prediction: str) -> float:
    if prediction == baseline_prediction:
        return 1.0
    if not prediction.strip() or not baseline_prediction.strip():
        return 0.0
    return float(_scorer().score(baseline_prediction, prediction)["rougeL"].fmeasure)


def token_agreement(tokens: Sequence[int], baseline_tokens: Sequence[int]) -> float:
    """prefix_agreement over generated token ids (the record field `token_agreement`)."""
    return prefix_agreement(tokens, baseline_tokens)


def fidelity(
    baseline_logits: torch.Tensor | None,
    baseline_prediction: str,
    logits: torch.Tensor | None,
    prediction: str,
    tokens: Sequence[int] | None = None,
    baseline_tokens: Sequence[int] | None = None,
) -> Fidelity:
    """All the measures; the first-token ones are None when either side's logits are missing, the
    token agreement when either side's token ids are."""
    if baseline_logits is None or logits is None:
        match, kl = None, None
    else:
        match = int(torch.argmax(baseline_logits)) == int(torch.argmax(logits))
        kl = first_token_kl(baseline_logits, logits)
    agree = None if tokens is None or baseline_tokens is None else token_agreement(tokens, baseline_tokens)
    return Fidelity(match, kl, rouge_l_vs_baseline(prediction, baseline_prediction), agree)
