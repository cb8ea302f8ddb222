"""The topology of a scenario as a graph to draw: nodes, labelled edges, regions, and a layered
layout (no drawing, no simulation).

Everything comes from the validated :class:`~simulator.scenario.Scenario` and what each kind
declares: a node per workload and per component (its kind's ``shape`` and ``colour``, the
replicas, the lines of ``ComponentParams.diagram_lines``), an edge per reference the
component's ``references()`` yields (resolved through its key path to the call it belongs to,
so the edge carries that call's operation and policies), reversed for the keys a kind
``pulled_from`` (work flows from the source to the puller), and a dotted edge per
``related()`` dependency.

Layout (Sugiyama's layered drawing, simplified): the edges along which work flows are made
acyclic (a cycle, possible only through pulled references, loses one edge, drawn as an arc),
each node's layer is its longest path from a node nothing sends work to, so workloads stand
left and stores right; an edge spanning several layers is routed through a dummy point in each;
the order within a layer comes from barycentre sweeps (fewer crossings); regions are horizontal
bands, each node in the band of the one region it is placed in (several or none: the band
above them, "global").
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from simulator import registry
from simulator.calls import CallSpec, ChoiceBranch, ChoiceSpec, MaybeSpec, ReenterSpec
from simulator.units import format_duration

#: The band of nodes placed in no region, or in several.
GLOBAL = ""
#: Font sizes (points) of a node's name, its detail lines, and edge labels.
NAME_PT, DETAIL_PT, EDGE_PT = 9.0, 7.5, 7.0
#: Average character width and line height, as a fraction of the font size (DejaVu Sans).
_CHAR, _LINE = 0.58, 1.35
#: Most label lines written on one edge (the rest are counted as "+N more").
MAX_EDGE_LINES = 3


def text_width(text: str, points: float) -> float:
    """Approximate width of ``text`` in inches."""
    return len(text) * points * _CHAR / 72


def line_height(points: float) -> float:
    """Height of a line of text in inches."""
    return points * _LINE / 72


@dataclass
class Node:
    """One box of the diagram (a workload, a component, or a dummy bend of a long edge)."""

    name: str
    kind: str
    title: str = ""
    lines: list[str] = field(default_factory=list)
    band: str = GLOBAL
    shape: str = "box"
    colour: str = "#eceff1"
    dummy: bool = False
    layer: int = 0
    x: float = 0.0
    y: float = 0.0

    @property
    def width(self) -> float:
        """Box width in inches."""
        if self.dummy:
            return 0.0
        w = max([text_width(self.title, NAME_PT)]
                + [text_width(s, DETAIL_PT) for s in self.lines])
        return w + {"hexagon": 0.45, "log": 0.45}.get(self.shape, 0.25)

    @property
    def height(self) -> float:
        """Box height in inches (a dummy takes a thin slot)."""
        if self.dummy:
            return 0.12
        extra = 0.12 if self.shape == "cylinder" else 0.0
        return line_height(NAME_PT) + len(self.lines) * line_height(DETAIL_PT) + 0.16 + extra


@dataclass
class Edge:
    """Calls (or messages, or a dependency) from ``src`` to ``dst``, with their labels."""

    src: str
    dst: str
    style: str  # "call", "ref" (no policies apply), "fallback", "related"
    labels: list[str] = field(default_factory=list)
    #: The points it passes through: the dummies of the layers it crosses.
    route: list[str] = field(default_factory=list)
    #: Drawn as an arc (against the flow, or within one layer), not along the layers: its
    #: start, control point and end (a quadratic curve), set by the layout.
    arc: bool = False
    arc_points: list[tuple[float, float]] = field(default_factory=list)
    #: Which segment (between two layers) of the route the label sits on.
    label_segment: int = 0

    @property
    def apex(self) -> tuple[float, float]:
        """The middle of an arc (where its label goes)."""
        (px, py), (cx, cy), (qx, qy) = self.arc_points
        return (px + 2 * cx + qx) / 4, (py + 2 * cy + qy) / 4

    @property
    def gid(self) -> str:
        """Identifier of the drawn arrow (``edge:api->db``), kept in the SVG."""
        return f"edge:{self.src}->{self.dst}" + ("" if self.style == "call" else
                                                 f":{self.style}")

    def text(self) -> str:
        """The label as drawn: at most :data:`MAX_EDGE_LINES` lines."""
        shown = self.labels[:MAX_EDGE_LINES]
        if len(self.labels) > MAX_EDGE_LINES:
            shown[-1] = f"+{len(self.labels) - MAX_EDGE_LINES + 1} more"
        return "\n".join(shown)


@dataclass
class Topology:
    """Nodes, edges, bands (region names, the global band first) and the size, in inches."""

    name: str
    nodes: dict[str, Node]
    edges: list[Edge]
    bands: list[tuple[str, float, float]] = field(default_factory=list)  # (name, top, bottom)
    width: float = 0.0
    height: float = 0.0
    regions: bool = False
    #: The scenario's regions, in the order it lists them (None: no regions block).
    region_order: list[str] | None = None


def policy_text(call: CallSpec) -> str:
    """The policies of a call in a few words (``timeout 2s, retry 3, breaker``)."""
    parts = []
    if call.timeout is not None:
        parts.append(f"timeout {format_duration(call.timeout)}")
    if call.retry is not None:
        parts.append(f"retry {call.retry.attempts}" + (" +budget" if call.retry.budget else ""))
    if call.breaker is not None:
        parts.append("breaker")
    if call.hedge is not None:
        h = call.hedge
        when = (f"p{h.percentile:g}" if h.percentile is not None
                else format_duration(h.delay) if h.delay is not None else "")
        parts.append(f"hedge {when}".strip())
    if call.rate_limit is not None:
        rl = call.rate_limit
        per = (f"{rl.rate:g}/s" if rl.rate is not None
               else f"{rl.limit}/{format_duration(float(rl.window or 0))}")
        parts.append(f"limit {per}" + ("" if rl.scope == "instance" else f" {rl.scope}"))
    if call.bulkhead is not None:
        parts.append(f"bulkhead {call.bulkhead.max_concurrent_calls}")
    if call.fallback is not None:
        parts.append(f"fallback {call.fallback.kind}")
    if call.network is not None:
        net = call.network
        parts.append("net " + " ".join(p for p in (
            net.profile, f"loss {net.loss:g}" if net.loss is not None else None) if p)
            if net.profile is not None or net.loss is not None else "net")
    return ", ".join(parts)


def call_label(call: CallSpec, context: list[str]) -> str:
    """``serving-op→called-op · policies`` for one call ("*": every operation, left out)."""
    ops = [c for c in context if c != "*"]
    head = "/".join(ops)
    if call.op is not None:
        head = f"{head}→{call.op}"
    return " · ".join(p for p in (head, policy_text(call)) if p)


def _resolve(params: Any, path: tuple[Any, ...]) -> tuple[Any, list[Any], list[str]]:
    """Walk ``path`` inside ``params``: the value it names, the objects passed on the way and
    the dictionary keys used (the operations a component lists its ``calls`` under)."""
    obj, trail, keys = params, [], []
    for key in path:
        trail.append(obj)
        if isinstance(obj, dict):
            keys.append(str(key))
            obj = obj[key]
        elif isinstance(key, int):
            obj = obj[key]
        else:
            obj = getattr(obj, key)
    return obj, trail, keys


def _reference_edge(owner: str, params: Any, path: tuple[Any, ...], name: str) -> Edge:
    value, trail, keys = _resolve(params, path)
    top = str(path[0]) if path else ""
    extra = params.reference_labels.get(top)
    calls = [i for i, o in enumerate([*trail, value]) if isinstance(o, CallSpec)]
    if calls:
        at = calls[-1]
        call = [*trail, value][at]
        rest = tuple(path[at:])
        if rest in ((), ("to",)):
            label = call_label(call, keys)
            if "parallel" in path:  # a branch of a fan-out: its latency is the slowest's
                label = f"{label} (parallel)" if label else "parallel"
            route = _route_text(trail)
            if route:
                label = f"{label} ({route})" if label else route
            return Edge(owner, name, "call", [" · ".join(p for p in (extra, label) if p)])
        return Edge(owner, name, "fallback", [f"fallback {call.fallback.kind}"
                                              if call.fallback is not None else "fallback"])
    label = str(value)[len(name) + 1:] if str(value).startswith(f"{name}.") else ""
    labels = [" · ".join(p for p in (extra, label) if p)]
    if top in params.pulled_from:
        return Edge(name, owner, "ref", labels)
    return Edge(owner, name, "ref", labels)


def _route_text(trail: list[Any]) -> str:
    """How likely a call on the way down ``trail`` is made: a probabilistic call, a weighted
    branch (its share), a re-entry (feedback)."""
    parts = []
    for i, obj in enumerate(trail):
        if isinstance(obj, MaybeSpec):
            parts.append(f"p {obj.probability:.3g}")
        elif isinstance(obj, ReenterSpec):
            parts.append(f"re-enter p {obj.probability:.3g}")
        elif isinstance(obj, ChoiceBranch):
            siblings = next((o for o in reversed(trail[:i]) if isinstance(o, ChoiceSpec)), None)
            if siblings is not None:
                total = sum(b.weight for b in siblings.choice)
                parts.append(f"choice {obj.weight / total:.0%}")
    return ", ".join(parts)


def _band(regions: set[str]) -> str:
    return next(iter(regions)) if len(regions) == 1 else GLOBAL


def _rate(arrivals: Any) -> str:
    if getattr(arrivals, "process", "") == "closed":
        return f"{arrivals.users} users (closed)"
    rate = arrivals.mean_rate()
    return f"{rate:,.4g}/s {arrivals.process}" if rate == rate else arrivals.process


def _mix(mix: dict[str, float]) -> list[str]:
    """The operation mix in one line (``read 90%, write 10%``), none for the default."""
    if list(mix) == ["read"]:
        return []
    if len(mix) == 1:
        return [f"op {next(iter(mix))}"]
    total = sum(mix.values())
    shown = [f"{op} {w / total:.0%}" for op, w in list(mix.items())[:3]]
    return [", ".join(shown) + (", ..." if len(mix) > 3 else "")]


def build(scenario: Any) -> Topology:
    """The nodes and edges of ``scenario`` (not laid out yet)."""
    kinds = registry.kinds()
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    for name, w in scenario.workloads.items():
        regions = {r for r, weight in (w.regions or {}).items() if weight > 0}
        from_trace = getattr(w.arrivals, "op_column", None) is not None  # a replayed log's
        lines = [_rate(w.arrivals), *(["operations from the trace"] if from_trace
                                      else _mix(w.mix))]
        if w.priority or w.priority_by_op:
            classes = sorted({w.priority, *w.priority_by_op.values()})
            lines.append("priority " + ", ".join(map(str, classes)))
        if len(regions) > 1:
            lines.append("from " + ", ".join(r for r in scenario.regions.names if r in regions))
        nodes[name] = Node(name, "workload", name, lines, _band(regions), "workload", "#ffffff")
        edges.append(Edge(name, w.target.to, "call", [call_label(w.target, [])]))
        for rel, ref in w.target.references()[1:]:
            edges.append(Edge(name, ref, "fallback", [f"fallback {rel[0]}"]))
    for name, c in scenario.components.items():
        kind = kinds.get(c.kind)
        regions = {r for _, r in c.regions_used()}
        count = c.instance_count
        title = f"{name} \u00d7{count}" if count > 1 else name
        lines = [c.kind.replace("_", " "), *c.diagram_lines()]
        if len(regions) > 1:
            lines.append("in " + ", ".join(r for r in scenario.regions.names if r in regions))
        nodes[name] = Node(name, c.kind, title, lines, _band(regions),
                           kind.shape if kind else "box", kind.colour if kind else "#eceff1")
        for path, ref in c.references():
            edges.append(_reference_edge(name, c, tuple(path), ref))
        for label, ref in c.related():
            edges.append(Edge(name, ref, "related", [label]))
    return Topology(scenario.name, nodes, _merge(edges), regions=scenario.regions is not None,
                    region_order=list(scenario.regions.names) if scenario.regions else None)


def _merge(edges: list[Edge]) -> list[Edge]:
    """One edge per (source, target, style), with the distinct labels of all."""
    merged: dict[tuple[str, str, str], Edge] = {}
    for e in edges:
        kept = merged.setdefault((e.src, e.dst, e.style), Edge(e.src, e.dst, e.style))
        kept.labels += [s for s in e.labels if s and s not in kept.labels]
    return list(merged.values())


# --------------------------------------------------------------------------------------------
# layout


def layout(topo: Topology) -> Topology:
    """Give every node a layer, a band and a position (inches); route long edges."""
    flow = nx.DiGraph()
    flow.add_nodes_from(topo.nodes)
    for e in topo.edges:
        if e.style != "related" and e.src != e.dst:
            flow.add_edge(e.src, e.dst)
    back = set()
    while not nx.is_directed_acyclic_graph(flow):
        u, v = nx.find_cycle(flow)[-1][:2]
        flow.remove_edge(u, v)
        back.add((u, v))
    layer = _layers(topo, flow)
    for name, n in topo.nodes.items():
        n.layer = layer[name]
    order = _route(topo, back)
    _label_segments(topo)
    _order(topo, order)
    _place(topo, order)
    return topo


def _layers(topo: Topology, flow: nx.DiGraph) -> dict[str, int]:
    layer: dict[str, int] = {}
    for name in nx.topological_sort(flow):
        preds = [layer[p] for p in flow.predecessors(name)]
        layer[name] = max(preds) + 1 if preds else 0
    # a component nothing sends work to stands just left of what it feeds, not with the
    # workloads
    for name in reversed(list(nx.topological_sort(flow))):
        succ = [layer[s] for s in flow.successors(name)]
        if topo.nodes[name].kind != "workload" and not flow.in_degree(name) and succ:
            layer[name] = max(min(succ) - 1, 0)
    return layer


def _route(topo: Topology, back: set[tuple[str, str]]) -> list[list[str]]:
    """Layers as lists of node names, dummies included; set each edge's route or arc."""
    depth = max(n.layer for n in topo.nodes.values()) + 1
    order: list[list[str]] = [[] for _ in range(depth)]
    for name, n in topo.nodes.items():
        order[n.layer].append(name)
    for k, e in enumerate(topo.edges):
        a, b = topo.nodes[e.src], topo.nodes[e.dst]
        if e.style == "related" or (e.src, e.dst) in back or b.layer <= a.layer:
            e.arc = True
            continue
        for layer in range(a.layer + 1, b.layer):
            d = f"\0{k}:{layer}"
            topo.nodes[d] = Node(d, "", band=b.band, dummy=True, layer=layer)
            order[layer].append(d)
            e.route.append(d)
    return order


def _label_segments(topo: Topology) -> None:
    """Put each label in the gap next to the end where the edges spread: by a fan-out, beside
    the targets (where the arrows are far apart); by a fan-in, beside the source."""
    fan_out: dict[str, int] = defaultdict(int)
    fan_in: dict[str, int] = defaultdict(int)
    for e in topo.edges:
        if not e.arc:
            fan_out[e.src] += 1
            fan_in[e.dst] += 1
    for e in topo.edges:
        e.label_segment = len(e.route) if fan_out[e.src] > fan_in[e.dst] else 0


def _neighbours(topo: Topology) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for e in topo.edges:
        if e.arc:
            continue
        path = [e.src, *e.route, e.dst]
        for a, b in itertools.pairwise(path):
            up[b].append(a)
            down[a].append(b)
    return up, down


def band_names(topo: Topology, scenario_regions: list[str] | None = None) -> list[str]:
    """The bands in drawing order: global first, then the regions as the scenario lists them."""
    used = {n.band for n in topo.nodes.values()}
    names = [b for b in (scenario_regions or sorted(used - {GLOBAL})) if b in used]
    return ([GLOBAL] if GLOBAL in used else []) + names


def _order(topo: Topology, order: list[list[str]], sweeps: int = 6) -> None:
    """Order each layer by band, then by the barycentre of its neighbours' positions."""
    bands = {b: i for i, b in enumerate(band_names(topo, topo.region_order))}
    up, down = _neighbours(topo)
    pos = {name: i for layer in order for i, name in enumerate(layer)}

    def sort(layer: list[str], neighbours: dict[str, list[str]]) -> None:
        def key(name: str) -> tuple[int, float]:
            near = neighbours.get(name)
            bary = sum(pos[m] for m in near) / len(near) if near else pos[name]
            return bands[topo.nodes[name].band], bary
        layer.sort(key=key)
        pos.update({name: i for i, name in enumerate(layer)})

    for layer in order:
        sort(layer, {})
    for sweep in range(sweeps):
        if sweep % 2 == 0:
            for layer in order[1:]:
                sort(layer, up)
        else:
            for layer in reversed(order[:-1]):
                sort(layer, down)


#: Gaps (inches): between two boxes of a layer, around a band, between layers at least.
V_GAP, BAND_PAD, BAND_TITLE, H_GAP = 0.28, 0.12, 0.26, 0.9


def _place(topo: Topology, order: list[list[str]]) -> None:
    """Positions: layers left to right (widths from their boxes and the labels of the edges
    leaving them), bands top to bottom (heights from their tallest layer)."""
    nodes = topo.nodes
    bands = band_names(topo, topo.region_order)
    stacks: dict[tuple[int, str], list[str]] = defaultdict(list)
    for i, layer in enumerate(order):
        for name in layer:
            stacks[(i, nodes[name].band)].append(name)

    def stack_height(names: list[str]) -> float:
        return sum(nodes[n].height for n in names) + V_GAP * max(len(names) - 1, 0)

    y = 0.0
    title = BAND_TITLE if topo.regions else 0.0
    for band in bands:
        tallest = max(stack_height(stacks.get((i, band), [])) for i in range(len(order)))
        top, height = y, tallest + 2 * BAND_PAD + title
        for i in range(len(order)):
            names = stacks.get((i, band), [])
            cursor = top + title + BAND_PAD + (tallest - stack_height(names)) / 2
            for n in names:
                nodes[n].y = cursor + nodes[n].height / 2
                cursor += nodes[n].height + V_GAP
        topo.bands.append((band, top, top + height))
        y = top + height + (0.1 if topo.regions else 0.0)
    x = 0.2
    for i, layer in enumerate(order):
        width = max([nodes[n].width for n in layer] + [0.3])
        for n in layer:
            nodes[n].x = x + width / 2
        labels = [text_width(line, EDGE_PT) for e in topo.edges
                  if not e.arc and nodes[e.src].layer + e.label_segment == i
                  for line in e.text().splitlines()]
        x += width + max([H_GAP, *[w + 0.5 for w in labels]])
    topo.width = x - max(H_GAP, 0.0) + 0.4
    topo.height = y
    for e in topo.edges:
        if e.arc:
            _bend(topo, e)


def _bend(topo: Topology, e: Edge) -> None:
    """An edge against the flow (or within one layer) is a curve under the boxes (beside them
    when both are in one layer); the picture grows to hold it and its label."""
    a, b = topo.nodes[e.src], topo.nodes[e.dst]
    if a.layer == b.layer:
        p, q = (a.x + a.width / 2, a.y), (b.x + b.width / 2, b.y)
        c = (max(p[0], q[0]) + 0.3 + abs(q[1] - p[1]) * 0.2, (p[1] + q[1]) / 2)
    else:
        p, q = (a.x, a.y + a.height / 2), (b.x, b.y + b.height / 2)
        c = ((p[0] + q[0]) / 2, max(p[1], q[1]) + 0.25 + 0.06 * abs(q[0] - p[0]))
    e.arc_points = [p, c, q]
    topo.width = max(topo.width, c[0] + 0.2)
    topo.height = max(topo.height, e.apex[1] + line_height(EDGE_PT) + 0.1)


def topology(scenario: Any) -> Topology:
    """The laid-out topology of ``scenario``."""
    return layout(build(scenario))
