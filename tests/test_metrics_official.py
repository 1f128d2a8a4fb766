"""Our scorers against the original LongBench scorer, on real model outputs.

`tests/data/minilongbench_predictions.json` holds an LLM's predictions for the offline slice's rows
(taken from the OpenCompass dumps the rows were rebuilt from; prediction i of a dataset belongs to
row i of its `<dataset>.jsonl`, see tests/data/README.md). The expected
numbers are what LongBench's own `eval.py`/`metrics.py` give for those predictions, run with the
packages it imports (rouge 1.0.1; fuzzywuzzy 0.18.0 without python-Levenshtein). They are the
oracle here: a scorer that drifts from the original (as rouge-score's rougeL did, by 3-12 points
on the summaries) fails this test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lazybench.tasks import PAPER_DATASETS, dataset_score, score_example

PREDICTIONS = Path(__file__).resolve().parent / "data" / "minilongbench_predictions.json"

ORIGINAL_SCORER = {
    "narrativeqa": 3.33,
    "qasper": 11.36,
    "multifieldqa_en": 23.33,
    "hotpotqa": 7.44,
    "2wikimqa": 7.99,
    "musique": 14.67,
    "gov_report": 20.60,
    "qmsum": 18.00,
    "multi_news": 32.59,
    "trec": 37.50,
    "triviaqa": 83.93,
    "samsum": 27.15,
    "passage_count": 0.00,
    "passage_retrieval_en": 6.67,
    "lcc": 69.58,
    "repobench-p": 42.43,
}


def test_oracle_covers_every_english_dataset():
    assert sorted(ORIGINAL_SCORER) == sorted(PAPER_DATASETS)


@pytest.mark.parametrize("dataset", sorted(ORIGINAL_SCORER))
def test_dataset_score_equals_original_scorer(dataset, longbench_dir):
    predictions = json.loads(PREDICTIONS.read_text(encoding="utf-8"))[dataset]
    rows = [
        json.loads(line) for line in (longbench_dir / f"{dataset}.jsonl").read_text().splitlines() if line
    ]
    assert len(predictions) == len(rows)
    scores = [
        score_example(dataset, prediction, row["answers"], row.get("all_classes"))
        for prediction, row in zip(predictions, rows)
    ]
    assert dataset_score(scores) == ORIGINAL_SCORER[dataset]
