"""Our scorers against the original LongBench scorer, on real model outputs.

`../shared/longbench/raw_minilongbench/` holds an LLM's predictions for the offline rows (the
OpenCompass dumps the rows were rebuilt from, row i of `<task>.jsonl` = entry "i"). The expected
numbers are what LongBench's own `eval.py`/`metrics.py` give for those predictions, run with the
packages it imports (rouge 1.0.1; fuzzywuzzy 0.18.0 without python-Levenshtein). They are the
oracle here: a scorer that drifts from the original (as rouge-score's rougeL did, by 3-12 points
on the summaries) fails this test.
"""

from __future__ import annotations

import json

import pytest

from lazybench.tasks import PAPER_DATASETS, dataset_score, score_example

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
    dump = json.loads((longbench_dir / "raw_minilongbench" / f"MiniLongBench_{dataset}.json").read_text())
    rows = [
        json.loads(line) for line in (longbench_dir / f"{dataset}.jsonl").read_text().splitlines() if line
    ]
    scores = [
        score_example(dataset, dump[str(i)]["prediction"], row["answers"], row.get("all_classes"))
        for i, row in enumerate(rows)
    ]
    assert dataset_score(scores) == ORIGINAL_SCORER[dataset]
