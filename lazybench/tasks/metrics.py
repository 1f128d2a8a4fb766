"""LongBench v1 metrics, re-implemented from the protocol (``eval.py`` / ``metrics.py``).

Each metric scores one prediction against one gold answer and returns a float in [0, 1];
`score_example` scores by the dataset's benchmark, for LongBench `best_answer_score`: the max over
gold answers (after the first-line cut for trec, triviaqa and samsum); `dataset_score` is
``round(100 * mean, 2)`` and `category_scores` macro-averages.

Scorers follow the original's packages where its numbers depend on them:

- rouge-L is the ``rouge`` package's "rouge-l" F (the one LongBench's scorer imports): it splits
  text into sentences on "." and takes the union LCS, which scores 3-12 points higher on LongBench
  summaries than Google's ``rouge_score`` rougeL (measured on the offline rows), so that one would
  not be comparable with the paper or the leaderboard.
- code similarity reproduces fuzzywuzzy's ``fuzz.ratio`` as LongBench's requirements install it
  (pure Python, without python-Levenshtein): difflib's ratio in whole percents. rapidfuzz's
  Levenshtein-based ratio scores about 1.3 points higher on lcc / repobench-p.

One deliberate difference: classification implements the rule as specified (drop every matched
class that is a proper substring of the gold label); the original removes items from the list it
is iterating over, which can skip one of two consecutive proper-substring matches.
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from statistics import fmean

from lazybench.tasks.registry import CATEGORIES, PROBE_CATEGORY, TaskSpec, benchmark_of, get_task

Metric = Callable[[str, str, Sequence[str] | None], float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_NUMBER = re.compile(r"\d+")
_PARAGRAPH = re.compile(r"Paragraph (\d+)")


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower-case, drop punctuation, drop a/an/the, collapse spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction_tokens: Sequence[str], answer_tokens: Sequence[str]) -> float:
    """F1 of the bag-of-tokens overlap (0.0 when nothing is shared, including empty inputs)."""
    common = Counter(prediction_tokens) & Counter(answer_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_f1(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """Token F1 between normalised prediction and answer (narrativeqa, hotpotqa, triviaqa...)."""
    return token_f1(normalize_answer(prediction).split(), normalize_answer(answer).split())


@cache
def _rouge():  # the package LongBench's scorer uses; one instance serves every call
    from rouge import Rouge

    return Rouge(metrics=["rouge-l"])


def rouge_l(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """ROUGE-L F of the ``rouge`` package (summaries); 0.0 when it cannot score, as the original
    treats any scorer failure (an empty or punctuation-only prediction, for one)."""
    try:
        return float(_rouge().get_scores([prediction], [answer], avg=True)["rouge-l"]["f"])
    except Exception:  # the protocol scores any scorer failure as 0
        return 0.0


def classification(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """trec: 1/len(matches) if the gold class is among the classes found in the prediction.

    A class "matches" when it is a substring of the prediction; matched classes that are proper
    substrings of the gold label are dropped (so gold "Other entity" is not diluted by "entity").
    """
    if all_classes is None:
        raise ValueError("classification needs all_classes (the label set of the row)")
    matches = [c for c in all_classes if c in prediction]
    matches = [c for c in matches if not (c in answer and c != answer)]
    return 1.0 / len(matches) if answer in matches else 0.0


def _number_share(prediction: str, target: str) -> float:
    numbers = _NUMBER.findall(prediction)
    if not numbers:
        return 0.0
    return sum(n == target for n in numbers) / len(numbers)


def retrieval(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """passage_retrieval_en: share of the numbers in the prediction equal to gold "Paragraph N"."""
    found = _PARAGRAPH.findall(answer)
    if not found:
        raise ValueError(f"retrieval gold answer must look like 'Paragraph N', got {answer!r}")
    return _number_share(prediction, found[0])


def count(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """passage_count: share of the numbers in the prediction equal to the gold count."""
    return _number_share(prediction, str(answer))


def first_code_line(prediction: str) -> str:
    """First line (after leading newlines) with no backtick, ``#`` or ``//``; "" if none.

    Skips markdown fences and comment lines a chat model tends to put before the code.
    """
    for line in prediction.lstrip("\n").split("\n"):
        if "`" not in line and "#" not in line and "//" not in line:
            return line
    return ""


def percent_ratio(a: str, b: str) -> int:
    """fuzzywuzzy's pure-Python ``fuzz.ratio``: difflib's similarity ratio in whole percents, 100
    for identical strings (empty ones too), 0 when exactly one is empty."""
    if a == b:
        return 100
    if not a or not b:
        return 0
    return round(100 * difflib.SequenceMatcher(None, a, b).ratio())


def code_sim(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """lcc / repobench-p: similarity of the first code line of the prediction to the gold line."""
    return percent_ratio(first_code_line(prediction), answer) / 100


def passkey(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """Probe: 1.0 if the pass key appears as a whole number in the prediction."""
    return 1.0 if answer in _NUMBER.findall(prediction) else 0.0


def contains(prediction: str, answer: str, all_classes: Sequence[str] | None = None) -> float:
    """Probe: 1.0 if the normalised answer occurs as whole words in the normalised prediction."""
    gold = normalize_answer(answer)
    return 1.0 if gold and f" {gold} " in f" {normalize_answer(prediction)} " else 0.0


METRICS: dict[str, Metric] = {
    "qa_f1": qa_f1,
    "rouge_l": rouge_l,
    "classification": classification,
    "retrieval": retrieval,
    "count": count,
    "code_sim": code_sim,
    "passkey": passkey,
    "contains": contains,
}


def first_line(prediction: str) -> str:
    """The protocol's first-line cut: ``prediction.lstrip('\\n').split('\\n')[0]``."""
    return prediction.lstrip("\n").split("\n")[0]


def score_example(
    task: TaskSpec | str,
    prediction: str,
    answers: Sequence[str],
    all_classes: Sequence[str] | None = None,
) -> float:
    """Score one prediction in [0, 1], by the rule of the dataset's benchmark (`Benchmark.score`;
    for LongBench and the probes `best_answer_score`)."""
    task = get_task(task)
    if isinstance(answers, str):
        raise TypeError("answers must be a list of strings, not a string")
    if not answers:
        raise ValueError(f"{task.name}: no gold answers to score against")
    return benchmark_of(task).score(task, prediction, answers, all_classes)


def best_answer_score(
    task: TaskSpec, prediction: str, answers: Sequence[str], all_classes: Sequence[str] | None = None
) -> float:
    """LongBench's rule: the dataset's metric against each gold answer, the best one counts (after
    the first-line cut for the datasets whose spec asks for it)."""
    if task.first_line_only:
        prediction = first_line(prediction)
    metric = METRICS[task.metric]
    return max(metric(prediction, answer, all_classes) for answer in answers)


def dataset_score(example_scores: Sequence[float]) -> float:
    """Dataset score as LongBench reports it: ``round(100 * mean, 2)``."""
    if not example_scores:
        raise ValueError("dataset_score of an empty list is undefined")
    return round(100 * fmean(example_scores), 2)


def category_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """Macro-average of dataset scores per category, for the categories present in ``scores``.

    Categories come out in registry order (paper categories first); probes average into
    ``"probe"``. Values are rounded to 2 decimals like the dataset scores.
    """
    grouped: dict[str, list[float]] = {}
    for name, value in scores.items():
        grouped.setdefault(get_task(name).category, []).append(value)
    order = [*CATEGORIES, PROBE_CATEGORY]
    return {cat: round(fmean(grouped[cat]), 2) for cat in order if cat in grouped}
