"""Execute the notebooks and store their outputs: ``python notebooks/execute_notebooks.py``.

``make notebooks`` runs ``make_notebooks.py`` (the generated notebooks) and then this script, which
executes every notebook at its full settings (``SIMULATOR_NOTEBOOK_SHORT`` is removed from the
kernel's environment) and writes it back with its outputs, so that the repository shows the
tables and figures. Each notebook's metadata records ``simulator.source_sha256``, the hash of its
cells' sources when it was executed: the test suite compares it with the current sources and
fails, asking for ``make notebooks``, when a cell was edited without re-executing the notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

# a full-length notebook runs for minutes; a cell stuck for longer than this is a hang
CELL_TIMEOUT_S = 1200


def source_sha256(nb: nbformat.NotebookNode) -> str:
    """Hash of the notebook's cells (type and source, in order): what its outputs depend on.

    Markdown cells are included so that the stored file is always the one that was executed;
    outputs, execution counts, cell ids and metadata are not.
    """
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def children_cpu_s() -> float:
    """CPU seconds of the finished child processes (the kernels)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(path: Path) -> tuple[float, float]:
    """Execute the notebook at ``path`` in place; returns its wall and CPU times in seconds.

    The CPU time is the kernel's (``RUSAGE_CHILDREN``): on a shared machine it measures a
    serial notebook's cost better than the wall time, but it leaves out the workers of a
    ``processes`` executor, which are not the kernel's waited-for children.
    """
    nb = nbformat.read(path, as_version=4)
    started, cpu = time.perf_counter(), children_cpu_s()
    # record_timing=False: no per-cell timestamps, so re-executing unchanged cells changes
    # nothing but what the simulations themselves change (their seeds are fixed)
    NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed, cpu = time.perf_counter() - started, children_cpu_s() - cpu
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    if errors:
        raise RuntimeError(f"{path.name}: {errors[0].ename}: {errors[0].evalue}")
    nb.metadata["simulator"] = {"source_sha256": source_sha256(nb)}
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed, cpu


def main(argv: list[str]) -> int:
    """Execute every notebook (or those named on the command line) and print the times."""
    # the kernel inherits this process's environment: full settings, whatever the caller set
    os.environ.pop("SIMULATOR_NOTEBOOK_SHORT", None)
    paths = [HERE / name for name in argv] if argv else sorted(HERE.glob("*.ipynb"))
    total_wall = total_cpu = 0.0
    for path in paths:
        wall, cpu = execute(path)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"executed {path.name} in {wall:.0f} s ({cpu:.0f} s of CPU)", flush=True)
    print(f"executed {len(paths)} notebooks in {total_wall:.0f} s ({total_cpu:.0f} s of CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
