"""A content delivery network: one edge cache per region in front of an origin.

Users fetch static assets (keys: popularity ranks from the workload's ``keys``) from the edge
of their region. The edges are placed in the scenario's regions (the ``regions`` block is
required: it gives the network between users, edges and the origin), so every leg of a request
pays the real link latency of :mod:`simulator.components.network`:

- user -> edge: the link from the client's region (``request.region``) to the edge's region,
  one draw each way (``regions.local`` within a region), and the edge's ``hit_latency`` (its
  time to answer from its cache). A hit takes that. The users' last mile (access network) is
  not modelled, with or without the CDN alike.
- edge -> origin on a miss: the origin call (policies apply), made from the edge's region, so
  it pays the link from the edge's region to the origin's, each way, then the origin's time.
  Miss latency = user<->edge link + ``hit_latency`` + edge<->origin link + origin time.
- straight to the origin (``bypass: true``, i.e. without the CDN; or an edge down with
  ``on_edge_down: origin``): the origin call made from the client's region, paying the link
  from the user's region to the origin's and nothing of the edge.

Each edge is a read-through :class:`~simulator.components.cache.Cache` of its own (entries,
eviction, TTLs, request coalescing and the crash/flush faults are the cache's), so the edges'
hit ratios follow the same TTL and replacement theory as a plain cache, per edge, with the
popularity its users generate.

Routing: a request goes to the edge of its client's region; a request with no region, or from
a region without an edge, goes to ``default_edge`` (the first edge if not given) and pays the
link to it, as anycast or geo-DNS sends users to a point of presence.

An origin shield (a mid-tier cache the edges fetch through, so the origin sees one fetch per
asset rather than one per edge) is a ``cache`` component named as the ``origin``.
"""

from __future__ import annotations

from simulator.components.cache.params import FlushEvent
from simulator.components.cdn.params import CdnParams
from simulator.kind import DerivedTable, Kind

_TABLES = "simulator.components.cdn.tables"

KIND = Kind(
    name="cdn",
    params=CdnParams,
    component="simulator.components.cdn.edge:CdnEdge",
    shape="hexagon",
    colour="#e0f7fa",
    faults=frozenset({"crash"}),
    events=(FlushEvent,),
    spans_regions=False,  # its edges' regions come from `edges`, not per-replica regions
    derived=(
        DerivedTable("cdn_summary", f"{_TABLES}:cdn_summary",
                     "CDN edges (measured window; offload = 1 - origin fetches / requests; "
                     "latency: users' end to end, ms)", format=f"{_TABLES}:format_cdn_summary"),
        DerivedTable("cdn_latency", f"{_TABLES}:cdn_latency", "CDN latency by client region (ms)",
                     format=f"{_TABLES}:format_cdn_summary",
                     applies=f"{_TABLES}:has_client_regions"),
    ),
)
