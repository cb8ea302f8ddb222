"""The CDN's edges (each a read-through cache placed in its region) and the group target
that sends a user to the edge of their region (see the package documentation)."""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from simulator.components.base import (
    BuildContext,
    Component,
    Handler,
    Target,
)
from simulator.components.cache.cache import Cache
from simulator.components.edge import Bound, bind_call
from simulator.messages import Request

if TYPE_CHECKING:
    from simulator.components.network import RegionNetwork
from simulator.components.cdn.params import CdnParams


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

    def __init__(self, group: str, index: int, params: CdnParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params.edge_cache(), ctx)
        self.params = params
        spec = params.edges[index]
        self.region = spec.region
        self._resolve: Callable[[str], Target] | None = None
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
        self._resolve = resolve
        self._backing = bind_call(spec, target, self.ctx, (self.group, self.name),
                                  resolve=resolve)

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
                                                   (self.name, owner), from_request=True,
                                                   resolve=self.members[0]._resolve)
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
