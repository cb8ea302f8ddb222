"""``kind: topic``: publish/subscribe; a publish stores one copy in every subscription's
backlog (rows of the queue kind's ``messages`` table, named ``topic.subscription``)."""

from simulator.components.topic.params import TopicParams
from simulator.kind import Kind

KIND = Kind(
    name="topic",
    params=TopicParams,
    backlog=("lag",),
    component="simulator.components.topic.topic:Topic",
    shape="log",
    colour="#fff8e1",
)
