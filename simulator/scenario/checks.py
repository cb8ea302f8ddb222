"""Checks that need the whole validated scenario: references and call cycles, faults and
their targets, regions, and the size of the work asked for."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from simulator import registry
from simulator.components.params import KeyPath
from simulator.errors import Problem
from simulator.faults import (
    PartitionFault,
    RegionOutageFault,
    RegionPartitionFault,
    SpikeFault,
    split_target,
)
from simulator.kind import TimelineEvent
from simulator.regions import unknown_region
from simulator.scenario.model import MAX_REQUESTS, MAX_SAMPLES, Scenario
from simulator.scenario.problems import _did_you_mean, _is_overridden
from simulator.workloads import Closed, ConstantRate, OnOff
from simulator.yamlfile import SourceMap


def _fallback_problem(scenario: Scenario, field: str, ref: str) -> str | None:
    """Why component ``ref`` cannot be a fallback's ``field`` (``queue`` or ``cache``)."""
    params = scenario.components[ref]
    if field == "cache" and not params.keeps_entries:
        return f"{ref!r} is not a cache: a stale fallback serves a cache's entries"
    if field == "queue" and not params.accepts_messages:
        return (f"{ref!r} is a {params.kind}, not a queue or a topic: an enqueue fallback "
                "hands the work to a broker for later (a call to it would just be a second "
                "call); use kind static, or name a queue or a topic")
    return None


def _check_references(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    names = set(scenario.components)

    def where(path: KeyPath) -> int | None:
        return None if _is_overridden(path, overridden) else smap.line_of(path)

    def fmt(path: KeyPath) -> str:
        return ".".join(str(p) for p in path)

    for wname, w in scenario.workloads.items():
        path: KeyPath = ("workloads", wname, "target")
        fallback = w.target.fallback
        for field in ("queue", "cache"):
            ref = None if fallback is None else getattr(fallback, field)
            fpath: KeyPath = ("workloads", wname, "target", "fallback", field)
            if ref is not None and ref not in names:
                yield Problem(f"unknown component {ref!r}" + _did_you_mean(ref, names),
                              fmt(fpath), where(fpath))
            elif ref is not None and (message := _fallback_problem(scenario, field, ref)):
                yield Problem(message, fmt(fpath), where(fpath))
        if w.target.to not in names:
            yield Problem(
                f"unknown component {w.target.to!r}" + _did_you_mean(w.target.to, names),
                fmt(path), where(path))
        elif (refusal := scenario.components[w.target.to].refuses_calls) is not None:
            yield Problem(f"{w.target.to!r} {refusal}", fmt(path), where(path))
    graph: dict[str, list[tuple[str, KeyPath]]] = {}
    for cname, params in scenario.components.items():
        edges = graph.setdefault(cname, [])
        for rel, ref in params.references():
            path = ("components", cname, *rel)
            if ref not in names:
                yield Problem(f"unknown component {ref!r}" + _did_you_mean(ref, names),
                              fmt(path), where(path))
            elif ref == cname and "reenter" not in rel:
                yield Problem(f"component {cname!r} refers to itself", fmt(path), where(path))
            elif (refusal := scenario.components[ref].refuses_calls) is not None:
                yield Problem(f"{ref!r} {refusal}", fmt(path), where(path))
            elif rel[-2:-1] == ("fallback",) and (
                    message := _fallback_problem(scenario, str(rel[-1]), ref)):
                yield Problem(message, fmt(path), where(path))
            elif "reenter" not in rel:  # feedback may close a cycle: bounded by its step
                edges.append((ref, path))
    cycle = list(_find_cycle(graph, where, fmt))
    yield from cycle
    if cycle or any(ref not in names for p in scenario.components.values()
                    for _, ref in p.references()):
        return
    for cname, params in scenario.components.items():
        for rel, message in params.cross_check(scenario.components):
            path = ("components", cname, *rel)
            yield Problem(message, fmt(path), where(path))


def _check_faults(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    names = scenario.components

    def problem(i: int, key: str, message: str) -> Problem:
        path: KeyPath = ("faults", i, key)
        line = None if _is_overridden(path, overridden) else smap.line_of(path)
        return Problem(message, ".".join(str(p) for p in path), line)

    grown: dict[str, int] = {}  # an event may provision instances (a reshard's new shards)
    for fault in scenario.faults:
        if isinstance(fault, TimelineEvent) and (count := fault.grows_to()) is not None:
            grown[fault.target] = max(grown.get(fault.target, 0), count)
    for i, fault in enumerate(scenario.faults):
        if fault.at >= scenario.duration + scenario.drain:
            drain = (f" and the drain at {scenario.duration + scenario.drain:g}s"
                     if scenario.drain else " (no drain)")
            yield problem(i, "at", f"starts at {fault.at:g}s, after arrivals end at "
                          f"{scenario.duration:g}s{drain}: it would never act (was `duration` "
                          "shortened? move the fault or drop it)")
        if isinstance(fault, SpikeFault):
            w = scenario.workloads.get(fault.workload)
            if w is None:
                yield problem(i, "workload", f"unknown workload {fault.workload!r}"
                              + _did_you_mean(fault.workload, scenario.workloads))
            elif isinstance(w.arrivals, Closed | ConstantRate):
                yield problem(i, "workload", f"workload {fault.workload!r} has "
                              f"{w.arrivals.process} arrivals; a spike needs poisson, schedule, "
                              "on_off, sinusoid or curve arrivals")
            continue
        if isinstance(fault, RegionPartitionFault | RegionOutageFault):
            continue  # checked with the regions
        if isinstance(fault, PartitionFault):
            for name in fault.between:
                if name not in names:
                    yield problem(i, "between", f"unknown component {name!r}"
                                  + _did_you_mean(name, names))
            if fault.between[0] == fault.between[1]:
                yield problem(i, "between", "a partition needs two different components")
            continue
        group, index = split_target(fault.target)
        if group not in names:
            yield problem(i, "target", f"unknown component {group!r}"
                          + _did_you_mean(group, names))
            continue
        params = names[group]
        count = max(params.instance_count, grown.get(group, 0))
        if index is not None and index >= count:
            yield problem(i, "target", f"{group!r} has {count} replica(s): "
                          f"{fault.target!r} does not exist")
        declared = registry.kind(params.kind)
        supported = declared.faults | {e.model_fields["kind"].default for e in declared.events}
        if not declared.takes(fault.kind):
            yield problem(i, "kind", f"a {params.kind} does not support {fault.kind} faults"
                          + (f" (supported: {', '.join(sorted(supported))})" if supported
                             else ""))
            continue
        for key, message in params.check_fault(fault):
            yield problem(i, key, message)


def _fault_warnings(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    """Faults that start in the drain (at or after the end of arrivals, before the end of the
    run): they act on the requests still in flight only, and their recovery is not measured.
    Warned about, not refused: shortening ``duration`` with ``--set`` (tests, experiments)
    moves the end of arrivals before faults the file places later."""
    for i, fault in enumerate(scenario.faults):
        if scenario.duration <= fault.at < scenario.duration + scenario.drain:
            path: KeyPath = ("faults", i, "at")
            line = None if _is_overridden(path, overridden) else smap.line_of(path)
            yield Problem(f"starts at {fault.at:g}s, after arrivals end at "
                          f"{scenario.duration:g}s: it acts on the drain only, and the "
                          "recovery table does not measure it", f"faults.{i}.at", line)


def _check_regions(
    scenario: Scenario, smap: SourceMap, overridden: set[KeyPath]
) -> Iterator[Problem]:
    """Region names used by placements, client spreads and region faults must be declared."""
    spec = scenario.regions

    def problem(path: KeyPath, message: str) -> Problem:
        line = None if _is_overridden(path, overridden) else smap.line_of(path)
        return Problem(message, ".".join(str(p) for p in path), line)

    if spec is not None:
        for rel, text in spec.problems():
            yield problem(("regions", *rel), text)
    for cname, params in scenario.components.items():
        region = params.region
        if isinstance(region, list) and len(region) != params.instance_count:
            yield problem(("components", cname, "region"),
                          f"lists {len(region)} region(s) but there are {params.instance_count} "
                          "instances; give one region, or one per instance")
        elif (isinstance(region, list) and len(set(region)) > 1
              and not registry.kind(params.kind).spans_regions):
            yield problem(("components", cname, "region"),
                          f"a {params.kind} cannot spread its instances over regions; "
                          "place it in one region")
    for cname, params in scenario.components.items():
        for rel, name in params.regions_used():
            message = unknown_region(name, spec)
            if message is not None:
                yield problem(("components", cname, *rel), message)
    for wname, w in scenario.workloads.items():
        for name in w.regions or {}:
            message = unknown_region(name, spec)
            if message is not None:
                yield problem(("workloads", wname, "regions", name), message)
    for i, fault in enumerate(scenario.faults):
        if isinstance(fault, RegionOutageFault):
            message = unknown_region(fault.region, spec)
            if message is not None:
                yield problem(("faults", i, "region"), message)
        elif isinstance(fault, RegionPartitionFault):
            for j, name in enumerate(fault.between):
                message = unknown_region(name, spec)
                if message is not None:
                    yield problem(("faults", i, "between", j), message)
            if fault.between[0] == fault.between[1]:
                yield problem(("faults", i, "between"), "a partition needs two different regions")


def _find_cycle(graph: dict[str, list[tuple[str, KeyPath]]], where: Any, fmt: Any
                ) -> Iterator[Problem]:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> Problem | None:
        color[node] = grey
        stack.append(node)
        for nxt, path in graph.get(node, []):
            if color.get(nxt, black) == grey:
                cycle = [*stack[stack.index(nxt):], nxt]
                return Problem("reference cycle: " + " -> ".join(cycle)
                               + " (requests would loop forever; a bounded loop is a "
                               "{reenter: name, probability: q} step)", fmt(path), where(path))
            if color.get(nxt, black) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white:
            found = visit(node)
            if found:
                yield found
                return


def _check_size(scenario: Scenario, smap: SourceMap) -> list[Problem]:
    problems = []
    for key in ("duration", "warmup", "drain"):
        value = getattr(scenario, key)
        if isinstance(value, float | int) and not math.isfinite(value):
            problems.append(Problem(f"must be a finite duration, got {value}", key,
                                    smap.line_of((key,))))
    if problems:
        return problems
    for name, w in scenario.workloads.items():
        if isinstance(w.arrivals, OnOff):
            cycle = w.arrivals.on.mean + w.arrivals.off.mean
            cycles = scenario.duration / cycle if cycle > 0 else math.inf
            if cycles > MAX_REQUESTS:
                path = ("workloads", name, "arrivals")
                problems.append(Problem(
                    f"on and off periods average {cycle:.3g}s together, about {cycles:.3g} "
                    f"cycles in the run (limit {MAX_REQUESTS:.0e}); lengthen them"
                    if cycle > 0 else "on and off periods both have zero length, so time "
                    "would never advance; lengthen them",
                    ".".join(path), smap.line_of(path)))
    if problems:
        return problems
    n = scenario.expected_requests()
    if not (math.isfinite(n) and n <= MAX_REQUESTS):
        estimate = "unbounded" if not math.isfinite(n) else f"about {n:.3g}"
        problems.append(Problem(
            f"this run would create {estimate} requests (spikes included; the requests limit is "
            f"{MAX_REQUESTS:.0e}); lower the "
            "rates or the duration, or give closed-loop users a think time",
            "workloads", smap.line_of(("workloads",))))
    ticks = (scenario.duration + scenario.drain) / scenario.metrics.interval
    instances = sum(c.instance_count for c in scenario.components.values())
    if ticks * instances > MAX_SAMPLES:
        problems.append(Problem(
            f"gauge sampling would take about {ticks:.3g} samples of each of {instances} "
            f"instance(s), {ticks * instances:.3g} in all (the samples limit is "
            f"{MAX_SAMPLES:.0e}); raise "
            "metrics.interval or shorten the run",
            "metrics.interval", smap.line_of(("metrics", "interval"))))
    return problems
