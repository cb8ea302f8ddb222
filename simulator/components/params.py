"""The parameters every component kind accepts (no SimPy: the scenario layer imports this).

A kind's own ``Params`` model subclasses :class:`ComponentParams`; it documents the kind's
settings (``simulator kinds`` prints it) and answers the scenario's checks: the components it
references, the regions it names, problems that depend on other components, and faults it
cannot take.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

KeyPath = tuple[str | int, ...]


class Cost(BaseModel):
    """What a component costs, as a cloud bill states it.

    Parameters
    ----------
    per_instance_hour
        Price of one instance for one hour (any currency), billed per second from the moment an
        instance is asked for (an autoscaled one from the scale-up decision, through its
        provisioning delay) until it has stopped (through its drain).
    per_million_requests
        Price of a million requests reaching the component (its spans; needs spans on).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    per_instance_hour: float = Field(0.0, ge=0)
    per_million_requests: float = Field(0.0, ge=0)


class ComponentParams(BaseModel):
    """Parameters every component kind accepts.

    Parameters
    ----------
    kind
        The registered kind.
    replicas
        Number of identical instances, named ``name[0]`` ... ``name[n-1]``. A reference to
        ``name`` means the whole group.
    region
        Where the instances run (a region of the scenario's ``regions`` block): one region for
        every instance, or a list with one region per replica. Omitted: everywhere (calls to
        it cross no link; see :mod:`simulator.components.network`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: str
    replicas: int = Field(1, ge=1, le=100_000, description="Number of instances.")
    region: str | list[str] | None = Field(None, description="Region of every instance, or "
                                                             "one per replica.")
    cost: Cost | None = Field(None, description="Price per instance-hour and per request.")
    #: Why nothing may call this kind (a reference to it is an error), or None if it takes calls.
    refuses_calls: ClassVar[str | None] = None
    #: Whether its entries can be served by a ``fallback: {kind: stale}`` (a cache).
    keeps_entries: ClassVar[bool] = False
    #: Whether it stores messages for later processing, so that a ``fallback: {kind: enqueue}``
    #: may hand work to it (a queue or a topic); any other kind would just be called again.
    accepts_messages: ClassVar[bool] = False
    #: Top-level keys whose references it pulls work from (a consumer's ``source``): the
    #: topology diagram draws those arrows from the referenced component to this one, the way
    #: the messages flow, rather than the way the name points.
    pulled_from: ClassVar[tuple[str, ...]] = ()
    #: Words the topology diagram writes on the arrows of the references under a top-level key
    #: (``{"dead_letter": "dead letters"}``); references under other keys carry their calls'
    #: operations and policies, or nothing.
    reference_labels: ClassVar[dict[str, str]] = {}

    @property
    def instance_count(self) -> int:
        """Instances the topology builds: ``replicas``, or ``autoscaling.max_replicas`` for a
        kind that scales (those beyond ``replicas`` start out of service)."""
        scaling = getattr(self, "autoscaling", None)
        return self.replicas if scaling is None else scaling.max_replicas

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        """Yield (key path inside this component, name of a referenced component)."""
        return ()

    def diagram_lines(self) -> list[str]:
        """A few short lines (under 30 characters each) that the topology diagram writes under
        the component's name: what an engineer reading the picture needs to recognise it
        (workers, strategy, shards, capacity). The kind and the replicas are written anyway."""
        return []

    def related(self) -> Iterable[tuple[str, str]]:
        """Yield (label, component name) of components it depends on without calling them (a
        read model's event store): the topology diagram draws them as dotted arrows."""
        return ()

    def regions_used(self) -> Iterable[tuple[KeyPath, str]]:
        """Yield (key path inside this component, region name) of every region it names;
        the scenario checks each against its ``regions`` block."""
        if isinstance(self.region, list):
            for i, name in enumerate(self.region):
                yield ("region", i), name
        elif self.region is not None:
            yield ("region",), self.region

    def cross_check(self, components: dict[str, ComponentParams]) -> Iterable[tuple[KeyPath, str]]:
        """Yield (key path, message) for problems that depend on other components.

        Called only once every reference is known to exist.
        """
        return ()

    def instances(self) -> int:
        """Simulated objects a run builds for this component that live the whole run
        (instances, the nodes of an instance, long-lived worker processes): what the
        ``instances`` limit (:mod:`simulator.limits`) counts. Default: the instances the
        topology builds (:attr:`instance_count`)."""
        return self.instance_count

    def ring_tokens(self, components: dict[str, ComponentParams]) -> int:
        """Tokens of the hash rings a run builds for this component (the ``ring_tokens``
        limit); ``components`` resolves the instances of the components it names."""
        return 0

    def key_state_bytes(self, keys: int) -> float:
        """Upper estimate of the bytes of per-key state this component keeps when requests
        touch at most ``keys`` distinct keys (entries, versions; the ``key_memory`` limit)."""
        return 0.0

    def check_fault(self, fault: Any) -> Iterable[tuple[str, str]]:
        """Yield (key of the fault, message) for a timeline event aimed at this component that
        it cannot take (called once the event's kind is known to be supported)."""
        if getattr(fault, "node", None) is not None:
            return [("node", f"a {self.kind} has no nodes to crash one by one; remove node "
                             "(it applies to kinds whose instances are made of nodes)")]
        return ()
