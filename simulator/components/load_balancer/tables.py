"""Derived tables of ``kind: load_balancer``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def backend_share(results: Results) -> pd.DataFrame:
    """Share of requests each balancer sent to each backend in the measured window."""
    from simulator.analysis.summary import backend_share as shares

    t0, t1 = results.window
    return shares(results.samples, t0, t1)


def format_backend_share(table: pd.DataFrame) -> pd.DataFrame:
    """Shares in percent."""
    return shown(table, formatters={"share": "{:.1%}".format})
