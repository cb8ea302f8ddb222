"""A scenario's SLO (``slo:``): validated with the scenario, judged on a run, drawn on the
dashboard and searched against by ``capacity`` when no ``--slo`` is given.

The runs use constant service times and constant arrivals spaced wider than the work, so no
request waits and every latency is exactly the service time: whether an objective is met is
known before the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator.analysis.objectives import slo_lines, slo_table
from simulator.analysis.plots.dashboard import panels
from simulator.cli import main
from simulator.experiment import capacity


def _spec(slo: str | None, **api: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "slo", "duration": "10s",
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": "50/s"},
                            "target": "api"}},
        "components": {"api": {"kind": "service", "service_time": "5ms", **api}},
    }
    if slo is not None:
        spec["slo"] = slo
    return spec


def _run(slo: str | None, **api: Any) -> simulator.Results:
    return simulator.simulate(simulator.parse_scenario(_spec(slo, **api)), seed=1)


@pytest.mark.parametrize(("slo", "met"), [
    ("p99 < 6ms", [True]), ("p99 < 4ms", [False]), ("p50 <= 5ms and errors < 1%", [True, True]),
    ("goodput >= 49/s", [True]), ("mean > 6ms", [False]),
])
def test_each_condition_is_judged_on_the_run(slo: str, met: list[bool]) -> None:
    table = slo_table(_run(slo))
    assert table["met"].tolist() == met
    verdict = "met" if all(met) else "MISSED"
    assert slo_lines(table)[0].startswith(f"SLO {verdict} by w: ")


def test_latency_met_while_requests_fail_says_so() -> None:
    """Survivors are never the whole: a latency objective met by the requests that succeeded
    is reported with the share that failed."""
    r = _run("p99 < 40ms", queue_limit=0, workers=1, service_time="30ms")  # 30ms > 20ms gap
    table = slo_table(r)
    assert table["met"].all() and table["failed_ratio"].iloc[0] > 0.3
    assert "latencies over successful requests only" in slo_lines(table)[0]


def test_no_slo_no_table() -> None:
    r = _run(None)
    assert slo_table(r).empty and slo_lines(slo_table(r)) == []


@pytest.mark.parametrize(("slo", "message"), [
    ("p99 < fast", "bad value in 'p99 < fast'"),
    ("p42 < 1ms", "unknown metric 'p42'"),
    ("p99 = 1ms", "cannot read"),
    ("", "empty SLO"),
])
def test_a_bad_slo_is_refused_where_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          slo: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nduration: 5s\nworkloads:\n  w: {arrivals: {process: poisson, rate: "
                    f"10/s}}, target: api}}\ncomponents:\n  api: {{kind: service}}\nslo: '{slo}'\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7: slo: " in err and message in err, err


def test_run_prints_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nduration: 5s\nslo: p99 < 4ms\nworkloads:\n  w: {arrivals: "
                    "{process: constant, rate: 50/s}, target: api}\ncomponents:\n  api: "
                    "{kind: service, service_time: 5ms}\n")
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "SLO MISSED by w: p99 < 4ms: 5.00 ms, MISSED" in out


def test_the_dashboard_draws_the_scenarios_slo() -> None:
    r = _run("p99 < 8ms and errors < 1%", service_time={"dist": "exponential", "mean": "5ms"})
    board = {p.name: p for p in panels(r)}
    assert "latency" in board
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    board["latency"].draw(ax)
    (line,) = [ln for ln in ax.lines if ln.get_label().startswith("SLO")]
    assert line.get_label() == "SLO p99 < 8 ms" and line.get_ydata()[0] == 8.0


def test_capacity_searches_against_the_scenarios_slo() -> None:
    spec = _spec("p99 < 8ms", service_time={"dist": "exponential", "mean": "5ms"})
    spec["workloads"]["w"]["arrivals"] = {"process": "poisson", "rate": "50/s"}
    serial = simulator.experiment.ExperimentOptions(executor="serial", progress=False)
    kwargs: dict[str, Any] = {"replications": 2, "options": serial, "tolerance": 40.0}
    own = capacity(spec, "workloads.w.arrivals.rate", 10, 190, **kwargs)
    given = capacity(spec, "workloads.w.arrivals.rate", 10, 190, "p99 < 8ms", **kwargs)
    assert [c.text for c in own.slo] == ["p99 < 8ms"]
    assert own.value == given.value
    spec.pop("slo")
    with pytest.raises(ValueError, match="no SLO to search against"):
        capacity(spec, "workloads.w.arrivals.rate", 10, 190, **kwargs)
