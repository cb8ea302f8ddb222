"""``kind: queue``: a message queue with capacity and backpressure, acknowledgements,
visibility timeouts, redelivery and dead letters (SQS semantics; see
:mod:`simulator.components.queue.backlog`). It declares the ``messages`` table, which topic
subscriptions share."""

from simulator.components.queue.params import QueueParams
from simulator.kind import Column, DerivedTable, Kind, Plot, RawTable
from simulator.messages import MESSAGE_STATUS_LABELS

MESSAGES = RawTable("messages", "One row per message stored in a queue or topic subscription "
                                "(or refused), updated in place as it moves.", (
    Column("message_id", "int64", "Sequence number of the message within the run, from 0."),
    Column("queue", "category", "Where it was stored: a queue's name, or topic.subscription "
                                "(one row per subscription for a message published to a topic).",
           labels="names"),
    Column("request_id", "int64", "Request that published it (consumer spans carry the same "
                                  "id)."),
    Column("enqueued", "float64", "When the queue accepted it (or refused it: status "
                                  "rejected)."),
    Column("first_delivered", "float64", "First delivery to a consumer (NaN if never "
                                         "delivered)."),
    Column("finished", "float64", "When it was acknowledged, dead-lettered or rejected (NaN "
                                  "while queued or in flight at the end)."),
    Column("attempts", "int16", "Deliveries to consumers (redeliveries are attempts - 1)."),
    Column("status", "category", "acked, dead_lettered, rejected, or where it was at the end: "
                                 "queued (waiting, or delayed before a retry) or in_flight "
                                 "(delivered, not yet acknowledged).",
           labels=tuple(MESSAGE_STATUS_LABELS)),
))

_TABLES = "simulator.components.queue.tables"
_PLOTS = "simulator.components.queue.plots"

KIND = Kind(
    name="queue",
    params=QueueParams,
    backlog=("lag",),
    component="simulator.components.queue.broker:Queue",
    shape="log",
    colour="#fffde7",
    tables=(MESSAGES,),
    derived=(DerivedTable("queue_summary", f"{_TABLES}:queue_summary",
                          "queues (e2e: enqueue to acknowledgement; times in ms)",
                          format=f"{_TABLES}:format_queue_summary"),),
    plots=(Plot("queue_over_time", f"{_PLOTS}:queue_over_time", "Queue depth and consumer lag.",
                applies=f"{_PLOTS}:has_queues"),),
)
