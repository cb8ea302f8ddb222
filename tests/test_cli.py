"""The command line: run, validate, schema, kinds, and ``python -m simulator``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.cli import SINGLE_THREAD_VARS, main
from simulator.registry import kinds

SCENARIO = """\
name: tiny
duration: 3s
workloads:
  shoppers:
    arrivals: {process: poisson, rate: 40/s}
    target: lb
components:
  lb: {kind: load_balancer, strategy: round_robin, backends: [api]}
  api:
    kind: service
    replicas: 2
    workers: 1
    service_time: {dist: exponential, mean: 10ms}
"""

TABLES = ("requests", "spans", "samples", "events", "summary", "backend_share")


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO)
    return path


def run_ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    return out


def test_the_cli_sets_one_blas_thread_unless_the_user_chose(
        scenario: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # set then deleted, so that monkeypatch restores whatever the environment had
    for var in SINGLE_THREAD_VARS:
        monkeypatch.setenv(var, "unset")
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice stays
    assert main(["validate", str(scenario)]) == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_run_prints_a_summary(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "run", str(scenario))
    assert out.startswith("tiny: ")
    assert "requests in 3s simulated (seed 1" in out
    for word in ("scope", "throughput", "p99_ms", "shoppers", "per-backend share", "api[0]",
                 "api[1]"):
        assert word in out


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_run_writes_tables(scenario: Path, tmp_path: Path, fmt: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    out = run_ok(capsys, "run", str(scenario), "--out", str(out_dir), "--format", fmt)
    assert f"tables written to {out_dir}/" in out
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    tables = {name: read(out_dir / f"{name}.{fmt}") for name in TABLES}
    assert len(tables["requests"]) > 50  # about 40/s for 3 s
    assert {"start", "end", "latency", "status"} <= set(tables["requests"].columns)
    assert len(tables["spans"]) >= len(tables["requests"]) - 5
    assert set(tables["samples"]["component"]) >= {"api", "lb"}
    assert set(tables["summary"]["name"]) >= {"shoppers", "api"}
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["scenario"]["name"] == "tiny"
    assert not list(out_dir.glob("plots"))


def test_run_rewrites_its_own_output_directory(scenario: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    run_ok(capsys, "run", str(scenario), "--out", str(out_dir))
    run_ok(capsys, "run", str(scenario), "--out", str(out_dir), "--seed", "5")
    assert json.loads((out_dir / "manifest.json").read_text())["seed"] == 5


def test_run_writes_plots(scenario: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    run_ok(capsys, "run", str(scenario), "--out", str(out_dir), "--plots")
    pngs = sorted(p.name for p in (out_dir / "plots").glob("*.png"))
    assert "latency_cdf.png" in pngs and "backend_share.png" in pngs
    for name in pngs:
        assert (out_dir / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _requests(capsys: pytest.CaptureFixture[str], scenario: Path, out_dir: Path,
              *extra: str) -> pd.DataFrame:
    run_ok(capsys, "run", str(scenario), "--out", str(out_dir), *extra)
    return pd.read_parquet(out_dir / "requests.parquet")


def test_seed_changes_results_and_same_seed_repeats(scenario: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    a = _requests(capsys, scenario, tmp_path / "a", "--seed", "7")
    b = _requests(capsys, scenario, tmp_path / "b", "--seed", "7")
    c = _requests(capsys, scenario, tmp_path / "c", "--seed", "8")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) != len(c) or not a["start"].equals(c["start"])
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["seed"] == 8


def test_set_overrides_take_effect(scenario: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "run", str(scenario), "--out", str(tmp_path / "o"),
                 "--set", "components.api.workers=3",
                 "--set", "components.api.replicas=3",
                 "--set", "duration=1s",
                 "--set", "workloads.shoppers.arrivals.rate=5/s")
    assert "requests in 1s simulated" in out
    assert "api[2]" in out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())["scenario"]
    assert manifest["components"]["api"]["workers"] == 3
    assert manifest["components"]["api"]["replicas"] == 3
    assert manifest["workloads"]["shoppers"]["arrivals"]["rate"] == 5.0
    requests = pd.read_parquet(tmp_path / "o" / "requests.parquet")
    assert requests["start"].max() < 1.0
    assert len(requests) < 25  # about 5


def test_run_with_a_warmup_in_requests(scenario: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "run", str(scenario), "--out", str(tmp_path / "o"),
                 "--set", "warmup=50 requests")
    start = np.sort(pd.read_parquet(tmp_path / "o" / "requests.parquet")["start"].to_numpy())
    assert f"warm-up {start[50]:g}s: 50 requests)" in out
    back = simulator.Results.read(tmp_path / "o")
    assert back.window[0] == start[50]
    assert back.summary().set_index("name").loc["shoppers", "count"] == (start < 3.0).sum() - 50
    # about 120 requests in 3 s: 10k leaves nothing to measure, a located error, exit code 2
    assert main(["run", str(scenario), "--set", "warmup=10k requests"]) == 2
    err = capsys.readouterr().err
    assert "warmup (10000 requests) is more than the run is expected to create" in err
    assert "Traceback" not in err


def test_validate_good_file(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "validate", str(scenario))
    assert out.strip() == f"{scenario}: ok (tiny: 2 components, 1 workloads)"


def test_schema_is_json_with_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(run_ok(capsys, "schema"))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"duration", "workloads", "components"} <= set(schema["properties"])
    text = json.dumps(schema)
    for kind in kinds():
        assert f'"const": "{kind}"' in text or f'"enum": ["{kind}"]' in text, kind


def test_kinds_lists_parameters_types_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "kinds")
    blocks = {b.split(":", 1)[0]: b for b in out.strip().split("\n\n")}
    assert set(blocks) == set(kinds())
    for kind, declared in kinds().items():
        for name, f in declared.params.model_fields.items():
            if name != "kind":
                assert re.search(rf"^    {f.alias or name}( |$)", blocks[kind], re.M), (kind,
                                                                                       name)
    for noise in ("typing.", "Literal[", "Annotated[", "Union[", "<class", "simulator."):
        assert noise not in out
    service = {ln.split()[0]: ln for ln in blocks["service"].splitlines()[1:]
               if ln.startswith("    ") and ln.split()}
    assert "integer >= 1" in service["workers"] and "default 1" in service["workers"]
    assert "distribution" in service["service_time"] and "default 0s" in service["service_time"]
    assert "one of: fifo, lifo" in service["queue_discipline"]
    lb = blocks["load_balancer"]
    assert "one of: round_robin, weighted_round_robin" in lb
    assert "list of names" in lb and "required" in lb
    assert "duration > 0" in lb and "default 10s" in lb


def _fields(model: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted names of every field of a model and of the models nested in it (the test's own
    walk: a model field, an optional model, a list or mapping of models)."""
    import typing

    from pydantic import BaseModel

    names = []
    for name, f in model.model_fields.items():
        key = f"{prefix}{f.alias or name}"
        names.append(key)
        tp, suffix = f.annotation, ""
        if typing.get_origin(tp) in (list, tuple):
            tp, suffix = typing.get_args(tp)[0], "[]"
        inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        for sub in inner:
            if (isinstance(sub, type) and issubclass(sub, BaseModel) and "dist" not in
                    sub.model_fields and depth < 3):
                names += _fields(sub, f"{key}{suffix}.", depth + 1)
    return names


@pytest.mark.parametrize("kind", ["load_balancer", "database", "service", "cache", "consumer"])
def test_kinds_kind_expands_every_nested_setting(kind: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "kinds", kind)
    assert out.split(":", 1)[0] == kind and "\n\n" not in out.strip()  # that kind only
    listed = {ln.split()[0] for ln in out.splitlines()[1:] if ln.startswith("    ") and ln.split()}
    missing = [n for n in _fields(kinds()[kind].params) if n != "kind" and n not in listed]
    assert missing == []


def test_kinds_service_lists_the_call_policies_with_units_and_defaults(
        capsys: pytest.CaptureFixture[str]) -> None:
    out = run_ok(capsys, "kinds", "service")
    lines = out.splitlines()
    def row(name: str) -> str:
        i = next(k for k, ln in enumerate(lines) if ln.split() and ln.split()[0] == name)
        return lines[i] if len(lines[i].split()) > 1 else lines[i + 1]
    assert "duration > 0" in row("calls.*[].timeout")
    assert "default 3" in row("calls.*[].retry.attempts")
    assert "duration" in row("calls.*[].retry.base") and "default 0.025s" in row(
        "calls.*[].retry.base")
    assert "default 60s" in row("calls.*[].breaker.wait_duration_in_open_state")
    assert "calls.*[].hedge.percentile" in out and "calls.*[].bulkhead.max_concurrent_calls" in out
    assert "the fields of calls.*[] (CallSpec)" in out  # on_failure's steps are the same


def test_kinds_refuses_an_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kinds", "nope"]) == 2
    assert "unknown kind 'nope'" in capsys.readouterr().err


def test_python_m_simulator_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulator", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for command in ("run", "validate", "schema", "kinds"):
        assert command in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--set" in proc.stdout and "--seed" in proc.stdout
