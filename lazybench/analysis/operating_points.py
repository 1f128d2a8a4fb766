"""Operating points: per model x category x method family, the setting a rule picks from a sweep.

The paper's Table 1 reports, per category and method, one setting out of a sweep (§5.2, Figure 5;
LazyLLM's within ~1% of the baseline's score). This module turns a sweep run into candidates (the
category lines of `lazybench.aggregate.summarize`, one per setting) and applies a rule:

- `score`: the fastest setting whose category score stays within `epsilon` (relative, 1% by
  default: the paper's "negligible (<= 1%) loss") of the baseline's on the same rows;
- `fidelity`: the fastest setting whose output agrees with the baseline's by at least
  `min_fidelity` over the whole output (`fidelity_metric`: the records' ROUGE-L of the output
  against the baseline's, or `prefix_agreement` below), for models whose task scores are noise;
  the first token alone would not do, prefill decides it;
- `target`: the best `target_metric` (score, or a fidelity measure) among settings at least
  `target_speedup` fast.

"Fastest" is by `speed`: the measured pooled TTFT speedup (`ttft_speedup`, as the paper) or the
FLOP-ideal one (`flop_speedup` = 1 / mean prefill FLOP fraction, immune to a shared machine's
timing noise). When no setting passes, the one closest to passing is kept and `passes` is False.

Whole-output agreement measured here (the other numbers come from `lazybench.aggregate`):
- prefix_agreement: words the output shares with the baseline's output from the start, over the
  longer of the two (1.0 when equal, both empty included); a row's repeats are averaged, then rows;
- same_output_pct: % of rows whose output equals the baseline's exactly;
- token_agreement (from the records, lazybench.runner.fidelity): generated token ids shared with
  the baseline's from the start, over the longer output; NaN for records made before it existed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from lazybench import aggregate as agg
from lazybench.columns import BASELINE, OVERALL, PAPER_CATEGORIES, group_sort_key
from lazybench.records import prefix_agreement

RULES = ("score", "fidelity", "target")
SPEEDS = ("ttft_speedup", "flop_speedup")
FIDELITY_METRICS = ("rouge_l_vs_baseline", "prefix_agreement", "same_output_pct", "token_agreement")
#: Columns of a candidate (one setting in one category of one run).
CANDIDATE_COLUMNS = [
    "run_dir", "run", "model", "category", "family", "method", "method_label", "n_rows", "score",
    "baseline_score", "relative_score", "ttft_speedup", "flop_speedup", "generation_speedup",
    "pct_prompt_computed", "first_token_match_pct", "rouge_l_vs_baseline", "prefix_agreement",
    "same_output_pct", "token_agreement",
]  # fmt: skip
GROUP = ["run_dir", "model", "category", "family"]


def common_prefix_fraction(prediction: str, reference: str) -> float:
    """Leading words two outputs share, over the longer one's word count (1.0 for two empty outputs)."""
    return prefix_agreement(str(prediction).split(), str(reference).split())


def output_agreement(records: pd.DataFrame) -> pd.DataFrame:
    """Per (run, method label, row): prefix_agreement and same_output (0/1), averaged over repeats,
    against the baseline's output of the same row."""
    df = agg.records_frame(records)
    chosen = agg.baseline_labels(df)
    is_base = [chosen.get((r, m)) == lab for r, m, lab in zip(df["run_dir"], df["model"], df["method_label"])]
    key = ["run_dir", "model", "dataset", "example_id"]
    base = df.loc[is_base, [*key, "prediction"]].drop_duplicates(key).rename(columns={"prediction": "base"})
    paired = df[[not b for b in is_base]].merge(base, on=key)
    paired["prefix_agreement"] = [
        common_prefix_fraction(p, b) for p, b in zip(paired["prediction"], paired["base"])
    ]
    paired["same_output"] = (paired["prediction"] == paired["base"]).astype(float)
    cols = ["run_dir", "model", "method_label", "category", *key[2:]]
    return paired.groupby(cols, sort=False)[["prefix_agreement", "same_output"]].mean().reset_index()


def candidates(
    records: pd.DataFrame, summary: pd.DataFrame | None = None, level: str = "category"
) -> pd.DataFrame:
    """Every non-baseline setting's lines in the paper's categories, with `family` (the method's registry name), the
    FLOP-ideal speedup and the whole-output agreement columns (CANDIDATE_COLUMNS). `level="overall"`:
    one line per setting over the paper categories' rows together (category "overall"), for a
    setting chosen once for every category."""
    summary = agg.summarize(records) if summary is None else summary
    lines = agg.select_level(summary, level)
    if level == "category":
        lines = lines[lines["group"].isin(PAPER_CATEGORIES)]  # the paper's categories (not probes)
    base = lines["method"].eq(BASELINE) | lines["method_label"].eq(BASELINE)
    out = lines[~base].copy()
    out["family"] = out["method"]
    out["flop_speedup"] = 1.0 / out["prefill_flop_fraction"]
    agree = output_agreement(records)
    if level == OVERALL:  # the rows "overall" covers: the paper categories' (aggregate._in_overall)
        in_paper = agree["category"].isin(PAPER_CATEGORIES)
        agree = agree[in_paper] if in_paper.any() else agree
        agree = agree.assign(category=OVERALL)
    per_cat = agree.groupby(["run_dir", "model", "method_label", "category"], sort=False)
    per_cat = per_cat[["prefix_agreement", "same_output"]].mean().reset_index()
    per_cat["same_output_pct"] = per_cat.pop("same_output") * 100.0
    out = out.merge(per_cat, on=["run_dir", "model", "method_label", "category"], how="left")
    return out[CANDIDATE_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class Rule:
    """How an operating point is picked from a family's settings in one category."""

    kind: str = "score"
    epsilon: float = 0.01
    min_fidelity: float = 0.8
    fidelity_metric: str = "rouge_l_vs_baseline"
    target_speedup: float | None = None
    target_metric: str = "score"
    speed: str = "ttft_speedup"

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise ValueError(f"unknown selection rule {self.kind!r}; choose from {', '.join(RULES)}")
        if self.speed not in SPEEDS:
            raise ValueError(f"unknown speed {self.speed!r}; choose from {', '.join(SPEEDS)}")
        if self.fidelity_metric not in FIDELITY_METRICS:
            raise ValueError(
                f"unknown fidelity metric {self.fidelity_metric!r}; choose from {FIDELITY_METRICS}"
            )
        if self.target_metric not in ("score", *FIDELITY_METRICS):
            raise ValueError(f"unknown target metric {self.target_metric!r}")
        if not 0.0 <= self.epsilon < 1.0:
            raise ValueError(f"epsilon is a relative tolerance in [0, 1), got {self.epsilon}")
        if self.kind == "target" and not (self.target_speedup and self.target_speedup > 0):
            raise ValueError("the target rule needs target_speedup > 0")

    @classmethod
    def from_config(cls, data: dict[str, Any] | None) -> Rule:
        data = dict(data or {})
        if "rule" in data:  # configs and the command line say `rule`
            data["kind"] = data.pop("rule")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown selection keys {unknown}; allowed: rule, {', '.join(list(cls.__dataclass_fields__)[1:])}"
            )
        return cls(**{k: v for k, v in data.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        fast = {"ttft_speedup": "measured TTFT", "flop_speedup": "FLOP-ideal TTFT"}[self.speed]
        if self.kind == "score":
            return f"fastest ({fast}) setting whose score is within {self.epsilon:.0%} of the baseline's"
        if self.kind == "fidelity":
            return f"fastest ({fast}) setting whose {self.fidelity_metric} vs the baseline's output is >= {self.min_fidelity:g}"
        return f"best {self.target_metric} among settings at >= {self.target_speedup:g}x ({fast})"

    def passes(self, frame: pd.DataFrame) -> pd.Series:
        if self.kind == "score":
            return frame["score"] >= frame["baseline_score"] * (1.0 - self.epsilon) - 1e-9
        if self.kind == "fidelity":
            return frame[self.fidelity_metric] >= self.min_fidelity - 1e-12
        return frame[self.speed] >= self.target_speedup - 1e-12

    def merit(self, frame: pd.DataFrame) -> pd.Series:
        """What is maximised when nothing passes (score rule: the score; fidelity: the agreement;
        target: the speed) and, for the target rule, among the settings that pass."""
        if self.kind == "score":
            return frame["score"]
        if self.kind == "fidelity":
            return frame[self.fidelity_metric]
        return frame[self.target_metric]


def _nan_low(values: pd.Series) -> pd.Series:
    return values.astype(float).fillna(-math.inf)


def select(cands: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """One chosen setting per (run, model, category, family): the candidate's columns plus
    `passes` (whether it met the rule) and `rule` (its description)."""
    chosen = []
    for _, group in cands.groupby(GROUP, sort=False):
        ok = rule.passes(group).fillna(False).astype(bool)
        speed, merit = _nan_low(group[rule.speed]), _nan_low(rule.merit(group))
        if ok.any():
            pool = group[ok]
            if rule.kind == "target":  # best metric among the fast enough, then the faster
                order = sorted(pool.index, key=lambda i: (merit[i], speed[i]), reverse=True)
            else:  # the fastest that passes, then the better
                order = sorted(pool.index, key=lambda i: (speed[i], merit[i]), reverse=True)
        elif rule.kind == "target":  # none fast enough: the fastest there is
            order = sorted(group.index, key=lambda i: (speed[i], merit[i]), reverse=True)
        else:  # none good enough: the closest to passing, then the faster
            order = sorted(group.index, key=lambda i: (merit[i], speed[i]), reverse=True)
        best = group.loc[order[0]].to_dict()
        best["passes"] = bool(ok.any())
        chosen.append(best)
    out = pd.DataFrame(chosen, columns=[*CANDIDATE_COLUMNS, "passes"])
    out["rule"] = rule.describe()
    return out.reset_index(drop=True)


def select_one(records: pd.DataFrame, rule: Rule, family: str, summary: pd.DataFrame | None = None):
    """One setting of `family` for every category at once: the rule applied to each setting's line
    over all the paper categories' rows (None when the run has no setting of that family)."""
    pooled = candidates(records, summary, level=OVERALL)
    pooled = pooled[pooled["family"] == family]
    if pooled.empty:
        return None
    return select(pooled, rule).iloc[0]


def method_entries(chosen: pd.DataFrame, records: pd.DataFrame) -> list[dict[str, Any]]:
    """The chosen settings as `methods:` entries: one per distinct label, run only on the categories
    it was chosen for (`categories`), its parameters as the records hold them."""
    params = records.drop_duplicates("method_label").set_index("method_label")
    out: dict[str, dict[str, Any]] = {}
    for line in chosen.itertuples(index=False):
        entry = out.get(line.method_label)
        if entry is None:
            recorded = params.loc[line.method_label]
            entry = {"name": recorded["method"], "label": line.method_label, "categories": []}
            entry.update(dict(recorded["method_params"] or {}))
            out[line.method_label] = entry
        if line.category not in entry["categories"]:
            entry["categories"].append(line.category)
    for entry in out.values():
        entry["categories"].sort(key=group_sort_key)
    return list(out.values())
