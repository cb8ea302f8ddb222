"""The derived table of ``kind: meter``."""

from __future__ import annotations

from typing import Any

import pandas as pd


def meter_summary(results: Any) -> pd.DataFrame:
    """Readings per meter instance and the highest reading (0 rows without meters)."""
    t = results.tables["meter_readings"]
    t0, t1 = results.window
    t = t[(t["time"] >= t0) & (t["time"] < t1)]
    out = t.groupby(["meter", "instance"], observed=True).agg(readings=("reading", "size"),
                                                highest=("reading", "max"))
    return out.reset_index()
