"""`dry_run=true` says what would run and how long it might take, without loading any weights."""

from __future__ import annotations

import pytest

from lazybench.records import RECORDS_FILE
from lazybench.runner.dryrun import dry_run
from lazybench.runner.run import run
from lazybench.runner.testing import compose_cfg


def test_dry_run_describes_the_run_without_weights(tiny, tmp_path, no_model_load):
    cfg = compose_cfg([*tiny, "methods=[baseline,{name:random_drop,label:rd}]", "repeats=3", "dry_run=true"])
    text = dry_run(cfg)
    assert "rows: 4 over 2 datasets hotpotqa 2, triviaqa 2" in text
    # baseline + lazyllm once each, random drop three times, per row
    assert "units: 20 in all, 20 pending (0 already recorded)" in text
    assert "estimated time:" in text and "upper bound" in text
    assert not any(tmp_path.rglob(RECORDS_FILE))


def test_dry_run_counts_only_pending_units(tiny, tmp_path):
    cfg = compose_cfg([*tiny, "suite.limit=1"])
    run(cfg)
    text = dry_run(compose_cfg([*tiny, "suite.limit=1", "dry_run=true"]))
    assert "units: 4 in all, 0 pending (4 already recorded)" in text
    assert "estimated time: 0.00 h (0 s)" in text


@pytest.mark.parametrize("preset", ["paper_llama2", "paper_xgen"])
def test_paper_preset_dry_run_offline_names_what_is_missing(preset, no_model_load):
    """Offline, the preset's hub model cannot even be inspected: a clear error, before any weights."""
    from lazybench.runner.config import RunConfigError

    with pytest.raises(RunConfigError, match="hub"):
        dry_run(compose_cfg([f"experiment={preset}", "dry_run=true"]))
