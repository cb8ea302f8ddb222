"""The results folder of an experiment: tables, resolved scenarios, seeds and versions."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import platform
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from simulator.experiment.executors import Executor, make_executor
from simulator.experiment.runs import code_version
from simulator.outdir import replacing

#: Distributions whose versions go into every manifest (those installed).
PACKAGES = ("simulator", "simpy", "numpy", "pandas", "scipy", "pydantic", "pyarrow", "pyyaml",
            "tqdm", "dask", "distributed")


def package_versions() -> dict[str, str]:
    """Python and the installed versions of :data:`PACKAGES`."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def manifest(kind: str, **fields: Any) -> dict[str, Any]:
    """The manifest of an experiment: what ran, with which code, when and how."""
    return {
        "kind": kind,
        "command": sys.argv if sys.argv and sys.argv[0].endswith("simulator") else None,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "versions": package_versions(),
        **fields,
    }


def write_folder(
    directory: str | Path,
    tables: Mapping[str, pd.DataFrame],
    meta: Mapping[str, Any],
    scenarios: Mapping[str, Any],
    fmt: Literal["parquet", "csv"] = "parquet",
) -> Path:
    """Write an experiment's folder whole or not at all; return its path.

    Parameters
    ----------
    directory
        The folder; replaced if it exists.
    tables
        Tables by file stem (``runs``, ``intervals``, ``comparison``...).
    meta
        Written as ``manifest.json``.
    scenarios
        Resolved scenarios (JSON-able dicts) by name, written to ``scenarios/NAME.json``.
    fmt
        Table format.
    """
    target = Path(directory)
    with replacing(target) as tmp:
        for name, df in tables.items():
            if fmt == "parquet":
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                df.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "scenarios").mkdir()
        for name, data in scenarios.items():
            (tmp / "scenarios" / f"{_safe(name)}.json").write_text(json.dumps(data, indent=2))
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2, default=str))
    return target


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)
    return keep or "scenario"


@contextlib.contextmanager
def executor_for(
    executor: str | Executor, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Executor]:
    """Use ``executor`` (a name or an instance); close it afterwards only if made here."""
    made = make_executor(executor, workers, scheduler)
    try:
        yield made
    finally:
        if made is not executor:
            made.close()
