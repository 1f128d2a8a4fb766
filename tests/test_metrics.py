"""LongBench metrics on hand-worked cases (each expected value is computed in the comment)."""

import pytest

from lazybench.tasks import metrics
from lazybench.tasks.errors import UnknownTaskError
from lazybench.tasks.metrics import (
    category_scores,
    classification,
    code_sim,
    contains,
    count,
    dataset_score,
    first_code_line,
    normalize_answer,
    passkey,
    percent_ratio,
    qa_f1,
    retrieval,
    rouge_l,
    score_example,
)

# --- normalisation and qa_f1 -------------------------------------------------------------------


def test_normalize_answer():
    # lower -> "  the  quick, brown-fox's  an apple " -> no punct -> drop the/an -> collapse
    assert normalize_answer("  The  Quick, brown-fox's  An apple ") == "quick brownfoxs apple"
    assert normalize_answer("a an the") == ""
    # "the" inside a word is not an article
    assert normalize_answer("Theatre other") == "theatre other"


def test_qa_f1_exact_after_normalisation():
    assert qa_f1("The Eiffel Tower!", "eiffel tower") == 1.0


def test_qa_f1_partial():
    # pred [paris, france], gold [paris]: P = 1/2, R = 1, F1 = 2/3
    assert qa_f1("Paris, France", "Paris") == pytest.approx(2 / 3)
    # duplicates count once per gold occurrence: pred [cat, cat] vs [cat] -> P 1/2, R 1 -> 2/3
    assert qa_f1("the cat cat", "cat") == pytest.approx(2 / 3)


def test_qa_f1_edge_cases():
    assert qa_f1("", "Paris") == 0.0
    assert qa_f1("Paris", "") == 0.0
    assert qa_f1("the", "a") == 0.0  # both normalise to nothing
    assert qa_f1("London", "Paris") == 0.0


# --- rouge-L ------------------------------------------------------------------------------------


def test_rouge_l_hand_worked():
    """The ``rouge`` package LongBench scores with: summary-level union LCS over "."-split sentences,
    word counts over *distinct* words (its Ngrams are exclusive)."""
    # LCS = 3; distinct words: prediction {the, cat, sat, on, mat} = 5, answer 3
    # P = 3/5, R = 3/3, F = 2 * .6 * 1 / 1.6 = 0.75 (plain token LCS would give 2/3)
    assert rouge_l("the cat sat on the mat", "the cat sat") == pytest.approx(0.75)
    assert rouge_l("the cat sat", "the cat sat") == pytest.approx(1.0)
    # sentence order does not matter to the union LCS (a single-sequence LCS would give 0.5)
    assert rouge_l("the dog ran. the cat sat", "the cat sat. the dog ran") == pytest.approx(1.0)


def test_rouge_l_empty_and_failures(monkeypatch):
    assert rouge_l("", "the cat sat") == 0.0
    assert rouge_l("   \n", "the cat sat") == 0.0
    assert rouge_l("...", "the cat sat") == 0.0  # no sentence survives the "." split
    assert rouge_l("!!!", "the cat sat") == 0.0  # nothing in common

    class Broken:
        def get_scores(self, *args, **kwargs):
            raise RecursionError("deep LCS")

    monkeypatch.setattr(metrics, "_rouge", lambda: Broken())
    assert rouge_l("the cat sat", "the cat sat") == 0.0


# --- classification (trec) ----------------------------------------------------------------------


CLASSES = ["Other entity", "entity", "Date", "Individual"]


def test_classification_substring_of_gold_is_dropped():
    # matches: "Other entity", "entity"; "entity" is a proper substring of the gold -> dropped
    assert classification("Other entity", "Other entity", CLASSES) == 1.0


def test_classification_several_matches_share_credit():
    # matches: Date, Individual -> gold among them -> 1/2
    assert classification("Date or Individual", "Date", CLASSES) == 0.5


def test_classification_wrong_or_only_substring():
    assert classification("Individual", "Date", CLASSES) == 0.0
    # only "entity" matches, and it is dropped as a proper substring of the gold -> no match
    assert classification("entity", "Other entity", CLASSES) == 0.0
    assert classification("", "Date", CLASSES) == 0.0


def test_classification_drops_every_proper_substring():
    # Both "Ani" and "mal" are proper substrings of the gold; the rule drops both (the original
    # code's remove-while-iterating would have kept "mal" and given 1/2).
    assert classification("Animal", "Animal", ["Animal", "Ani", "mal"]) == 1.0


def test_classification_needs_classes():
    with pytest.raises(ValueError, match="all_classes"):
        classification("Date", "Date", None)


# --- retrieval and count --------------------------------------------------------------------------


def test_retrieval():
    assert retrieval("Paragraph 19", "Paragraph 19") == 1.0
    assert retrieval("Paragraph 19 or Paragraph 3", "Paragraph 19") == 0.5
    assert retrieval("Paragraph 190", "Paragraph 19") == 0.0  # whole numbers only
    assert retrieval("I do not know", "Paragraph 19") == 0.0  # no numbers
    assert retrieval("", "Paragraph 19") == 0.0
    with pytest.raises(ValueError, match="Paragraph N"):
        retrieval("1", "19")


def test_count():
    assert count("46", "46") == 1.0
    # numbers 46 and 50, one right -> 1/2
    assert count("There are 46 unique paragraphs out of 50.", "46") == 0.5
    assert count("forty-six", "46") == 0.0
    assert count("", "46") == 0.0


# --- code_sim -------------------------------------------------------------------------------------


def test_first_code_line_skips_fences_and_comments():
    assert first_code_line("\n\n    return x + 1\nfoo()") == "    return x + 1"
    assert first_code_line("```python\n# add one\n    return x + 1\n```") == "    return x + 1"
    assert first_code_line("// js comment\nlet y = 2;") == "let y = 2;"
    assert first_code_line('x = "#"\ny = 1') == "y = 1"  # any '#' disqualifies a line
    assert first_code_line("# only a comment\n```") == ""


def test_code_sim():
    """fuzzywuzzy's pure-Python ratio, as LongBench's scorer ran it: difflib, whole percents."""
    assert code_sim("\n    return x + 1\n", "    return x + 1") == 1.0
    # difflib: 2 matching chars of 6 -> 2 * 2 / 6 = 0.667 -> 67%
    assert code_sim("abc", "abd") == 0.67
    assert percent_ratio("abcd", "abce") == 75
    assert code_sim("# comment only", "return 1") == 0.0  # no code line: "" vs a line
    assert code_sim("", "return 1") == 0.0
    assert percent_ratio("", "") == 100  # equal strings first, as fuzzywuzzy checks them


# --- probes' metrics ------------------------------------------------------------------------------


def test_passkey_and_contains():
    assert passkey("The pass key is 71432.", "71432") == 1.0
    assert passkey("714321", "71432") == 0.0
    assert passkey("no idea", "71432") == 0.0
    assert contains("It is the Sleepy Walrus.", "sleepy walrus") == 1.0
    assert contains("walrus", "sleepy walrus") == 0.0


# --- score_example, first-line cut, aggregation ---------------------------------------------------


def test_score_example_takes_max_over_answers():
    # vs "paris": P 1/2 R 1 -> 2/3; vs "city of paris" -> [city, of, paris]: P 2/2, R 2/3 -> 0.8
    assert score_example("hotpotqa", "Paris city", ["Paris", "City of Paris"]) == pytest.approx(0.8)
    assert score_example("triviaqa", "fifty-five", ["55", "fifty-five"]) == 1.0


def test_first_line_cut_only_for_trec_triviaqa_samsum():
    # triviaqa: cut to "Paris" -> 0; hotpotqa: no cut, [paris, london, is, big] vs [london] -> 0.4
    assert score_example("triviaqa", "Paris\nLondon is big", ["London"]) == 0.0
    assert score_example("hotpotqa", "Paris\nLondon is big", ["London"]) == pytest.approx(0.4)
    # leading newlines are stripped before the cut
    trec_classes = ["Individual", "Date"]
    assert score_example("trec", "\n\nIndividual\nDate", ["Individual"], trec_classes) == 1.0
    assert score_example("trec", "Date\nIndividual", ["Individual"], trec_classes) == 0.0
    assert score_example("samsum", "Emilia is angry.\nDialogue: more", ["Emilia is angry."]) == pytest.approx(
        1.0
    )


def test_score_example_errors():
    with pytest.raises(ValueError, match="no gold answers"):
        score_example("hotpotqa", "x", [])
    with pytest.raises(TypeError):
        score_example("hotpotqa", "x", "x")
    with pytest.raises(UnknownTaskError):
        score_example("nope", "x", ["x"])


def test_dataset_score():
    assert dataset_score([1.0, 0.0, 0.5]) == 50.0
    assert dataset_score([1 / 3]) == 33.33
    assert dataset_score([2 / 3]) == 66.67
    with pytest.raises(ValueError):
        dataset_score([])


def test_category_scores_macro_average():
    scores = {"qasper": 30.0, "narrativeqa": 20.0, "hotpotqa": 40.0, "passkey": 100.0}
    out = category_scores(scores)
    assert out == {"single_doc_qa": 25.0, "multi_doc_qa": 40.0, "probe": 100.0}
    assert list(out) == ["single_doc_qa", "multi_doc_qa", "probe"]  # registry order
    assert category_scores({"lcc": 10.0, "repobench-p": 15.5}) == {"code_completion": 12.75}
