"""Rate curves read from files: a ``curve`` workload's ``file`` is replaced by its ``points``.

Read once, when the scenario is loaded, before validation: the validated scenario (and so the
manifest of a run and the key of the run cache) holds the points themselves, never a path
whose content could change under it. A relative path is relative to the scenario file (to the
working directory for a scenario given as text or a dict).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from simulator.errors import Problem
from simulator.scenario.arrivalfiles import arrivals_blocks, files_base, located
from simulator.units import parse_duration
from simulator.yamlfile import SourceMap

#: rows read from one rate file at most (a curve is a summary, not a trace)
MAX_ROWS = 100_000


def inline_rate_files(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """Replace every curve's ``file`` with the ``points`` it holds; return the problems."""
    problems: list[Problem] = []
    base = files_base(smap)
    for where, arrivals in arrivals_blocks(data, "curve"):
        if "file" not in arrivals:
            continue
        at = (*where, "file")
        if "points" in arrivals:
            problems.append(located(smap, at, "give points or file, not both"))
            continue
        given = arrivals["file"]
        if not isinstance(given, str) or not given:
            problems.append(located(smap, at, "file must be the path of a CSV file of at,rate "
                                    "rows"))
            continue
        try:
            arrivals["points"] = _read(base / given)
        except (OSError, ValueError) as exc:
            problems.append(located(smap, at, f"cannot read rate curve {given!r}: {exc}"))
            continue
        del arrivals["file"]  # the points are the curve now (variants re-validate this data)
    return problems


def _read(path: Path) -> list[dict[str, str]]:
    """The ``{at, rate}`` rows of a CSV file (a first row that is no duration is a header)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if rows:
        try:
            parse_duration(_cell(rows[0][0]))
        except ValueError:
            rows = rows[1:]  # a header
    if len(rows) > MAX_ROWS:
        raise ValueError(f"{len(rows)} rows, more than {MAX_ROWS}")
    points = []
    for i, row in enumerate(rows):
        if len(row) != 2:
            raise ValueError(f"data row {i} has {len(row)} columns; expected at,rate")
        points.append({"at": _cell(row[0]), "rate": _cell(row[1])})
    return points


def _cell(text: str) -> Any:
    """A CSV cell as the scenario would hold it: a number if it is one, else the text."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return text
