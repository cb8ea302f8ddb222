"""Drawing a laid-out :class:`~simulator.analysis.diagram.graph.Topology` with matplotlib.

Axes in inches, y downward, on a ``matplotlib.figure.Figure`` (never pyplot, so a notebook's
backend is not touched). Every box and arrow carries a ``gid`` (``node:api``,
``edge:api->db``) that the SVG keeps, and text stays text in the SVG (``svg.fonttype:
none``), so a reader can search the picture for a component's name.
"""

from __future__ import annotations

import itertools
from typing import Any

from simulator.analysis.diagram.graph import (
    DETAIL_PT,
    EDGE_PT,
    GLOBAL,
    NAME_PT,
    Edge,
    Node,
    Topology,
    line_height,
    text_width,
)

_INK, _GREY = "#263238", "#78909c"
#: Arrow colour and line style per edge style.
_EDGE_STYLE = {"call": ("#37474f", "-", 1.1), "ref": ("#78909c", "-", 1.0),
               "fallback": ("#ef6c00", "--", 1.0), "related": ("#8d6e63", ":", 1.2)}
_BAND_FILL = ("#f4f7fb", "#f9f7f1")
_HEAD, _FOOT = 0.45, 0.35  # title above, legend below (inches)
_LEGEND = ("dark arrow: a call, labelled serving-op→called-op · policies; grey: messages "
           "pulled or spread by a balancer; dashed: a fallback; dotted: a dependency "
           "without calls")


def draw(topo: Topology, title: str | None = None) -> Any:
    """Return the diagram as a matplotlib ``Figure``."""
    import textwrap

    from matplotlib.figure import Figure

    width = max(topo.width, 4.0)
    legend = textwrap.fill(_LEGEND, int((width - 0.4) / text_width("x", 6.5)))
    foot = _FOOT + line_height(6.5) * legend.count("\n")
    fig = Figure(figsize=(width, topo.height + _HEAD + foot))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(topo.height + foot, -_HEAD)
    ax.set_axis_off()
    ax.text(0.2, -_HEAD / 2, title if title is not None else f"{topo.name}: topology",
            fontsize=11, fontweight="bold", va="center", color=_INK)
    if topo.regions:
        _bands(ax, topo)
    for e in topo.edges:
        (_arc if e.arc else _arrow)(ax, topo, e)
    for n in topo.nodes.values():
        if not n.dummy:
            _node(ax, n)
    _labels(ax, topo)
    ax.text(0.2, topo.height + 0.1, legend, fontsize=6.5, color=_GREY, va="top")
    return fig


def _bands(ax: Any, topo: Topology) -> None:
    from matplotlib.patches import Rectangle

    for i, (band, top, bottom) in enumerate(topo.bands):
        rect = Rectangle((0.08, top), max(topo.width, 4.0) - 0.16, bottom - top,
                         facecolor=_BAND_FILL[i % 2], edgecolor="#cfd8dc", lw=0.8, zorder=0)
        rect.set_gid(f"region:{band or 'global'}")
        ax.add_patch(rect)
        name = f"region {band}" if band != GLOBAL else "global (no region, or several)"
        ax.text(0.18, top + 0.05, name, fontsize=8, color=_GREY, va="top", style="italic")


def _node(ax: Any, n: Node) -> None:
    from matplotlib.patches import Ellipse, FancyBboxPatch, Polygon, Rectangle

    w, h = n.width, n.height
    x0, y0 = n.x - w / 2, n.y - h / 2
    kw: dict[str, Any] = {"facecolor": n.colour, "edgecolor": _INK, "lw": 1.0, "zorder": 3}
    patches: list[Any] = []
    if n.shape in ("round", "workload"):
        radius = h / 2 if n.shape == "workload" else 0.08
        if n.shape == "workload":
            kw.update(linestyle="--", edgecolor=_GREY)
        patches.append(FancyBboxPatch((x0, y0), w, h, boxstyle=f"round,pad=0,rounding_size="
                                      f"{radius:.3f}", **kw))
    elif n.shape == "hexagon":
        d = 0.14
        patches.append(Polygon([(x0, n.y), (x0 + d, y0), (x0 + w - d, y0), (x0 + w, n.y),
                                (x0 + w - d, y0 + h), (x0 + d, y0 + h)], closed=True, **kw))
    elif n.shape == "cylinder":
        e = 0.12  # height of the lid's ellipse
        patches.append(Ellipse((n.x, y0 + h - e / 2), w, e, **kw))
        patches.append(Rectangle((x0, y0 + e / 2), w, h - e, **{**kw, "lw": 0, "zorder": 3.1}))
        for x in (x0, x0 + w):
            ax.plot([x, x], [y0 + e / 2, y0 + h - e / 2], color=_INK, lw=1.0, zorder=3.2)
        patches.append(Ellipse((n.x, y0 + e / 2), w, e, **{**kw, "zorder": 3.2}))
    else:
        patches.append(Rectangle((x0, y0), w, h, **kw))
        if n.shape == "log":  # slots of a message log at the back end
            for k in range(1, 4):
                x = x0 + w - 0.05 * k
                ax.plot([x, x], [y0, y0 + h], color=_INK, lw=0.6, zorder=3.2)
    for p in patches:
        p.set_gid(f"node:{n.name}")
        ax.add_patch(p)
    top = y0 + 0.08 + (0.12 if n.shape == "cylinder" else 0.0)
    cx = n.x - (0.1 if n.shape == "log" else 0.0)  # clear of the log's slots
    ax.text(cx, top, n.title, fontsize=NAME_PT, fontweight="bold", ha="center", va="top",
            color=_INK, zorder=4)
    y = top + line_height(NAME_PT)
    for line in n.lines:
        ax.text(cx, y, line, fontsize=DETAIL_PT, ha="center", va="top", color="#455a64",
                zorder=4)
        y += line_height(DETAIL_PT)


def _points(topo: Topology, e: Edge) -> list[tuple[float, float]]:
    a, b = topo.nodes[e.src], topo.nodes[e.dst]
    inner = [(topo.nodes[d].x, topo.nodes[d].y) for d in e.route]
    return [(a.x + a.width / 2, a.y), *inner, (b.x - b.width / 2, b.y)]


def _bezier(p: tuple[float, float], q: tuple[float, float]) -> list[tuple[float, float]]:
    """Control points of a curve leaving ``p`` and reaching ``q`` horizontally."""
    dx = (q[0] - p[0]) / 2
    return [(p[0] + dx, p[1]), (q[0] - dx, q[1]), q]


def _arrow(ax: Any, topo: Topology, e: Edge) -> None:
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    pts = _points(topo, e)
    verts, codes = [pts[0]], [Path.MOVETO]
    for p, q in itertools.pairwise(pts):
        verts += _bezier(p, q)
        codes += [Path.CURVE4] * 3
    colour, style, lw = _EDGE_STYLE[e.style]
    arrow = FancyArrowPatch(path=Path(verts, codes), arrowstyle="-|>", mutation_scale=10,
                            color=colour, linestyle=style, lw=lw, zorder=2)
    arrow.set_gid(e.gid)
    ax.add_patch(arrow)


def _arc(ax: Any, topo: Topology, e: Edge) -> None:
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    colour, style, lw = _EDGE_STYLE[e.style]
    arrow = FancyArrowPatch(path=Path(e.arc_points, [Path.MOVETO, Path.CURVE3, Path.CURVE3]),
                            arrowstyle="-|>", mutation_scale=10, color=colour,
                            linestyle=style, lw=lw, zorder=2)
    arrow.set_gid(e.gid)
    ax.add_patch(arrow)


def _label_point(topo: Topology, e: Edge) -> tuple[float, float, int]:
    """Where an edge's label goes: the middle of its curve in the gap the layout chose for it
    (clear of both boxes and of the arrowhead). Returns x, y and that gap (layer)."""
    if e.arc:
        x, y = e.apex
        return x, y, -1
    pts = _points(topo, e)
    k = e.label_segment
    p, (c1, c2, q) = pts[k], _bezier(pts[k], pts[k + 1])
    x = (p[0] + 3 * c1[0] + 3 * c2[0] + q[0]) / 8  # the cubic at t = 1/2
    y = (p[1] + 3 * c1[1] + 3 * c2[1] + q[1]) / 8
    return x, y, topo.nodes[e.src].layer + k


def _labels(ax: Any, topo: Topology) -> None:
    """Write the edge labels, pushing apart those that would overlap in one gap."""
    placed: list[list[Any]] = []
    for e in topo.edges:
        text = e.text()
        if text:
            x, y, gap = _label_point(topo, e)
            h = line_height(EDGE_PT) * (text.count("\n") + 1) + 0.04
            w = max(text_width(s, EDGE_PT) for s in text.splitlines())
            placed.append([x, y, h, w, gap, text, e])
    for gap in {p[4] for p in placed}:
        group = sorted((p for p in placed if p[4] == gap), key=lambda p: p[1])
        for _ in range(20):  # relax: each label at least its half-heights from the next
            moved = False
            for lo, hi in itertools.pairwise(group):
                need = (lo[2] + hi[2]) / 2 + 0.02 - (hi[1] - lo[1])
                if need > 0 and abs(lo[0] - hi[0]) < (lo[3] + hi[3]) / 2:
                    lo[1] -= need / 2
                    hi[1] += need / 2
                    moved = True
            if not moved:
                break
    for x, y, _, _, _, text, e in placed:
        colour = _EDGE_STYLE[e.style][0]
        label = ax.text(x, y, text, fontsize=EDGE_PT, ha="center", va="center", color=colour,
                        zorder=5, linespacing=1.1,
                        bbox={"boxstyle": "round,pad=0.12", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.9})
        label.set_gid(f"label:{e.gid}")
