"""Replication from the leader to the followers: a timer per write and
    follower (lag, plus the link between regions), applied in order when ``ordered``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from simpy import Event, Timeout

from simulator.components.database.node import _Acks, _Node
from simulator.components.database.state import ShardState


class ShardReplication(ShardState):
    """Replication from the leader to the followers: a timer per write and
    follower (lag, plus the link between regions), applied in order when ``ordered``."""

    # ---- replication --------------------------------------------------------------------
    def _replicate(self, key: int, version: int) -> _Acks | None:
        """Ship a write just committed to every follower; return what a quorum waits for.

        Each follower applies it after its own draw of the lag: one timer per write and
        follower, no Process. Unordered (the default), each write is applied at its own
        ``committed + lag``; ordered, at ``max(previous apply, committed + lag)``.
        """
        env = self.env
        now = env._now
        need = self._acks_needed
        acks = _Acks(need, Event(env)) if need else None
        ordered = self._ordered
        apply = self._apply
        self._seq = seq = self._seq + 1
        for f, lag, link in zip(self.followers, self._lags, self._links, strict=True):
            item = [now, False, seq, key, version, acks]
            f.inflight.append(item)
            f.backlog += 1
            delay = lag() if link is None else lag() + link()
            if ordered:
                due = max(f.last_due, now + delay)
                f.last_due = due
                delay = due - now
            Timeout(env, delay).callbacks.append(functools.partial(apply, f, item))
        return acks

    def _apply(self, node: _Node, item: list[Any], _: Any = None) -> None:
        """A follower applies one write (held back while the shard, the leader or the follower
        is down, or while the follower's region is down or cut off from the leader's)."""
        if item[1]:
            return  # voided by a failover: the new leader never had it
        if (not self.up or self._leader_down or node.down
                or (self._remote_followers and self._cut_off(node))):
            node.held.append(item)
            return
        item[1] = True
        self._replicated(self._code, self._shard_index, node.index, item[0], self.env._now)
        key, version, acks = item[3], item[4], item[5]
        node.backlog -= 1
        if key >= 0:
            applied = node.applied
            if applied.get(key, 0) < version:
                applied[key] = version
            node.writes[key] = node.writes.get(key, 0) + 1
        inflight = node.inflight
        while inflight and inflight[0][1]:
            inflight.popleft()
        if acks is not None:
            acks.got += 1
            if acks.got == acks.need and not acks.event.triggered:
                acks.event.succeed()


    def _lag_for(self, f: _Node) -> Callable[[], float]:
        lag = self._lag_of.get(f)
        if lag is None:
            rep = self.params.replication
            assert rep is not None
            lag = self._lag_of[f] = self.ctx.sampler(self.name, f"replication_lag:{f.index}",
                                                     rep.lag)
        return lag

    def _link_for(self, leader: _Node, f: _Node) -> Callable[[], float] | None:
        pair = (leader, f)
        if pair not in self._link_of:
            net = self._net
            d = (net.spec.link(leader.region, f.region)
                 if net is not None and leader.region is not None and f.region is not None
                 and f.region != leader.region else None)
            self._link_of[pair] = None if d is None else self.ctx.sampler(
                self.name, f"replication_link:{leader.index}->{f.index}", d)
        return self._link_of[pair]
