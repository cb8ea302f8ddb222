"""A fingerprint of every table of every shipped scenario: a refactoring must leave it unchanged.

Runs each scenario of ``scenarios/`` and ``benchmarks/scenarios/`` (every variant of its
``variants:`` block too) and the notebooks' inline scenario at two seeds, with durations shortened
so that the whole set runs in about a minute, and hashes every raw table (requests, spans,
samples, events and the kinds' own tables) and every derived table a run offers. The hash covers
column names, dtypes and values bit for bit (``pandas.util.hash_pandas_object``).

Usage::

    python benchmarks/table_hashes.py                 # compare with tests/data/table_hashes.json
    python benchmarks/table_hashes.py --write         # record the current hashes there
    python benchmarks/table_hashes.py --only cdn      # scenarios whose file name contains "cdn"

``tests/test_table_hashes.py`` runs the comparison in the suite. A change of behaviour that is
meant (a bug fixed) is its own commit, with ``--write`` and a test of its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "tests" / "data" / "table_hashes.json"
SEEDS = (1, 2)
#: simulated seconds of arrivals per scenario (the timeline of faults is kept when shorter)
SHORT = 12.0


def table_hash(df: pd.DataFrame) -> str:
    """Hash of a table's columns, dtypes and values (row order included)."""
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    if len(df):
        values = pd.util.hash_pandas_object(df, index=False).to_numpy()
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()[:16]


def _short(path: Path) -> list[str]:
    """Overrides that shorten a scenario but keep its faults inside the run."""
    import simulator

    scenario = simulator.load_scenario(path)
    last = max([f.at for f in scenario.faults] + [0.0])
    duration = max(SHORT, min(scenario.duration, last + 10.0))
    warmup = min(scenario.warmup_time, duration / 4)
    return [f"duration={duration}", f"warmup={warmup}"]


def cases(only: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield (name, scenario) for every scenario, variant and notebook scenario."""
    import simulator

    files = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted(
        (ROOT / "benchmarks" / "scenarios").glob("*.yaml"))
    for path in files:
        if only and only not in path.name:
            continue
        short = _short(path)
        base = simulator.load_scenario(path, short)
        yield f"{path.parent.name}/{path.name}", base
        for variant, extra in base.variants.items():
            yield f"{path.parent.name}/{path.name}:{variant}", simulator.load_scenario(
                path, [*short, *extra])
    if not only or "notebook" in only:
        yield "notebook:lru", simulator.parse_scenario({
            "duration": 20, "warmup": 5,
            "workloads": {"web": {"arrivals": {"process": "poisson", "rate": 500},
                                  "keys": {"popularity": "zipf", "n": 10_000, "s": 0.8},
                                  "target": "cache"}},
            "components": {
                "cache": {"kind": "cache", "capacity": 1000, "policy": "lru",
                          "backing": "db"},
                "db": {"kind": "service", "service_time": 0.002},
            },
        })


def derived_names(results: Any) -> list[str]:
    """Names of the derived tables a run offers (as ``Results`` lists them)."""
    import simulator.results as module

    names = getattr(module, "derived_table_names", None)
    if names is not None:
        return list(names())
    return list(module.DERIVED_TABLES)  # (before the kinds declared their tables)


def fingerprint(name: str, scenario: Any, seed: int) -> dict[str, str]:
    """Hash of every raw and derived table of one run."""
    import simulator
    from simulator.metrics.streaming import StreamingUnavailableError

    results = simulator.simulate(scenario, seed=seed)
    out = {f"raw:{t}": table_hash(df) for t, df in sorted(results.tables.items())}
    for stem in derived_names(results):
        try:
            table = results.derived(stem) if hasattr(results, "derived") else getattr(
                results, stem)()
        except StreamingUnavailableError:
            continue
        if stem in ("summary", "backend_share") or not table.empty:
            out[f"derived:{stem}"] = table_hash(table)
    return out


def compute(only: str | None = None) -> dict[str, dict[str, str]]:
    """Every case at every seed."""
    record: dict[str, dict[str, str]] = {}
    for name, scenario in cases(only):
        for seed in SEEDS:
            record[f"{name}@{seed}"] = fingerprint(name, scenario, seed)
    return record


def differences(expected: dict[str, dict[str, str]], got: dict[str, dict[str, str]]
                ) -> list[str]:
    """What differs between two records (only the cases ``got`` has)."""
    lines = []
    for case, tables in got.items():
        want = expected.get(case)
        if want is None:
            lines.append(f"{case}: not in the record")
            continue
        for t in sorted(set(want) | set(tables)):
            if want.get(t) != tables.get(t):
                lines.append(f"{case}: {t}: {want.get(t)} -> {tables.get(t)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Compare with (or ``--write``) the recorded hashes; exit 1 on a difference."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="record the hashes")
    parser.add_argument("--only", default=None, help="cases whose name contains this")
    args = parser.parse_args(argv)
    got = compute(args.only)
    if args.write:
        old = json.loads(RECORD.read_text()) if RECORD.is_file() and args.only else {}
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps({**old, **got}, indent=1, sort_keys=True) + "\n")
        print(f"{len(got)} runs recorded in {RECORD.relative_to(ROOT)}")
        return 0
    diff = differences(json.loads(RECORD.read_text()), got)
    for line in diff:
        print(line)
    print(f"{len(got)} runs, {sum(len(t) for t in got.values())} tables: "
          f"{len(diff)} differences")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
