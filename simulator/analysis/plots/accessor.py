"""``results.plot``: every plot the registered kinds and the run declare, as methods."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator import registry
from simulator.kind import load

if TYPE_CHECKING:
    from simulator.results import Results


class _DeclaredNames:
    """``PlotAccessor.NAMES``: the declared plots' names, read from the registry when asked
    (a kind registered later adds its plots)."""

    def __get__(self, obj: object, owner: type | None = None) -> tuple[str, ...]:
        return tuple(registry.plots())


class PlotAccessor:
    """Plots of one :class:`~simulator.results.Results`: ``results.plot.<name>(ax=None,
    **options)`` draws plot ``name`` (see :func:`simulator.registry.plots`) on ``ax`` (or a
    new figure) and returns the Axes; a plot the run has no data for raises
    :class:`~simulator.analysis.plots.style.NoDataError`.

    :meth:`available` lists the plots this run has data for.
    """

    #: Every declared plot, in the order :func:`write_plots` writes them (a tuple).
    NAMES = _DeclaredNames()

    def __init__(self, results: Results) -> None:
        self._r = results

    @staticmethod
    def names() -> list[str]:
        """Every declared plot, in the order :func:`write_plots` writes them."""
        return list(registry.plots())

    def available(self) -> list[str]:
        """Names of the plots this run has data for, in :meth:`names` order."""
        return [name for name, plot in registry.plots().items() if plot.available(self._r)]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        plot = registry.plots().get(name)
        if plot is None:
            raise AttributeError(f"no plot {name!r}; there are: {', '.join(self.names())}")
        # bound to the run like a method: help() and signature() show the plot's own
        return types.MethodType(load(plot.draw), self._r)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self.names()})
