"""Faults on the timeline: prepares the instances they hit and runs them in simulated time."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from simulator.components.base import BuildContext, Component
from simulator.faults import (
    INSTANCE_FAULTS,
    CrashFault,
    ErrorFault,
    FlushFault,
    LatencyFault,
    PartitionFault,
    RebuildEvent,
    RegionOutageFault,
    RegionPartitionFault,
    ReshardEvent,
    SlowFault,
    SpikeFault,
    split_target,
)
from simulator.scenario import Scenario


def fault_targets(groups: dict[str, list[Component]], target: str) -> list[Component]:
    """The instances a fault target names: one (``db[2]``) or all of a component (``db``)."""
    group, index = split_target(target)
    members = groups[group]
    return members if index is None else [members[index]]


def region_members(groups: dict[str, list[Component]], region: str) -> list[Component]:
    """The instances a region outage crashes: those placed in ``region`` that can crash (a
    database shard whose nodes span regions is hit when any of its nodes is there)."""
    return [inst for members in groups.values() for inst in members
            if "crash" in inst.supported_faults and inst.placed_in(region)]


def prepare_faults(scenario: Scenario, groups: dict[str, list[Component]],
                   ctx: BuildContext) -> None:
    """Tell instances which faults they will suffer and mark partitionable pairs.

    Called before wiring, so that call edges crossing a possible partition can check it.
    """
    for fault in scenario.faults:  # first, so that faults may name the shards it adds
        if isinstance(fault, ReshardEvent):
            group = groups[fault.target]
            group.extend(group[0].prepare_reshard(fault.shards))
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
    """Start one process per fault (spikes are applied by the workloads themselves).

    A reshard is told the key space of the workloads (the largest ``keys.n``), over which the
    fraction of keys moved is measured.
    """
    spaces = [w.keys.n for w in scenario.workloads.values() if w.keys is not None]
    key_space = max(spaces) if spaces else None
    for i, fault in enumerate(scenario.faults):
        if isinstance(fault, ReshardEvent):
            ctx.env.process(_reshard(fault, groups[fault.target][0], key_space, ctx))
        elif isinstance(fault, RebuildEvent):
            ctx.env.process(_rebuild(fault, groups[fault.target][0], ctx))
        elif not isinstance(fault, SpikeFault):
            ctx.env.process(_run(fault, i, groups, ctx))


def _reshard(event: ReshardEvent, inst: Component, key_space: int | None, ctx: BuildContext
             ) -> Generator[simpy.Event, Any, None]:
    yield ctx.env.timeout(event.at)
    inst.reshard(event, key_space)


def _rebuild(event: RebuildEvent, inst: Component, ctx: BuildContext
             ) -> Generator[simpy.Event, Any, None]:
    yield ctx.env.timeout(event.at)
    inst.rebuild(event)


def _run(fault: Any, i: int, groups: dict[str, list[Component]], ctx: BuildContext
         ) -> Generator[simpy.Event, Any, None]:
    env, rec = ctx.env, ctx.recorder
    yield env.timeout(fault.at)
    if isinstance(fault, PartitionFault):
        pair = frozenset(fault.between)
        a, b = fault.between
        ctx.partitioned[pair] = fault.mode == "black_hole"
        rec.event(env.now, a, a, "fault", f"partition {a} | {b} starts")
        if fault.duration is not None:
            yield env.timeout(fault.duration)
            ctx.partitioned.pop(pair, None)
            rec.event(env.now, a, a, "fault", f"partition {a} | {b} ends")
        return
    if isinstance(fault, RegionPartitionFault):
        yield from _region_partition(fault, ctx)
        return
    outage = fault.region if isinstance(fault, RegionOutageFault) else None
    if isinstance(fault, RegionOutageFault):
        assert ctx.regions is not None
        ctx.regions.down.add(fault.region)
        rec.event(env.now, "regions", fault.region, "fault", "region_outage starts")
        targets = region_members(groups, fault.region)
        fault = CrashFault(at=fault.at, duration=fault.duration, target=fault.region,
                           mode=fault.mode)
    else:
        targets = fault_targets(groups, fault.target)
    node = fault.node if isinstance(fault, CrashFault) else None
    crashed: list[str] = []  # with ``node``: the node each instance crashed (resolved now)
    for inst in targets:
        if outage is not None:
            inst.crash_region(outage, fault.mode == "black_hole")
        elif node is not None:
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
        if outage is not None:
            inst.recover_region(outage)
        elif node is not None:
            inst.recover_node(crashed[j])
            which = f" node={crashed[j]}"
        elif isinstance(fault, CrashFault):
            inst.recover()
        else:
            inst.set_fault(fault.kind, None)
        rec.event(env.now, inst.group, inst.name, "fault", f"{fault.kind} ends{which}")
    if outage is not None and ctx.regions is not None:
        ctx.regions.down.discard(outage)
        rec.event(env.now, "regions", outage, "fault", "region_outage ends")
        ctx.regions.changed()


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
        inst.crash(black_hole=fault.mode == "black_hole")
    elif isinstance(fault, SlowFault):
        inst.set_fault("slow", fault.factor)
    elif isinstance(fault, ErrorFault):
        inst.set_fault("error", fault.probability)
    elif isinstance(fault, LatencyFault):
        inst.set_fault("latency", fault.added.sampler(ctx.generator(inst.name, f"fault{i}")))
    elif isinstance(fault, FlushFault):
        inst.flush()
    else:  # pragma: no cover - scenario validation admits no other kind
        raise TypeError(f"unsupported fault {fault!r}")
