"""``kind: consumer``: worker processes pulling messages from a queue or a topic
subscription, processing them (local work, then calls) and acknowledging or failing each."""

from simulator.components.consumer.params import ConsumerParams
from simulator.kind import Kind

KIND = Kind(
    name="consumer",
    params=ConsumerParams,
    component="simulator.components.consumer.consumer:Consumer",
    shape="round",
    colour="#fce4ec",
    faults=frozenset({"crash", "slow"}),
)
