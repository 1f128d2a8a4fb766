"""Tables 1 and 2 of the paper from chosen operating points, the paper's numbers beside ours.

Each cell of the paper's Table 1 is one method at one setting in one category; here each line is
one family's chosen setting (`lazybench.analysis.operating_points`) in one category, measured on
the reported rows, with the setting's label, whether it met the selection rule where it was chosen,
and the paper's score and TTFT speedup for the same method and category (labelled `paper_*`: the
paper's numbers, not ours). The LazyLLM default schedule (the run's method under test) is listed
under every category as a reference line (`lazyllm (default)`), so the chosen points can be read
against the one fixed schedule. Table 2 holds % of prompt computed and generation speedup; the
paper reports them for LazyLLM only.
"""

from __future__ import annotations

import pandas as pd

from lazybench.analysis.paper import (
    PAPER_CATEGORIES,
    check_paper_model,
    paper_method,
    paper_table1,
    paper_table2,
)
from lazybench.columns import BASELINE

#: Family display order: the paper's rows first (its order), then the peers.
FAMILY_ORDER = (
    "random_drop", "static", "selective_context", "lazyllm", "adaptive", "gemfilter", "streamingllm",
    "snapkv", "h2o",
)  # fmt: skip
DEFAULT_ROW = "lazyllm (default)"
TABLE1 = [
    "category", "method", "setting", "chosen_ok", "n_rows", "score", "baseline_score", "relative_score",
    "ttft_speedup", "flop_speedup", "rouge_l_vs_baseline", "prefix_agreement", "token_agreement",
]  # fmt: skip
TABLE2 = ["category", "method", "setting", "n_rows", "pct_prompt_computed", "generation_speedup"]
ONE_SETTING = [
    "category", "method", "setting", "n_rows", "score", "relative_score", "ttft_speedup", "flop_speedup",
    "pct_prompt_computed", "rouge_l_vs_baseline", "prefix_agreement", "token_agreement",
]  # fmt: skip
ONE_ROW = "adaptive (one p)"


def _family_key(family: str) -> int:
    return FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)


def chosen_lines(
    reported: pd.DataFrame, chosen: pd.DataFrame, default_label: str | None, baseline: pd.DataFrame
) -> pd.DataFrame:
    """The reported rows' lines of each chosen setting (`reported`: `operating_points.candidates` of
    the reported run), a baseline line per category and the default schedule's reference line."""
    lines = []
    for category in [c for c in PAPER_CATEGORIES if c in set(chosen["category"]) | set(baseline["category"])]:
        base = baseline[baseline["category"] == category]
        if len(base):
            b = base.iloc[0]
            lines.append({"category": category, "family": BASELINE, "method": BASELINE, "setting": BASELINE,
                          "n_rows": b["n_rows"], "score": b["score"], "baseline_score": b["score"],
                          "relative_score": 100.0, "ttft_speedup": 1.0, "flop_speedup": 1.0,
                          "pct_prompt_computed": b["pct_prompt_computed"], "generation_speedup": 1.0})  # fmt: skip
        picks = chosen[chosen["category"] == category]
        for pick in sorted(picks.itertuples(index=False), key=lambda p: _family_key(p.family)):
            got = reported[
                (reported["category"] == category) & (reported["method_label"] == pick.method_label)
            ]
            line = got.iloc[0].to_dict() if len(got) else {"n_rows": 0}
            line.update(category=category, family=pick.family, method=pick.family, setting=pick.method_label,
                        chosen_ok=bool(pick.passes))  # fmt: skip
            lines.append(line)
        ref = reported[(reported["category"] == category) & (reported["method_label"] == default_label)]
        if default_label and len(ref):
            line = ref.iloc[0].to_dict()
            line.update(category=category, family="lazyllm", method=DEFAULT_ROW, setting=default_label)
            lines.append(line)
    return pd.DataFrame(lines)


def table1(lines: pd.DataFrame, paper: str | None) -> pd.DataFrame:
    """Table 1 layout; with `paper` ("llama2" or "xgen") the paper's score and TTFT speedup beside."""
    out = lines.reindex(columns=TABLE1).copy()
    if paper:
        check_paper_model(paper)
        ref = paper_table1().set_index(["category", "method"])
        keys = [(c, paper_method(f) if m != DEFAULT_ROW else None) for c, f, m in
                zip(lines["category"], lines["family"], lines["method"])]  # fmt: skip
        for column in ("score", "ttft_speedup"):
            values = [ref[f"{paper}_{column}"].get(k, float("nan")) if k[1] else float("nan") for k in keys]
            out[f"paper_{paper}_{column}"] = pd.Series(values, dtype=float)
    return out


def table2(lines: pd.DataFrame, paper: str | None) -> pd.DataFrame:
    """Table 2 layout; the paper's numbers on the chosen LazyLLM lines (it reports LazyLLM only)."""
    out = lines.reindex(columns=TABLE2).copy()
    if paper:
        check_paper_model(paper)
        ref = paper_table2().set_index("category")
        is_lazy = (lines["family"] == "lazyllm") & (lines["method"] != DEFAULT_ROW)
        for column in ("pct_prompt_tokens_computed", "generation_speedup"):
            values = lines["category"].map(ref[f"{paper}_{column}"]).where(is_lazy)
            out[f"paper_{paper}_{column}"] = values.astype(float).to_numpy()
    return out


def one_setting_table(reported: pd.DataFrame, lines: pd.DataFrame, label: str) -> pd.DataFrame:
    """ "One p for all categories": per category, the adaptive setting chosen once over all the
    selection rows (`label`) beside LazyLLM's and the adaptive family's per-category picks
    (`lines`: `chosen_lines`), each measured on the reported rows."""
    out = []
    for category in [c for c in PAPER_CATEGORIES if c in set(lines["category"])]:
        picks = lines[(lines["category"] == category) & lines["family"].isin(["lazyllm", "adaptive"])]
        for pick in picks[picks["method"] != DEFAULT_ROW].to_dict("records"):
            out.append({**pick, "method": f"{pick['family']} (chosen per category)"})
        one = reported[(reported["category"] == category) & (reported["method_label"] == label)]
        row = one.iloc[0].to_dict() if len(one) else {"n_rows": 0}
        out.append({**row, "category": category, "method": ONE_ROW, "setting": label})
    return pd.DataFrame(out).reindex(columns=ONE_SETTING)
