"""Arrival traces: a CSV or Parquet file of request timestamps (and, optionally, operations
and keys), read row by row (a Parquet file batch by batch) so that a trace of millions of
arrivals is never held in memory.

A CSV file has a header row naming its columns (a Parquet file's schema names them).
``column`` holds the arrival times (numbers in ``unit``: ``s``, ``ms``, ``us`` or ``ns``), in
non-decreasing order; the first row's time is time 0 of the run (``origin: first``) or the
times are taken as they are (``origin: zero``).
``op_column`` gives each request's operation and ``key_column`` its key (an integer).

The same reader serves the check made when the scenario is loaded (every row parsed, the
order checked, the rows counted and the file hashed, so that ``validate`` refuses a bad trace
with its line and the run cache can tell a changed file) and the replay in the run (which
checks the hash again before the first arrival, and never needs more than one row at a time).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Suffixes of Parquet traces (anything else is read as CSV).
PARQUET = (".parquet", ".pq")
#: Factor from each accepted unit to seconds.
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class TraceError(ValueError):
    """A trace that cannot be replayed; ``row`` is its 1-based line in the file (0: none)."""

    def __init__(self, message: str, row: int = 0) -> None:
        super().__init__(f"line {row}: {message}" if row else message)
        self.row = row


@dataclass(frozen=True)
class TraceSummary:
    """What the load-time pass found: rows, time of the first and last arrival (seconds, as
    replayed), and the file's SHA-256."""

    rows: int
    first: float
    last: float
    digest: str


def digest_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rows(path: Path, column: str | None, unit: str, op_column: str | None,
         key_column: str | None, origin: str = "first"
         ) -> Iterator[tuple[float, str | None, int | None]]:
    """Yield ``(time in seconds, op, key)`` per data row, checking each as it is read.

    Raises
    ------
    TraceError
        A missing column, a cell that is no number (or no integer key), a negative or
        non-finite time, or a time earlier than the one before.
    """
    scale = UNITS[unit]
    with contextlib.ExitStack() as stack:
        names, table = _open(path, stack)
        index = {}
        for role, name in (("column", column or (names[0] if names else None)),
                           ("op_column", op_column), ("key_column", key_column)):
            if name is None:
                continue
            if name not in names:
                raise TraceError(f"no column {name!r} ({role}); the header names "
                                 f"{', '.join(map(repr, names))}", 1)
            index[role] = names.index(name)
        t_col, op_col, key_col = (index.get(r) for r in ("column", "op_column", "key_column"))
        assert t_col is not None
        zero, last = None, -math.inf
        for line, row in table:
            if not row or not any(_cell(row, i) for i in range(len(row))):
                continue
            try:
                raw = float(row[t_col]) * scale
            except (ValueError, TypeError, IndexError):
                raise TraceError(f"time {_cell(row, t_col)!r} is not a number", line) from None
            if not math.isfinite(raw):
                raise TraceError(f"time {_cell(row, t_col)!r} is not finite", line)
            if zero is None:
                zero = raw if origin == "first" else 0.0
            t = raw - zero
            if t < 0:
                raise TraceError(f"time {t:g}s is before time 0 (origin: {origin})", line)
            if t < last:
                raise TraceError(f"time {_cell(row, t_col)} is earlier than the row before; "
                                 "sort the trace by time", line)
            last = t
            op = _cell(row, op_col) if op_col is not None else None
            if op_col is not None and not op:
                raise TraceError("empty operation", line)
            key = None
            if key_col is not None:
                try:
                    key = int(_cell(row, key_col))
                except ValueError:
                    raise TraceError(f"key {_cell(row, key_col)!r} is not an integer",
                                     line) from None
            yield t, op, key


def _open(path: Path, stack: contextlib.ExitStack
          ) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """The column names and the numbered rows of a CSV or Parquet trace, read lazily (a CSV
    row's number is its line; a Parquet row's, its index from 2, as if it had a header)."""
    if path.suffix.lower() in PARQUET:
        import pyarrow.parquet as pq  # only for Parquet traces (the scenario layer needs none)

        table = pq.ParquetFile(stack.enter_context(path.open("rb")))
        names = list(table.schema_arrow.names)

        def batches() -> Iterator[tuple[int, list[Any]]]:
            line = 2
            for batch in table.iter_batches(batch_size=65_536):
                columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                for row in zip(*columns, strict=True):
                    yield line, list(row)
                    line += 1

        return names, batches()
    reader = csv.reader(stack.enter_context(path.open(newline="", encoding="utf-8")))
    header = next(reader, None)
    if header is None:
        raise TraceError("the file is empty; expected a header row and one row per arrival")
    return [h.strip() for h in header], enumerate(reader, 2)


def _cell(row: list[Any], i: int) -> str:
    value = row[i] if i < len(row) else None
    return "" if value is None else str(value).strip()


def summarise(path: Path, column: str | None, unit: str, op_column: str | None,
              key_column: str | None, origin: str = "first") -> TraceSummary:
    """Check every row of a trace (see :func:`rows`) and summarise it."""
    n, first, last = 0, math.nan, math.nan
    for t, _, _ in rows(path, column, unit, op_column, key_column, origin):
        if n == 0:
            first = t
        n, last = n + 1, t
    if n == 0:
        raise TraceError("no arrivals: the file has a header and no data rows")
    return TraceSummary(n, first, last, digest_of(path))


__all__ = ["UNITS", "TraceError", "TraceSummary", "digest_of", "rows", "summarise"]
