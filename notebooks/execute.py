"""Execute the notebooks in place, so that they are committed with the outputs of the reference runs.

    .venv/bin/python notebooks/execute.py                 # every notebook
    .venv/bin/python notebooks/execute.py 04_probes.ipynb # some

Run it from the repository root with the project's venv whenever a reference run, a table or a plot
changes: tests/test_notebooks.py executes the notebooks again and fails when their stored outputs
are no longer those of the runs they read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
#: Kernel environment: figures inline (the notebooks set a modest dpi, keeping the stored files small).
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "TOKENIZERS_PARALLELISM": "false"}


def execute(path: str | os.PathLike, timeout: int = 300) -> nbformat.NotebookNode:
    """Run a notebook top to bottom (cwd = its folder, the venv's python3 kernel); return it executed."""
    import nbclient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def main(names: list[str]) -> int:
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        nb = execute(path)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
        print(f"executed {path.name}: {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
