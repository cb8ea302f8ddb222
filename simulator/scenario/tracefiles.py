"""Arrival traces named by ``trace`` workloads: checked and summarised when the scenario is
loaded (see :mod:`simulator.tracefile`).

The file's path becomes absolute (relative to the scenario file, or to the working directory
for a scenario given as text or a dict), and its row count, first and last arrival and SHA-256
are written into the arrivals block, so the resolved scenario names the trace by its content:
a run's manifest records it, the run cache keys on it, and a run refuses a file that has
changed since. Unlike a rate curve, the rows themselves are not copied into the scenario: a
trace may hold millions of them, and the replay streams them from the file.
"""

from __future__ import annotations

from typing import Any

from simulator.errors import Problem
from simulator.scenario.arrivalfiles import arrivals_blocks, files_base, located
from simulator.tracefile import UNITS, TraceError, summarise
from simulator.yamlfile import SourceMap

_FILLED = ("rows", "first", "last", "digest")


def resolve_trace_files(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """Check every trace a workload names and fill in its summary; return the problems."""
    problems: list[Problem] = []
    base = files_base(smap)
    for where, arrivals in arrivals_blocks(data, "trace"):
        at = (*where, "file") if "file" in arrivals else where

        def problem(message: str, at: tuple[str, ...] = at) -> Problem:
            return located(smap, at, message)

        given = arrivals.get("file")
        settings = {k: arrivals.get(k) for k in ("column", "op_column", "key_column")}
        unit, origin = arrivals.get("unit", "s"), arrivals.get("origin", "first")
        if not isinstance(given, str) or not given:
            problems.append(problem("a trace needs file: the CSV file of its arrivals"))
            continue
        if (not isinstance(unit, str) or unit not in UNITS or not isinstance(origin, str)
                or origin not in ("first", "zero")
                or not all(v is None or isinstance(v, str) for v in settings.values())):
            continue  # the model's validation says what is wrong with them
        path = (base / given).resolve()
        try:
            summary = summarise(path, unit=unit, origin=origin, **settings)
        except TraceError as exc:
            problems.append(problem(f"trace {given!r}: {exc}"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(problem(f"cannot read trace {given!r}: "
                                    f"{getattr(exc, 'strerror', None) or exc}"))
            continue
        arrivals.update(file=str(path), rows=summary.rows, first=summary.first,
                        last=summary.last, digest=summary.digest)
    return problems


__all__ = ["resolve_trace_files"]
