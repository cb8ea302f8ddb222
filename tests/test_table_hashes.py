"""Same code, same tables: every table of every shipped scenario matches its recorded hash.

The record (``tests/data/table_hashes.json``) was written by ``benchmarks/table_hashes.py
--write`` before the plug-in refactoring (issue 11); a change that alters a table on purpose
re-records it in a commit of its own, with a test of what changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import table_hashes  # noqa: E402

RECORD = json.loads(table_hashes.RECORD.read_text())
FILES = sorted({case.split("@")[0].split(":")[0] for case in RECORD})


@pytest.mark.slow
@pytest.mark.parametrize("file", FILES)
def test_tables_match_the_record(file: str) -> None:
    only = file.split("/")[-1] if file != "notebook" else "notebook"
    got = {case: tables for case, tables in table_hashes.compute(only).items()
           if case.split("@")[0].split(":")[0] == file}
    assert got, f"no case computed for {file}"
    assert set(got) == {c for c in RECORD if c.split("@")[0].split(":")[0] == file}
    assert table_hashes.differences(RECORD, got) == []
