"""The registered component kinds: the only place a ``kind`` string becomes a declaration.

Built-in kinds are the packages listed in :data:`BUILTIN`; third-party kinds register through
the ``simulator.kinds`` entry-point group (``name = "package.module:KIND"``), loaded in every
process that asks the registry anything (forkserver and Dask workers included), or by calling
:func:`register` with a :class:`~simulator.kind.Kind`. Each registration bumps
:func:`generation`, which invalidates the scenario model built from the kinds.

Importing this module, or loading the declarations, imports no SimPy and no pandas: a kind's
component class is imported when the topology first builds one.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

from simulator.kind import DerivedTable, Kind, Plot, RawTable, TimelineEvent, load

if TYPE_CHECKING:
    from simulator.components.base import Component

#: Packages of the built-in kinds, in the order their tables, sections and plots appear.
BUILTIN = (
    "simulator.components.service",
    "simulator.components.load_balancer",
    "simulator.components.queue",
    "simulator.components.topic",
    "simulator.components.consumer",
    "simulator.components.cache",
    "simulator.components.cdn",
    "simulator.components.database",
    "simulator.components.event_store",
    "simulator.components.read_model",
)
ENTRY_POINT_GROUP = "simulator.kinds"

_KINDS: dict[str, Kind] = {}
_state: dict[str, Any] = {"generation": 0, "loaded": False, "scanned": None}

C = TypeVar("C")


def register(kind: Kind | str) -> Any:
    """Register a kind; return it.

    ``register(Kind(...))`` is the plug-in interface. ``@register("name")`` on a component
    class is a shorthand that declares a kind from the class's ``Params`` and
    ``supported_faults`` (nothing else).
    """
    if isinstance(kind, str):
        name = kind

        def deco(cls: C) -> C:
            register(Kind(name=name, params=cls.Params,  # type: ignore[attr-defined]
                          component=cls,  # type: ignore[arg-type]
                          faults=frozenset(getattr(cls, "supported_faults", ())),
                          spans_regions=getattr(cls, "spans_regions", True)))
            return cls

        return deco
    old = _KINDS.get(kind.name)
    if old is not None and old is not kind and old.component != kind.component:
        raise ValueError(f"component kind {kind.name!r} registered twice")
    _KINDS[kind.name] = kind
    _state["generation"] += 1
    return kind


def unregister(name: str) -> None:
    """Remove a registered kind (tests of plug-ins clean up with it).

    The next lookup scans the entry points again: a plug-in still on the import path then
    registers anew."""
    _load_all()
    del _KINDS[name]
    _state["generation"] += 1
    _state["scanned"] = None


def _load_all() -> None:
    if not _state["loaded"]:
        _state["loaded"] = True
        for module in BUILTIN:
            declared = getattr(importlib.import_module(module), "KIND", None)
            if declared is not None:  # (a module without KIND registers its class itself)
                register(declared)
    # entry points again whenever the import path has changed (a worker that was handed its
    # parent's sys.path, a notebook that added a plug-in's folder)
    path = tuple(sys.path)
    if _state["scanned"] != path:
        _state["scanned"] = path
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in _KINDS:
                found = ep.load()
                register(found if isinstance(found, Kind) else found())


def generation() -> int:
    """A number that changes whenever a kind registers (caches of the kinds key on it)."""
    _load_all()
    return _state["generation"]


def kinds() -> dict[str, Kind]:
    """Every registered kind's declaration, built-ins first in :data:`BUILTIN` order."""
    _load_all()
    return dict(_KINDS)


def kind(name: str) -> Kind:
    """The declaration of ``name`` (KeyError if none)."""
    _load_all()
    return _KINDS[name]


def component_class(name: str) -> type[Component]:
    """The component class of kind ``name`` (imported on first use; KeyError if none)."""
    return kind(name).component_class()


def raw_tables() -> dict[str, RawTable]:
    """Every raw table the kinds declare, by name, then those of no kind
    (:data:`CORE_RAW`: autoscaling's)."""
    return {**{t.name: t for k in kinds().values() for t in k.tables},
            **{t.name: t for t in load(CORE_RAW)}}


def derived_tables() -> dict[str, DerivedTable]:
    """Every derived table, in the order ``simulator run`` prints them: the run's own
    (:data:`CORE_DERIVED`), each kind's, then the diagnostics of all."""
    every = [*load(CORE_DERIVED), *(t for k in kinds().values() for t in k.derived),
             *load(CORE_SCALING_DERIVED)]
    ordered = sorted(every, key=lambda t: t.section == "diagnostics")  # stable
    return {t.name: t for t in ordered}


def plots() -> dict[str, Plot]:
    """Every plot: the run's own (:data:`CORE_PLOTS`), then each kind's."""
    out = {p.name: p for p in load(CORE_PLOTS)}
    out.update({p.name: p for k in kinds().values() for p in k.plots})
    return out


def timeline_events() -> list[type[TimelineEvent]]:
    """Every timeline event model the kinds declare (each once)."""
    return list(dict.fromkeys(e for k in kinds().values() for e in k.events))


#: Derived tables and plots that belong to no kind (the summary, regions, breakers, recovery).
CORE_DERIVED = "simulator.analysis.tables:CORE_DERIVED"
CORE_PLOTS = "simulator.analysis.plots:CORE_PLOTS"
#: Raw and derived tables of autoscaling and cost, which belong to no kind.
CORE_RAW = "simulator.autoscaling:RAW_TABLES"
CORE_SCALING_DERIVED = "simulator.autoscaling:DERIVED"

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Kind",
    "component_class",
    "derived_tables",
    "generation",
    "kind",
    "kinds",
    "plots",
    "raw_tables",
    "register",
    "timeline_events",
    "unregister",
]
