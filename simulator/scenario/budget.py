"""The work a scenario asks for, estimated from the validated model and checked against the
limits of :mod:`simulator.limits` before anything is built.

Every estimate is generic: each component kind says through its parameters how many
long-lived simulated objects it builds (:meth:`~simulator.components.params.ComponentParams.
instances`), how many hash-ring tokens (``ring_tokens``) and how many bytes of per-key state
it may keep (``key_state_bytes``); the workloads' key spaces say what they materialise.
"""

from __future__ import annotations

from typing import Any

from simulator.components.params import KeyPath
from simulator.errors import Problem
from simulator.limits import (
    COMPONENTS,
    INSTANCES,
    KEY_MEMORY,
    REQUEST_ROW_BYTES,
    RING_TOKENS,
    SPAN_ROW_BYTES,
    TABLE_MEMORY,
    Limit,
)
from simulator.scenario.model import Scenario
from simulator.scenario.problems import _is_overridden
from simulator.yamlfile import SourceMap


def check_shape(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """Limits checked on the raw data, before validation (whose cost they bound)."""
    components = data.get("components")
    if isinstance(components, dict) and COMPONENTS.exceeded(len(components)):
        return [Problem(COMPONENTS.message("components the scenario names",
                                           len(components)),
                        "components", smap.line_of(("components",)))]
    return []


def distinct_keys(scenario: Scenario) -> int:
    """Upper bound of the distinct keys a run touches: the largest key space, and no more
    than the requests the run creates."""
    spaces = [w.keys.n for w in scenario.workloads.values() if w.keys is not None]
    return int(min(max(spaces, default=1), max(1.0, scenario.expected_requests())))


def table_bytes(scenario: Scenario) -> float:
    """Estimated memory of the per-request tables (0 with streaming requests): see
    :data:`simulator.limits.REQUEST_ROW_BYTES` for the measurement. Spans count one a
    request, a lower bound (a request makes one span a hop)."""
    if scenario.metrics.requests != "table":
        return 0.0
    per = REQUEST_ROW_BYTES + (SPAN_ROW_BYTES if scenario.record_spans() else 0)
    return scenario.expected_requests() * per


def check_budget(scenario: Scenario, smap: SourceMap, overridden: set[KeyPath],
                 force: bool = False) -> list[Problem]:
    """Problems for every soft limit the scenario exceeds (none with ``force``)."""
    problems: list[Problem] = []

    def refuse(limit: Limit, what: str, estimate: float, path: KeyPath) -> None:
        if limit.exceeded(estimate, force):
            line = None if _is_overridden(path, overridden) else smap.line_of(path)
            problems.append(Problem(limit.message(what, estimate),
                                    ".".join(str(p) for p in path), line))

    comps = scenario.components
    counts = {name: c.instances() for name, c in comps.items()}
    biggest = max(counts, key=counts.__getitem__)
    refuse(INSTANCES, f"instances the run would build (most for {biggest!r}: "
           f"{counts[biggest]:,})", sum(counts.values()), ("components", biggest))
    tokens = {name: c.ring_tokens(comps) for name, c in comps.items()}
    biggest = max(tokens, key=tokens.__getitem__)
    refuse(RING_TOKENS, f"tokens of the hash rings the run would build (most for {biggest!r}: "
           f"{tokens[biggest]:,})", sum(tokens.values()), ("components", biggest))
    keys = distinct_keys(scenario)
    owners: dict[KeyPath, float] = {("workloads", name, "keys"): w.keys.memory_bytes()
                                    for name, w in scenario.workloads.items()
                                    if w.keys is not None}
    owners.update({("components", name): c.key_state_bytes(keys) for name, c in comps.items()})
    if owners:
        where = max(owners, key=owners.__getitem__)
        refuse(KEY_MEMORY, "memory of the per-key state (key spaces, cache entries, versions; "
               f"most for {'.'.join(map(str, where))}: {KEY_MEMORY.amount(owners[where])}, "
               f"with at most {keys:,} distinct keys touched)", sum(owners.values()), where)
    path: KeyPath = (("metrics", "requests") if ("metrics", "requests") in smap.lines
                     else ("workloads",))
    refuse(TABLE_MEMORY, "memory of the per-request tables (about "
           f"{scenario.expected_requests():.3g} requests in table mode)", table_bytes(scenario),
           path)
    return problems
