"""The notebooks are stored with the outputs of the committed reference runs they read, and executing
them again (nbclient, the venv's python3 kernel) against those runs gives the same outputs.

When a reference run, a table or a plot changes, refresh them with `python notebooks/execute.py`.
"""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

from lazybench.records import RECORDS_FILE

pytest.importorskip("nbclient")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: The reference run each notebook reads (its first cell), and the figures it must show.
READS = {
    "01_reproduce_tables": "results/reference/compare_cpu",
    "02_pareto": "results/reference/compare_cpu",
    "03_inside_one_example": "results/reference/demo",
    "04_probes": "results/reference/probes",
}
MIN_FIGURES = {"01_reproduce_tables": 0, "02_pareto": 4, "03_inside_one_example": 1, "04_probes": 1}
NEEDS_MODEL = {"03_inside_one_example"}  # loads SmolLM2 and prints its load time: executed, not compared
MAX_BYTES = 1 << 20


def _execute(path: Path):
    spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOK_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.execute(path)


def _outputs(nb) -> list:
    """Every code cell's outputs, figures left out (their PNG bytes may differ across library versions)
    and stderr too (library warnings that name the machine's install paths)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outs = []
        for out in cell.outputs:
            if out.output_type == "stream":
                if out.name != "stderr":  # warnings name the machine's install paths
                    outs.append((out.name, out.text))
            elif "data" in out:
                outs.append({k: v for k, v in out["data"].items() if not k.startswith("image/")})
            else:
                outs.append(out.output_type)
        cells.append(outs)
    return cells


def _figures(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_four_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == list(READS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_with_the_outputs_of_its_reference_run(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "executed top to bottom, once"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    run = READS[path.stem]
    assert (REPO_ROOT / run / RECORDS_FILE).is_file()
    assert f'results_path("{run}")' in code[0].source
    assert "".join(o.get("text", "") for o in code[0].outputs) == run + "\n"  # repository-relative paths
    assert _figures(nb) >= MIN_FIGURES[path.stem]
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: keep stored figures small"
    text = json.dumps([o.get("data", {}) for c in code for o in c.outputs])
    if path.stem == "01_reproduce_tables":
        assert "paper_llama2_score" in text and "lazyllm-late" in text
    if path.stem == "03_inside_one_example":
        assert "background:rgb" in text  # kept tokens shaded on the text
    if path.stem == "04_probes":
        assert "Silver Heron" in text and "<Figure size" in text  # the needle answers and the heatmap


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.stem in NEEDS_MODEL else p for p in NOTEBOOKS],
    ids=lambda p: p.stem,
)
def test_notebook_executes_to_its_stored_outputs(path, monkeypatch):
    monkeypatch.delenv("LAZYBENCH_RESULTS", raising=False)
    stored = nbformat.read(path, as_version=4)
    fresh = _execute(path)
    outputs = [o for c in fresh.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert _figures(fresh) >= MIN_FIGURES[path.stem]
    if path.stem in NEEDS_MODEL:
        return
    assert len(_outputs(stored)) == len(_outputs(fresh))
    for i, (old, new) in enumerate(zip(_outputs(stored), _outputs(fresh))):
        assert old == new, (
            f"{path.name}, code cell {i + 1}: the stored outputs are not those of the reference run any more; "
            f"refresh them with `python notebooks/execute.py {path.name}`"
        )
