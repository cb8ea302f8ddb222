"""Regions: where components run, where clients are, and the network latency between regions.

The scenario's ``regions`` block names the regions and gives the **one-way** latency of every
link between two of them as a distribution (a bare duration is a constant)::

    regions:
      names: [us-east, eu-west, ap-south]
      latency:
        us-east: {eu-west: 40ms, ap-south: {dist: lognormal, median: 110ms, sigma: 0.1}}
        eu-west: {ap-south: 60ms}
      local: 0.2ms

A link given in one direction only is symmetric (the same distribution both ways, drawn from
separate streams); giving both directions makes it asymmetric. ``local`` is the one-way latency
between two instances of the same region (default: none). Components are placed with
``region: us-east`` (every instance) or a list (one region per replica); workloads spread
their clients with ``regions: {us-east: 0.6, eu-west: 0.4}``.

This module is the scenario layer (no simpy): the model and the checks that depend on other
parts of the scenario. The runtime is :mod:`simulator.components.network`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.calls import NAME_PATTERN
from simulator.distributions import Distribution

KeyPath = tuple[str | int, ...]


class RegionsSpec(BaseModel):
    """The regions of a scenario and the network between them.

    Parameters
    ----------
    names
        Region names (``us-east``...), in the order tables list them.
    latency
        One-way latency from a region to another: ``{a: {b: dist}}``. A link written in one
        direction holds both ways; written in both, each direction has its own. Every pair of
        distinct regions needs a link. Seconds (units accepted).
    local
        One-way latency between instances of the same region; omitted: none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    names: list[str] = Field(min_length=1)
    latency: dict[str, dict[str, Distribution]] = Field(default_factory=dict)
    local: Distribution | None = None

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        for name in self.names:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"names: {name!r} is not a valid region name (letters, digits, "
                                 "'_' and '-', starting with a letter)")
        if len(set(self.names)) != len(self.names):
            raise ValueError("names: a region is listed twice")
        return self

    def link(self, a: str, b: str) -> Any:
        """The one-way latency distribution from ``a`` to ``b`` (``local`` if the same; None
        if that has no latency)."""
        if a == b:
            return self.local
        given = self.latency.get(a, {}).get(b)
        return given if given is not None else self.latency.get(b, {}).get(a)

    def mean(self, a: str, b: str) -> float:
        """Mean one-way latency from ``a`` to ``b`` (0 when there is none)."""
        d = self.link(a, b)
        return 0.0 if d is None else float(d.mean)

    def problems(self) -> Iterator[tuple[KeyPath, str]]:
        """Yield (key path under ``regions``, message) for unknown or missing links."""
        known = set(self.names)

        def hint(word: str) -> str:
            close = difflib.get_close_matches(word, self.names, n=1, cutoff=0.6)
            return f"; did you mean {close[0]!r}?" if close else ""

        for a, row in self.latency.items():
            if a not in known:
                yield ("latency", a), f"unknown region {a!r}" + hint(a)
                continue
            for b in row:
                if b not in known:
                    yield ("latency", a, b), f"unknown region {b!r}" + hint(b)
                elif b == a:
                    yield ("latency", a, b), ("a region's latency to itself is regions.local, "
                                              "not a link")
        for i, a in enumerate(self.names):
            for b in self.names[i + 1:]:
                if self.link(a, b) is None:
                    yield ("latency",), (f"no latency between {a!r} and {b!r}; "
                                         f"give {a}: {{{b}: ...}}")


def placement(region: str | list[str] | None, index: int) -> str | None:
    """Region of replica ``index`` of a component placed at ``region`` (a list is per replica,
    cycled for instances added later, e.g. by a reshard)."""
    if isinstance(region, list):
        return region[index % len(region)]
    return region


def unknown_region(name: str, spec: RegionsSpec | None) -> str | None:
    """The message for a region name that the scenario does not declare (None if it does)."""
    if spec is None:
        return f"region {name!r} given but the scenario has no regions block"
    if name in spec.names:
        return None
    close = difflib.get_close_matches(name, spec.names, n=1, cutoff=0.6)
    return (f"unknown region {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            + f" (regions: {', '.join(spec.names)})")
