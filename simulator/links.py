"""Network links of call edges: latency and message loss, by named profile or per edge.

The scenario's optional ``network`` block names link profiles and may give every call edge a
default one::

    network:
      default: same_zone            # every call edge without its own `network`
      profiles:                     # add profiles, or redefine the built-in ones
        flaky_wan: {latency: {dist: lognormal, p50: 20ms, p99: 40ms}, loss: 0.01}

and any call edge may name a profile or override it (``network: cross_zone``, ``network:
{profile: cross_zone, loss: 0.02}``, ``network: {latency: 2ms}``).

Modelling assumptions
---------------------
- ``latency`` is **one way**: an attempt pays one draw on the way out, before the callee sees
  it, and one on the way back, after the callee answers (each direction its own stream).
- ``loss`` is the probability that one message (the request, or the reply) is lost; the two
  directions are independent, so an attempt is delivered and answered with probability
  ``(1 - loss)^2``. A lost request never reaches the callee; a lost reply comes after the
  callee did the work. Either way the caller hears nothing: as in a real RPC stack (a lost
  datagram, a connection that dies silently), only the caller's timeout ends the wait, so the
  failure surfaces as status ``timeout`` and the edge's retry policy decides what follows. An
  edge that may lose messages must therefore have a ``timeout`` (a scenario check).
- The built-in profiles are constant latencies and lose nothing (TCP turns packet loss into
  latency): ``same_host`` 25 us, ``same_zone`` 250 us, ``cross_zone`` 1 ms one way (round
  trips of 0.05, 0.5 and 2 ms: loopback, within one cloud availability zone, between zones of
  one region). Redefine them under ``profiles`` to match a measured network.
- Regions (:mod:`simulator.regions`) are unchanged and add on top: an edge that crosses a
  region link pays both the edge's latency and the link's.

This module is the scenario layer (no simpy); the runtime wrapper is
:mod:`simulator.components.links`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.distributions import Constant, Distribution

KeyPath = tuple[str | int, ...]
_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class LinkProfile(BaseModel):
    """What a network link costs a message.

    Parameters
    ----------
    latency
        One-way latency of each message (request out, reply back), seconds; omitted: none.
    loss
        Probability that one message is lost (each direction independently), in [0, 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    latency: Distribution | None = None
    loss: float = Field(0.0, ge=0, lt=1, description="Probability a message is lost.")


def _coerce_link(value: Any) -> Any:
    if isinstance(value, str):
        return {"profile": value}
    return value


class EdgeLinkSpec(BaseModel):
    """The network of one call edge: a named profile, with fields overriding it.

    Parameters
    ----------
    profile
        Name of a profile (built in, or under the scenario's ``network.profiles``); omitted:
        the scenario's ``network.default``, else a link that costs nothing.
    latency, loss
        Override the profile's (see :class:`LinkProfile`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    profile: str | None = Field(None, pattern=_NAME, description="Named link profile.")
    latency: Distribution | None = None
    loss: float | None = Field(None, ge=0, lt=1, description="Probability a message is lost.")


EdgeLink = Annotated[EdgeLinkSpec, BeforeValidator(_coerce_link)]
"""An edge's ``network``: a profile name, or ``{profile, latency, loss}``."""

BUILTIN_PROFILES: dict[str, LinkProfile] = {
    "same_host": LinkProfile(latency=Constant(value=25e-6)),
    "same_zone": LinkProfile(latency=Constant(value=250e-6)),
    "cross_zone": LinkProfile(latency=Constant(value=1e-3)),
}


class NetworkSpec(BaseModel):
    """The scenario's ``network`` block.

    Parameters
    ----------
    profiles
        Link profiles by name, added to (or replacing) the built-in ``same_host``,
        ``same_zone`` and ``cross_zone``.
    default
        Profile of every call edge that gives no ``network`` of its own; omitted: such edges
        cost nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    profiles: dict[str, LinkProfile] = Field(default_factory=dict)
    default: str | None = Field(None, pattern=_NAME)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in self.profiles:
            if not re.match(_NAME, name):
                raise ValueError(f"profiles: {name!r} is not a valid profile name")
        return self

    def all_profiles(self) -> dict[str, LinkProfile]:
        """The built-in profiles overlaid with the scenario's own."""
        return {**BUILTIN_PROFILES, **self.profiles}

    def unknown(self, name: str) -> str | None:
        """The message for a profile name that is not defined (None if it is)."""
        known = self.all_profiles()
        if name in known:
            return None
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        return (f"unknown network profile {name!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (profiles: {', '.join(sorted(known))})")


def resolve_link(edge: EdgeLinkSpec | None, network: NetworkSpec | None) -> LinkProfile | None:
    """The link one edge pays (None: nothing at all), from its own ``network`` and the
    scenario's block. Raises ``KeyError`` for an unknown profile (the checks report it first)."""
    spec = network if network is not None else NetworkSpec()
    name = edge.profile if edge is not None and edge.profile is not None else spec.default
    base = spec.all_profiles()[name] if name is not None else LinkProfile()
    if edge is not None:
        base = LinkProfile(latency=edge.latency if edge.latency is not None else base.latency,
                           loss=edge.loss if edge.loss is not None else base.loss)
    free = base.latency is None or (isinstance(base.latency, Constant)
                                    and base.latency.value + base.latency.shift == 0)
    if free and base.loss == 0:
        return None
    return base if not free else LinkProfile(loss=base.loss)


def link_problems(edge: EdgeLinkSpec | None, has_timeout: bool, network: NetworkSpec | None
                  ) -> Iterator[tuple[KeyPath, str]]:
    """Yield (key path inside the call, message) for an edge's unknown profile, or for loss
    on an edge without a ``timeout`` (a lost message would be waited for forever)."""
    spec = network if network is not None else NetworkSpec()
    if edge is not None and edge.profile is not None and (problem := spec.unknown(edge.profile)):
        yield ("network", "profile"), problem
        return
    link = resolve_link(edge, network)
    if link is not None and link.loss > 0 and not has_timeout:
        where: KeyPath = ("network",) if edge is not None else ()
        yield where, (f"this edge loses messages (loss {link.loss:g}"
                      + ("" if edge is not None else ", from network.default")
                      + ") but has no timeout: a lost request or reply is never answered, so "
                        "the caller would wait forever; give the call a timeout (and a retry "
                        "to resend)")
