"""Faults on the timeline: prepares the instances they hit and runs them in simulated time.

Generic faults (:mod:`simulator.faults`) act on an instance through its capabilities
(:class:`~simulator.components.base.Crashable`, ``Degradable``, ``NodeCrashable``,
``RegionCrashable``), called only on kinds that declare the fault; partitions and region faults
act on the network. Timeline events that kinds declare (:class:`simulator.kind.TimelineEvent`)
prepare and fire themselves.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from simulator import registry
from simulator.components.base import (
    BuildContext,
    Component,
    Crashable,
    Degradable,
    NodeCrashable,
    RegionCrashable,
)
from simulator.faults import (
    CrashFault,
    ErrorFault,
    LatencyFault,
    PartitionFault,
    RegionOutageFault,
    RegionPartitionFault,
    SlowFault,
    SpikeFault,
    split_target,
)
from simulator.kind import INSTANCE_FAULTS, TimelineEvent
from simulator.scenario import Scenario


@dataclass
class TimelineContext:
    """What a kind's timeline event sees when it is prepared and fired.

    Attributes
    ----------
    scenario
        The scenario that runs.
    groups
        Every component's instances, by component name.
    ctx
        The build context (environment, streams, recorder).
    key_space
        Keys of the scenario's workloads (the largest ``keys.n``), or None when they have none.
    """

    scenario: Scenario
    groups: dict[str, list[Component]]
    ctx: BuildContext
    key_space: int | None


def timeline_context(scenario: Scenario, groups: dict[str, list[Component]],
                     ctx: BuildContext) -> TimelineContext:
    """The context kinds' timeline events are prepared and fired with."""
    spaces = [w.keys.n for w in scenario.workloads.values() if w.keys is not None]
    return TimelineContext(scenario, groups, ctx, max(spaces) if spaces else None)


def fault_targets(groups: dict[str, list[Component]], target: str) -> list[Component]:
    """The instances a fault target names: one (``db[2]``) or all of a component (``db``)."""
    group, index = split_target(target)
    members = groups[group]
    return members if index is None else [members[index]]


def _can_crash(inst: Component) -> bool:
    return "crash" in registry.kind(inst.kind).faults


def region_members(groups: dict[str, list[Component]], region: str) -> list[Component]:
    """The instances a region outage crashes: those placed in ``region`` that can crash (an
    instance whose nodes span regions is hit when any of its nodes is there)."""
    return [inst for members in groups.values() for inst in members
            if _can_crash(inst) and inst.placed_in(region)]


def prepare_faults(scenario: Scenario, groups: dict[str, list[Component]],
                   ctx: BuildContext) -> None:
    """Tell instances which faults they will suffer and mark partitionable pairs.

    Called before wiring, so that call edges crossing a possible partition can check it.
    """
    timeline = timeline_context(scenario, groups, ctx)
    for fault in scenario.faults:  # first, so that faults may name the instances they add
        if isinstance(fault, TimelineEvent):
            group = groups[split_target(fault.target)[0]]
            group.extend(fault.prepare(fault_targets(groups, fault.target),
                                       timeline))
    kinds: dict[int, set[str]] = {}
    members: dict[int, Component] = {}
    for fault in scenario.faults:
        if isinstance(fault, PartitionFault):
            ctx.partitionable.add(frozenset(fault.between))
        elif isinstance(fault, RegionPartitionFault):
            assert ctx.regions is not None  # validated: region faults need regions
            ctx.regions.partitionable.add(frozenset(fault.between))
        elif isinstance(fault, RegionOutageFault):
            for inst in region_members(groups, fault.region):
                kinds.setdefault(id(inst), set()).add("crash")
                members[id(inst)] = inst
        elif fault.kind in INSTANCE_FAULTS:
            for inst in fault_targets(groups, fault.target):  # type: ignore[union-attr]
                kinds.setdefault(id(inst), set()).add(fault.kind)
                members[id(inst)] = inst
    for key, inst in members.items():
        inst.prepare_faults(kinds[key])


def start_faults(scenario: Scenario, groups: dict[str, list[Component]],
                 ctx: BuildContext) -> None:
    """Start one process per fault, in scenario order (spikes are applied by the workloads)."""
    timeline = timeline_context(scenario, groups, ctx)
    for i, fault in enumerate(scenario.faults):
        if isinstance(fault, TimelineEvent):
            ctx.env.process(_fire(fault, timeline))
        elif not isinstance(fault, SpikeFault):
            ctx.env.process(_run(fault, i, groups, ctx))


def _fire(event: TimelineEvent, timeline: TimelineContext
          ) -> Generator[simpy.Event, Any, None]:
    yield timeline.ctx.env.timeout(event.at)
    event.fire(fault_targets(timeline.groups, event.target), timeline)


def _run(fault: Any, i: int, groups: dict[str, list[Component]], ctx: BuildContext
         ) -> Generator[simpy.Event, Any, None]:
    env = ctx.env
    yield env.timeout(fault.at)
    if isinstance(fault, PartitionFault):
        yield from _partition(fault, ctx)
        return
    if isinstance(fault, RegionPartitionFault):
        yield from _region_partition(fault, ctx)
        return
    if isinstance(fault, RegionOutageFault):
        yield from _region_outage(fault, groups, ctx)
        return
    rec = ctx.recorder
    targets = fault_targets(groups, fault.target)
    node = fault.node if isinstance(fault, CrashFault) else None
    crashed: list[str] = []  # with ``node``: the node each instance crashed (resolved now)
    for inst in targets:
        if node is not None:
            assert isinstance(inst, NodeCrashable)  # validated: only such kinds take node
            crashed.append(inst.crash_node(node, fault.mode == "black_hole"))
        else:
            _apply(fault, inst, i, ctx)
        which = f" node={crashed[-1]}" if node is not None else ""
        rec.event(env.now, inst.group, inst.name, "fault", f"{fault.kind} starts{which}")
    if fault.duration is None:
        return
    yield env.timeout(fault.duration)
    for j, inst in enumerate(targets):
        which = ""
        if node is not None:
            assert isinstance(inst, NodeCrashable)
            inst.recover_node(crashed[j])
            which = f" node={crashed[j]}"
        elif isinstance(fault, CrashFault):
            assert isinstance(inst, Crashable)
            inst.recover()
        else:
            assert isinstance(inst, Degradable)
            inst.set_fault(fault.kind, None)
        rec.event(env.now, inst.group, inst.name, "fault", f"{fault.kind} ends{which}")


def _partition(fault: PartitionFault, ctx: BuildContext) -> Generator[simpy.Event, Any, None]:
    env, rec = ctx.env, ctx.recorder
    pair = frozenset(fault.between)
    a, b = fault.between
    ctx.partitioned[pair] = fault.mode == "black_hole"
    rec.event(env.now, a, a, "fault", f"partition {a} | {b} starts")
    if fault.duration is not None:
        yield env.timeout(fault.duration)
        ctx.partitioned.pop(pair, None)
        rec.event(env.now, a, a, "fault", f"partition {a} | {b} ends")


def _region_outage(fault: RegionOutageFault, groups: dict[str, list[Component]],
                   ctx: BuildContext) -> Generator[simpy.Event, Any, None]:
    """Every crashable instance placed in the region crashes (only its parts there, for an
    instance that spans regions) and recovers when the outage ends."""
    env, rec, net = ctx.env, ctx.recorder, ctx.regions
    assert net is not None
    region, black_hole = fault.region, fault.mode == "black_hole"
    net.down.add(region)
    rec.event(env.now, "regions", region, "fault", "region_outage starts")
    targets = region_members(groups, region)
    for inst in targets:
        if isinstance(inst, RegionCrashable):
            inst.crash_region(region, black_hole)
        else:
            assert isinstance(inst, Crashable)
            inst.crash(black_hole)
        rec.event(env.now, inst.group, inst.name, "fault", "crash starts")
    if fault.duration is None:
        return
    yield env.timeout(fault.duration)
    for inst in targets:
        if isinstance(inst, RegionCrashable):
            inst.recover_region(region)
        else:
            assert isinstance(inst, Crashable)
            inst.recover()
        rec.event(env.now, inst.group, inst.name, "fault", "crash ends")
    net.down.discard(region)
    rec.event(env.now, "regions", region, "fault", "region_outage ends")
    net.changed()


def _region_partition(fault: RegionPartitionFault, ctx: BuildContext
                      ) -> Generator[simpy.Event, Any, None]:
    env, rec, net = ctx.env, ctx.recorder, ctx.regions
    assert net is not None
    pair = frozenset(fault.between)
    a, b = fault.between
    net.partitioned[pair] = fault.mode == "black_hole"
    rec.event(env.now, "regions", a, "fault", f"region_partition {a} | {b} starts")
    if fault.duration is not None:
        yield env.timeout(fault.duration)
        net.partitioned.pop(pair, None)
        rec.event(env.now, "regions", a, "fault", f"region_partition {a} | {b} ends")
        net.changed()


def _apply(fault: Any, inst: Component, i: int, ctx: BuildContext) -> None:
    if isinstance(fault, CrashFault):
        assert isinstance(inst, Crashable)
        inst.crash(black_hole=fault.mode == "black_hole")
        return
    assert isinstance(inst, Degradable)
    if isinstance(fault, SlowFault):
        inst.set_fault("slow", fault.factor)
    elif isinstance(fault, ErrorFault):
        inst.set_fault("error", fault.probability)
    elif isinstance(fault, LatencyFault):
        inst.set_fault("latency", fault.added.sampler(ctx.generator(inst.name, f"fault{i}")))
    else:  # pragma: no cover - scenario validation admits no other kind
        raise TypeError(f"unsupported fault {fault!r}")
