"""Per run and per method label: scores, category macro-averages, speedups, accounting and fidelity.

Definitions (every number is per run directory and per `method_label`):

- Repeats first: a stochastic method (random token drop) has several `repeat`s of one example;
  every per-example number is first averaged over its repeats.
- score (dataset) = 100 x mean example score; score (category) = mean of the category's dataset
  scores (LongBench's macro-average); score (overall) = mean of the category scores.
- "overall" covers the paper's six categories when the run has any of them, otherwise everything
  (a probe-only run); probe scores never enter a paper category or a paper-comparable overall.
- Comparisons with the run's baseline use only the examples both ran (`n_shared` of them):
  ttft_speedup = mean baseline TTFT / mean method TTFT over those examples (pooled over the group's
  examples, not averaged per dataset); gen_speedup likewise with `total_s`; relative_score =
  100 x score / baseline score, both macro-averaged over the shared examples (NaN if the baseline
  scored 0).
- Other columns (TTFT, % of prompt computed, FLOP fraction, fidelity) are plain means over the
  method's examples in the group. `first_token_match` is the match rate (0..1); the fidelity columns
  are NaN for the baseline, which is not compared with itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from lazybench.analysis.paper import GROUP_ORDER, PAPER_CATEGORIES, PAPER_METHODS, paper_method
from lazybench.tasks.registry import CATEGORIES, PAPER_DATASETS

RUN_KEY = ["run_dir", "run", "model", "method", "method_label"]
EXAMPLE_KEY = [*RUN_KEY, "category", "dataset", "example_id"]
GROUP_KEY = [*RUN_KEY, "level", "group"]
FIDELITY_COLUMNS = ["first_token_match", "first_token_kl", "rouge_l_vs_baseline"]
MEAN_COLUMNS = [
    "score",
    "ttft_s",
    "decode_s",
    "total_s",
    "pct_prompt_computed",
    "prefill_flop_fraction",
    "prompt_tokens",
    "new_tokens",
    *FIDELITY_COLUMNS,
]
LEVELS = ("dataset", "category", "overall")
SUMMARY_COLUMNS = [
    *RUN_KEY,
    "paper_method",
    "level",
    "group",
    "category",
    "n_examples",
    "n_repeats",
    "n_shared",
    "score",
    "baseline_score",
    "relative_score",
    "ttft_s",
    "baseline_ttft_s",
    "ttft_speedup",
    "total_s",
    "baseline_total_s",
    "gen_speedup",
    "pct_prompt_computed",
    "prefill_flop_fraction",
    "prompt_tokens",
    "new_tokens",
    *FIDELITY_COLUMNS,
]

_DATASET_CATEGORY = {d: c for c, names in CATEGORIES.items() for d in names}


def dataset_category(dataset: str, recorded: str | None = None) -> str:
    """The paper category of a LongBench dataset; other datasets (probes) keep their recorded category."""
    return _DATASET_CATEGORY.get(dataset) or recorded or "other"


def per_example(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, method_label, example): numeric columns averaged over repeats, `n_repeats` added."""
    df = records.copy()
    df["category"] = [dataset_category(d, c) for d, c in zip(df["dataset"], df["category"])]
    grouped = df.groupby(EXAMPLE_KEY, sort=False, dropna=False)
    out = grouped[MEAN_COLUMNS].mean()
    out["n_repeats"] = grouped.size()
    return out.reset_index()


def baseline_labels(examples: pd.DataFrame, baseline: str = "baseline") -> dict[tuple[str, str], str]:
    """The baseline method_label of each (run_dir, model): the label or method named `baseline`."""
    chosen: dict[tuple[str, str], str] = {}
    for (run_dir, model), group in examples.groupby(["run_dir", "model"], sort=False, dropna=False):
        hits = group.loc[(group["method"] == baseline) | (group["method_label"] == baseline), "method_label"]
        labels = sorted(hits.unique())
        if not labels:
            warnings.warn(
                f"{run_dir}: no {baseline!r} records for model {model}; speedups and relative scores are NaN",
                stacklevel=3,
            )
            continue
        if baseline in labels:
            chosen[(run_dir, model)] = baseline
        else:
            if len(labels) > 1:
                warnings.warn(
                    f"{run_dir}: several baseline labels {labels}; using {labels[0]!r}", stacklevel=3
                )
            chosen[(run_dir, model)] = labels[0]
    return chosen


def _overall_rows(examples: pd.DataFrame) -> pd.Series:
    """Which example rows count in 'overall': paper categories if the run has any, else all."""
    in_paper = examples["category"].isin(PAPER_CATEGORIES)
    run_has_paper = in_paper.groupby(examples["run_dir"]).transform("any")
    return in_paper | ~run_has_paper


def _expand(examples: pd.DataFrame) -> pd.DataFrame:
    """Each example row once per level it belongs to (its dataset, its category, overall)."""
    overall = examples[_overall_rows(examples)]
    return pd.concat(
        [
            examples.assign(level="dataset", group=examples["dataset"]),
            examples.assign(level="category", group=examples["category"]),
            overall.assign(level="overall", group="overall"),
        ],
        ignore_index=True,
    )


def _macro(examples: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    """100 x mean per dataset, mean of datasets per category, mean of categories overall."""
    keys = RUN_KEY
    ds = (examples.groupby([*keys, "category", "dataset"], dropna=False)[column].mean() * 100).reset_index()
    cat = ds.groupby([*keys, "category"], dropna=False)[column].mean().reset_index()
    counted = examples.loc[_overall_rows(examples), ["run_dir", "category"]].drop_duplicates()
    overall = (
        cat.merge(counted, on=["run_dir", "category"])
        .groupby(keys, dropna=False)[column]
        .mean()
        .reset_index()
    )
    frames = [
        ds.assign(level="dataset", group=ds["dataset"]).drop(columns=["category", "dataset"]),
        cat.assign(level="category", group=cat["category"]).drop(columns=["category"]),
        overall.assign(level="overall", group="overall"),
    ]
    return pd.concat(frames, ignore_index=True).rename(columns={column: name})


def group_sort_key(group: str) -> tuple[int, int, str]:
    """Datasets first (paper order, then others by name), then categories (paper order), then overall."""
    if group in GROUP_ORDER:
        return (GROUP_ORDER.index(group), 0, "")
    if group in PAPER_DATASETS:
        return (-1, PAPER_DATASETS.index(group), "")
    return (-1, len(PAPER_DATASETS), group)


def method_sort_key(method: str, label: str) -> tuple[int, str]:
    pm = paper_method(method)
    return (PAPER_METHODS.index(pm) if pm in PAPER_METHODS else len(PAPER_METHODS), str(label))


def sort_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs in order of appearance, methods in the paper's order, groups in the paper's order."""
    run_order = {r: i for i, r in enumerate(pd.unique(frame["run_dir"]))}
    keys = pd.Series(
        [
            (
                run_order[r],
                method_sort_key(m, lab),
                LEVELS.index(lv) if lv in LEVELS else 9,
                group_sort_key(g),
            )
            for r, m, lab, lv, g in zip(
                frame["run_dir"], frame["method"], frame["method_label"], frame["level"], frame["group"]
            )
        ],
        index=frame.index,
    )
    return frame.loc[keys.sort_values(kind="stable").index].reset_index(drop=True)


def _comparisons(paired: pd.DataFrame) -> pd.DataFrame:
    """Per group, from (method, baseline) example pairs: speedups (ratio of mean times) and relative score."""
    pairs = (
        _expand(paired)
        .groupby(GROUP_KEY, dropna=False)
        .agg(
            n_shared=("example_id", "size"),
            shared_ttft_s=("ttft_s", "mean"),
            baseline_ttft_s=("ttft_s_base", "mean"),
            shared_total_s=("total_s", "mean"),
            baseline_total_s=("total_s_base", "mean"),
        )
        .reset_index()
    )
    pairs["ttft_speedup"] = pairs["baseline_ttft_s"] / pairs["shared_ttft_s"]
    pairs["gen_speedup"] = pairs["baseline_total_s"] / pairs["shared_total_s"]
    scores = _macro(paired, "score", "shared_score").merge(
        _macro(paired, "score_base", "baseline_score"), on=GROUP_KEY
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 100.0 * scores["shared_score"] / scores["baseline_score"]
    scores["relative_score"] = ratio.where(scores["baseline_score"] != 0)
    pairs = pairs.merge(scores, on=GROUP_KEY, how="left")
    keep = [
        "n_shared",
        "baseline_score",
        "relative_score",
        "baseline_ttft_s",
        "ttft_speedup",
        "baseline_total_s",
        "gen_speedup",
    ]
    return pairs[[*GROUP_KEY, *keep]]


def summarize(records: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """The long summary: one row per (run, method_label, level, group); see the module docstring.

    `level` is "dataset", "category" or "overall"; `group` names the dataset / category / "overall";
    `category` is the group's category ("overall" for the overall row).
    """
    if records.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    ex = per_example(records)
    expanded = _expand(ex)

    agg = {"n_examples": ("example_id", "size"), "n_repeats": ("n_repeats", "max")}
    agg.update({c: (c, "mean") for c in MEAN_COLUMNS if c != "score"})
    out = expanded.groupby(GROUP_KEY, dropna=False).agg(**agg).reset_index()
    out = out.merge(_macro(ex, "score", "score"), on=GROUP_KEY, how="left")
    cat_of = dict(zip(expanded["group"], expanded["category"]))
    out["category"] = [g if lv != "dataset" else cat_of[g] for lv, g in zip(out["level"], out["group"])]

    chosen = baseline_labels(ex, baseline)
    base_mask = pd.Series(
        [chosen.get((r, m)) == lab for r, m, lab in zip(ex["run_dir"], ex["model"], ex["method_label"])],
        index=ex.index,
        dtype=bool,
    )
    base = ex.loc[base_mask, ["run_dir", "model", "dataset", "example_id", "score", "ttft_s", "total_s"]]
    paired = ex.merge(base, on=["run_dir", "model", "dataset", "example_id"], suffixes=("", "_base"))
    out = out.merge(_comparisons(paired), on=GROUP_KEY, how="left")
    out["n_shared"] = out["n_shared"].fillna(0).astype(int)
    out["paper_method"] = out["method"].map(paper_method)
    return sort_summary(out[SUMMARY_COLUMNS])


def select_level(summary: pd.DataFrame, level: str) -> pd.DataFrame:
    """Rows of one level ("dataset", "category" or "overall") of a summary."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    return summary[summary["level"] == level].reset_index(drop=True)


def dataset_scores(records: pd.DataFrame) -> pd.DataFrame:
    """run, method_label, dataset, score (100 x mean example score, repeats averaged first)."""
    s = select_level(summarize(records), "dataset")
    return s[["run", "run_dir", "method_label", "category", "group", "score"]].rename(
        columns={"group": "dataset"}
    )


def category_scores(records: pd.DataFrame) -> pd.DataFrame:
    """run, method_label, category (the categories present, then "overall"), macro-averaged score."""
    s = summarize(records)
    s = s[s["level"] != "dataset"]
    return s[["run", "run_dir", "method_label", "category", "score"]].reset_index(drop=True)


def pareto_frontier(x, y) -> np.ndarray:
    """Boolean mask of the points not dominated when both x and y are to be maximised.

    A point is dominated when another point is at least as good in both and better in one. Equal
    points are all on the frontier; points with a NaN coordinate never are.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    ok = ~(np.isnan(x) | np.isnan(y))
    on = np.zeros(x.shape, dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        dominated = others & (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
        on[i] = not dominated.any()
    return on
