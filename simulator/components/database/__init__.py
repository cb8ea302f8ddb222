"""A database: shards, a leader and followers per shard, a connection pool per node, versions.

A ``kind: database`` component is a set of **shards** (instances ``db[0] .. db[n-1]``); a
reference to ``db`` routes each request to the shard holding its key (hash mod N, consistent
hashing with virtual nodes, or key ranges), not at random. Each shard is a **leader** and
``replication.followers`` **followers**; every node has its own **connection pool**. The store
keeps a **version per key**: every read reports the version it returned and whether that was
older than the latest committed one at that instant, so staleness is measured, not assumed.

Modelling assumptions (each stated where it is used):

- A node runs at most ``pool.size`` queries at once, one per connection, each taking its
  service time regardless of the others (no contention beyond the pool). Requests wait for a
  connection in FIFO order; one that has waited ``pool.acquire_timeout`` gives up with status
  ``timeout`` (as HikariCP's ``connectionTimeout``); with ``pool.max_waiting`` set, an arrival
  that finds that many waiting is refused at once with status ``rejected``. The pool belongs to
  the node and is shared by every caller, as a pgbouncer in front of each server.
- A write runs on the shard's leader, commits at the end of its service time (the key's version
  is bumped then) and is shipped to each follower, which applies it ``lag`` later, drawn
  independently per write and follower from ``replication.lag`` (network plus apply time; the
  WARS model of Probabilistically Bounded Staleness). A follower keeps the newest version it
  has applied of each key. With ``replication.ordered`` writes are applied in commit order,
  write ``i`` at ``max(applied_{i-1}, committed_i + lag_i)``. Applying costs the follower no
  connection; writes reaching a crashed shard are applied when it recovers.
- ``writes: sync`` holds the leader's connection until every follower has applied the write;
  ``writes: quorum`` until ``write_quorum`` of the ``followers + 1`` nodes have it, the leader
  counting as one (Dynamo's W; ``write_quorum: 1`` is asynchronous, ``followers + 1`` is
  synchronous). The write's latency is then the k-th reply.
- Reads go to the leader, to a follower (``round_robin``, ``random``, ``least_loaded``: fewest
  requests waiting or in service at the node), or with ``read_your_writes``: a session is the
  **request's workload and key** — a read of key k by workload w goes to the next follower in
  round-robin order unless that follower has not applied w's last write of k, in which case it
  goes to the leader; the check is repeated when the follower answers, so a write by the same
  session committed meanwhile also redirects the read to the leader. ``reads: quorum`` asks all
  ``followers + 1`` nodes and answers with the newest version among the first ``read_quorum``
  replies (its latency is the k-th order statistic of the nodes' latencies; the slower replies
  still load their nodes).
- A read returns the version of the key held by the node that serves it, at the instant it
  finishes; it is **stale** when that is older than the leader's committed version at the same
  instant. Keys never written have version 0. Requests without a key (``key = -1``) are spread
  over the shards at random and carry no version.
- Resharding (a ``reshard`` event on the timeline) changes the shard map at once; keys that move
  take their latest committed version with them (an instantaneous, consistent migration: the new
  shard's followers hold it too). Requests already at a shard finish there.
- **Node crashes** (``crash`` with ``node: leader`` — the node leading then — or
  ``node: followerN``; a region outage crashes the nodes placed in the region): the node fails
  what it holds and refuses (or black-holes) what reaches it. A read meant for a crashed
  follower goes to the next follower up (the leader if none): drivers' server selection skips a
  member their monitor sees down (detection assumed immediate for reads). A crashed follower
  holds the writes shipped to it and applies them all when it is back (no replay time). While
  the leader is down, writes and leader reads fail and followers hold what it had shipped
  them but they had not applied yet (it never reaches them if another node is promoted).
- **Failover** (``replication.failover``): ``detection`` after the leader's crash (a leader back
  sooner keeps leading) the follower up with the fewest writes not applied (lowest index on
  ties) is chosen and leads ``promotion`` later. Writes of the old leader it had not applied
  are gone: **lost** if they had been acknowledged (``async``; under ``quorum`` only a write
  short of its quorum can be missing, so none is lost with ``ordered`` apply), **discarded** if
  the client got an error; each such key's committed version becomes the new leader's, other
  followers are rewound to it and keep the writes it has. The old leader rejoins as a follower
  holding the new leader's data and catches up when it is back. Once declared dead it is fenced
  (it leads again only if no follower is up to promote). A whole-shard crash never fails over.

Records per shard one span per request (``start`` = connection acquired; ``NaN`` for quorum
reads, whose waits are per node). Gauges per shard: ``reads_total``, ``writes_total`` (requests
arriving), ``reads_ok_total``, ``stale_reads_total``, ``served_total``, ``failed_total``,
``rejected_total``, ``pool_timeouts_total``, ``pool_acquired_total``, ``pool_wait_time_total``
(seconds waited by requests that got a connection), ``workers`` (connections over all nodes),
``busy``, ``queue_length``, ``in_system`` and their integrals ``busy_time_total``,
``queue_time_total``, ``system_time_total`` (so utilisation is exact), ``shard_active`` (1 while
the shard map includes the shard); per node (label ``leader``, ``follower1``...):
``node_reads_total``; per follower: ``replica_behind`` (how far behind it is at the sample
time: seconds since the oldest committed write it has not applied, 0 when caught up) and
``replication_backlog`` (writes not yet applied).
With ``failover``: ``leader_index`` (0 = the node built as ``leader``, N = ``followerN``),
``failovers_total``, ``lost_writes_total``, ``discarded_writes_total``, per node ``node_up``,
and ``replica_behind``/``replication_backlog`` for every node (the leader's are 0).
Table ``replicated_writes``: one row per write applied by a follower (commit and apply times:
the per-write replication lag actually drawn, see
:func:`simulator.analysis.data.replication_summary`). Table ``final_state``, written when the
run ends: one row per key written at a shard and per node of the shard, with the version and
the number of the key's writes the node holds (``applied_version``, ``held_writes``; the node
``leading`` at the end holds the surviving ones), the key's ``committed_version`` and its
tally: ``committed_writes`` = ``acknowledged_writes`` + ``unacknowledged_writes`` (failed to
the client: the leader crashed before the replicas a sync or quorum write waits for) +
``in_flight_writes`` (still waiting), and of these ``lost_writes`` (acknowledged) and
``discarded_writes`` (not) voided by failovers. So, per key, acknowledged writes = the
acknowledged ones the leading node holds + ``lost_writes``; the lost and discarded counts add
up to the failover events' and the ``*_writes_total`` gauges. Memory: a tally per key written.
After a reshard a moved key has rows at each shard that took writes of it (each with that
shard's counts; the version migrated with it is in ``applied_version``, not in
``held_writes``).
Events: ``reshard`` (see :func:`simulator.analysis.data.reshard_summary`), ``failover``
(:func:`simulator.analysis.data.failover_summary`).
"""

from __future__ import annotations

from simulator.components.database.params import DatabaseParams, ReshardEvent
from simulator.kind import Column, DerivedTable, Kind, RawTable

REPLICATED_WRITES = RawTable("replicated_writes", "One row per write a database follower "
                                                  "applied (a write and follower each).", (
    Column("database", "category", "Database (component) whose shard replicated the write.",
           labels="component"),
    Column("shard", "int32", "Shard index (db[i])."),
    Column("follower", "int16", "Node that applied it, as built: N = followerN (0: the node "
                                "built as leader, following after a failover)."),
    Column("committed", "float64", "When the leader committed the write, seconds."),
    Column("applied", "float64", "When the follower applied it, seconds (write lag = applied - "
                                 "committed: the lag draw, plus the region link, the wait for "
                                 "earlier writes when ordered and any time held while a node "
                                 "was down)."),
))

FINAL_STATE = RawTable("final_state", "The database at the end of the run: one row per key "
                                      "written at a shard and node of that shard.", (
    Column("database", "category", "Database (component).", labels="component"),
    Column("shard", "int32", "Shard index (db[i]) that took the writes."),
    Column("key", "int64", "The key (only keys written at this shard have rows)."),
    Column("node", "int16", "Node, as built: 0 = the node built as leader, N = followerN."),
    Column("leading", "bool", "Whether this node leads the shard at the end."),
    Column("applied_version", "int64", "Version of the key this node holds at the end (the "
                                       "leading node's is the last it committed)."),
    Column("held_writes", "int64", "Writes of the key this node holds: committed on it as "
                                   "leader or applied as a follower, less those a failover "
                                   "voided (the leading node's are the surviving writes)."),
    Column("committed_version", "int64", "The database's committed version of the key at the "
                                         "end (what reads are measured stale against; the "
                                         "same on every row of the key)."),
    Column("committed_writes", "int64", "Writes of the key this shard's leaders committed "
                                        "(the key's, repeated on each node's row)."),
    Column("acknowledged_writes", "int64", "Of those, answered ok to the client."),
    Column("unacknowledged_writes", "int64", "Of those, committed but failed to the client "
                                             "(the leader crashed before the replicas "
                                             "sync or quorum writes wait for)."),
    Column("in_flight_writes", "int64", "Of those, in flight at the end (as their requests "
                                        "are): waiting for the replicas sync or quorum "
                                        "writes wait for."),
    Column("lost_writes", "int64", "Acknowledged writes of the key a failover voided (the "
                                   "promoted follower had not applied them)."),
    Column("discarded_writes", "int64", "Unacknowledged writes of the key a failover voided."),
))

_TABLES = "simulator.components.database.tables"

KIND = Kind(
    name="database",
    params=DatabaseParams,
    backlog=("in_system",),
    component="simulator.components.database.shard:Database",
    shape="cylinder",
    colour="#e8f5e9",
    faults=frozenset({"crash", "slow", "error", "latency"}),
    events=(ReshardEvent,),
    tables=(REPLICATED_WRITES, FINAL_STATE),
    derived=(
        DerivedTable("shard_summary", f"{_TABLES}:shard_summary",
                     "per-shard load (measured window; skew = busiest shard / mean shard)",
                     format=f"{_TABLES}:format_shard_summary"),
        DerivedTable("replication_summary", f"{_TABLES}:replication_summary",
                     "databases: staleness, replication (write_lag: commit to applied per "
                     "replicated write; behind: sampled age of a follower's oldest unapplied "
                     "write) and pool waits (times in ms)",
                     format=f"{_TABLES}:format_replication_summary"),
        DerivedTable("failovers", f"{_TABLES}:failovers",
                     "database failovers (write_unavailability: seconds from the leader's crash "
                     "to the promotion; lost_writes: acknowledged, gone)",
                     format=f"{_TABLES}:format_failovers"),
        DerivedTable("reshards", f"{_TABLES}:reshards",
                     "resharding (moved: fraction of the key space whose shard changed)",
                     format=f"{_TABLES}:format_reshards"),
    ),
)
