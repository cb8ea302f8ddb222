"""The run cache: tables of finished runs on disk, reused only when they verify.

An entry is one directory per :meth:`~simulator.experiment.runs.RunSpec.key` (a hash of the
resolved scenario, the seed, the replication, the warm-up rule, the tables asked for and the
code version). Its ``meta.json`` repeats the key and what made it, and holds the SHA-256 of
every table file. An entry is reused only when its meta names the key asked for, the code
version is the current one and every file has the recorded hash; anything else (values
edited, a file truncated or missing, a malformed meta) is reported with a
:class:`CacheWarning`, removed and recomputed, never trusted and never a crash.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from simulator.experiment.runs import RunSpec


class CacheWarning(UserWarning):
    """A cache entry did not verify and is recomputed."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RunCache:
    """Tables of finished runs on disk, one directory per run key.

    Each entry is written to a temporary directory and renamed into place, so an interrupted
    experiment leaves only whole entries behind and a rerun resumes from them; concurrent
    writers of one key keep whichever entry landed first.

    Parameters
    ----------
    directory
        Where the entries live (created on first write).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _entry(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def get(self, key: str) -> dict[str, pd.DataFrame] | None:
        """The tables stored under ``key`` if the entry verifies, else None (a damaged entry is
        reported, removed and left to be recomputed)."""
        entry = self._entry(key)
        if not (entry / "meta.json").is_file():
            return None
        try:
            return self._verified(key, entry)
        except Exception as exc:
            warnings.warn(CacheWarning(f"run cache entry {entry} does not verify ({exc}); "
                                       "it is recomputed"), stacklevel=2)
            shutil.rmtree(entry, ignore_errors=True)
            return None

    def _verified(self, key: str, entry: Path) -> dict[str, pd.DataFrame]:
        from simulator.experiment.runs import code_version

        meta: Any = json.loads((entry / "meta.json").read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("tables"), dict):
            raise ValueError("malformed meta.json")
        if meta.get("key") != key:
            raise ValueError(f"made for key {meta.get('key')!r}")
        if meta.get("code_version") != code_version():
            raise ValueError(f"made by code version {meta.get('code_version')!r}")
        tables = {}
        for name, digest in meta["tables"].items():
            data = (entry / f"{name}.parquet").read_bytes()
            if _digest(data) != digest:
                raise ValueError(f"{name}.parquet differs from what was written")
            tables[str(name)] = pd.read_parquet(io.BytesIO(data))
        return tables

    def put(self, key: str, tables: Mapping[str, pd.DataFrame], spec: RunSpec) -> None:
        """Store the tables of one run under ``key`` (atomically), with their hashes."""
        from simulator.experiment.runs import code_version

        entry = self._entry(key)
        if entry.exists():
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=entry.parent))
        try:
            digests = {}
            for name, table in tables.items():
                buffer = io.BytesIO()
                table.to_parquet(buffer, index=False)
                data = buffer.getvalue()
                (tmp / f"{name}.parquet").write_bytes(data)
                digests[name] = _digest(data)
            meta = {"key": key, "tables": digests, "seed": spec.seed,
                    "replication": spec.replication, "warmup": spec.warmup,
                    "scenario_sha256": _digest(spec.scenario.encode()),
                    "code_version": code_version()}
            (tmp / "meta.json").write_text(json.dumps(meta))
            os.replace(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not entry.exists():
                raise
