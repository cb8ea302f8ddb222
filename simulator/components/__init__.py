"""Built-in component kinds; importing this package registers them."""

from simulator.components import (
    cache,
    cdn,
    consumer,
    database,
    event_store,
    load_balancer,
    pubsub,
    queue,
    read_model,
    service,
)

__all__ = ["cache", "cdn", "consumer", "database", "event_store", "load_balancer", "pubsub",
           "queue", "read_model", "service"]
