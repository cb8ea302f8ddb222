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

import copy
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.calls import NAME_PATTERN, Call
from simulator.components.base import BuildContext, Component, ComponentParams, Handler, Target
from simulator.components.cache import Cache, CacheParams
from simulator.components.edge import Bound, bind_call
from simulator.distributions import Constant, Distribution, Duration
from simulator.messages import Request
from simulator.registry import register

if TYPE_CHECKING:
    from simulator.components.network import RegionNetwork


class EdgeSpec(BaseModel):
    """One edge (point of presence).

    Parameters
    ----------
    region
        Region of the scenario's ``regions`` the edge is placed in and whose users it serves.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(pattern=NAME_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _no_origin_latency(cls, data: Any) -> Any:
        if isinstance(data, dict) and "origin_latency" in data:
            raise ValueError(_NO_ORIGIN_LATENCY)
        return data


_NO_ORIGIN_LATENCY = ("origin_latency: the edge-to-origin latency is the link between the "
                      "edge's region and the origin's (the scenario's regions.latency); "
                      "remove origin_latency and place the origin with region: ...")


def _coerce_edge(value: Any) -> Any:
    return {"region": value} if isinstance(value, str) else value


Edge = Annotated[EdgeSpec, BeforeValidator(_coerce_edge)]
"""An edge: ``eu-west`` or ``{region: eu-west}``."""


class AssetClass(BaseModel):
    """A class of assets with its own time to live (``Cache-Control: max-age``).

    Parameters
    ----------
    name
        What the class is (``html``, ``images``...), for people.
    keys
        ``[first, last]``: the keys (popularity ranks, 0 the most popular) in the class,
        inclusive.
    ttl
        Time an edge keeps an asset of the class, seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    keys: tuple[int, int]
    ttl: Duration = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        first, last = self.keys
        if first < 0 or last < first:
            raise ValueError(f"keys: expected [first, last] with 0 <= first <= last, got "
                             f"[{first}, {last}]")
        return self


class CdnParams(ComponentParams):
    """Parameters of ``kind: cdn``.

    Parameters
    ----------
    edges
        The edges, one per region of the scenario's ``regions`` block (``[us-east, eu-west]``
        or ``{region: ...}`` entries). Each is one instance placed in its region, ``name[i]``
        in list order; ``replicas`` is their number and need not be given. A cdn takes no
        ``region`` of its own.
    origin
        The origin: a component name or a call (``{to: web, timeout: 2s, retry: {...}}``)
        whose policies apply to every fetch; ``op`` (default ``read``) is what the origin is
        asked.
    default_edge
        Region of the edge serving requests with no region, or from a region without an edge
        (default: the first edge).
    capacity
        Assets one edge holds (none: unlimited, entries leave only when they expire; then a
        ``ttl`` or ``assets`` is needed).
    policy
        Eviction when an edge is full: ``lru``, ``lfu``, ``fifo`` or ``random``.
    ttl
        Time an edge keeps an asset not in any of ``assets``, seconds (none: until evicted).
    ttl_mode
        ``after_write``: expiry = fetch time + ttl, hits do not extend it (an HTTP cache
        honouring ``max-age``). ``after_access``: every hit resets it.
    stale_if_error
        Keep expired assets this long and serve one (status ``fallback``) when its refetch
        from the origin fails (``Cache-Control: stale-if-error``, RFC 5861); needs a ttl.
    assets
        Asset classes by key range, each with its own ``ttl`` (ranges must not overlap).
    hit_latency
        Time an edge takes to answer from its cache (its own processing), seconds: added to
        every request an edge serves, on top of the link between the user's region and the
        edge's (the network is the scenario's ``regions``).
    coalesce
        Request collapsing: one origin fetch per asset in flight per edge; requests missing
        meanwhile wait for it.
    on_edge_down
        What a request whose edge is down (crashed) gets: ``fail`` (status ``error``, or no
        answer with a black-hole crash), or ``origin`` (it goes straight to the origin, as DNS
        failover to the origin does; detection is taken as instant).
    bypass
        Without the CDN: every request goes from its user straight to the origin, paying the
        link between the user's region and the origin's (still counted at the edge of its
        region, as ``bypassed``, for the comparison).

    There is no ``origin_latency``: the edge-to-origin latency is the regions' link between
    the edge's region and the origin's, charged on every fetch by the origin call.
    """

    kind: Literal["cdn"] = "cdn"
    edges: list[Edge] = Field(min_length=1, max_length=1000)
    origin: Call
    default_edge: str | None = None
    capacity: int | None = Field(None, ge=1, le=100_000_000)
    policy: Literal["lru", "lfu", "fifo", "random"] = "lru"
    ttl: Duration | None = Field(None, gt=0)
    ttl_mode: Literal["after_write", "after_access"] = "after_write"
    stale_if_error: Duration | None = Field(None, gt=0)
    assets: list[AssetClass] = Field(default_factory=list)
    hit_latency: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    coalesce: bool = False
    on_edge_down: Literal["fail", "origin"] = "fail"
    bypass: bool = False

    @model_validator(mode="before")
    @classmethod
    def _derive_replicas(cls, data: Any) -> Any:
        """One instance per edge: ``replicas`` is the number of edges."""
        if isinstance(data, dict) and "origin_latency" in data:
            raise ValueError(_NO_ORIGIN_LATENCY)
        if isinstance(data, dict) and isinstance(data.get("edges"), list) and data["edges"]:
            n = len(data["edges"])
            given = data.get("replicas", n)
            if given != n:
                raise ValueError(f"replicas: a cdn has one instance per edge ({n} edges); "
                                 f"leave replicas out, got {given!r}")
            data = {**data, "replicas": n}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        regions = [e.region for e in self.edges]
        seen: set[str] = set()
        for r in regions:
            if r in seen:
                raise ValueError(f"edges: region {r!r} has two edges; one edge per region")
            seen.add(r)
        if self.default_edge is not None and self.default_edge not in seen:
            raise ValueError(f"default_edge: {self.default_edge!r} is not one of the edges "
                             f"({', '.join(regions)})")
        ranges = sorted((a.keys, a.name) for a in self.assets)
        for (prev, prev_name), (cur, name) in pairwise(ranges):
            if cur[0] <= prev[1]:
                raise ValueError(f"assets: classes {prev_name!r} {list(prev)} and {name!r} "
                                 f"{list(cur)} overlap")
        if getattr(self, "region", None) is not None:  # a placement field, with regions
            raise ValueError("region: a cdn is placed by its edges (one instance per edge "
                             "region); remove region")
        if self.capacity is None and self.ttl is None:
            raise ValueError("capacity: an edge with unlimited capacity needs a ttl (assets "
                             "not in any class would never leave)")
        return self

    def references(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("origin",), self.origin.to

    def regions_used(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        """The regions the edges are in: the scenario must declare them (a cdn needs a
        ``regions`` block)."""
        for i, edge in enumerate(self.edges):
            yield ("edges", i, "region"), edge.region

    def edge_cache(self) -> CacheParams:
        """The parameters of each edge's cache: read-through, in front of the origin."""
        ttl = self.ttl
        if ttl is None and self.assets:
            ttl = min(a.ttl for a in self.assets)  # expiry on; each key's own ttl is _ttl_of's
        return CacheParams(
            kind="cache", replicas=self.replicas, backing=self.origin.model_copy(
                update={"op": None}), pattern="read_through",
            policy=self.policy if self.capacity is not None else "ttl",
            capacity=self.capacity, ttl=ttl, ttl_mode=self.ttl_mode,
            stale_if_error=self.stale_if_error,
            hit_latency=self.hit_latency, coalesce=self.coalesce, write_ops=[])


@register("cdn")
class CdnEdge(Cache):
    """One edge of a CDN: a read-through cache of the origin's assets for one region's users.

    Records one span per request it serves, bypassed requests included (arrival = start,
    end = answer). Gauges: those of a :class:`~simulator.components.cache.Cache` (``hits_total``,
    ``misses_total``, ``loads_total`` = origin fetches for misses, ``coalesced_total``,
    ``expirations_total``, ``evictions_total``, ``size``, ``entries_time_total``,
    ``failed_total``...), and ``edge_requests_total`` (requests routed to this edge: counted
    as they arrive, or as they are sent to the origin instead),
    ``bypassed_total`` (sent straight to the origin: ``bypass``, or the edge was down with
    ``on_edge_down: origin``). Event ``edge_region`` at time 0, detail ``region=NAME``: where
    the edge is (read by :func:`simulator.analysis.cdn.cdn_summary`).

    Modelling assumptions: an edge is a pure delay with unlimited concurrency; assets are all
    the same size (capacity counts assets); the origin's answer is always cacheable; a crashed
    edge recovers empty; failover to the origin is instant.

    Faults: ``crash`` (the edge empties and fails what it holds; new requests fail or go to the
    origin as ``on_edge_down`` says), ``flush`` (a purge of everything).
    """

    # the edge's cache parameters are built from these (CdnParams.edge_cache)
    Params = CdnParams  # type: ignore[assignment]
    supported_faults = frozenset({"crash", "flush"})

    def __init__(self, group: str, index: int, params: CdnParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params.edge_cache(), ctx)
        self.params = params
        spec = params.edges[index]
        self.region = spec.region
        self._default_ttl = params.ttl if params.ttl is not None else math.inf
        classes = sorted(params.assets, key=lambda a: a.keys)
        self._class_first = [a.keys[0] for a in classes]
        self._class_last = [a.keys[1] for a in classes]
        self._class_ttl = [float(a.ttl) for a in classes]
        self.edge_requests_total = 0
        self.bypassed_total = 0

    @classmethod
    def group_target(cls, name: str, members: list[Component], ctx: BuildContext) -> Target:
        return EdgeRouter(name, cast(list[CdnEdge], members), ctx)

    def wire(self, resolve: Callable[[str], Target]) -> None:
        # placed in its edge's region, so the fetch pays the link to the origin's region
        spec = self.params.origin
        target = resolve(spec.to)
        self._backing_target = target
        self._backing = bind_call(spec, target, self.ctx, (self.group, self.name))

    def start(self) -> None:
        super().start()
        self.ctx.recorder.event(self.env._now, self.group, self.name, "edge_region",
                                f"region={self.region}")

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        yield from super().gauges()
        yield "edge_requests_total", "", lambda: self.edge_requests_total
        yield "bypassed_total", "", lambda: self.bypassed_total

    def _ttl_of(self, key: int) -> float:
        first = self._class_first
        if first:
            i = bisect_right(first, key) - 1
            if i >= 0 and key <= self._class_last[i]:
                return self._class_ttl[i]
        return self._default_ttl

    def handle(self, req: Request, op: str) -> Handler:
        """Serve ``req`` from this edge's cache; counted as it arrives (after the user's link),
        so the edge's counts agree with each other at any instant."""
        self.edge_requests_total += 1
        return super().handle(req, op)

    def direct(self, req: Request, op: str, origin: Bound) -> Handler:
        """Send ``req`` straight to the origin over ``origin`` (the origin call from the
        user's region), skipping this edge; counted and spanned here as bypassed."""
        arrival = self.env._now
        self.bypassed_total += 1
        status = yield from origin(req, "read")
        self._span(req, op, arrival, status)
        return status


class _Reached:
    """The origin as reached from one region: its handler already charges the link from there,
    so binding a call to it adds the policies and nothing else."""

    def __init__(self, target: Target, src: str | None, network: RegionNetwork) -> None:
        self.name = target.name
        self._target = target
        self.handle = network.reach(target, src, target.handle)

    @property
    def instances(self) -> list[Component]:
        return self._target.instances

    def from_region(self, src: str | None, network: RegionNetwork) -> _Reached:
        return self


class EdgeRouter:
    """The edges of a CDN as one target: each request goes to the edge of its client's region.

    With regions, callers reach it through :meth:`from_region` (the contract of
    :meth:`simulator.components.network.RegionNetwork.reach`): a view that charges the link
    from the caller's region (the request's, for users) to the edge serving the request, and
    sends bypassed and failed-over requests to the origin over the link from that region.

    Parameters
    ----------
    name
        The CDN's name.
    members
        Its edges, in ``edges`` order.
    ctx
        Build context (the origin calls of the direct path are bound on first use).
    """

    def __init__(self, name: str, members: list[CdnEdge], ctx: BuildContext) -> None:
        self.name = name
        self.members = members
        self._ctx = ctx
        p = cast(CdnParams, members[0].params)
        self._params = p
        # region -> (edge, its handler as reached by this view's callers)
        regions = [cast(str, m.region) for m in members]  # an edge is always placed
        self._routes: dict[str, tuple[CdnEdge, Bound]] = {
            r: (m, m.handle) for r, m in zip(regions, members, strict=True)}
        self._default_region = regions[0] if p.default_edge is None else p.default_edge
        self._default = self._routes[self._default_region]
        self._failover = p.on_edge_down == "origin"
        self._bypass = p.bypass
        self._network: RegionNetwork | None = None
        self._src: str | None = None
        self._origin: Bound | None = None
        #: straight-to-origin calls by source region, shared by every view (one policy state
        #: and one stream per source)
        self._origins: dict[str | None, Bound] = {}

    @property
    def instances(self) -> list[Component]:
        """Every edge."""
        return list(self.members)

    def edge_for(self, region: str | None) -> CdnEdge:
        """The edge serving clients of ``region``."""
        route = self._default if region is None else self._routes.get(region, self._default)
        return route[0]

    def handle(self, req: Request, op: str) -> Handler:
        """Serve ``req`` at its region's edge, or from the origin (bypass, failover)."""
        region = req.region if self._src is None else self._src
        edge, serve = (self._default if region is None
                       else self._routes.get(region, self._default))
        if self._bypass or (self._failover and not edge.up):
            edge.edge_requests_total += 1  # routed to it, sent elsewhere
            origin = self._origin
            if origin is None:
                origin = self._origin = self._direct_origin()
            return edge.direct(req, op, origin)
        return serve(req, op)

    def _direct_origin(self) -> Bound:
        """The origin call from this view's source region, bound once per source (by the
        first request that needs it: every component is wired by then)."""
        src = self._src
        bound = self._origins.get(src)
        if bound is None:
            target: Target = self.members[0]._backing_target  # type: ignore[assignment]
            if self._network is not None:
                target = _Reached(target, src, self._network)
            owner = f"{self.name}/direct" + ("" if src is None else f"@{src}")
            bound = self._origins[src] = bind_call(self._params.origin, target, self._ctx,
                                                   (self.name, owner), from_request=True)
        return bound

    def from_region(self, src: str | None, network: RegionNetwork) -> EdgeRouter:
        """This CDN as called from region ``src`` (None: the request's region) over the
        regions' network: the request goes to the edge of that region (else the default
        edge), reached through ``network.hop(handler, src, edge_region)``, so a user pays the
        link to the edge that serves them; a request sent straight to the origin pays the
        link from that region to the origin's instead."""
        view = copy.copy(self)  # shares the members and the direct calls (_origins)
        view._network = network
        view._src = src
        view._origin = None
        view._routes = {r: (m, cast(Bound, network.hop(m.handle, src, r)))
                        for r, (m, _) in self._routes.items()}
        view._default = view._routes[self._default_region]
        return view

    def has_versions(self) -> bool:
        """Whether the origin keeps versions."""
        return self.members[0].has_versions()

    def committed_version(self, key: int) -> int:
        """The origin's latest committed version of ``key``."""
        return self.members[0].committed_version(key)
