"""How a shard serves a request: routing to a node, the connection pool, reads
    (leader, followers, quorum), writes and their acknowledgements."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Generator
from typing import Any

from simpy import AnyOf, Event, Timeout

from simulator.components.base import (
    Handler,
)
from simulator.components.database.node import _Node, _QuorumRead
from simulator.components.database.state import (
    ACKNOWLEDGED,
    COMMITTED,
    UNACKNOWLEDGED,
    ShardState,
)
from simulator.kernel import Timer
from simulator.messages import CANCELLED, ERROR, OK, REJECTED, TIMEOUT, Request


class ShardServing(ShardState):
    """How a shard serves a request: routing to a node, the connection pool, reads
    (leader, followers, quorum), writes and their acknowledgements."""

    # ---- serving ------------------------------------------------------------------------
    def _draw(self, op: str, write: bool) -> Callable[[], float]:
        draw = self._draws.get(op)
        if draw is None:
            st = self._service_times
            cls_entry = "write" if write else "read"
            chosen = op if op in st else cls_entry if cls_entry in st else "*"
            draw = self.ctx.sampler(self.group, f"service_time:{chosen}", st[chosen])
            self._draws[op] = draw
        return draw

    def handle(self, req: Request, op: str, src: str | None = None) -> Handler:
        """Serve ``req``; ``src`` is the caller's region when the scenario has regions (the
        cluster's regional view passes it): the request then travels to the node serving it."""
        if src is None:
            return self._serve(req, op, None)
        return self._remote(req, op, src)

    def _remote(self, req: Request, op: str, src: str) -> Handler:
        """The request comes from region ``src``: pick the node, cross the link to its region."""
        net = self._net
        assert net is not None
        mode = self._reads
        chosen: _Node | None = None
        node = self.leader
        if op not in self._write_ops and mode not in ("leader", "quorum"):
            chosen = node = self._nearest_node(src) if mode == "nearest" else self._choose(req)
        if node.region is None:
            return self._serve(req, op, chosen)
        out, back, pair = net.link(src, node.region)
        if node is not self.leader and node.region in net.down:
            return net.cross(self._node_down, req, op, out, back, pair)
        if chosen is None:
            return net.cross(self._serve_any, req, op, out, back, pair)
        return net.cross(functools.partial(self._serve_at, chosen), req, op, out, back, pair)

    def _serve_any(self, req: Request, op: str) -> Handler:
        return self._serve(req, op, None)

    def _serve_at(self, node: _Node, req: Request, op: str) -> Handler:
        return self._serve(req, op, node)

    def _node_down(self, req: Request, op: str) -> Handler:
        """A follower whose region is down refuses the read."""
        if op in self._write_ops:
            self.writes_total += 1
        else:
            self.reads_total += 1
        return self._end(req, op, self.env._now, math.nan, ERROR)
        yield  # pragma: no cover

    def _nearest_node(self, src: str) -> _Node:
        """The node nearest to ``src`` whose region is up (the leader on ties)."""
        net = self._net
        assert net is not None
        ranked = self._nearest.get(src)
        if ranked is None:
            ranked = self._nearest[src] = sorted([self.leader, *self.followers], key=lambda n: (
                0.0 if n.region is None else net.mean(src, n.region)))  # stable: leader first
        if net.down or self._nodes_down:
            return next((n for n in ranked if n.region not in net.down and not n.down),
                        self.leader)
        return ranked[0]

    def _serve(self, req: Request, op: str, node: _Node | None) -> Handler:
        env = self.env
        arrival = env._now
        write = op in self._write_ops
        if write:
            self.writes_total += 1
        else:
            self.reads_total += 1
        draw = self._draws.get(op) or self._draw(op, write)
        work = draw() * req.work
        if self._faulted:
            if not (yield from self._meet_faults()):
                return self._end(req, op, arrival, math.nan, ERROR)
            arrival = env._now
            work *= self._slow_factor
        if write:
            return (yield from self._write(req, op, arrival, work))
        mode = self._reads
        if node is None:  # else chosen by _remote before the request crossed the link
            if mode == "quorum":
                return (yield from self._quorum_read(req, op, arrival, work, draw))
            node = self.leader if mode == "leader" or mode == "nearest" else self._choose(req)
        if node.busy < node.size and not self._crashable and mode != "read_your_writes":
            # the common read, as _read runs it, inlined: its resume passes one frame fewer
            node.take(arrival)
            yield Timer(env, work)
            return self._read_ok(node, req, op, arrival, arrival)
        return (yield from self._read(node, req, op, arrival, work))

    def _choose(self, req: Request) -> _Node:
        followers = self.followers
        mode = self._reads
        if mode == "random":
            node = followers[int(self._uniform() * len(followers))]
            return self._next_up(node) if node.down else node
        if mode == "least_loaded":
            if self._nodes_down:
                followers = [f for f in followers if not f.down] or [self.leader]
            loads = [f.in_system for f in followers]
            m = min(loads)
            ties = [f for f, x in zip(followers, loads, strict=True) if x == m]
            return ties[0] if len(ties) == 1 else ties[int(self._uniform() * len(ties))]
        node = followers[self._rr % len(followers)]
        self._rr += 1
        if node.down:
            node = self._next_up(node)
        if mode == "read_your_writes" and self._behind(node, req):
            return self.leader
        return node

    def _next_up(self, node: _Node) -> _Node:
        """A read meant for a crashed follower goes to the next follower up, in round-robin
        order, or to the leader if none is (the driver's server selection skips a member its
        monitor sees down, as MongoDB's ``secondaryPreferred`` or a health-checked pool)."""
        followers = self.followers
        i = followers.index(node)
        n = len(followers)
        return next((followers[(i + d) % n] for d in range(1, n)
                     if not followers[(i + d) % n].down), self.leader)

    def _behind(self, node: _Node, req: Request) -> bool:
        """Whether ``node`` lacks the last write of the request's session (workload, key)."""
        key = req.key
        if key < 0:
            return False
        session = self._sessions.get(req.workload)
        return session is not None and session.get(key, 0) > node.applied.get(key, 0)

    def _acquire(self, node: _Node, req: Request, arrival: float
                 ) -> Generator[Event, Any, tuple[int, float]]:
        """Get a connection at ``node``: (``OK``, start) or (failure status, NaN)."""
        if node.down:  # a crashed node refuses, or never answers
            if node.black_hole:
                yield Event(self.env)
            return ERROR, math.nan
        if node.busy < node.size:
            node.take(arrival)
            return OK, arrival
        if node.waiting >= self._max_waiting:
            self.rejected_total += 1
            return REJECTED, math.nan
        env = self.env
        epoch = node.epoch
        ev = Event(env)
        node.queue.append(ev)
        node.waiting += 1
        node.queue_area -= arrival
        node.in_system += 1
        node.system_area -= arrival
        timeout = self._acquire_timeout
        if timeout is None and not self._crashable:
            yield ev
        else:
            waits = [ev]
            if timeout is not None:
                waits.append(Timeout(env, timeout))
            if self._crashable:
                waits.append(node.crash_event)
            yield AnyOf(env, waits)
        if node.epoch != epoch:
            return ERROR, math.nan  # crashed meanwhile: the crash closed the books
        now = env._now
        node.queue_area += now
        if not ev.triggered:  # gave up waiting
            node.abandoned.add(ev)
            node.waiting -= 1
            node.in_system -= 1
            node.system_area += now
            node.timeouts += 1
            return TIMEOUT, math.nan
        node.acquired += 1
        node.pool_wait += now - arrival
        node.busy_area -= now
        if req.cancelled:  # a hedged copy nobody waits for any more
            self._release(node)
            return CANCELLED, now
        return OK, now

    def _release(self, node: _Node) -> None:
        now = self.env._now
        node.busy_area += now
        node.system_area += now
        node.in_system -= 1
        queue = node.queue
        while queue:
            ev = queue.popleft()
            if ev in node.abandoned:
                node.abandoned.discard(ev)
                continue
            node.waiting -= 1
            ev.succeed()  # the connection passes to the next waiter
            return
        node.busy -= 1

    def _work(self, node: _Node, work: float) -> Generator[Event, Any, bool]:
        """Hold a connection of ``node`` for ``work`` seconds; False if the node (or the whole
        shard) crashed meanwhile."""
        if self._crashable:
            epoch = node.epoch
            yield AnyOf(self.env, (Timeout(self.env, work), node.crash_event))
            return node.epoch == epoch
        yield Timeout(self.env, work)
        return True

    def _read(self, node: _Node, req: Request, op: str, arrival: float, work: float
              ) -> Handler:
        if node.busy < node.size and not self._crashable:  # the common case, inlined
            node.take(arrival)
            start = arrival
            yield Timeout(self.env, work)
        else:
            status, start = yield from self._acquire(node, req, arrival)
            if status != OK:
                return self._end(req, op, arrival, start, status)
            if not (yield from self._work(node, work)):
                return self._end(req, op, arrival, start, ERROR)
        key = req.key
        if self._reads == "read_your_writes" and key >= 0:
            committed = self._committed.get(key, 0)
            version = committed if node is self.leader else node.applied.get(key, 0)
            if version < committed and self._behind(node, req):
                # the session wrote the key while this read waited: ask the leader instead
                self._release(node)
                node = self.leader
                status, _ = yield from self._acquire(node, req, self.env._now)
                if status != OK:
                    return self._end(req, op, arrival, start, status)
                if not (yield from self._work(node, work)):
                    return self._end(req, op, arrival, start, ERROR)
        return self._read_ok(node, req, op, arrival, start)

    def _read_ok(self, node: _Node, req: Request, op: str, arrival: float, start: float
                 ) -> int:
        """The end of a read that held a connection of ``node`` from ``start`` (for
        ``read_your_writes``, after any second try at the leader): the version it saw, and
        whether that was stale."""
        key = req.key
        if key >= 0:
            committed = self._committed.get(key, 0)
            version = committed if node is self.leader else node.applied.get(key, 0)
            req.version = version
            if version < committed:
                req.stale = True
                self.stale_reads_total += 1
        node.reads += 1
        self.reads_ok_total += 1
        self._release(node)
        return self._end(req, op, arrival, start, OK)

    def _write(self, req: Request, op: str, arrival: float, work: float) -> Handler:
        leader = self.leader
        if leader.busy < leader.size and not self._crashable:  # the common case, inlined
            leader.take(arrival)
            start = arrival
            yield Timeout(self.env, work)
        else:
            status, start = yield from self._acquire(leader, req, arrival)
            if status != OK:
                return self._end(req, op, arrival, start, status)
            if not (yield from self._work(leader, work)):
                return self._end(req, op, arrival, start, ERROR)
        key = req.key
        version = 0
        tally: list[int] | None = None
        if key >= 0:
            version = self._committed.get(key, 0) + 1
            self._committed[key] = version
            req.version = version
            leader.applied[key] = version
            leader.writes[key] = leader.writes.get(key, 0) + 1
            tally = self._key_writes.get(key)
            if tally is None:
                tally = self._key_writes[key] = [0, 0, 0, 0, 0]
            tally[COMMITTED] += 1
            if self._reads == "read_your_writes":
                session = self._sessions.get(req.workload)
                if session is None:
                    session = self._sessions[req.workload] = {}
                session[key] = version
        if self.followers:
            acks = self._replicate(key, version)
            if acks is not None:
                if self._crashable:
                    epoch = leader.epoch
                    yield AnyOf(self.env, (acks.event, leader.crash_event))
                    if leader.epoch != epoch:  # the leader crashed before enough acks
                        if tally is not None:
                            tally[UNACKNOWLEDGED] += 1  # committed, but the client got an error
                        return self._end(req, op, arrival, start, ERROR)
                else:
                    yield acks.event
                acks.acknowledged = True
        if tally is not None:
            tally[ACKNOWLEDGED] += 1
        self._release(leader)
        return self._end(req, op, arrival, start, OK)

    def _quorum_read(self, req: Request, op: str, arrival: float, work: float,
                     draw: Callable[[], float]) -> Handler:
        env = self.env
        epoch = self._epoch
        nodes = self.nodes
        quorum = _QuorumRead(self._read_quorum, len(nodes), Event(env))
        for i, node in enumerate(nodes):
            w = work if i == 0 else draw() * req.work * self._slow_factor
            proc = env.process(self._replica_read(node, req, arrival, w))
            proc.callbacks.append(quorum.reply)
        if self._crashable:
            yield AnyOf(env, (quorum.event, self._crash_event))
            if self._epoch != epoch:
                return self._end(req, op, arrival, math.nan, ERROR)
        else:
            yield quorum.event
        if quorum.ok < quorum.k:
            return self._end(req, op, arrival, math.nan, quorum.status)
        key = req.key
        if key >= 0:
            req.version = quorum.best
            if quorum.best < self._committed.get(key, 0):
                req.stale = True
                self.stale_reads_total += 1
        self.reads_ok_total += 1
        return self._end(req, op, arrival, math.nan, OK)

    def _replica_read(self, node: _Node, req: Request, arrival: float, work: float
                      ) -> Generator[Event, Any, tuple[int, int]]:
        """One node's part of a quorum read: (status, version it holds when it answers)."""
        status, _ = yield from self._acquire(node, req, arrival)
        if status != OK:
            return status, 0
        if not (yield from self._work(node, work)):
            return ERROR, 0
        key = req.key
        version = 0
        if key >= 0:
            version = (self._committed.get(key, 0) if node is self.leader
                       else node.applied.get(key, 0))
        node.reads += 1
        self._release(node)
        return OK, version

    def _end(self, req: Request, op: str, arrival: float, start: float, status: int) -> int:
        if status == OK:
            self.served_total += 1
        elif status in (ERROR, TIMEOUT):
            self.failed_total += 1
        rec = self._rec
        if rec is not None:
            rec.span_id.append(req.id)
            rec.span_instance.append(self._code)
            rec.span_op.append(op)
            rec.span_arrival.append(arrival)
            rec.span_start.append(start)
            rec.span_end.append(self.env._now)
            rec.span_status.append(status)
        return status
