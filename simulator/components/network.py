"""The network between regions at run time: link latencies, region partitions, region outages.

Model (see also :mod:`simulator.regions` for the scenario block):

- Every instance has a ``region`` (``Component.region``): set from the component's placement,
  or by the kind itself per instance. ``None`` means *everywhere* (a global anycast balancer,
  GeoDNS, an unplaced helper): calls **to** it cross no link, and calls **from** it are made
  from the request's region, as if the client made them (the client connects directly to the
  instance a GeoDNS answer names).
- A call from region ``a`` to an instance in region ``b`` pays **one draw of the one-way
  latency a -> b before the callee sees it, and one draw of b -> a when the reply comes back**
  (each direction has its own stream ``("regions", "latency:a->b")``, shared by every edge using
  that link, so draws are handed out in the order messages cross it). Within a region, the same
  with ``local`` if given; otherwise nothing. A workload's edge starts in the request's region
  (``Request.region``, drawn at creation from the workload's spread).
- A region partition between ``a`` and ``b`` fails every call crossing it, both directions: a
  call sent while it holds fails at once (``refuse``: status ``error``) or is never answered
  (``black_hole``: only the caller's timeout ends it); a reply coming back while it holds is
  lost the same way. Calls that do not cross it are untouched.
- A region outage crashes every instance placed in the region (the crash machinery of the
  timeline), so the region's servers fail what they hold and refuse or black-hole new calls.

Costs nothing when the scenario has no regions: ``ctx.regions`` is None and no edge is wrapped.
With regions, an edge whose two ends are fixed and pay no latency and cannot be partitioned is
not wrapped either.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from simpy import Event, Timeout

from simulator.distributions import Constant
from simulator.messages import ERROR, Request
from simulator.regions import RegionsSpec

if TYPE_CHECKING:
    from simulator.components.base import BuildContext, Handler, Target

Bound = Callable[[Request, str], "Handler"]
Sampler = Callable[[], float]
#: (latency out, latency back, partitionable pair) of one directed link; None: nothing to pay
Link = tuple[Sampler | None, Sampler | None, frozenset[str] | None]


class RegionNetwork:
    """Links between the scenario's regions, their partitions and the regions down.

    Parameters
    ----------
    spec
        The validated ``regions`` block.
    ctx
        Build context (streams and environment).
    """

    def __init__(self, spec: RegionsSpec, ctx: BuildContext) -> None:
        self.spec = spec
        self.names = list(spec.names)
        self.env = ctx.env
        self._samplers: dict[tuple[str, str], Sampler | None] = {}
        for a in self.names:
            for b in self.names:
                d = spec.link(a, b)
                if d is None or (isinstance(d, Constant) and d.value + d.shift == 0):
                    self._samplers[(a, b)] = None  # free: no Timeout at all
                else:
                    self._samplers[(a, b)] = d.sampler(ctx.generator("regions",
                                                                     f"latency:{a}->{b}"))
        #: region pairs that some partition fault may separate (filled before wiring)
        self.partitionable: set[frozenset[str]] = set()
        #: pairs separated now, mapped to whether calls hang (black hole) rather than fail
        self.partitioned: dict[frozenset[str], bool] = {}
        #: regions in an outage now
        self.down: set[str] = set()
        #: called when a region partition heals or an outage ends (replication catches up)
        self.listeners: list[Callable[[], None]] = []

    # ---- what routing uses --------------------------------------------------------------
    def mean(self, a: str, b: str) -> float:
        """Mean one-way latency from ``a`` to ``b``."""
        return self.spec.mean(a, b)

    def cut(self, a: str | None, b: str | None) -> bool:
        """Whether a partition separates ``a`` and ``b`` now (never within one region)."""
        return (a is not None and b is not None and a != b
                and frozenset((a, b)) in self.partitioned)

    # ---- binding ------------------------------------------------------------------------
    def reach(self, target: Target, src: str | None, handle: Bound) -> Bound:
        """``handle`` of ``target`` as called from region ``src`` (None: the request's region).

        A target with ``from_region(src, network)`` (a group spreading calls over regions)
        returns a view of itself that charges each instance's link; otherwise every instance
        of the target must be in one region, and the edge pays the link to it.
        """
        view = getattr(target, "from_region", None)
        if view is not None:
            return view(src, self).handle
        regions = {inst.region for inst in target.instances}
        if len(regions) > 1:
            raise ValueError(f"{target.name!r} has instances in several regions "
                             f"({', '.join(sorted(str(r) for r in regions))}) and cannot route "
                             "calls by region; place it in one region")
        return self.hop(handle, src, next(iter(regions)))

    def link(self, src: str, dst: str) -> Link:
        """Samplers out and back and the partitionable pair of the link ``src -> dst``."""
        pair = frozenset((src, dst))
        return (self._samplers[(src, dst)], self._samplers[(dst, src)],
                pair if src != dst and pair in self.partitionable else None)

    def hop(self, handle: Bound, src: str | None, dst: str | None) -> Bound:
        """Wrap ``handle`` (an instance in ``dst``) for callers in ``src`` (None: the
        request's region). Returns ``handle`` itself when nothing can ever be charged."""
        if dst is None:
            return handle
        if src is not None:
            out, back, pair = self.link(src, dst)
            if out is None and back is None and pair is None:
                return handle
            cross = self.cross

            def fixed(req: Request, op: str) -> Handler:
                return cross(handle, req, op, out, back, pair)

            return fixed
        links = {s: self.link(s, dst) for s in self.names}
        cross = self.cross

        def from_request(req: Request, op: str) -> Handler:
            s = req.region
            if s is None:
                return handle(req, op)
            out, back, pair = links[s]
            return cross(handle, req, op, out, back, pair)

        return from_request

    def changed(self) -> None:
        """A partition healed or an outage ended: tell the listeners."""
        for listener in self.listeners:
            listener()

    def cross(self, handle: Bound, req: Request, op: str, out: Sampler | None,
               back: Sampler | None, pair: frozenset[str] | None
               ) -> Generator[Event, Any, int]:
        """Cross the link ``out``, run ``handle``, cross back ``back``; fail (or hang) when a
        partition holds ``pair`` as the request leaves or as the reply comes back."""
        env = self.env
        if pair is not None and (black_hole := self.partitioned.get(pair)) is not None:
            if black_hole:
                yield Event(env)  # never answered
            return ERROR
        if out is not None:
            yield Timeout(env, out())
        status = yield from handle(req, op)
        if pair is not None and (black_hole := self.partitioned.get(pair)) is not None:
            if black_hole:  # the reply is lost on the way back
                yield Event(env)
            return ERROR
        if back is not None:
            yield Timeout(env, back())
        return status
