"""Built-in component kinds; importing this package registers them."""

from simulator.components import load_balancer, service

__all__ = ["load_balancer", "service"]
