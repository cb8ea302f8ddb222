"""The network link of a call edge at run time: one-way latency each way, and message loss.

See :mod:`simulator.links` for the model. An edge whose link costs nothing is not wrapped (no
draws, no events), so scenarios without a ``network`` block keep their tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simpy import Event, Timeout

from simulator.links import LinkProfile
from simulator.messages import Request

if TYPE_CHECKING:
    from simulator.components.base import BuildContext, Handler

Bound = Callable[[Request, str], "Handler"]


def linked(inner: Bound, link: LinkProfile, ctx: BuildContext, scope: str) -> Bound:
    """``inner`` behind ``link``: each attempt crosses it out and back.

    Parameters
    ----------
    inner
        The call (with everything innermost: a region link, the callee).
    link
        The resolved, non-free link of the edge.
    ctx
        Build context.
    scope
        Stream scope of the edge (``caller->callee``, numbered when a caller has several edges
        to one callee); purposes ``network_out``, ``network_back`` (latency) and
        ``network_loss`` (one uniform per message crossing).
    """
    env = ctx.env
    out = back = None
    if link.latency is not None:
        out = link.latency.sampler(ctx.generator(scope, "network_out"))
        back = link.latency.sampler(ctx.generator(scope, "network_back"))
    loss = link.loss
    lost = ctx.streams.batched(scope, "network_loss", lambda rng, k: rng.random(k))

    def call(req: Request, op: str) -> Handler:
        if loss and lost() < loss:
            yield Event(env)  # the request is lost: never answered, the caller's timeout ends it
        if out is not None:
            yield Timeout(env, out())
        status = yield from inner(req, op)
        if loss and lost() < loss:
            yield Event(env)  # the reply is lost after the callee did the work
        if back is not None:
            yield Timeout(env, back())
        return status

    return call
