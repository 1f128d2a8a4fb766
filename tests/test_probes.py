"""Passkey and needle-in-a-haystack probes: determinism, placement, length, scoring."""

import re

import pytest

from lazybench.tasks import (
    CATEGORIES,
    build_prompt,
    get_task,
    load_examples,
    load_tokenizer,
    make_probe_examples,
    score_example,
)

DEPTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")  # cached in-process: loaded once per test session


@pytest.fixture(scope="module")
def passkeys(tok, longbench_dir):
    return make_probe_examples("passkey", [2000], DEPTHS, tok, longbench_dir, seed=3)


def n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False).input_ids)


def test_probes_are_registered_outside_paper_categories():
    for kind in ("passkey", "needle"):
        task = get_task(kind)
        assert task.category == "probe" and task.is_probe and task.chat
        assert all(kind not in names for names in CATEGORIES.values())


def test_deterministic_for_a_seed(tok, longbench_dir, passkeys):
    again = make_probe_examples("passkey", [2000], DEPTHS, tok, longbench_dir, seed=3)
    assert again == passkeys
    other = make_probe_examples("passkey", [2000], DEPTHS, tok, longbench_dir, seed=4)
    assert [e.answers for e in other] != [e.answers for e in passkeys]
    assert [e.context for e in other] != [e.context for e in passkeys]


def test_passkey_rows(passkeys):
    assert [e.meta["depth"] for e in passkeys] == DEPTHS
    for ex in passkeys:
        (key,) = ex.answers
        assert re.fullmatch(r"\d{5}", key)
        needle = f"The pass key is {key}. Remember it."
        assert ex.context.count(needle) == 1 and ex.meta["needle"] == needle
        assert ex.context.count(key) == 1  # nowhere else in the haystack
        assert ex.input == "What is the pass key? The pass key is"
        assert ex.dataset == "passkey" and ex.id == f"passkey-len2000-depth{ex.meta['depth']:g}-seed3"


def test_passkey_really_at_requested_depth(tok, passkeys):
    for ex in passkeys:
        start = ex.context.index(ex.meta["needle"])
        assert start == ex.meta["needle_char_start"]
        haystack = ex.context.replace(ex.meta["needle"], "", 1)
        measured = n_tokens(tok, ex.context[:start]) / n_tokens(tok, haystack)
        assert measured == pytest.approx(ex.meta["depth"], abs=0.03), ex.id
        assert ex.meta["actual_depth"] == pytest.approx(ex.meta["depth"], abs=0.03)
    assert passkeys[0].context.startswith(passkeys[0].meta["needle"])
    assert passkeys[-1].context.endswith(passkeys[-1].meta["needle"])


def test_prompt_length_is_the_requested_length(tok, passkeys):
    task = get_task("passkey")
    for ex in passkeys:
        assert abs(n_tokens(tok, task.fill(ex.context, ex.input)) - 2000) <= 5
        prompt = build_prompt(task, ex, tok, 3500, "chat_template")
        assert not prompt.truncated and prompt.chat_applied


def test_haystack_is_cut_from_real_longbench_contexts(longbench_dir, passkeys):
    sources = [
        e.context for name in ("gov_report", "narrativeqa") for e in load_examples(name, longbench_dir)
    ]
    ex = passkeys[0]  # depth 0: needle first, then the haystack
    snippet = ex.context[len(ex.meta["needle"]) + 1 :][:300]
    assert any(snippet in src for src in sources)


def test_same_haystack_for_every_depth(passkeys):
    stripped = {ex.context.replace(ex.meta["needle"], "").replace("  ", " ").strip() for ex in passkeys}
    lengths = {len(s) for s in stripped}
    assert max(lengths) - min(lengths) <= 2  # only the needle (and a separator) moves


def test_needle_rows_and_scoring(tok, longbench_dir):
    rows = make_probe_examples("needle", [1500, 3000], [0.5], tok, longbench_dir, seed=11)
    assert [e.meta["target_tokens"] for e in rows] == [1500, 3000]
    task = get_task("needle")
    for ex in rows:
        (answer,) = ex.answers
        assert answer in ex.meta["needle"] and ex.context.count(ex.meta["needle"]) == 1
        assert ex.input.endswith("?")
        assert score_example(task, f"It is {answer}.", ex.answers) == 1.0
        assert score_example(task, "I don't know.", ex.answers) == 0.0
        assert abs(n_tokens(tok, task.fill(ex.context, ex.input)) - ex.meta["target_tokens"]) <= 5


def test_passkey_scoring(passkeys):
    ex = passkeys[2]
    key = ex.answers[0]
    assert score_example("passkey", f"The pass key is {key}.", ex.answers) == 1.0
    assert score_example("passkey", "The pass key is 12345.", ex.answers) == (1.0 if key == "12345" else 0.0)


def test_invalid_arguments(tok, longbench_dir):
    with pytest.raises(ValueError, match="probe kind"):
        make_probe_examples("hotpotqa", [1000], [0.5], tok, longbench_dir)
    with pytest.raises(ValueError, match="depth"):
        make_probe_examples("passkey", [1000], [1.5], tok, longbench_dir)
    with pytest.raises(ValueError, match="length"):
        make_probe_examples("passkey", [0], [0.5], tok, longbench_dir)
    with pytest.raises(ValueError, match="too short"):
        make_probe_examples("passkey", [40], [0.5], tok, longbench_dir)
    with pytest.raises(ValueError, match="haystack sources hold only"):
        make_probe_examples("passkey", [500_000], [0.5], tok, longbench_dir, haystack_datasets=("lcc",))
