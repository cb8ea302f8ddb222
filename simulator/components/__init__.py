"""Built-in component kinds; importing this package registers them."""

from simulator.components import (
    cache,
    cdn,
    consumer,
    database,
    load_balancer,
    pubsub,
    queue,
    service,
)

__all__ = ["cache", "cdn", "consumer", "database", "load_balancer", "pubsub", "queue", "service"]
