"""Bounded work, refused up front: every resource bomb is refused with exit status 2, a message
naming the limit it exceeds, and quickly.

The wall-time bound is the acceptance criterion itself (a bomb must be answered, not run): each
refusal is a cheap check made before the work it bounds (a file size read with ``stat``, an
alias expansion counted on the composed graph, products of counts on the validated model), so
the measured times are a few hundredths of a second against a bound of 2 s; the CLI is called
in-process after one warm-up call, so the bound measures the refusal, not the interpreter's
imports.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulator import limits
from simulator.cli import main
from simulator.scenario import loads_scenario

QUICKSTART = str(Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")

HEAD = "name: bomb\nduration: 10s\n"
SERVICE = "{kind: service, service_time: {dist: exponential, mean: 1ms}}"


def _components_by_anchor(n: int) -> str:
    lines = [HEAD + "workloads:", "  w: {arrivals: {process: poisson, rate: 10/s}, target: c0}",
             f"x-service: &s {SERVICE}", "components:"]
    lines += [f"  c{i}: *s" for i in range(n)]
    return "\n".join(lines) + "\n"


def _alias_bomb() -> str:
    lines = [HEAD + "workloads:", "  w: {arrivals: {process: poisson, rate: 10/s}, target: api}",
             "a: &a [api, api, api, api, api, api, api, api, api, api]"]
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    lines += ["components:", f"  api: {SERVICE}"]
    return "\n".join(lines) + "\n"


def _one(workload: str, components: str) -> str:
    return f"{HEAD}workloads:\n  w: {workload}\ncomponents:\n{components}"


KEYS = _one("{arrivals: {process: poisson, rate: 10/s}, keys: {popularity: zipf, n: 100000000, "
            "s: 0.9}, target: c}",
            "  c: {kind: cache, capacity: 100000000, backing: db}\n"
            f"  db: {SERVICE}\n")
REPLICAS = _one("{arrivals: {process: poisson, rate: 10/s}, target: api}",
                "  api: {kind: service, replicas: 100000, service_time: "
                "{dist: exponential, mean: 1ms}}\n")
RING = _one("{arrivals: {process: poisson, rate: 10/s}, keys: {popularity: uniform, n: 1000}, "
            "target: db}", "  db: {kind: database, shards: {count: 10000, vnodes: 100000}}\n")
TABLE = _one("{arrivals: {process: poisson, rate: 19000000/s}, target: api}", f"  api: {SERVICE}\n")
CONSUMERS = _one("{arrivals: {process: poisson, rate: 10/s}, target: q}",
                 "  q: {kind: queue}\n  c: {kind: consumer, source: q, replicas: 1000, "
                 "concurrency: 1000, service_time: 1ms}\n")

AUTOSCALED = _one("{arrivals: {process: poisson, rate: 10/s}, target: api}",
                  "  api: {kind: service, replicas: 1, service_time: 1ms, autoscaling: "
                  "{max_replicas: 100000, metrics: [{type: utilization, "
                  "average_utilization: 50}]}}\n")

SPIKE = (_one("{arrivals: {process: poisson, rate: 70/s}, target: api}", f"  api: {SERVICE}\n")
         + "faults:\n- {at: 1s, duration: 5s, kind: spike, workload: w, factor: 1000000000}\n")

GRID = ",".join(str(i) for i in range(1, 1001))

#: (id, file text or None for the quickstart, command line after the file, limit named)
BOMBS = [
    ("components-150k-anchors", _components_by_anchor(150_000), ["validate"], "file_size"),
    ("components-1M-anchors", _components_by_anchor(1_000_000), ["validate"], "file_size"),
    ("alias-bomb", _alias_bomb(), ["validate"], "yaml_nodes"),
    ("keys-1e8", KEYS, ["validate"], "key_memory"),
    ("replicas-1e5", REPLICAS, ["run"], "instances"),
    ("consumer-workers-1e6", CONSUMERS, ["run"], "instances"),
    ("autoscaling-max-1e5", AUTOSCALED, ["run"], "instances"),
    ("ring-1e4-shards-1e5-vnodes", RING, ["run"], "ring_tokens"),
    ("table-1.9e8-requests", TABLE, ["run"], "table_memory"),
    ("spike-factor-1e9", SPIKE, ["validate"], "requests"),
    ("sweep-1e6-points", None, ["sweep", "--no-cache", "--grid", f"seed={GRID}",
                                "--grid", f"duration={GRID}"], "sweep_points"),
    ("compare-1e6-variants", None, ["compare", "--vary", f"seed={GRID}",
                                    "--vary", f"duration={GRID}"], "sweep_points"),
    ("replicate-1e7", None, ["replicate", "-n", "10000000"], "replications"),
    ("capacity-1e6-replications", None, ["capacity", "-n", "1000000", "--param",
                                         "components.api.replicas", "--low", "1", "--high",
                                         "8", "--slo", "p99 < 100ms"], "replications"),
]


def _argv(tmp_path: Path, text: str | None, command: list[str]) -> list[str]:
    if text is None:
        path = QUICKSTART
    else:
        path = str(tmp_path / "bomb.yaml")
        Path(path).write_text(text)
    if command[0] == "validate":
        return [*command, path]
    return [command[0], path, *command[1:]]


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import what the commands import once, so the timed calls measure the refusals."""
    import simulator.engine
    import simulator.experiment.capacity
    import simulator.experiment.compare
    import simulator.experiment.sweep  # noqa: F401

    assert main(["validate", QUICKSTART]) == 0


@pytest.mark.parametrize(("text", "command", "limit"), [b[1:] for b in BOMBS],
                         ids=[b[0] for b in BOMBS])
def test_bomb_is_refused_quickly_naming_its_limit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None,
        command: list[str], limit: str) -> None:
    argv = _argv(tmp_path, text, command)
    capsys.readouterr()
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"the {limit} limit" in err
    assert "Traceback" not in err
    assert ("--force" in err) == limits.LIMITS[limit].soft
    assert elapsed < 2.0, f"refused in {elapsed:.2f}s"


def test_too_many_components_are_refused_before_validation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # under the file-size limit, so the file is composed (about 0.5 s idle for 145 kB with
    # libyaml; not timed: on a loaded machine it takes several times that) but never validated
    path = tmp_path / "many.yaml"
    path.write_text(_components_by_anchor(12_000))
    assert main(["validate", "--force", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "12,000 components, over the components limit" in err


def test_a_refusal_is_located_and_gives_estimate_limit_and_remedy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "table.yaml"
    path.write_text(TABLE)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    # 1.9e7/s for 10 s = 1.9e8 requests x 171 bytes = 3.25e10 bytes = 30.3 GiB
    assert f"{path}:3: workloads: " in err
    assert "30.3 GiB, over the table_memory limit of 4 GiB" in err
    assert "metrics: {requests: streaming}" in err


def test_force_lets_a_soft_limited_scenario_through_validation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "replicas.yaml"
    path.write_text(REPLICAS)
    assert main(["validate", str(path)]) == 2
    assert main(["validate", "--force", str(path)]) == 0
    assert loads_scenario(REPLICAS, force=True).components["api"].replicas == 100_000
    assert "ok" in capsys.readouterr().out


def test_force_does_not_lift_a_hard_limit(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(_alias_bomb())
    assert main(["validate", "--force", str(path)]) == 2
    assert "the yaml_nodes limit" in capsys.readouterr().err


def test_streaming_requests_are_not_held_to_the_table_memory_limit() -> None:
    streaming = TABLE.replace("components:", "metrics: {requests: streaming, spans: false}\n"
                                             "components:")
    assert loads_scenario(streaming).metrics.requests == "streaming"


def test_shipped_scenarios_are_within_every_limit(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in Path(QUICKSTART).parent.glob("*.yaml"))
    assert main(["validate", *files]) == 0, capsys.readouterr().err


def test_an_estimate_just_under_a_limit_is_accepted() -> None:
    # 20,000 instances exactly: at the limit, accepted; one more is refused
    at = REPLICAS.replace("100000", str(int(limits.INSTANCES.limit)))
    assert loads_scenario(at).components["api"].replicas == limits.INSTANCES.limit
    with pytest.raises(Exception, match="the instances limit"):
        loads_scenario(REPLICAS.replace("100000", str(int(limits.INSTANCES.limit) + 1)))


def test_the_readme_documents_every_limit() -> None:
    readme = (Path(QUICKSTART).parents[1] / "README.md").read_text()
    for name, lim in limits.LIMITS.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")),
                   None)
        assert row is not None, name
        assert row.rstrip().endswith("| yes |" if lim.soft else "| no |"), row


@pytest.mark.parametrize(("component", "key"), [
    ("{kind: cache, pattern: write_behind, backing: db, capacity: 10}", "flush_interval"),
    ("{kind: service, service_time: 1ms, autoscaling: {max_replicas: 2, metrics: [{type: "
     "utilization, average_utilization: 50}]}}", "autoscaling.sync_period"),
])
def test_a_periodic_timer_below_a_millisecond_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], component: str, key: str) -> None:
    """Each round of a periodic timer is an event of the run: a nanosecond period meant
    billions of them (a fuzzer's hang), so periods are at least 1 ms, as health checks'."""
    comp = component[:-1] + ", " + key.split(".")[-1] + ": 1ns}"
    if "." in key:  # nested in the autoscaling block
        comp = component[:-2] + ", sync_period: 1ns}}"
    text = _one("{arrivals: {process: poisson, rate: 10/s}, target: c}",
                f"  c: {comp}\n  db: {SERVICE}\n")
    path = tmp_path / "timer.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"components.c.{key}" in err and "0.001" in err, err


def test_a_request_warmup_beyond_the_run_is_refused_at_validation(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A warm-up of more requests than the run can create left nothing to measure only after
    the run (a fuzzer's find); validation says so first."""
    assert main(["validate", QUICKSTART, "--set", "warmup=1e30 requests"]) == 2
    err = capsys.readouterr().err
    assert "warmup: " in err and "nothing would be left to measure" in err, err
    assert main(["validate", QUICKSTART, "--set", "warmup=5000 requests"]) == 0
