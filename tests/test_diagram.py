"""The topology diagram: every shipped scenario draws, the picture names every component and
every reference, the layout keeps boxes apart, edges carry their policies, and the CLI and the
report use it."""

from __future__ import annotations

import html
import itertools
from pathlib import Path

import pytest

import simulator
from simulator.analysis.diagram import topology
from simulator.analysis.report import report_html
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
PNG = b"\x89PNG\r\n\x1a\n"

SMALL = {
    "name": "small",
    "duration": "1s",
    "workloads": {"users": {"arrivals": {"process": "poisson", "rate": "50/s"},
                            "target": {"to": "lb", "timeout": "2s"}}},
    "components": {
        "lb": {"kind": "load_balancer", "backends": ["api"]},
        "api": {"kind": "service", "replicas": 3, "calls": {"read": [
            {"to": "db", "op": "get", "timeout": "250ms", "retry": {"attempts": 4},
             "breaker": {}, "hedge": {"percentile": 95}}],
            "write": [{"to": "jobs"}]}},
        "db": {"kind": "database", "shards": {"count": 4}},
        "jobs": {"kind": "queue"},
        "worker": {"kind": "consumer", "source": "jobs", "calls": ["db"]},
    },
}


def _references(scenario: simulator.Scenario) -> set[frozenset[str]]:
    """Every (component or workload, name it references) pair, as the scenario states it."""
    pairs = {frozenset((w, spec.target.to)) for w, spec in scenario.workloads.items()}
    for name, params in scenario.components.items():
        pairs |= {frozenset((name, ref)) for _, ref in params.references()}
    return pairs


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_draws(path: Path, tmp_path: Path) -> None:
    scenario = simulator.load_scenario(path)
    fig = simulator.diagram(scenario)
    from simulator.analysis.diagram import save

    png, svg = save(fig, tmp_path / "t.png", dpi=40), save(fig, tmp_path / "t.svg")
    assert png.read_bytes()[:8] == PNG
    text = html.unescape(svg.read_text())
    for name in [*scenario.components, *scenario.workloads]:
        assert f'id="node:{name}"' in text, name
        assert f">{name}" in text, name  # its title, as searchable text
    # ids are edge:SRC->DST[:style]; a pulled reference is drawn the way the messages flow
    drawn = {frozenset(part.split('"')[0].split(":")[0].split("->"))
             for part in text.split('id="edge:')[1:]}
    assert _references(scenario) <= drawn


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_boxes_do_not_overlap(path: Path) -> None:
    topo = topology(simulator.load_scenario(path))
    boxes = [n for n in topo.nodes.values() if not n.dummy]
    for a, b in itertools.combinations(boxes, 2):
        apart_x = abs(a.x - b.x) >= (a.width + b.width) / 2
        apart_y = abs(a.y - b.y) >= (a.height + b.height) / 2
        assert apart_x or apart_y, (a.name, b.name)
    for n in boxes:  # inside the picture, and inside its region's band
        assert n.x - n.width / 2 >= 0 and n.x + n.width / 2 <= topo.width
        band = next((top, bottom) for name, top, bottom in topo.bands if name == n.band)
        assert band[0] <= n.y - n.height / 2 and n.y + n.height / 2 <= band[1]


def test_edges_carry_operations_policies_and_flow() -> None:
    topo = topology(simulator.parse_scenario(SMALL))
    edges = {(e.src, e.dst): e for e in topo.edges}
    assert edges[("api", "db")].labels == [
        "read→get · timeout 250ms, retry 4, breaker, hedge p95"]
    assert edges[("users", "lb")].labels == ["timeout 2s"]
    assert edges[("api", "jobs")].labels == ["write"]
    # messages flow from the queue to its consumer, not the way the name points
    assert ("jobs", "worker") in edges and ("worker", "jobs") not in edges
    nodes = topo.nodes
    assert nodes["api"].title == "api \u00d73" and "4 shards (consistent hash)" in nodes["db"].lines
    # layered by the flow: workload, balancer, service, then the stores to the right
    assert nodes["users"].layer < nodes["lb"].layer < nodes["api"].layer < nodes["db"].layer
    assert nodes["jobs"].layer < nodes["worker"].layer < nodes["db"].layer


def test_parallel_branches_say_so() -> None:
    edges = {(e.src, e.dst): e.labels for e in topology(
        simulator.load_scenario(ROOT / "scenarios" / "quickstart.yaml")).edges}
    assert edges[("api", "catalog")] == edges[("api", "pricing")] == ["read (parallel)"]
    assert edges[("api", "orders-db")] == ["write"]


def test_regions_are_bands_in_the_scenario_order() -> None:
    scenario = simulator.load_scenario(ROOT / "scenarios" / "multi_region.yaml")
    topo = topology(scenario)
    assert [b for b, _, _ in topo.bands] == ["", *scenario.regions.names]
    assert topo.nodes["api-eu"].band == "eu-west"
    assert topo.nodes["db"].band == "" and "in us-east, eu-west, ap-south" in topo.nodes[
        "db"].lines  # leader and followers in three regions


def test_same_scenario_same_svg(tmp_path: Path) -> None:
    scenario = simulator.parse_scenario(SMALL)
    a = simulator.diagram(scenario, tmp_path / "a.svg")
    b = simulator.diagram(scenario, tmp_path / "b.svg")
    assert a is not b
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q.svg"
    assert main(["diagram", str(ROOT / "scenarios" / "quickstart.yaml"), "-o", str(out)]) == 0
    assert f"diagram written to {out}" in capsys.readouterr().out
    assert "node:orders-db" in out.read_text()

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 1s\nworkloads:\n  u:\n    arrivals: {process: poisson,"
                   " rate: 1/s}\n    target: nowhere\ncomponents:\n  a: {kind: service}\n")
    assert main(["diagram", str(bad), "-o", str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6:" in err and "nowhere" in err and not (tmp_path / "bad.png").exists()

    assert main(["diagram", str(ROOT / "scenarios" / "quickstart.yaml"), "-o",
                 str(tmp_path / "q.txt")]) == 2
    assert ".png, .svg or .pdf" in capsys.readouterr().err
    assert main(["diagram", str(ROOT / "scenarios" / "quickstart.yaml"),
                 "--set", "components.api.workers=0"]) == 2


def test_report_shows_the_topology() -> None:
    results = simulator.simulate(simulator.parse_scenario(SMALL), seed=1)
    text = report_html(results, plots=[])
    _head, _, rest = text.partition('<h2 id="topology">Topology</h2>')
    assert rest and '<h2 id="summary">' in rest and "data:image/png;base64," in rest.split(
        '<h2 id="summary">')[0]
