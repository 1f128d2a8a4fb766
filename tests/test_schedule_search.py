"""Schedule search: the preset, its search space (valid schedules only), the quality objective, and a
3-trial Optuna multirun on a tiny random-init model whose Pareto set the callback writes."""

from __future__ import annotations

import itertools
import json
import random
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from lazybench.aggregate import FIDELITY_WEIGHT, quality
from lazybench.engine import Schedule
from lazybench.runner import conf_dir
from lazybench.runner.config import to_plain
from lazybench.runner.testing import compose_cfg, make_tiny_model, run_tiny_multirun

PRESET = conf_dir() / "experiment" / "schedule_search.yaml"


def compose_preset(overrides=()):
    return compose_cfg(["experiment=schedule_search", *overrides], hydra_config=True)


def test_preset_is_a_seeded_two_objective_optuna_search():
    cfg = compose_preset()
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert list(sweeper.direction) == ["maximize", "maximize"]
    assert sweeper.sampler._target_ == "optuna.samplers.NSGAIISampler" and sweeper.sampler.seed == 0
    assert 4 <= sweeper.n_trials <= 40
    assert list(cfg.objective) == ["quality", "ttft_speedup"]
    assert set(sweeper.params) == {
        f"schedule_search.{k}" for k in ("first_boundary", "spacing", "first_keep", "decay")
    }
    assert cfg.hydra.callbacks.pareto_schedules._target_ == "lazybench.runner.search.ParetoSchedules"
    assert cfg.suite.name == "smoke" and cfg.suite.max_new_tokens_cap == 16 and cfg.model.max_length == 1500
    assert cfg.name == "schedule_search-smollm2-135m-smoke"
    # the schedule is derived from the search block
    assert to_plain(cfg.method.schedule) == {
        "boundaries": [0.3, 0.6, 0.9],
        "keep": [0.7, 0.35, 0.175],
        "unit": "depth",
    }
    point = compose_preset(["schedule_search.first_boundary=0.123", "schedule_search.decay=0.9"])
    assert to_plain(point.method.schedule)["boundaries"] == [0.12, 0.42, 0.72]
    assert to_plain(point.method.schedule)["keep"] == [0.7, 0.63, 0.567]


def test_resolvers():
    node = OmegaConf.create(
        {
            "a": "${lazybench.arithmetic:0.15,0.2,4}",
            "g": "${lazybench.geometric:0.8,0.5,3}",
            "r": "${lazybench.arithmetic:0.1049,0.1051,3,3}",
        }
    )
    assert to_plain(node) == {"a": [0.15, 0.35, 0.55, 0.75], "g": [0.8, 0.4, 0.2], "r": [0.105, 0.21, 0.315]}


def _intervals() -> dict[str, tuple[float, float]]:
    params = yaml.safe_load(PRESET.read_text())["hydra"]["sweeper"]["params"]
    out = {}
    for key, text in params.items():
        m = re.fullmatch(r"interval\(([\d.]+),\s*([\d.]+)\)", text)
        assert m, f"{key}: {text}"
        out[key.split(".", 1)[1]] = (float(m.group(1)), float(m.group(2)))
    return out


def test_search_space_yields_only_valid_schedules():
    """Corners and random points of the preset's ranges: a valid schedule for every depth >= 10 layers."""
    preset = OmegaConf.load(PRESET)
    bounds = _intervals()
    rng = random.Random(0)
    corners = [dict(zip(bounds, c)) for c in itertools.product(*bounds.values())]
    points = corners + [{k: rng.uniform(*b) for k, b in bounds.items()} for _ in range(300)]
    for point in points:
        node = OmegaConf.create(
            {"schedule_search": {**to_plain(preset.schedule_search), **point}, "method": preset.method}
        )
        schedule = Schedule.from_config(to_plain(node.method.schedule))  # validates boundaries and keeps
        assert len(schedule.boundaries) == 3
        for layers in (10, 12, 16, 22, 24, 30, 32, 40, 80):
            schedule.resolve(layers)  # raises if two boundaries share a layer or one hits layer 0


def test_quality_breaks_score_ties_by_fidelity_only():
    assert quality(40.0, 0.0) == pytest.approx(40.0 + FIDELITY_WEIGHT)
    assert quality(40.0, 0.1) > quality(40.0, 0.5) > quality(40.0, float("nan")) == 40.0
    assert quality(40.01, 50.0) > quality(40.0, 0.0)  # a real score difference wins
    assert quality(0.0, 0.2) > 0.0  # defined when everything scores 0 (relative score would be 0/0)


# --- a real (tiny) search ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny10(tmp_path_factory):
    """A 10-layer tiny model: the search space guarantees distinct layers from 10 layers on."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny10", num_layers=10)


def _dominated(df: pd.DataFrame, i: int) -> bool:
    q, s = df["quality"].to_numpy(), df["ttft_speedup"].to_numpy()
    return bool(np.any((q >= q[i]) & (s >= s[i]) & ((q > q[i]) | (s > s[i]))))


def test_optuna_search_writes_the_pareto_set(tiny10, longbench_dir, tmp_path):
    from lazybench.analysis import load_runs, select_level, summarize
    from lazybench.records import read_records

    out = tmp_path / "runs"
    proc = run_tiny_multirun(
        tiny10, longbench_dir, out, "tiny", ["hotpotqa", "triviaqa"],
        ["experiment=schedule_search", "hydra.sweeper.n_trials=3"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = out / "sweeps" / "schedule_search-tiny-tiny"
    assert (sweep / "optimization_results.yaml").is_file()  # the Optuna sweeper ran

    # three trials, each a valid schedule, all different, made from the sampled search parameters
    schedules = []
    for trial in ("0", "1", "2"):
        recs = read_records(sweep / trial / "records.jsonl").records
        assert [r["method"] for r in recs] == ["baseline", "lazyllm"] * 2
        params = recs[1]["method_params"]["schedule"]
        Schedule.from_config(params).resolve(10)
        schedules.append((tuple(params["boundaries"]), tuple(params["keep"])))
        info = json.loads((sweep / trial / "run.json").read_text())
        assert sum(o.startswith("schedule_search.") for o in info["overrides"]) == 4
    assert len(set(schedules)) == 3

    # the Pareto set: every trial, the front flagged as non-dominated in (quality, ttft_speedup)
    table = pd.read_csv(sweep / "pareto_schedules.csv")
    assert list(table["trial"].astype(str)) == ["0", "1", "2"]
    assert {
        (tuple(json.loads(b)), tuple(json.loads(k))) for b, k in zip(table["boundaries"], table["keep"])
    } == set(schedules)
    assert [bool(v) for v in table["on_front"]] == [not _dominated(table, i) for i in range(len(table))]
    assert table["on_front"].any()
    for score, kl, q in zip(table["score"], table["first_token_kl"], table["quality"]):
        assert q == pytest.approx(quality(score, kl))
    assert (sweep / "pareto_schedules.md").read_text().startswith("## Pareto set")
    assert "Pareto set (quality, ttft_speedup)" in proc.stdout

    # Optuna's own front (objectives returned by the jobs) names the same schedules
    solutions = OmegaConf.to_container(OmegaConf.load(sweep / "optimization_results.yaml"))["solutions"]
    front = {tuple(sorted(s["params"].items())) for s in solutions}
    flagged = set()
    for trial in table.loc[table["on_front"], "trial"].astype(str):
        info = json.loads((sweep / trial / "run.json").read_text())
        pairs = (o.split("=", 1) for o in info["overrides"] if o.startswith("schedule_search."))
        flagged.add(tuple(sorted((k, float(v)) for k, v in pairs)))
    assert {tuple((k, float(v)) for k, v in f) for f in front} == flagged

    # the analysis layer loads the sweep: three runs, each with its baseline and schedule
    records = load_runs(sweep)
    assert records["run_dir"].nunique() == 3 and len(records) == 12
    overall = select_level(summarize(records), "overall")
    lazy = overall[overall["method"] == "lazyllm"].set_index("run")
    assert sorted(lazy.index) == ["0", "1", "2"]
    for trial, score in zip(table["trial"].astype(str), table["score"]):
        assert lazy.loc[trial, "score"] == pytest.approx(score)

    # other objective pairs and directions (any sweep): a minimised objective flips its axis
    from lazybench.runner.search import pareto_table

    other = pareto_table(sweep, ["score", "pct_prompt_computed"], ["maximize", "minimize"])
    s, p = other["score"].to_numpy(), other["pct_prompt_computed"].to_numpy()
    expected = [not np.any((s >= s[i]) & (p <= p[i]) & ((s > s[i]) | (p < p[i]))) for i in range(len(other))]
    assert list(other["on_front"]) == expected
