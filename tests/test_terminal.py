"""What `simulator run` prints fits the terminal: tables split between columns, never inside one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.analysis.terminal import fit
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from table_hashes import _short  # noqa: E402


def cells(text: str) -> list[str]:
    return sorted(text.split())


def test_a_wide_table_is_split_between_columns_with_its_names_repeated() -> None:
    df = pd.DataFrame({"scope": ["workload", "component"], "name": ["web", "api-service"],
                       **{f"metric_{i}": [1234.5 + i, 0.25 * i] for i in range(12)}})
    text = df.to_string(index=False)
    assert len(text.split("\n")[0]) > 100
    out = fit(text, 100)
    lines = out.split("\n")
    assert max(map(len, lines)) <= 100
    panels = [p.split("\n") for p in out.split("\n\n")]
    assert len(panels) >= 2
    for panel in panels:  # every panel says which row is which
        assert panel[0].split()[:2] == ["scope", "name"]
        assert [line.split()[1] for line in panel[1:]] == ["web", "api-service"]
    body = [c for c in cells(out) if c not in ("scope", "name", "workload", "component", "web",
                                               "api-service")]
    want = [c for c in cells(text) if c not in ("scope", "name", "workload", "component",
                                                "web", "api-service")]
    assert body == want  # every header and number once, none cut


def test_sentences_wrap_at_spaces_and_narrow_text_is_unchanged() -> None:
    line = "profile-views: latency columns cover successful requests only, " * 3
    out = fit(line.strip(), 60)
    assert all(len(x) <= 60 for x in out.split("\n"))
    assert out.split() == line.split()
    narrow = "a  b\n1  2\n"
    assert fit(narrow, 60) == narrow


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 5), columns=st.integers(1, 30), width=st.integers(40, 160),
       seed=st.integers(0, 2**32 - 1))
def test_fitted_tables_keep_every_cell_whole(rows: int, columns: int, width: int,
                                             seed: int) -> None:
    """Property: no line is wider than the terminal unless one column alone is; every cell of
    the table appears whole, as often as before (the key column once per panel)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"name": [f"row{i}" for i in range(rows)]})
    for j in range(columns):
        df[f"c{j}_{'x' * int(rng.integers(0, 12))}"] = rng.lognormal(3, 3, rows).round(3)
    text = df.to_string(index=False)
    out = fit(text, width)
    widest = max(len(c) for c in text.split()) + max(len(f"row{i}") for i in range(rows)) + 1
    assert max(map(len, out.split("\n"))) <= max(width, widest)
    panels = out.count("\n\n") + 1
    got = [c for c in cells(out) if c != "name" and not c.startswith("row")]
    want = [c for c in cells(text) if c != "name" and not c.startswith("row")]
    assert got == want
    assert out.split().count("name") == panels


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_run_output_fits_100_columns(path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    overrides = [a for o in _short(path) for a in ("--set", o)]
    assert main(["run", str(path), *overrides]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") > 5
    long = [line for line in out.split("\n") if len(line) > 100]
    assert long == []


def test_run_takes_a_warmup(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "scenarios" / "hedged_requests.yaml"
    assert main(["run", str(path), "--set", "duration=10s", "--warmup", "1000 requests"]) == 0
    head = " ".join(capsys.readouterr().out.split("\n\n")[0].split())
    assert "warm-up" in head and "s: 1000 requests)" in head
    assert main(["run", str(path), "--warmup", "soon"]) == 2
    assert "expected a duration" in capsys.readouterr().err


def test_a_long_run_shows_its_progress_and_is_told_about_streaming() -> None:
    import io

    import simulator
    from simulator import progress as module

    scenario = simulator.load_scenario(ROOT / "scenarios" / "quickstart.yaml",
                                       ["duration=6s", "warmup=1s"])
    out = io.StringIO()
    line = module.RunProgress(streaming=False, file=out, delay=0.0, every=0.0)
    hint, module.HINT_BYTES = module.HINT_BYTES, 100_000  # this small run "holds a lot"
    try:
        results = simulator.simulate(scenario, progress=line)
    finally:
        module.HINT_BYTES = hint
    text = out.getvalue()
    shown = [x.strip() for x in text.split("\r") if x.strip()]
    assert shown[0].startswith("simulated 0.0s of 6.0s (0%): ")
    assert shown[-1].startswith("simulated 6.0s of 6.0s") and "MiB" in shown[-1]
    assert text.count("metrics.requests=streaming") == 1  # said once
    assert text.endswith("\r")  # the line is cleared at the end
    created = [int(x.split(": ")[1].split(" requests")[0].replace(",", "")) for x in shown
               if x.startswith("simulated")]
    assert created == sorted(created) and created[-1] <= results.requests["request_id"].size


def test_stopping_the_clock_for_progress_changes_no_table() -> None:
    import simulator

    scenario = simulator.load_scenario(ROOT / "scenarios" / "retry_storm.yaml",
                                       _short(ROOT / "scenarios" / "retry_storm.yaml"))
    plain = simulator.simulate(scenario, seed=3)
    watched = simulator.simulate(scenario, seed=3, progress=lambda *_: None)
    assert plain.tables.keys() == watched.tables.keys()
    for name, table in plain.tables.items():
        pd.testing.assert_frame_equal(table, watched.tables[name], check_exact=True)
