"""Every notebook executes from top to bottom (nbclient, the venv's python3 kernel, 120 s each).

Results: the real reference run `results/reference/demo` once it exists; until then a synthetic
FIXTURE run written by `lazybench.analysis.fixture` (its tables say FIXTURE DATA). Notebooks are
pointed at it through LAZYBENCH_RESULTS, the override their first cell reads.
"""

import json
from pathlib import Path

import nbformat
import pytest

from lazybench.analysis.fixture import write_fixture_run
from lazybench.records import RECORDS_FILE

nbclient = pytest.importorskip("nbclient")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
REFERENCE = REPO_ROOT / "results" / "reference" / "demo"
NEEDS_MODEL = {"03_inside_one_example.ipynb"}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    if (REFERENCE / RECORDS_FILE).exists():
        return REFERENCE
    run = tmp_path_factory.mktemp("results") / "demo"
    write_fixture_run(run)
    return run


def test_the_three_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_reproduce_tables.ipynb",
        "02_pareto.ipynb",
        "03_inside_one_example.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs_and_reads_results_from_its_first_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
    first = nb.cells[0]
    assert first.cell_type == "code" and 'results_path("results/reference/demo")' in first.source


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in NEEDS_MODEL else p for p in NOTEBOOKS],
    ids=lambda p: p.stem,
)
def test_notebook_executes(path, results_dir, monkeypatch):
    monkeypatch.setenv("LAZYBENCH_RESULTS", str(results_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert str(results_dir) in "".join(o.get("text", "") for o in nb.cells[0].outputs)
    # figures were drawn, not just built
    n_png = sum("image/png" in o.get("data", {}) for o in outputs)
    assert n_png >= {"01_reproduce_tables": 0, "02_pareto": 2, "03_inside_one_example": 1}[path.stem]
    if path.stem == "03_inside_one_example":
        html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
        assert "background:rgb" in html  # kept tokens shaded on the text
    if path.stem == "01_reproduce_tables":
        text = json.dumps([o.get("data", {}) for o in outputs])
        assert "paper_llama2_score" in text
