"""What the modules reading workload files share: where a relative path starts, and the
arrivals blocks of one process in raw scenario data (before validation, so any shape).

:mod:`simulator.scenario.ratefiles` inlines rate curves; :mod:`simulator.scenario.tracefiles`
checks and summarises traces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.errors import Problem
from simulator.yamlfile import SourceMap


def files_base(smap: SourceMap) -> Path:
    """The directory a relative path in the scenario starts from: the scenario file's, or the
    working directory for a scenario given as text or a dict."""
    source = Path(smap.source)
    return source.parent if source.is_file() else Path.cwd()


def arrivals_blocks(data: dict[str, Any], process: str
                    ) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(key path, arrivals mapping) of every workload whose arrivals are ``process``."""
    workloads = data.get("workloads")
    if not isinstance(workloads, dict):
        return
    for name, workload in workloads.items():
        arrivals = workload.get("arrivals") if isinstance(workload, dict) else None
        if isinstance(arrivals, dict) and arrivals.get("process") == process:
            yield ("workloads", name, "arrivals"), arrivals


def located(smap: SourceMap, path: tuple[str, ...], message: str) -> Problem:
    """A problem at ``path`` with its line."""
    return Problem(message, ".".join(path), smap.line_of(path))


__all__ = ["arrivals_blocks", "files_base", "located"]
