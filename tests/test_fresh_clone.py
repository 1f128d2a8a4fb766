"""The repository alone is enough: no folder beside it, no LAZYBENCH_* variable.

A clone from a forge has nothing next to it; the demo, the tests and CI read the offline slice
bundled in the package. These tests run the demo's data path from an empty directory with every
LAZYBENCH_* variable removed, and check that no runtime path leads out of the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME_FILES = [
    *sorted((REPO / "lazybench").rglob("*.py")),
    *sorted((REPO / "conf").rglob("*.yaml")),
    REPO / "Makefile",
    REPO / "pyproject.toml",
    REPO / ".ci" / "run",
]


def _bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAZYBENCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def test_no_runtime_path_leads_out_of_the_repository():
    pattern = re.compile(r"\.\./shared|shared/longbench")
    offenders = [
        str(p.relative_to(REPO)) for p in RUNTIME_FILES if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "LAZYBENCH_" not in ci
    assert "LAZYBENCH_LONGBENCH_DIR" not in (REPO / "Makefile").read_text()


def test_demo_dry_run_from_an_empty_directory_reads_the_bundled_slice(tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "lazybench.cli", "dry_run=true"],
        cwd=cwd,
        env=_bare_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "data: offline slice, 6 rows" in proc.stdout
    assert "rows: 6 over 6 datasets multifieldqa_en 1, hotpotqa 1, qmsum 1, triviaqa 1" in proc.stdout
    assert not list(cwd.rglob("records.jsonl"))  # nothing was run


def test_demo_suite_rows_load_without_variables(tmp_path):
    script = (
        "from lazybench.runner.config import resolve_data_source, resolve_suite\n"
        "from lazybench.runner.testing import compose_cfg\n"
        "cfg = compose_cfg([])\n"
        "suite, data = resolve_suite(cfg), resolve_data_source(cfg)\n"
        "rows = [ex for t in suite.tasks() for ex in suite.examples(t.name, data_dir=data)]\n"
        "print(data.label, len(rows), sorted({ex.source for ex in rows}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_bare_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "offline slice 6 ['offline slice']"
