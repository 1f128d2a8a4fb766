"""FIXTURE DATA: a synthetic run folder for tests and for trying the analysis without a real run.

Nothing here is measured. The numbers are made up (a seeded random generator shaped like a real
run: LongBench datasets, a baseline, two LazyLLM schedules, random token drop with repeats, static
pruning, and passkey/needle probes over depth x length) so that tables, plots and notebooks can be
exercised before real results exist. Every record says so: run_id "FIXTURE-synthetic", model
"FIXTURE-synthetic-model" and extra["fixture"] = True; the config.yaml says it too.
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from lazybench.records import RECORDS_FILE, RunRecord
from lazybench.tasks.probes import PROBE_TASKS, probe_id
from lazybench.tasks.registry import PROBE_CATEGORY

FIXTURE_RUN_ID = "FIXTURE-synthetic"
FIXTURE_MODEL = "FIXTURE-synthetic-model"
NUM_LAYERS = 30

_LAZY_SCHEDULES = {
    "lazyllm[depth[0.3:0.7,0.6:0.4,0.9:0.1]]": ([0.3, 0.6, 0.9], [0.7, 0.4, 0.1]),
    "lazyllm[depth[0.2:0.5,0.5:0.2,0.8:0.05]]": ([0.2, 0.5, 0.8], [0.5, 0.2, 0.05]),
}
_DATASETS = ("narrativeqa", "hotpotqa", "2wikimqa", "gov_report", "trec", "passage_count", "lcc")
_CATEGORY = {
    "narrativeqa": "single_doc_qa",
    "hotpotqa": "multi_doc_qa",
    "2wikimqa": "multi_doc_qa",
    "gov_report": "summarization",
    "trec": "few_shot",
    "passage_count": "synthetic",
    "lcc": "code_completion",
}


def _layer_keep(boundaries: list[float], keep: list[float]) -> list[float]:
    starts = [int(b * NUM_LAYERS + 1e-9) for b in boundaries]
    fractions = []
    for layer in range(NUM_LAYERS):
        stage = sum(layer >= s for s in starts)
        fractions.append(1.0 if stage == 0 else keep[stage - 1])
    return fractions


def _record(
    rng: random.Random,
    example_id: str,
    dataset: str,
    category: str,
    method: str,
    label: str,
    params: dict,
    repeat: int,
    prompt: int,
    layer_keep: list[float],
    quality: float,
    base_score: float,
    extra: dict,
) -> RunRecord:
    computed = [round(prompt * k) for k in layer_keep]
    fraction = sum(layer_keep) / NUM_LAYERS
    new_tokens = rng.randint(8, 32)
    ttft = 2e-4 * prompt * (0.15 + 0.85 * fraction) * rng.uniform(0.95, 1.05)
    step = 0.02 * rng.uniform(0.95, 1.05)
    decode = step * (new_tokens - 1)
    if category == PROBE_CATEGORY:  # probes are pass/fail
        score = float(quality)
    else:
        score = min(1.0, max(0.0, base_score * quality + rng.uniform(-0.05, 0.05) * (method != "baseline")))
    compared = method != "baseline"
    return RunRecord(
        run_id=FIXTURE_RUN_ID,
        example_id=example_id,
        dataset=dataset,
        category=category,
        method=method,
        method_label=label,
        method_params=params,
        repeat=repeat,
        seed=repeat,
        model=FIXTURE_MODEL,
        prompt_tokens=prompt,
        truncated=False,
        ttft_s=ttft,
        decode_s=decode,
        total_s=ttft + decode,
        decode_step_mean_s=step if new_tokens > 1 else None,
        new_tokens=new_tokens,
        stop_reason="eos",
        pct_prompt_computed=100.0 * min(1.0, fraction + (0.02 if method == "lazyllm" else 0.0)),
        prefill_flop_fraction=fraction,
        pruned=fraction < 1.0,
        computed_per_layer=computed,
        kv_tokens_per_layer=[c + new_tokens for c in computed],
        prediction="(fixture)",
        answers=["(fixture)"],
        score=score,
        first_token_match=(rng.random() < quality) if compared else None,
        first_token_kl=rng.uniform(0.0, 1.0 - quality + 0.05) if compared else None,
        rouge_l_vs_baseline=min(1.0, quality * rng.uniform(0.8, 1.0)) if compared else None,
        device="cpu",
        versions={"fixture": "synthetic"},
        extra={"fixture": True, **extra},
    )


def write_fixture_run(
    run_dir: str | Path, seed: int = 0, examples_per_dataset: int = 3, probes: bool = True
) -> Path:
    """Write a synthetic run (records.jsonl + config.yaml) into `run_dir`; return the records path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RECORDS_FILE
    config = {
        "run_id": FIXTURE_RUN_ID,
        "model": FIXTURE_MODEL,
        "suite": "fixture",
        "methods": ["baseline", *_LAZY_SCHEDULES, "random_token_drop", "static_token_pruning"],
    }
    (run_dir / "config.yaml").write_text(
        "# FIXTURE: synthetic records written by lazybench.analysis.fixture; no number here was measured.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    rng = random.Random(seed)
    methods = [("baseline", "baseline", {}, 1, [1.0] * NUM_LAYERS, 1.0)]
    for label, (bounds, keep) in _LAZY_SCHEDULES.items():
        quality = 0.98 if keep[0] >= 0.7 else 0.9
        params = {"schedule": {"boundaries": bounds, "keep": keep, "unit": "depth"}}
        methods.append(("lazyllm", label, params, 1, _layer_keep(bounds, keep), quality))
    methods.append(("random_token_drop", "random_token_drop[0.3]", {"drop": 0.3}, 3, [0.7] * NUM_LAYERS, 0.8))
    static_keep = _layer_keep([0.1], [0.5])
    methods.append(
        ("static_token_pruning", "static_token_pruning[0.1:0.5]", {"keep": 0.5}, 1, static_keep, 0.85)
    )

    units = []
    for dataset in _DATASETS:
        for i in range(examples_per_dataset):
            units.append(
                (f"{dataset}-{i}", dataset, _CATEGORY[dataset], rng.randint(800, 3500), rng.random(), {})
            )
    if probes:  # ids and extra as the runner writes them for the probe benchmark's rows
        for kind in PROBE_TASKS:
            for length in (512, 1024, 2048):
                for depth in (0.0, 0.25, 0.5, 0.75, 1.0):
                    extra = {"depth": depth, "target_tokens": length, "actual_depth": depth}
                    units.append((probe_id(kind, length, depth, 0), kind, PROBE_CATEGORY, length, 1.0, extra))
    lines = []
    for method, label, params, repeats, layer_keep, quality in methods:
        for example_id, dataset, category, prompt, base_score, extra in units:
            for repeat in range(repeats):
                q = quality
                if (
                    category == PROBE_CATEGORY and method != "baseline"
                ):  # pruning loses needles deep in long prompts
                    q = 1.0 if rng.random() < quality - 0.3 * extra["depth"] * prompt / 2048 + 0.2 else 0.0
                rec = _record(
                    rng,
                    example_id,
                    dataset,
                    category,
                    method,
                    label,
                    params,
                    repeat,
                    prompt,
                    layer_keep,
                    q,
                    base_score,
                    extra,
                )
                lines.append(rec.to_json() + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path
