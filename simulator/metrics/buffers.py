"""Columnar buffers of the raw tables that component kinds declare.

A :class:`RawBuffer` holds one ``array.array`` per column of a
:class:`~simulator.kind.RawTable`; a component appends rows on its hot path and may update a
row in place through a column (a message's status as it moves). The buffer becomes a
``pandas.DataFrame`` once, after the run.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where the tables are assembled, at the end of a run
    import pandas as pd

    from simulator.kind import RawTable

#: array typecode and numpy dtype of each column dtype (categories and bools hold codes)
_STORAGE = {"int64": ("q", np.int64), "int32": ("i", np.int32), "int16": ("h", np.int16),
            "int8": ("b", np.int8), "float64": ("d", np.float64), "bool": ("b", np.int8),
            "category": ("i", np.int32)}


class RawBuffer:
    """The rows of one declared raw table during a run.

    Parameters
    ----------
    table
        The declaration (columns, dtypes, how category codes are named).
    """

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self.columns: dict[str, array[Any]] = {
            c.name: array(_STORAGE[c.dtype][0]) for c in table.columns}
        self._names: dict[str, list[str]] = {}
        appends = tuple(a.append for a in self.columns.values())
        first = next(iter(self.columns.values()))

        def append(*values: Any) -> int:
            for add, value in zip(appends, values, strict=True):
                add(value)
            return len(first) - 1

        #: ``append(*values) -> row index``: one row, values in column order.
        self.append: Callable[..., int] = append

    def column(self, name: str) -> array[Any]:
        """The buffer of column ``name``, for in-place updates by row index."""
        return self.columns[name]

    def code(self, column: str, name: str) -> int:
        """A new code for ``name`` in a ``labels="names"`` column (names must be unique)."""
        names = self._names.setdefault(column, [])
        names.append(name)
        return len(names) - 1

    def frame(self, component_names: Callable[[np.ndarray], Any]) -> pd.DataFrame:
        """The table as a DataFrame; ``component_names`` turns instance codes into a
        categorical of component names (``labels="component"``).

        Called once, after the run: a column stored in its table dtype becomes a view of its
        buffer (no copy); every other buffer is emptied once its column is built."""
        import pandas as pd

        out: dict[str, Any] = {}
        for col in self.table.columns:
            buffer = self.columns[col.name]
            dtype = _STORAGE[col.dtype][1]
            values = np.frombuffer(buffer, dtype=dtype) if len(buffer) else np.empty(0, dtype)
            if col.dtype != "bool" and col.dtype != "category":
                out[col.name] = values  # the buffer itself
                continue
            if col.dtype == "bool":
                out[col.name] = values.astype(bool)
            elif col.labels == "component":
                out[col.name] = component_names(values)
            elif col.labels == "names":
                out[col.name] = pd.Categorical.from_codes(
                    values, categories=pd.Index(unique(self._names.get(col.name, []))))
            else:
                labels: Sequence[str] = col.labels or ()
                out[col.name] = pd.Categorical.from_codes(values.astype(np.int8),
                                                          categories=pd.Index(list(labels)))
            del values
            with contextlib.suppress(BufferError):  # raised if the column is still a view
                del buffer[:]  # its column holds its own (narrower) copy
        return pd.DataFrame(out, copy=False)


def unique(names: list[str]) -> list[str]:
    """``names`` if no name repeats (categories must be unique)."""
    if len(set(names)) != len(names):
        raise ValueError("instance names must be unique")
    return names
