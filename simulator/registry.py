"""The only place where a component ``kind`` string becomes a class.

Component classes register themselves with :func:`register`; the scenario layer validates each
component's parameters with the class's ``Params`` model; the topology builds instances through
:func:`component_class`. Nothing else names a kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from simulator.components.base import Component

C = TypeVar("C", bound="type[Component]")

_KINDS: dict[str, type[Component]] = {}


def register(kind: str) -> Callable[[C], C]:
    """Class decorator registering a component class under ``kind``."""

    def deco(cls: C) -> C:
        if kind in _KINDS and _KINDS[kind] is not cls:
            raise ValueError(f"component kind {kind!r} registered twice")
        cls.kind = kind
        _KINDS[kind] = cls
        return cls

    return deco


def _load_builtin() -> None:
    import simulator.components  # noqa: F401  (registers the built-in kinds)


def component_class(kind: str) -> type[Component]:
    """Return the class registered under ``kind`` (KeyError if none)."""
    _load_builtin()
    return _KINDS[kind]


def kinds() -> dict[str, type[Component]]:
    """Return every registered kind and its class, sorted by kind."""
    _load_builtin()
    return dict(sorted(_KINDS.items()))
