"""The topology diagram of a scenario: ``simulator.diagram(scenario, "topology.svg")``.

Drawn from the validated scenario alone (nothing is simulated): workloads (with their rates),
components (kind, replicas, the details each kind declares), the regions as bands, call edges
labelled with the operations and policies, messages from queues and subscriptions to their
consumers, balancers to their backends, and dependencies without calls. :mod:`.graph` builds
and lays out the graph (networkx for the layering, a pure-Python layered layout: no Graphviz
binary needed); :mod:`.draw` draws it with matplotlib. ``simulator diagram FILE`` writes it
from the command line and the HTML report shows it above the summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from simulator.analysis.diagram.graph import Topology, topology

#: File types the diagram is written as (by the path's suffix).
FORMATS = ("png", "svg", "pdf")


def diagram(scenario: Any, path: str | Path | None = None, *, title: str | None = None,
            dpi: int = 150) -> Any:
    """Draw the topology of ``scenario``; write it to ``path`` when given.

    Parameters
    ----------
    scenario
        A :class:`~simulator.scenario.Scenario` (``simulator.load_scenario(...)``), or the
        path of a scenario file.
    path
        Where to write it: ``.png``, ``.svg`` or ``.pdf`` (the suffix says which; the write is
        atomic). None: only return the figure (a notebook shows it).
    title
        Title above the diagram (default: ``NAME: topology``).
    dpi
        Resolution of a PNG, dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        The drawing (not attached to pyplot).
    """
    from simulator.analysis.diagram.draw import draw

    if isinstance(scenario, str | Path):
        from simulator.scenario import load_scenario

        scenario = load_scenario(scenario)
    fig = draw(topology(scenario), title)
    if path is not None:
        save(fig, path, dpi=dpi)
    return fig


def save(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix), whole or not at all."""
    import matplotlib

    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{target}: a diagram is written as {', '.join(FORMATS)}; give a "
                         "name ending in one of them")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # text stays text in an SVG (searchable, small); ids and metadata fixed, so the same
        # scenario gives the same file
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "topology"}):
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def png(scenario: Any, dpi: int = 110) -> bytes:
    """The diagram of ``scenario`` as PNG bytes (for the HTML report)."""
    import io

    buf = io.BytesIO()
    diagram(scenario).savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}


__all__ = ["FORMATS", "Topology", "diagram", "png", "save", "topology"]
