"""Crashes of the whole shard, of one node or of a region, and the failover
    that promotes a follower when the leader is lost."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

from simpy import Event, Timeout

from simulator.components.database.node import _Node
from simulator.components.database.state import DISCARDED, LOST, ShardState

if TYPE_CHECKING:
    from simulator.components.database.shard import Database


class ShardFaults(ShardState):
    """Crashes of the whole shard, of one node or of a region, and the failover
    that promotes a follower when the leader is lost."""

    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._crashable = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        for nd in self.nodes:
            self._close(nd)
        self._go_down(black_hole)

    def _close(self, nd: _Node) -> None:
        """A node crashes: close its books and fail every request it holds."""
        now = self.env._now
        nd.busy_area += nd.busy * now
        nd.queue_area += nd.waiting * now
        nd.system_area += nd.in_system * now
        nd.busy = nd.waiting = nd.in_system = 0
        waiting = list(nd.queue)
        nd.queue.clear()
        nd.abandoned.clear()
        nd.epoch += 1
        for ev in waiting:
            if not ev.triggered:
                ev.succeed()
        crashed, nd.crash_event = nd.crash_event, Event(self.env)
        crashed.succeed()

    def recover(self) -> None:
        self.up = True
        self._release_held()
        self._update_faulted()
        if self._failing_over is not None:
            self._failing_over.wake()

    def _release_held(self) -> None:
        """Apply the writes held back, in order (those still cut off are held again)."""
        for f in self.followers:
            held, f.held = f.held, []
            for item in held:
                self._apply(f, item)

    def _cut_off(self, node: _Node) -> bool:
        net = self._net
        assert net is not None
        return node.region in net.down or net.cut(self.leader.region, node.region)

    # ---- node crashes and failover ------------------------------------------------------
    def placed_in(self, region: str) -> bool:
        return any(nd.region == region for nd in self.nodes)

    def crash_region(self, region: str, black_hole: bool) -> None:
        """A region outage crashes the shard's nodes placed there: the whole shard if they all
        are, else only those (a leader among them may then fail over)."""
        hit = [nd for nd in self.nodes if nd.region == region]
        if len(hit) == len(self.nodes):
            self.crash(black_hole)
            return
        hit.sort(key=lambda nd: nd is self.leader)  # followers first: no promotion to them
        for nd in hit:
            self._crash_node(nd, black_hole)

    def recover_region(self, region: str) -> None:
        hit = [nd for nd in self.nodes if nd.region == region]
        if len(hit) == len(self.nodes):
            self.recover()
            return
        for nd in hit:
            self._recover_node(nd)

    def crash_node(self, node: str, black_hole: bool) -> str:
        nd = self.leader if node == "leader" else self._by_label[node]
        self._crash_node(nd, black_hole)
        return nd.label

    def recover_node(self, node: str) -> None:
        self._recover_node(self._by_label[node])

    def _crash_node(self, nd: _Node, black_hole: bool) -> None:
        if nd.down:
            return
        nd.down = True
        nd.black_hole = black_hole
        self._nodes_down += 1
        self._close(nd)
        if nd is self.leader:
            self._leader_down = True
            if self._failover is not None and self._failing_over is None:
                self._failing_over = _Failover(cast("Database", self), nd)
                self.env.process(self._failing_over.run())

    def _recover_node(self, nd: _Node) -> None:
        if not nd.down:
            return
        fo = self._failing_over
        if fo is not None and nd is fo.old and fo.detected:
            fo.old_back = True  # declared dead: fenced, it rejoins as a follower once promoted
            fo.wake()
            return
        nd.down = False
        self._nodes_down -= 1
        if nd is self.leader:
            self._leader_down = False
            if fo is not None:
                fo.cancelled = True  # back before it was declared dead: it keeps leading
                self._failing_over = None
        elif fo is not None:
            fo.wake()
        self._release_held()  # the node catches up from the leader's log

    def _elect(self, fo: _Failover) -> _Node | None:
        """The follower to promote: up, with the fewest writes not yet applied (the highest
        applied position when applying in order), the lowest index on ties; the old leader if
        it is back and no follower is up."""
        if not self.up:
            return None
        up = [f for f in self.followers if not f.down]
        if up:
            return min(up, key=lambda f: (f.backlog, f.index))
        return fo.old if fo.old_back else None

    def _promote_node(self, fo: _Failover, new: _Node) -> None:
        """``new`` becomes the leader now; writes it lacks are lost; the old leader follows."""
        now = self.env._now
        old = fo.old
        lost = discarded = 0
        if new is not old:
            missing = [it for it in new.inflight if not it[1]]
            gone = {it[2] for it in missing}
            committed = self._committed
            tallies = self._key_writes
            for it in missing:
                it[1] = True
                acks = it[5]
                fate = LOST if acks is None or acks.acknowledged else DISCARDED
                if fate == LOST:
                    lost += 1  # acknowledged to the client, now gone
                else:
                    discarded += 1  # the client got an error: never acknowledged
                key = it[3]
                if key >= 0:  # the key's committed version is what the new leader holds
                    tallies[key][fate] += 1
                    have = new.applied.get(key, 0)
                    if committed.get(key, 0) > have:
                        committed[key] = have
                        for session in self._sessions.values():
                            if session.get(key, 0) > have:
                                session[key] = have
            new.inflight.clear()
            new.held = []
            new.backlog = 0
            for f in self.followers:
                if f is new:
                    continue
                for it in f.inflight:  # the other followers follow the new leader's log
                    if not it[1] and it[2] in gone:
                        it[1] = True
                        f.backlog -= 1
                f.held = [it for it in f.held if not it[1]]
                for it in missing:  # and are rewound where they got ahead of it
                    key = it[3]
                    if key >= 0 and f.applied.get(key, 0) > committed.get(key, 0):
                        f.applied[key] = committed.get(key, 0)
                _follow(f, new, {it[3] for it in missing if it[3] >= 0})
            # the old leader rejoins as a follower, rewound to the new leader's data
            old.applied = dict(committed)
            old.writes = dict(new.writes)
            old.inflight.clear()
            old.held = []
            old.backlog = 0
            old.last_due = now
            self.leader = new
            self.followers = [nd for nd in self.nodes if nd is not new]
            self._lags = [self._lag_for(f) for f in self.followers]
            self._links = [self._link_for(new, f) for f in self.followers]
            self._nearest.clear()
        if fo.old_back:
            old.down = False
            self._nodes_down -= 1
        self._leader_down = False
        self._failing_over = None
        self.failovers_total += 1
        self.lost_writes_total += lost
        self.discarded_writes_total += discarded
        self.ctx.recorder.event(
            now, self.group, self.name, "failover",
            f"crashed={old.label} promoted={new.label} crashed_at={fo.crashed_at:.9g} "
            f"detected_at={fo.detected_at:.9g} promoted_at={now:.9g} "
            f"duration={now - fo.crashed_at:.9g} lost_writes={lost} "
            f"discarded_writes={discarded}")
        self._release_held()


def _follow(f: _Node, leader: _Node, keys: set[int]) -> None:
    """Recount the writes ``f`` holds of ``keys`` (those a failover voided writes of): it follows
    ``leader``'s log, so it holds the leader's writes less those still on their way to it."""
    if not keys:
        return
    pending = dict.fromkeys(keys, 0)
    for it in f.inflight:
        if not it[1] and it[3] in pending:
            pending[it[3]] += 1
    for key, n in pending.items():
        f.writes[key] = leader.writes.get(key, 0) - n


class _Failover:
    """One failover of a shard: detection, election, promotion (a Process: rare)."""

    def __init__(self, db: Database, old: _Node) -> None:
        self.db = db
        self.old = old
        self.crashed_at = db.env.now
        self.detected_at = math.nan
        self.detected = False
        self.cancelled = False
        self.old_back = False  # the old leader came back after it was declared dead
        self._waiting: Event | None = None

    def wake(self) -> None:
        """A node came back: a failover waiting for a candidate looks again."""
        if self._waiting is not None and not self._waiting.triggered:
            self._waiting.succeed()

    def run(self) -> Generator[Event, Any, None]:
        db, env = self.db, self.db.env
        yield Timeout(env, db._detect())
        if self.cancelled:
            return
        self.detected = True
        self.detected_at = env.now
        while True:
            new = db._elect(self)
            while new is None:  # no follower up: wait for a node to come back
                self._waiting = Event(env)
                yield self._waiting
                new = db._elect(self)
            if new is not self.old:
                yield Timeout(env, db._promote())
            if (not new.down or new is self.old) and db.up:
                break
        db._promote_node(self, new)
