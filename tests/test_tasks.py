"""Registry, suites, data loading and prompt building (SmolLM2 tokenizer, offline)."""

import hashlib
import json
import lzma
from pathlib import Path

import pytest

from lazybench.tasks import (
    CATEGORIES,
    OFFLINE_LABEL,
    PAPER_DATASETS,
    DataFormatError,
    DataNotFoundError,
    Example,
    MissingFieldError,
    PromptTooLongError,
    Suite,
    UnknownTaskError,
    build_prompt,
    generation_settings,
    get_suite,
    get_task,
    list_tasks,
    load_examples,
    load_tokenizer,
    postprocess,
    published_sizes,
    resolve_source,
    select_examples,
    write_offline_slice,
)
from lazybench.tasks.lengths import main as lengths_main

# Rows per dataset in the bundled offline slice (lazybench/data/longbench/offline/SOURCES.md).
SHARED_ROWS = {
    "narrativeqa": 6,
    "qasper": 9,
    "multifieldqa_en": 7,
    "hotpotqa": 13,
    "2wikimqa": 13,
    "musique": 7,
    "gov_report": 12,
    "qmsum": 6,
    "multi_news": 11,
    "trec": 8,
    "triviaqa": 12,
    "samsum": 15,
    "passage_count": 4,
    "passage_retrieval_en": 15,
    "lcc": 26,
    "repobench-p": 23,
}
# The protocol's table of max_new_tokens.
PROTOCOL_MAX_NEW = {
    **dict.fromkeys(["narrativeqa", "qasper"], 128),
    "multifieldqa_en": 64,
    **dict.fromkeys(["hotpotqa", "2wikimqa", "musique"], 32),
    **dict.fromkeys(["gov_report", "qmsum", "multi_news"], 512),
    "trec": 64,
    "triviaqa": 32,
    "samsum": 128,
    "passage_count": 32,
    "passage_retrieval_en": 32,
    **dict.fromkeys(["lcc", "repobench-p"], 64),
}
NO_CHAT = {"trec", "triviaqa", "samsum", "lcc", "repobench-p"}
XGEN_HEADER_LITERAL = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the human's questions.\n\n"
)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2-135m")  # cached in-process: loaded once per test session


def small_example(dataset: str, context: str = "Alice lives in Paris.", question: str = "Where?") -> Example:
    return Example("x", dataset, question, context, ["Paris"], None, 5)


# --- registry -------------------------------------------------------------------------------------


def test_registry_has_16_datasets_in_6_categories():
    assert CATEGORIES == {
        "single_doc_qa": ["narrativeqa", "qasper", "multifieldqa_en"],
        "multi_doc_qa": ["hotpotqa", "2wikimqa", "musique"],
        "summarization": ["gov_report", "qmsum", "multi_news"],
        "few_shot": ["trec", "triviaqa", "samsum"],
        "synthetic": ["passage_count", "passage_retrieval_en"],
        "code_completion": ["lcc", "repobench-p"],
    }
    assert len(PAPER_DATASETS) == 16
    assert list_tasks(include_probes=False) == list(PAPER_DATASETS)
    for category, names in CATEGORIES.items():
        for name in names:
            assert get_task(name).category == category


def test_task_fields_follow_protocol():
    for name in PAPER_DATASETS:
        task = get_task(name)
        assert task.max_new_tokens == PROTOCOL_MAX_NEW[name]
        assert task.chat is (name not in NO_CHAT)
        assert task.first_line_only is (name in {"trec", "triviaqa", "samsum"})
        assert task.stop_on_newline is (name == "samsum")
    metrics = {name: get_task(name).metric for name in PAPER_DATASETS}
    assert metrics["trec"] == "classification" and metrics["lcc"] == "code_sim"
    assert metrics["passage_count"] == "count" and metrics["passage_retrieval_en"] == "retrieval"
    assert {metrics[n] for n in ("gov_report", "qmsum", "multi_news", "samsum")} == {"rouge_l"}
    assert (
        get_task("repobench-p").template
        == "Please complete the code given below. \n{context}{input}Next line of code:\n"
    )


def test_templates_are_the_verbatim_upstream_files():
    """Byte-identical to LongBench's config files (the sha256 of the upstream blobs)."""
    upstream = {
        "dataset2prompt.json": "56d22ad4f382169c2b8a11ff4c982a4a1bea096c8152b0f0b85b64686b157c30",
        "dataset2maxlen.json": "72966b3c0933e214591637fb085798c5e687ebff4ddaab5d99bbc31120532022",
    }
    for fname, sha in upstream.items():
        assert hashlib.sha256((REPO / "lazybench/data/longbench" / fname).read_bytes()).hexdigest() == sha
    prompts = json.loads((REPO / "lazybench/data/longbench/dataset2prompt.json").read_text())
    assert all(get_task(n).template == prompts[n] for n in PAPER_DATASETS)


def test_unknown_task_error_lists_names():
    with pytest.raises(UnknownTaskError) as info:
        get_task("hotpot")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    assert "hotpot" in str(info.value) and "hotpotqa" in str(info.value) and "passkey" in str(info.value)


# --- suites ---------------------------------------------------------------------------------------


def test_builtin_suites_resolve():
    assert get_suite("qa").datasets == (
        "narrativeqa",
        "qasper",
        "multifieldqa_en",
        "hotpotqa",
        "2wikimqa",
        "musique",
    )
    assert get_suite("summarization").datasets == ("gov_report", "qmsum", "multi_news")
    assert get_suite("code").datasets == ("lcc", "repobench-p")
    assert get_suite("paper").datasets == PAPER_DATASETS
    smoke = get_suite("smoke")
    assert smoke.datasets == (
        "multifieldqa_en",
        "hotpotqa",
        "qmsum",
        "triviaqa",
        "passage_retrieval_en",
        "lcc",
    )
    assert smoke.limit == 1 and smoke.max_new_tokens_cap == 32
    assert smoke.max_new_tokens("qmsum") == 32 and get_suite("paper").max_new_tokens("qmsum") == 512
    with pytest.raises(UnknownTaskError, match="smoke"):
        get_suite("smok")


def test_smoke_suite_loads_one_row_each(longbench_dir):
    smoke = get_suite("smoke")
    for task in smoke.tasks():
        rows = smoke.examples(task.name, data_dir=longbench_dir)
        assert len(rows) == 1 and rows[0].id == f"minilongbench-{task.name}-000"
        assert rows[0].source == f"folder {longbench_dir}"
        (bundled,) = smoke.examples(task.name)  # no source given: the bundled offline slice
        assert bundled.source == OFFLINE_LABEL and bundled.context == rows[0].context


def test_suite_from_dict():
    suite = Suite.from_dict(
        {
            "name": "mine",
            "datasets": ["hotpotqa", "few_shot", "trec"],
            "limit": 3,
            "seed": 7,
            "max_new_tokens_cap": 16,
        }
    )
    assert suite.datasets == ("hotpotqa", "trec", "triviaqa", "samsum")
    assert (suite.limit, suite.seed, suite.max_new_tokens_cap) == (3, 7, 16)
    assert Suite.from_dict({"name": "all", "datasets": "all"}).datasets == PAPER_DATASETS
    with pytest.raises(UnknownTaskError, match="hotpot"):
        Suite.from_dict({"name": "bad", "datasets": ["hotpot"]})
    with pytest.raises(ValueError, match="unknown suite keys"):
        Suite.from_dict({"name": "bad", "datasets": ["lcc"], "limt": 3})
    with pytest.raises(ValueError, match="probe"):
        Suite("bad", ("passkey",))
    with pytest.raises(ValueError, match="limit"):
        Suite("bad", ("lcc",), limit=0)
    with pytest.raises(TypeError, match="limit"):
        Suite("bad", ("lcc",), limit="3")


# --- data loading ---------------------------------------------------------------------------------


def test_load_all_16_datasets_offline(longbench_dir):
    for name in PAPER_DATASETS:
        rows = load_examples(name, data_dir=longbench_dir)
        assert len(rows) == SHARED_ROWS[name], name
        for ex in rows:
            assert ex.dataset == name and isinstance(ex.context, str) and ex.context
            assert isinstance(ex.input, str)
            assert ex.answers and all(isinstance(a, str) for a in ex.answers)
            assert (ex.all_classes is not None) is (name == "trec")
            assert isinstance(ex.length, int) and ex.length > 0


def test_offline_slice_is_the_default_and_byte_identical_to_its_sources(tmp_path):
    """187 rows; decompressed, each file has the sha256 of the copy it was made from (SOURCES.md)."""
    from lazybench.tasks.sources import offline_manifest

    manifest = offline_manifest()["datasets"]
    assert {k: v["rows"] for k, v in manifest.items()} == SHARED_ROWS and sum(SHARED_ROWS.values()) == 187
    folder = write_offline_slice(tmp_path / "slice")
    packaged = REPO / "lazybench/data/longbench/offline"
    sources_md = (packaged / "SOURCES.md").read_text()
    for name, entry in manifest.items():
        raw = (folder / f"{name}.jsonl").read_bytes()
        assert raw == lzma.decompress((packaged / f"{name}.jsonl.xz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"] and entry["sha256"] in sources_md
        rows = load_examples(name)
        assert len(rows) == entry["rows"] and {ex.source for ex in rows} == {OFFLINE_LABEL}
        assert [ex.id for ex in rows] == [ex.id for ex in load_examples(name, data_dir=folder)]
    assert resolve_source(None).label == OFFLINE_LABEL == resolve_source("offline").label


def test_published_sizes_are_longbench_s():
    sizes = published_sizes()
    assert sorted(sizes) == sorted(PAPER_DATASETS) and sum(sizes.values()) == 3750
    assert sizes["multifieldqa_en"] == 150 and sizes["lcc"] == sizes["repobench-p"] == 500


def test_env_var_overrides_only_the_default(longbench_dir, monkeypatch):
    monkeypatch.setenv("LAZYBENCH_LONGBENCH_DIR", str(longbench_dir))
    rows = load_examples("lcc")
    assert len(rows) == 26 and rows[0].source == f"folder {longbench_dir}"
    assert load_examples("lcc", data_dir="offline")[0].source == OFFLINE_LABEL  # explicit wins
    monkeypatch.setenv("LAZYBENCH_LONGBENCH_DIR", "/nonexistent/longbench")
    with pytest.raises(DataNotFoundError, match=r"\$LAZYBENCH_LONGBENCH_DIR"):
        load_examples("lcc")


def test_limit_and_seed_selection(longbench_dir):
    rows = load_examples("lcc", data_dir=longbench_dir)
    first = load_examples("lcc", data_dir=longbench_dir, limit=3)
    assert [e.id for e in first] == [e.id for e in rows[:3]]
    picked = load_examples("lcc", data_dir=longbench_dir, limit=5, seed=13)
    again = load_examples("lcc", data_dir=longbench_dir, limit=5, seed=13)
    assert [e.id for e in picked] == [e.id for e in again]
    assert [e.id for e in picked] != [e.id for e in rows[:5]]
    positions = [rows.index(e) for e in picked]
    assert positions == sorted(positions)  # returned in file order
    # the pick depends on ids, not positions: a reversed copy gives the same rows
    assert {e.id for e in select_examples(rows[::-1], 5, 13)} == {e.id for e in picked}
    assert len(load_examples("lcc", data_dir=longbench_dir, limit=100, seed=1)) == 26


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD_ROW = {
    "input": "q?",
    "context": "ctx",
    "answers": ["a"],
    "dataset": "hotpotqa",
    "_id": "r1",
    "length": 3,
}


def test_malformed_line_names_file_and_line(tmp_path):
    _write(tmp_path / "hotpotqa.jsonl", [json.dumps(GOOD_ROW), '{"input": "q?", "context": '])
    with pytest.raises(DataFormatError, match=r"hotpotqa\.jsonl:2: malformed JSON"):
        load_examples("hotpotqa", data_dir=tmp_path)


def test_missing_field_names_field_file_and_line(tmp_path):
    row = {k: v for k, v in GOOD_ROW.items() if k != "answers"}
    _write(tmp_path / "hotpotqa.jsonl", [json.dumps(GOOD_ROW), "", json.dumps(row)])
    with pytest.raises(
        MissingFieldError, match=r"hotpotqa\.jsonl:3: missing required field 'answers'"
    ) as info:
        load_examples("hotpotqa", data_dir=tmp_path)
    assert info.value.field == "answers" and info.value.line == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answers": "a"}, "'answers' must be a list of strings"),
        ({"answers": []}, "'answers' is empty"),
        ({"context": 3}, "'context' must be a string"),
        ({"dataset": "musique"}, "belongs to dataset 'musique'"),
        ({"length": "3"}, "'length' must be an integer"),
    ],
)
def test_bad_field_values(tmp_path, change, message):
    _write(tmp_path / "hotpotqa.jsonl", [json.dumps({**GOOD_ROW, **change})])
    with pytest.raises(DataFormatError, match=message):
        load_examples("hotpotqa", data_dir=tmp_path)


def test_missing_optional_fields_are_filled(tmp_path):
    _write(tmp_path / "hotpotqa.jsonl", [json.dumps({"input": "q?", "context": "c d", "answers": ["a"]})])
    (ex,) = load_examples("hotpotqa", data_dir=tmp_path)
    assert ex.id == "hotpotqa-0000" and ex.length == 4 and ex.all_classes is None


def test_unknown_dataset_and_missing_file(tmp_path):
    with pytest.raises(UnknownTaskError):
        load_examples("hotpot", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match=r"qasper\.jsonl"):
        load_examples("qasper", data_dir=tmp_path)
    with pytest.raises(ValueError, match="probe"):
        load_examples("passkey", data_dir=tmp_path)


# --- prompt building ------------------------------------------------------------------------------


def test_short_prompt_is_not_truncated(tok):
    task = get_task("hotpotqa")
    ex = small_example("hotpotqa")
    prompt = build_prompt(task, ex, tok, 3500, "none")
    expected = task.template.format(context=ex.context, input=ex.input)
    assert prompt.text == expected and not prompt.truncated and not prompt.chat_applied
    assert prompt.input_ids == tok(expected).input_ids  # pred.py: default special tokens
    assert prompt.n_tokens_before_truncation == len(tok(expected).input_ids)


def test_middle_truncation_keeps_head_and_tail(tok, longbench_dir):
    task = get_task("narrativeqa")
    ex = load_examples("narrativeqa", data_dir=longbench_dir, limit=1)[0]
    full = task.template.format(context=ex.context, input=ex.input)
    ids = tok(full).input_ids  # pred.py: default special tokens
    assert len(ids) > 1000
    prompt = build_prompt(task, ex, tok, 1001, "none")  # odd: half = int(1001 / 2) = 500
    assert prompt.truncated and prompt.n_tokens_before_truncation == len(ids)
    assert prompt.text == tok.decode(ids[:500], skip_special_tokens=True) + tok.decode(
        ids[-500:], skip_special_tokens=True
    )
    assert prompt.text.startswith("You are given a story, which can be either a novel or a movie script")
    assert prompt.text.endswith(f"Question: {ex.input}\n\nAnswer:")
    assert abs(len(prompt.input_ids) - 1000) <= 5  # re-tokenisation may merge at the seam
    assert ex.context[len(ex.context) // 2 : len(ex.context) // 2 + 200] not in prompt.text


class BosCharTokenizer:
    """Characters as ids, with a BOS (id 1) added by default, as a Llama tokenizer does."""

    def __call__(self, text, add_special_tokens=True, verbose=True):
        return {"input_ids": ([1] if add_special_tokens else []) + [ord(c) for c in text]}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i == 1))


def test_truncation_counts_the_bos_as_pred_py_does():
    """pred.py measures and cuts the prompt as tokenized with BOS: the BOS takes one head slot."""
    task = get_task("trec")  # no chat wrapper
    ex = small_example("trec")
    full = task.template.format(context=ex.context, input=ex.input)
    prompt = build_prompt(task, ex, BosCharTokenizer(), 10, "none")
    assert prompt.n_tokens_before_truncation == len(full) + 1
    assert prompt.text == full[:4] + full[-5:]  # head: BOS + 4 characters; tail: 5
    assert prompt.input_ids == [1] + [ord(c) for c in prompt.text]


def test_truncation_disabled_and_context_limit(tok, longbench_dir):
    task = get_task("narrativeqa")
    ex = load_examples("narrativeqa", data_dir=longbench_dir, limit=1)[0]
    with pytest.raises(PromptTooLongError, match="truncation is disabled"):
        build_prompt(task, ex, tok, 1000, "none", truncate=False)
    with pytest.raises(PromptTooLongError, match="context of 2048"):
        build_prompt(task, ex, tok, None, "none", context_limit=2048)
    # the chat wrapper is added after truncation, so it can push a cut prompt over the limit
    with pytest.raises(PromptTooLongError):
        build_prompt(task, ex, tok, 1000, "chat_template", context_limit=1000)
    assert build_prompt(task, ex, tok, 1000, "chat_template", context_limit=1100).n_tokens <= 1100
    with pytest.raises(ValueError, match="max_length"):
        build_prompt(task, ex, tok, 1, "none")


@pytest.mark.parametrize("name", PAPER_DATASETS)
def test_chat_wrapper_applied_per_dataset(tok, name):
    task = get_task(name)
    ex = small_example(name)
    raw = task.template.format(context=ex.context, input=ex.input)
    llama = build_prompt(task, ex, tok, 3500, "llama2")
    xgen = build_prompt(task, ex, tok, 3500, "xgen")
    templ = build_prompt(task, ex, tok, 3500, "chat_template")
    if name in NO_CHAT:
        assert llama.text == xgen.text == templ.text == raw
        assert not (llama.chat_applied or xgen.chat_applied or templ.chat_applied)
    else:
        assert llama.text == "[INST]" + raw + "[/INST]"
        assert xgen.text == XGEN_HEADER_LITERAL + " ### Human: " + raw + "\n###"
        assert templ.text.startswith("<|im_start|>") and templ.text.endswith("<|im_start|>assistant\n")
        assert llama.chat_applied and xgen.chat_applied and templ.chat_applied


def test_chat_template_is_not_given_a_second_bos(tok):
    task = get_task("qasper")
    ex = small_example("qasper")
    prompt = build_prompt(task, ex, tok, 3500, "chat_template")
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": task.template.format(context=ex.context, input=ex.input)}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.text == rendered
    assert prompt.input_ids == tok(rendered, add_special_tokens=False).input_ids
    first = tok.convert_tokens_to_ids("<|im_start|>")
    assert prompt.input_ids[0] == first and prompt.input_ids[1] != first


def test_unknown_chat_style(tok):
    with pytest.raises(ValueError, match="chat_style"):
        build_prompt(get_task("qasper"), small_example("qasper"), tok, 3500, "vicuna")


def test_generation_settings(tok):
    newline = tok.encode("\n", add_special_tokens=False)[-1]
    samsum = generation_settings(get_task("samsum"), tok)
    assert samsum.max_new_tokens == 128 and samsum.stop_token_ids == (newline,) and samsum.min_new_tokens == 1
    assert tok.decode([newline]) == "\n"
    hotpot = generation_settings(get_task("hotpotqa"), tok)
    assert hotpot.max_new_tokens == 32 and hotpot.stop_token_ids == () and hotpot.min_new_tokens == 0
    assert generation_settings(get_task("gov_report"), tok, max_new_tokens_cap=32).max_new_tokens == 32
    assert generation_settings(get_task("hotpotqa"), tok, max_new_tokens_cap=64).max_new_tokens == 32


def test_postprocess():
    task = get_task("hotpotqa")
    assert postprocess(task, "  Assistant: Paris \n", "xgen") == " Paris"
    assert postprocess(task, "  Assistant: Paris \n", "llama2") == "  Assistant: Paris \n"
    assert postprocess(task, "Paris\nmore", "none") == "Paris\nmore"  # first-line cut is scoring's job


# --- prompt-length tool ---------------------------------------------------------------------------


def test_lengths_cli(longbench_dir, capsys):
    assert (
        lengths_main(["--datasets", "2wikimqa,lcc", "--max-length", "3500", "--data-dir", str(longbench_dir)])
        == 0
    )
    out = capsys.readouterr().out
    assert "### max_length=3500" in out and "| dataset | rows |" in out
    lines = [line for line in out.splitlines() if line.startswith("| 2wikimqa") or line.startswith("| lcc")]
    assert len(lines) == 2
    assert lines[0].split("|")[2].strip() == "13" and lines[1].split("|")[2].strip() == "26"
