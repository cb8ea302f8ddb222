"""What every component is: a ``handle`` generator, wiring, gauges, and fault capabilities.

A kind declares its component class in its ``KIND`` (see :mod:`simulator.kind`), with a
pydantic ``Params`` model (:mod:`simulator.components.params`). The topology creates one
instance per replica, wires references, and the engine starts background processes. Faults
reach an instance only through the capabilities below (:class:`Crashable`,
:class:`Degradable`, :class:`NodeCrashable`, :class:`RegionCrashable`), on kinds that declare
the fault. Serving a request is one generator, ``handle(request, op)``,
which yields SimPy events and returns a :class:`~simulator.messages.Status` code. Downstream calls
are plain generator delegation (``yield from target.handle(...)``), so a hop costs no Process.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast, runtime_checkable

import simpy

from simulator.components.params import ComponentParams as ComponentParams
from simulator.components.params import KeyPath as KeyPath
from simulator.regions import placement

if TYPE_CHECKING:
    import numpy as np

    from simulator.components.network import RegionNetwork
    from simulator.distributions import _Dist
    from simulator.links import NetworkSpec
    from simulator.messages import Request
    from simulator.metrics.recorder import Recorder
    from simulator.rng import Streams

Handler = Generator[simpy.Event, Any, int]
"""What ``handle`` returns: a generator yielding SimPy events and returning a status code."""


class Target(Protocol):
    """Anything a call can be sent to: one instance or a group."""

    name: str

    @property
    def instances(self) -> list[Component]: ...

    def handle(self, req: Request, op: str) -> Handler: ...


@dataclass
class BuildContext:
    """What components get at construction: the environment, streams, recorder and settings."""

    env: simpy.Environment
    streams: Streams
    recorder: Recorder
    record_spans: bool
    #: pairs of component names that some partition fault may separate
    partitionable: set[frozenset[str]] = field(default_factory=set)
    #: pairs separated now, mapped to whether calls hang (black hole) rather than fail
    partitioned: dict[frozenset[str], bool] = field(default_factory=dict)
    #: the network between regions (None when the scenario has no regions block)
    regions: RegionNetwork | None = None
    #: region of every component instance by instance name (filled before wiring)
    placement: dict[str, str | None] = field(default_factory=dict)
    #: the instances in service of every autoscaled group, by group name
    membership: dict[str, Membership] = field(default_factory=dict)
    #: whether some workload's requests may leave a queue unserved (a deadline, patience or
    #: baulking): components then record the counters of such departures
    request_limits: bool = False
    #: state several instances share, by key (a global rate limit: every caller of the edge;
    #: a routing step's draws and re-entry counts: every instance of the group)
    shared: dict[tuple[str, ...], Any] = field(default_factory=dict)
    #: the scenario's ``network`` block (link profiles of call edges; None: none given)
    network: NetworkSpec | None = None
    #: network-linked edges bound so far per ``caller->callee`` scope (their streams' names)
    linked_edges: dict[str, int] = field(default_factory=dict)
    _samplers: dict[tuple[str, str], Callable[[], float]] = field(default_factory=dict)

    def sampler(self, scope: str, purpose: str, dist: _Dist) -> Callable[[], float]:
        """Return the shared batched sampler of ``dist`` for (scope, purpose).

        Instances of one group ask with the group's name as scope, so they share one stream:
        the n-th request reaching the group gets the n-th draw whichever instance serves it,
        which keeps routing variants on common random numbers.
        """
        key = (scope, purpose)
        s = self._samplers.get(key)
        if s is None:
            s = dist.sampler(self.streams.generator(scope, purpose))
            self._samplers[key] = s
        return s

    def generator(self, scope: str, purpose: str) -> np.random.Generator:
        """Return a fresh generator for (scope, purpose)."""
        return self.streams.generator(scope, purpose)

    def shared_uniform(self, scope: str, purpose: str) -> Callable[[], float]:
        """Return the one batched U(0, 1) stream of (scope, purpose), shared by every
        instance that asks (the instances of a group share their routing draws)."""
        key = ("uniform", scope, purpose)
        draw = self.shared.get(key)
        if draw is None:
            draw = self.shared[key] = self.streams.batched(
                scope, purpose, lambda rng, k: rng.random(k))
        return cast(Callable[[], float], draw)


class Component:
    """Base class of component instances.

    Parameters
    ----------
    group
        Name of the component in the scenario.
    index
        Replica index, from 0.
    params
        Validated parameters (the class's ``Params``).
    ctx
        Build context.
    """

    kind: ClassVar[str]
    Params: ClassVar[type[ComponentParams]] = ComponentParams

    def __init__(self, group: str, index: int, params: Any, ctx: BuildContext) -> None:
        self.group = group
        self.index = index
        self.params = params
        self.env = ctx.env
        self.ctx = ctx
        self.name = f"{group}[{index}]" if params.instance_count > 1 else group
        #: where this instance runs (None: everywhere); a kind may set it per instance
        self.region: str | None = placement(getattr(params, "region", None), index)

    @property
    def instances(self) -> list[Component]:
        """This instance alone (a group lists all of its instances)."""
        return [self]

    @classmethod
    def group_target(cls, name: str, members: list[Component], ctx: BuildContext) -> Target:
        """What a reference to the component's name calls: the instance itself when alone,
        else a :class:`Group` spreading calls at random. Kinds whose instances are not
        interchangeable (shards) override this to route by key."""
        return members[0] if len(members) == 1 else Group(name, members, ctx)

    def wire(self, resolve: Callable[[str], Target]) -> None:
        """Resolve the names this component references into targets."""

    def start(self) -> None:
        """Start background processes; called by the engine when simulated time begins."""

    def finish(self) -> None:
        """Record what the instance holds at the end of the run (rows of a final-state table);
        called by the engine once simulated time has ended, before the tables are built."""

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        """Yield (metric, label, read function) sampled every ``metrics.interval``.

        ``label`` qualifies per-peer metrics (a balancer's per-backend counts); otherwise "".
        Metrics ending in ``_total`` are cumulative.
        """
        return ()

    def handle(self, req: Request, op: str) -> Handler:
        """Serve ``req`` for operation ``op``; yield SimPy events, return a status code."""
        raise NotImplementedError
        yield  # pragma: no cover

    def healthy(self) -> bool:
        """What a health-check probe sees: False while the instance is down or out of
        service (an autoscaled instance not started yet, or draining)."""
        return bool(getattr(self, "up", True)) and bool(getattr(self, "in_service", True))

    # ---- faults: the timeline calls the capabilities below only on kinds declaring them ----
    def prepare_faults(self, kinds: set[str]) -> None:
        """Called before the run with the fault kinds this instance will suffer."""

    def placed_in(self, region: str) -> bool:
        """Whether a region outage of ``region`` hits this instance (or part of it)."""
        return self.region == region


@runtime_checkable
class Crashable(Protocol):
    """An instance that can crash (a kind declaring the ``crash`` fault)."""

    def crash(self, black_hole: bool) -> None:
        """Crash now: fail what is held; refuse (or black-hole) what comes."""

    def recover(self) -> None:
        """Come back up, empty."""


@runtime_checkable
class RegionCrashable(Protocol):
    """An instance whose parts may sit in several regions: a region outage crashes only the
    parts placed there (others crash whole, through :class:`Crashable`)."""

    def crash_region(self, region: str, black_hole: bool) -> None:
        """A region outage of ``region`` starts: crash what is placed there."""

    def recover_region(self, region: str) -> None:
        """The region outage of ``region`` ends."""


@runtime_checkable
class NodeCrashable(Protocol):
    """An instance made of nodes that crash one by one (``crash`` with ``node:``)."""

    def crash_node(self, node: str, black_hole: bool) -> str:
        """Crash one node; return the name of the node crashed (resolved now)."""

    def recover_node(self, node: str) -> None:
        """Bring back the node :meth:`crash_node` named."""


@runtime_checkable
class Scalable(Protocol):
    """An instance an autoscaler starts and stops (:mod:`simulator.autoscaling`).

    The topology builds ``max_replicas`` instances; those beyond the initial count start out
    of service. An instance out of service takes no new requests (it refuses what still
    reaches it) and tells its group's :class:`Membership`, through which balancers and plain
    group calls stop picking it at once, as endpoints leave a Kubernetes Service.
    """

    in_service: bool
    name: str

    def prepare_scaling(self) -> None:
        """Called before the run: the instance may be drained (requests in service must be
        able to fail when a grace period ends)."""

    def set_in_service(self, serving: bool) -> None:
        """Enter (True: ready) or leave (False: draining or stopped) the service's endpoints."""

    def held(self) -> int:
        """Requests the instance holds now (queued or in service): a drain waits for none."""

    def on_idle(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` once when :meth:`held` next reaches zero (None: cancel)."""

    def stop_now(self) -> None:
        """The drain's grace period is over: fail whatever is still held."""

    def scaling_reading(self) -> tuple[float, float, float, float]:
        """Cumulative counters the autoscaler differences over a sync period: (busy
        worker-seconds, workers, completed requests, request-seconds in the instance)."""


class Membership:
    """The instances of one autoscaled group that are in service, and who wants to know.

    Parameters
    ----------
    members
        Every built instance of the group, in index order.
    """

    def __init__(self, members: list[Component]) -> None:
        self.members = members
        #: indices (into ``members``) of the instances in service, ascending
        self.active: list[int] = [i for i, m in enumerate(members)
                                  if getattr(m, "in_service", True)]
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change of :attr:`active`."""
        self._listeners.append(callback)

    def changed(self) -> None:
        """Recompute :attr:`active` from the members and tell the listeners."""
        self.active = [i for i, m in enumerate(self.members) if getattr(m, "in_service", True)]
        for callback in self._listeners:
            callback()


@runtime_checkable
class Degradable(Protocol):
    """An instance that can be slowed, made to fail or delayed (``slow``, ``error``,
    ``latency`` faults; :class:`FaultState` implements it)."""

    def set_fault(self, kind: str, value: Any) -> None:
        """Start (value) or end (None) a ``slow``, ``error`` or ``latency`` fault."""


class FaultState:
    """Mixin: the ``slow``, ``error`` and ``latency`` fault state of an instance that serves.

    The hot path checks only ``_faulted``; the kind reads ``_slow_factor``,
    ``_error_probability`` and ``_added_latency`` when it is set. The class calls
    :meth:`_init_fault_state` in its constructor and :meth:`_go_down` at the end of its
    ``crash`` (after dropping what it holds, so that its waiters wake before the crash event's).
    """

    up: bool
    in_service: bool
    env: simpy.Environment
    _faulted: bool
    _slow_factor: float
    _error_probability: float
    _added_latency: Callable[[], float] | None
    _black_hole: bool
    _fault_draw: Callable[[], float]
    _crashable: bool
    _epoch: int
    _crash_event: simpy.Event

    def _init_fault_state(self, ctx: BuildContext, name: str) -> None:
        self.up = True
        self.in_service = True  # False while an autoscaled instance is stopped or draining
        self._faulted = False
        self._slow_factor = 1.0
        self._error_probability = 0.0
        self._added_latency = None
        self._crashable = False  # set by prepare_faults when a crash is on the timeline
        self._black_hole = False
        self._epoch = 0  # bumped by every crash: work started before it is void
        self._crash_event = simpy.Event(ctx.env)
        self._fault_draw = ctx.streams.batched(name, "fault", lambda rng, k: rng.random(k))

    def _go_down(self, black_hole: bool) -> None:
        """Mark the instance crashed: a new epoch, and whoever races the crash event wakes."""
        self.up = False
        self._black_hole = black_hole
        self._epoch += 1
        crashed, self._crash_event = self._crash_event, simpy.Event(self.env)
        crashed.succeed()
        self._update_faulted()

    def set_fault(self, kind: str, value: Any) -> None:
        """Start (value) or end (None) a ``slow``, ``error`` or ``latency`` fault."""
        if kind == "slow":
            self._slow_factor = 1.0 if value is None else float(value)
        elif kind == "error":
            self._error_probability = 0.0 if value is None else float(value)
        elif kind == "latency":
            self._added_latency = value
        else:
            raise ValueError(f"unsupported fault {kind!r}")
        self._update_faulted()

    def _meet_faults(self) -> Generator[simpy.Event, Any, bool]:
        """What a request arriving while ``_faulted`` meets: ``False`` if it fails here (the
        instance is down, or the error draw hits; a black hole never answers), else ``True``
        once any added latency has passed, unless the instance crashed or stopped meanwhile
        (it then meets that, as one arriving then would). The caller then applies
        ``_slow_factor``."""
        if not self.up:
            if self._black_hole:
                yield simpy.Event(self.env)  # never answered: only the caller's timeout ends it
            return False
        if not self.in_service:  # stopped or draining: the connection is refused
            return False
        if self._error_probability and self._fault_draw() < self._error_probability:
            return False
        if self._added_latency is not None:
            yield simpy.Timeout(self.env, self._added_latency())
            if not (self.up and self.in_service):  # crashed or stopped while on its way in
                if not self.up and self._black_hole:
                    yield simpy.Event(self.env)
                return False
        return True

    def _update_faulted(self) -> None:
        self._faulted = (not self.up or not self.in_service or self._slow_factor != 1.0
                         or self._error_probability > 0 or self._added_latency is not None)


class Group:
    """All instances of a replicated component; a call to the group picks one uniformly at random.

    The random pick models a plain service address spread by the network layer (as kube-proxy's
    iptables mode does); put a ``load_balancer`` in front for any other strategy. A retry or a
    hedged copy whose policy avoids previous hosts (``request.avoid_hosts`` naming this group)
    goes to an instance its call has not used yet, uniformly among them (any instance when all
    were used); its first attempt is picked as any other request.
    """

    #: retries and hedges through it can avoid the instances their call already used
    picks_hosts = True

    def __init__(self, name: str, members: list[Component], ctx: BuildContext) -> None:
        self.name = name
        self.members = members
        n = len(members)

        pick = ctx.streams.batched(name, "spread", lambda rng, k: rng.integers(0, n, k))
        handlers = [m.handle for m in members]
        self._pick = pick
        # a stream of its own: avoiding hosts changes no other request's pick
        self._rest = ctx.streams.batched(name, "spread_rest", lambda rng, k: rng.random(k))
        self._handlers: list[Callable[[Request, str], Handler]] = list(handlers)
        membership = ctx.membership.get(name)
        if membership is not None:  # autoscaled: only instances in service are picked
            self._members = membership
            self._active_draw = ctx.streams.batched(name, "spread_active",
                                                    lambda rng, k: rng.random(k))
            self.handle = self._handle_active  # type: ignore[method-assign]

    @property
    def instances(self) -> list[Component]:
        """Every instance of the group."""
        return list(self.members)

    def handle(self, req: Request, op: str) -> Handler:
        """Send the request to one instance picked uniformly at random."""
        avoid = req.avoid_hosts
        if avoid is None or avoid[0] != self.name:
            return self._handlers[int(self._pick())](req, op)
        req.avoid_hosts = None  # consumed: the instance's own calls do not see it
        used = avoid[1]
        rest = [i for i in range(len(self._handlers)) if i not in used] if used else None
        i = rest[int(self._rest() * len(rest))] if rest else int(self._pick())
        used.add(i)
        return self._handlers[i](req, op)

    def _handle_active(self, req: Request, op: str) -> Handler:
        """``handle`` of an autoscaled group: uniformly among the instances in service (any
        instance when none is; it refuses), avoiding used ones for retries and hedges."""
        active = self._members.active or range(len(self._handlers))
        avoid = req.avoid_hosts
        if avoid is not None and avoid[0] == self.name:
            req.avoid_hosts = None
            rest = [i for i in active if i not in avoid[1]]
            i = rest[int(self._active_draw() * len(rest))] if rest else \
                active[int(self._active_draw() * len(active))]
            avoid[1].add(i)
        else:
            i = active[int(self._active_draw() * len(active))]
        return self._handlers[i](req, op)

    def from_region(self, src: str | None, regions: RegionNetwork) -> Group:
        """This group as called from region ``src`` (None: the request's region): the same
        random pick (one stream), each instance reached over the link to its own region."""
        view = Group.__new__(Group)
        view.name = self.name
        view.members = self.members
        view._pick = self._pick
        view._rest = self._rest
        view._handlers = [regions.hop(m.handle, src, m.region) for m in self.members]
        if "handle" in self.__dict__:  # autoscaled: the same pick over the instances in service
            view._members = self._members
            view._active_draw = self._active_draw
            view.handle = view._handle_active  # type: ignore[method-assign]
        return view
