"""Parameters of ``kind: cdn``: edges and their regions, asset classes, TTLs, bypass."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simulator.calls import NAME_PATTERN, Call
from simulator.components.cache.params import CacheParams
from simulator.components.params import ComponentParams
from simulator.distributions import Constant, Distribution, Duration
from simulator.limits import CACHE_ENTRY_BYTES
from simulator.settings import refuse_ignored

if TYPE_CHECKING:
    pass


class EdgeSpec(BaseModel):
    """One edge (point of presence).

    Parameters
    ----------
    region
        Region of the scenario's ``regions`` the edge is placed in and whose users it serves.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    region: str = Field(pattern=NAME_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _no_origin_latency(cls, data: Any) -> Any:
        if isinstance(data, dict) and "origin_latency" in data:
            raise ValueError(_NO_ORIGIN_LATENCY)
        return data


_NO_ORIGIN_LATENCY = ("origin_latency: the edge-to-origin latency is the link between the "
                      "edge's region and the origin's (the scenario's regions.latency); "
                      "remove origin_latency and place the origin with region: ...")


def _coerce_edge(value: Any) -> Any:
    return {"region": value} if isinstance(value, str) else value


Edge = Annotated[EdgeSpec, BeforeValidator(_coerce_edge)]
"""An edge: ``eu-west`` or ``{region: eu-west}``."""


class AssetClass(BaseModel):
    """A class of assets with its own time to live (``Cache-Control: max-age``).

    Parameters
    ----------
    name
        What the class is (``html``, ``images``...), for people.
    keys
        ``[first, last]``: the keys (popularity ranks, 0 the most popular) in the class,
        inclusive.
    ttl
        Time an edge keeps an asset of the class, seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    keys: tuple[int, int]
    ttl: Duration = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        first, last = self.keys
        if first < 0 or last < first:
            raise ValueError(f"keys: expected [first, last] with 0 <= first <= last, got "
                             f"[{first}, {last}]")
        return self


class CdnParams(ComponentParams):
    """Parameters of ``kind: cdn``.

    Parameters
    ----------
    edges
        The edges, one per region of the scenario's ``regions`` block (``[us-east, eu-west]``
        or ``{region: ...}`` entries). Each is one instance placed in its region, ``name[i]``
        in list order; ``replicas`` is their number and need not be given. A cdn takes no
        ``region`` of its own.
    origin
        The origin: a component name or a call (``{to: web, timeout: 2s, retry: {...}}``)
        whose policies apply to every fetch; ``op`` (default ``read``) is what the origin is
        asked.
    default_edge
        Region of the edge serving requests with no region, or from a region without an edge
        (default: the first edge).
    capacity
        Assets one edge holds (none: unlimited, entries leave only when they expire; then a
        ``ttl`` or ``assets`` is needed).
    policy
        Eviction when an edge is full: ``lru``, ``lfu``, ``fifo`` or ``random``.
    ttl
        Time an edge keeps an asset not in any of ``assets``, seconds (none: until evicted).
    ttl_mode
        ``after_write``: expiry = fetch time + ttl, hits do not extend it (an HTTP cache
        honouring ``max-age``). ``after_access``: every hit resets it.
    stale_if_error
        Keep expired assets this long and serve one (status ``fallback``) when its refetch
        from the origin fails (``Cache-Control: stale-if-error``, RFC 5861); needs a ttl.
    assets
        Asset classes by key range, each with its own ``ttl`` (ranges must not overlap).
    hit_latency
        Time an edge takes to answer from its cache (its own processing), seconds: added to
        every request an edge serves, on top of the link between the user's region and the
        edge's (the network is the scenario's ``regions``).
    coalesce
        Request collapsing: one origin fetch per asset in flight per edge; requests missing
        meanwhile wait for it.
    on_edge_down
        What a request whose edge is down (crashed) gets: ``fail`` (status ``error``, or no
        answer with a black-hole crash), or ``origin`` (it goes straight to the origin, as DNS
        failover to the origin does; detection is taken as instant).
    bypass
        Without the CDN: every request goes from its user straight to the origin, paying the
        link between the user's region and the origin's (still counted at the edge of its
        region, as ``bypassed``, for the comparison).

    There is no ``origin_latency``: the edge-to-origin latency is the regions' link between
    the edge's region and the origin's, charged on every fetch by the origin call.
    """

    kind: Literal["cdn"] = "cdn"
    edges: list[Edge] = Field(min_length=1, max_length=1000)
    origin: Call
    default_edge: str | None = None
    capacity: int | None = Field(None, ge=1, le=100_000_000)
    policy: Literal["lru", "lfu", "fifo", "random"] = "lru"
    ttl: Duration | None = Field(None, gt=0)
    ttl_mode: Literal["after_write", "after_access"] = "after_write"
    stale_if_error: Duration | None = Field(None, gt=0)
    assets: list[AssetClass] = Field(default_factory=list)
    hit_latency: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    coalesce: bool = False
    on_edge_down: Literal["fail", "origin"] = "fail"
    bypass: bool = False

    @model_validator(mode="before")
    @classmethod
    def _derive_replicas(cls, data: Any) -> Any:
        """One instance per edge: ``replicas`` is the number of edges."""
        if isinstance(data, dict) and "origin_latency" in data:
            raise ValueError(_NO_ORIGIN_LATENCY)
        if isinstance(data, dict) and isinstance(data.get("edges"), list) and data["edges"]:
            n = len(data["edges"])
            given = data.get("replicas", n)
            if given != n:
                raise ValueError(f"replicas: a cdn has one instance per edge ({n} edges); "
                                 f"leave replicas out, got {given!r}")
            data = {**data, "replicas": n}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        regions = [e.region for e in self.edges]
        seen: set[str] = set()
        for r in regions:
            if r in seen:
                raise ValueError(f"edges: region {r!r} has two edges; one edge per region")
            seen.add(r)
        if self.default_edge is not None and self.default_edge not in seen:
            raise ValueError(f"default_edge: {self.default_edge!r} is not one of the edges "
                             f"({', '.join(regions)})")
        ranges = sorted((a.keys, a.name) for a in self.assets)
        for (prev, prev_name), (cur, name) in pairwise(ranges):
            if cur[0] <= prev[1]:
                raise ValueError(f"assets: classes {prev_name!r} {list(prev)} and {name!r} "
                                 f"{list(cur)} overlap")
        if getattr(self, "region", None) is not None:  # a placement field, with regions
            raise ValueError("region: a cdn is placed by its edges (one instance per edge "
                             "region); remove region")
        if self.capacity is None and self.ttl is None:
            raise ValueError("capacity: an edge with unlimited capacity needs a ttl (assets "
                             "not in any class would never leave)")
        expires = self.ttl is not None or bool(self.assets)
        refuse_ignored(self, [
            ("policy", self.capacity is not None,
             "without a capacity (nothing is evicted: assets leave when they expire); give a "
             "capacity"),
            ("ttl_mode", expires, "without a ttl or assets (nothing expires); give a ttl"),
        ])
        if self.stale_if_error is not None and not expires:
            raise ValueError("stale_if_error needs a ttl or assets (it keeps assets after they "
                             "expire)")
        return self

    def diagram_lines(self) -> list[str]:
        size = f"{self.capacity:,} assets" if self.capacity is not None else "unbounded"
        lines = [f"{self.policy}, {size}"]
        if self.bypass:
            lines.append("bypassed")
        return lines

    def references(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        for rel, name in self.origin.references():
            yield ("origin", *(() if rel == ("to",) else rel)), name

    def key_state_bytes(self, keys: int) -> float:
        """Every edge may cache every key, up to its ``capacity``."""
        return self.replicas * min(keys, self.capacity or keys) * CACHE_ENTRY_BYTES

    def regions_used(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        """The regions the edges are in: the scenario must declare them (a cdn needs a
        ``regions`` block)."""
        for i, edge in enumerate(self.edges):
            yield ("edges", i, "region"), edge.region

    def edge_cache(self) -> CacheParams:
        """The parameters of each edge's cache: read-through, in front of the origin."""
        ttl = self.ttl
        if ttl is None and self.assets:
            ttl = min(a.ttl for a in self.assets)  # expiry on; each key's own ttl is _ttl_of's
        return CacheParams(
            kind="cache", replicas=self.replicas, backing=self.origin.model_copy(
                update={"op": None}), pattern="read_through",
            policy=self.policy if self.capacity is not None else "ttl",
            capacity=self.capacity, ttl=ttl, ttl_mode=self.ttl_mode,
            stale_if_error=self.stale_if_error,
            hit_latency=self.hit_latency, coalesce=self.coalesce, write_ops=[])
