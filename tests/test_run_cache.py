"""The run cache verifies what it reuses (issue 13, item 2): an entry whose tables were edited
or truncated, whose meta is malformed, or that was made for another key is reported, removed
and recomputed, never reused and never a crash."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simulator.experiment import sweep
from simulator.experiment.cache import CacheWarning

SCENARIO: dict[str, Any] = {
    "name": "mm1", "duration": 3.0, "warmup": 0.5, "drain": 1.0,
    "metrics": {"interval": 1.0, "spans": False},
    "workloads": {"users": {"arrivals": {"process": "poisson", "rate": 50}, "target": "api"}},
    "components": {"api": {"kind": "service", "workers": 1,
                           "service_time": {"dist": "exponential", "mean": 0.01}}},
}
GRID = {"components.api.workers": ["1", "2"]}


def _sweep(cache: Path) -> Any:
    return sweep(SCENARIO, GRID, 2, cache=cache, executor="serial", progress=False)


def _entries(cache: Path) -> list[Path]:
    return sorted(p.parent for p in cache.glob("*/*/meta.json"))


def _scale_summary(entry: Path) -> None:
    """Rewrite the summary as a valid Parquet file with every count x10 (a silent edit)."""
    path = entry / "summary.parquet"
    df = pd.read_parquet(path)
    df["count"] = df["count"] * 10
    df.to_parquet(path, index=False)


def _truncate(entry: Path) -> None:
    path = entry / "summary.parquet"
    path.write_bytes(path.read_bytes()[:100])


def _meta_list(entry: Path) -> None:
    (entry / "meta.json").write_text(json.dumps(["summary"]))


def _meta_garbage(entry: Path) -> None:
    (entry / "meta.json").write_text("{not json")


def _other_key(entry: Path) -> None:
    meta = json.loads((entry / "meta.json").read_text())
    meta["key"] = "0" * 64
    (entry / "meta.json").write_text(json.dumps(meta))


def _missing_table(entry: Path) -> None:
    (entry / "summary.parquet").unlink()


@pytest.mark.parametrize("tamper", [_scale_summary, _truncate, _meta_list, _meta_garbage,
                                    _other_key, _missing_table],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_tampered_entry_is_recomputed_with_a_warning(tmp_path: Path,
                                                       tamper: Callable[[Path], None]) -> None:
    cache = tmp_path / "cache"
    first = _sweep(cache)
    assert (first.computed, first.reused) == (4, 0)
    entries = _entries(cache)
    assert len(entries) == 4
    tamper(entries[0])
    with pytest.warns(CacheWarning, match="does not verify"):
        again = _sweep(cache)
    assert (again.computed, again.reused) == (1, 3)
    pd.testing.assert_frame_equal(first.runs, again.runs)
    # the entry was rewritten whole: a third sweep reuses everything, silently
    third = _sweep(cache)
    assert (third.computed, third.reused) == (0, 4)


def test_entries_record_what_made_them(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _sweep(cache)
    entry = _entries(cache)[0]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["key"] == entry.name
    assert {"seed", "replication", "warmup", "scenario_sha256", "code_version"} <= set(meta)
    for name, digest in meta["tables"].items():
        data = (entry / f"{name}.parquet").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        assert len(pd.read_parquet(io.BytesIO(data))) > 0
