"""What a component kind declares: parameters, tables, derived tables, plots, faults, events.

A kind is one package under ``simulator/components/`` (or a third-party module) whose
``KIND`` is a :class:`Kind`. The generic layers (scenario validation, topology, timeline,
recorder, :class:`~simulator.results.Results`, the CLI, the HTML report, ``simulator kinds``)
loop over what the registered kinds declare and name none of them.

The declarations import neither SimPy nor pandas: the component class, derived-table functions,
formatters and plots are named by ``"module:attribute"`` strings and imported on first use, so
validating a scenario never loads the engine and a run without plots never loads matplotlib.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from simulator.distributions import Duration

if TYPE_CHECKING:
    from simulator.components.params import ComponentParams

#: Fault kinds the timeline applies through the instance's capabilities (see
#: :mod:`simulator.components.base`): ``crash`` (``Crashable``) and ``slow``, ``error``,
#: ``latency`` (``Degradable``). A kind lists those it supports in :attr:`Kind.faults`.
INSTANCE_FAULTS = ("crash", "slow", "error", "latency")


def load(ref: str | Any) -> Any:
    """Return the object a ``"package.module:attribute"`` reference names (others as given)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Column:
    """One column of a raw table.

    Parameters
    ----------
    name
        Column name.
    dtype
        ``int64``, ``int32``, ``int16``, ``int8``, ``float64``, ``bool`` or ``category``.
    doc
        What the column holds, with its unit.
    labels
        For a ``category`` column: the fixed labels its integer codes index, or
        ``"component"`` (codes are instance codes from ``Recorder.instance_code``, shown as the
        component's name), or ``"names"`` (codes from :meth:`RawBuffer.code`, the names the run
        registered).
    """

    name: str
    dtype: str
    doc: str
    labels: tuple[str, ...] | str | None = None


@dataclass(frozen=True)
class RawTable:
    """A table a kind appends rows to during the run (through ``Recorder.table(name)``)."""

    name: str
    doc: str
    columns: tuple[Column, ...]

    def schema(self) -> dict[str, tuple[str, str]]:
        """``{column: (dtype, doc)}``, as :data:`simulator.metrics.schema.TABLES` lists."""
        return {c.name: (c.dtype, c.doc) for c in self.columns}


@dataclass(frozen=True)
class DerivedTable:
    """A table computed after the run from the raw tables, over the measured window.

    Parameters
    ----------
    name
        ``Results.derived(name)`` (and ``results.<name>()``), the file written by
        ``Results.write`` and the name experiments collect with ``tables=``.
    compute
        ``"module:function"``: ``function(results) -> pandas.DataFrame``; empty when the run
        has nothing of the kind.
    title
        Heading above the table in ``simulator run`` output and in the report (units said).
    format
        ``"module:function"``: ``function(table) -> DataFrame`` of the cells as people read
        them (:func:`simulator.analysis.formatting.shown`: ms, %, units in the headers), which
        the terminal prints and the report renders; a function returning a ``str`` is printed
        as it is (the terminal only). Default: the table itself.
    always
        Written and shown even when empty.
    applies
        ``"module:function"``: ``function(results) -> bool``, whether the run has what the
        table describes (omitted: it does when the table is not empty). A table that applies
        but needs the requests table is reported as unavailable in a streaming run.
    section
        Where the report shows it: ``"tables"`` (after the summary) or ``"diagnostics"``.
    """

    name: str
    compute: str
    title: str
    format: str | None = None
    always: bool = False
    applies: str | None = None
    section: str = "tables"

    def available(self, results: Any) -> bool:
        """Whether the run has what the table describes (before computing it)."""
        return self.applies is None or bool(load(self.applies)(results))

    def table(self, results: Any) -> Any:
        """Compute the table of ``results``."""
        return load(self.compute)(results)

    def display(self, table: Any) -> Any:
        """The table as people see it (cells formatted, units in the headers: ms, %), or None
        when the kind declares no ``format`` returning one; the terminal and the report both
        show it, so they cannot disagree."""
        if self.format is not None:
            out = load(self.format)(table)
            if not isinstance(out, str):
                return out
        return None

    def text(self, table: Any) -> str:
        """Render the table for a terminal."""
        if self.format is not None:
            out = load(self.format)(table)
            return out if isinstance(out, str) else str(out.to_string(index=False))
        return str(table.to_string(index=False, na_rep="-"))


@dataclass(frozen=True)
class Plot:
    """A plot of one run: ``results.plot.<name>()``, written by ``--plots`` when it applies.

    ``draw`` names ``function(results, ax=None, **options) -> Axes``; ``applies`` names
    ``function(results) -> bool`` (omitted: always). ``caption`` is the report's text.
    ``size`` is the figure's (width, height) in inches, or ``"module:function"`` giving it
    from the run (a timeline with a row per breaker).
    """

    name: str
    draw: str
    caption: str
    applies: str | None = None
    size: tuple[float, float] | str = (10, 4.5)

    def figure_size(self, results: Any) -> tuple[float, float]:
        """The figure's size for ``results`` (inches)."""
        if isinstance(self.size, str):
            return tuple(load(self.size)(results))
        return self.size

    def available(self, results: Any) -> bool:
        """Whether the run has what the plot draws."""
        return self.applies is None or bool(load(self.applies)(results))


class TimelineEvent(BaseModel):
    """Base of the timeline events a kind declares (``reshard``, ``rebuild``, ``flush``...).

    A subclass sets ``kind: Literal["name"]`` and ``target`` and implements :meth:`fire`;
    the scenario's ``faults`` list accepts it once the kind that declares it is registered.
    Instantaneous events (the default) end when they start; recovery is measured from ``at``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    at: Duration = Field(ge=0, description="When it happens.")
    target: str = Field(description="The component it acts on (``name[i]``: one instance, "
                                    "where the event allows it).")
    #: whether the target may name one instance (``name[2]``) rather than the whole component
    instance_target: ClassVar[bool] = False

    @property
    def end(self) -> float:
        """An instantaneous change ends when it starts."""
        return float(self.at)

    def grows_to(self) -> int | None:
        """The number of instances the target's group has once the event has happened (a
        reshard's shard count), for the scenario's checks of targets; None: unchanged."""
        return None

    def prepare(self, instances: list[Any], timeline: Any) -> list[Any]:
        """Before wiring: provision what the event will need; return instances to add to the
        target's group (a reshard's new shards). ``timeline`` is the run's
        :class:`simulator.timeline.TimelineContext`."""
        return []

    def fire(self, instances: list[Any], timeline: Any) -> None:
        """Apply the event at ``at`` to the target's instances."""
        raise NotImplementedError


@dataclass(frozen=True)
class Kind:
    """Everything one component kind declares.

    Parameters
    ----------
    name
        The ``kind:`` of a scenario component.
    params
        Its pydantic parameter model (a :class:`~simulator.components.params.ComponentParams`),
        the documentation of every setting ``simulator kinds`` prints.
    component
        ``"module:Class"`` (or the class): the :class:`~simulator.components.base.Component`
        the topology builds, one instance per replica; imported only to run.
    summary
        One line for ``simulator kinds``.
    faults
        The instance faults of :data:`INSTANCE_FAULTS` its instances can suffer.
    events
        Timeline event models (subclasses of :class:`TimelineEvent`) aimed at it.
    tables, derived, plots
        Its raw tables, derived tables and plots.
    spans_regions
        Whether its group target routes to instances placed in different regions.
    backlog
        Gauges (of its ``gauges()``) that count work waiting or in progress: requests in the
        system, messages stored, events not yet applied. The steady-state check
        (:mod:`simulator.analysis.stability`) tests each for a trend over the measured window.
    shape, colour
        How the topology diagram (:mod:`simulator.analysis.diagram`) draws its components:
        ``box``, ``round``, ``cylinder`` (a store), ``log`` (of messages) or ``hexagon``
        (a router), filled with ``colour`` (a matplotlib colour).
    """

    name: str
    params: type[ComponentParams]
    component: str | type
    summary: str = ""
    faults: frozenset[str] = frozenset()
    events: tuple[type[TimelineEvent], ...] = ()
    tables: tuple[RawTable, ...] = ()
    derived: tuple[DerivedTable, ...] = ()
    plots: tuple[Plot, ...] = ()
    spans_regions: bool = True
    backlog: tuple[str, ...] = ()
    shape: str = "box"
    colour: str = "#eceff1"
    _loaded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def component_class(self) -> Any:
        """The component class (imported on first use)."""
        cls = self._loaded.get("component")
        if cls is None:
            cls = load(self.component)
            cls.kind = self.name
            self._loaded["component"] = cls
        return cls

    def takes(self, fault_kind: str) -> bool:
        """Whether a fault or timeline event of ``fault_kind`` may target this kind."""
        return fault_kind in self.faults or any(
            e.model_fields["kind"].default == fault_kind for e in self.events)

