"""Building and wiring the components of a scenario through the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from simulator import registry
from simulator.components.base import BuildContext, Component, Membership, Scalable, Target
from simulator.components.client import Client
from simulator.components.network import RegionNetwork
from simulator.errors import TopologyError
from simulator.faults import SpikeFault
from simulator.scenario import Scenario
from simulator.timeline import prepare_faults


@dataclass
class Topology:
    """The built system: component instances by group, resolvable targets, and clients."""

    groups: dict[str, list[Component]]
    targets: dict[str, Target]
    clients: list[Client]

    @property
    def components(self) -> list[Component]:
        """Every component instance, in scenario order."""
        return [c for members in self.groups.values() for c in members]

    def resolve(self, name: str) -> Target:
        """Return the target a reference to ``name`` means (an instance or a whole group)."""
        try:
            return self.targets[name]
        except KeyError:
            raise TopologyError(f"unknown component {name!r}") from None


def build_topology(scenario: Scenario, ctx: BuildContext) -> Topology:
    """Create every instance and client, then wire references. Schedules nothing."""
    if scenario.regions is not None:
        ctx.regions = RegionNetwork(scenario.regions, ctx)
    ctx.network = scenario.network
    groups: dict[str, list[Component]] = {}
    targets: dict[str, Target] = {}
    for name, params in scenario.components.items():
        cls = registry.component_class(params.kind)
        members = [cls(name, i, params, ctx) for i in range(params.instance_count)]
        groups[name] = members
        if getattr(params, "autoscaling", None) is not None:  # built up to max_replicas
            for member in members[params.replicas:]:
                cast(Scalable, member).set_in_service(False)
            ctx.membership[name] = Membership(members)
        targets[name] = cls.group_target(name, members, ctx)
    clients = [
        Client(name, i, spec, ctx, stop_at=scenario.duration,
               spikes=[(f.at, f.end, f.factor) for f in scenario.faults
                       if isinstance(f, SpikeFault) and f.workload == name])
        for i, (name, spec) in enumerate(scenario.workloads.items())
    ]
    topo = Topology(groups, targets, clients)
    prepare_faults(scenario, groups, ctx)
    for component in topo.components:  # after construction: a kind may place its instances
        ctx.placement[component.name] = component.region
    for component in topo.components:
        try:
            component.wire(topo.resolve)
        except ValueError as exc:
            raise TopologyError(f"components.{component.group}: {exc}") from None
    for client in clients:
        try:
            client.wire(topo.resolve)
        except ValueError as exc:
            raise TopologyError(f"workloads.{client.name}: {exc}") from None
    for component in topo.components:
        for metric, label, read in component.gauges():
            ctx.recorder.add_gauge(component.group, component.name, metric, label, read)
    return topo
