"""How a cache answers: hits, misses and loads (coalesced, refreshed early),
    the kept value of ``stale_if_error``, writes by pattern, spans and failures."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, cast

from simpy import AnyOf, Event, Timeout

from simulator.components.base import (
    Handler,
)
from simulator.components.cache.entries import CacheEntries
from simulator.components.edge import Bound
from simulator.messages import ERROR, FALLBACK, HIT, MISS, OK, Request


class CacheServing(CacheEntries):
    """How a cache answers: hits, misses and loads (coalesced, refreshed early),
    the kept value of ``stale_if_error``, writes by pattern, spans and failures."""

    # ---- serving ------------------------------------------------------------------------
    def handle(self, req: Request, op: str) -> Handler:
        env = self.env
        now = env._now
        if not self.up:
            if self._black_hole:
                yield Event(env)  # never answered: only the caller's timeout ends it
            return self._fail(req, op, now)
        if op in self._write_ops:
            return (yield from self._write(req, op, now))
        if op == "invalidate":
            return (yield from self._invalidate_op(req, op, now))
        key = req.key
        version = self._entries.get(key)
        expires = self._expires
        if version is not None and expires is not None:
            exp = expires[key]
            if exp <= now:
                if now < exp + self._keep:  # kept for stale-if-error: load, serve it on failure
                    return (yield from self._miss(req, op, now, version))
                self._expire(key, exp + self._keep)
                version = None
            elif (self._beta is not None
                  and now + self._beta * self._load_time.get(key, 0.0) * self._exp1() >= exp
                  and not (self._coalesce and key in self._loading)):
                self.early_refreshes_total += 1  # XFetch: this read reloads the entry early
                if self._touch is not None:
                    self._touch(key)
                return (yield from self._miss(req, op, now))
            elif self._reset_on_access:
                exp = now + self._ttl_of(key)
                expires[key] = exp
                self._push_expiry(exp, key)
        if version is None:
            if (self._coalesce or self._miss_delay is not None or self._crashable
                    or (self._pattern.caller_sets and self._hit_delay is not None)):
                return (yield from self._miss(req, op, now))
            # the common miss (no coalescing, no miss latency, no crash, no set round trip),
            # as _miss runs it, inlined: a load's resumes pass through one frame fewer
            epoch = self._epoch
            self._count_miss(req, key)
            self.loads_total += 1
            req.version = -1
            status = yield from cast(Bound, self._backing)(req, "read")
            if self._epoch != epoch:
                return self._fail(req, op, now)
            if status == OK:
                version = req.version if req.version >= 0 else 0
                self._fill(key, version, env._now - now, overwrite=self._pattern.caller_sets)
                self._answer(req, key, version)
            if self._rec is not None:
                self._span(req, op, now, status)
            return status
        if self._touch is not None:
            self._touch(key)
        self.hits_total += 1
        if req.lookup == 0:
            req.lookup = HIT
        truth = self._truth
        if truth is not None and version < truth(key):
            req.stale = True
            self.stale_reads_total += 1
        req.version = version
        delay = self._hit_delay
        if delay is not None:
            if self._crashable:
                epoch = self._epoch
                yield AnyOf(env, (Timeout(env, delay()), self._crash_event))
                if self._epoch != epoch:
                    return self._fail(req, op, now)
            else:
                yield Timeout(env, delay())
        if self._rec is not None:
            self._span(req, op, now, OK)
        return OK

    def _count_miss(self, req: Request, key: int) -> None:
        """Count a miss of ``key``: the counter, the request's first lookup, the policy's
        ``on_miss`` (for a key not cached at all)."""
        self.misses_total += 1
        if req.lookup == 0:
            req.lookup = MISS
        if self._on_miss is not None and key not in self._entries:
            self._on_miss(key)

    def _miss(self, req: Request, op: str, arrival: float, kept: int | None = None) -> Handler:
        """A read that did not find a fresh entry: wait for a load in flight, or load.

        ``kept`` is the version of an expired entry kept for stale-if-error."""
        env = self.env
        key = req.key
        epoch = self._epoch
        self._count_miss(req, key)
        delay = self._miss_delay
        if delay is not None:
            yield from self._sleep(delay())
            if self._epoch != epoch:
                return self._fail(req, op, arrival)
        loading = self._loading
        ev: Event | None = None
        if self._coalesce:
            ev = loading.get(key)
            if ev is not None:
                self.coalesced_total += 1
                yield ev
                status, version = cast(tuple[int, int], ev.value)
                if self._epoch != epoch:
                    return self._fail(req, op, arrival)
                if status == OK:
                    self._answer(req, key, version)
                elif kept is not None:
                    status = self._serve_kept(req, key, status)
                self._span(req, op, arrival, status)
                return int(status)
            ev = loading[key] = Event(env)
        started = env._now
        self.loads_total += 1
        req.version = -1
        if self._crashable:
            status = yield from self._call(req, "read")
        else:
            status = yield from cast(Bound, self._backing)(req, "read")
        if self._epoch != epoch:
            return self._fail(req, op, arrival)
        version = req.version if req.version >= 0 else 0
        if status == OK:
            if self._pattern.caller_sets:
                set_delay = self._hit_delay
                if set_delay is not None:  # the set round trip
                    yield from self._sleep(set_delay())
                    if self._epoch != epoch:
                        return self._fail(req, op, arrival)
                self._fill(key, version, env._now - started, overwrite=True)
            else:
                self._fill(key, version, env._now - started, overwrite=False)
            self._answer(req, key, version)
        if ev is not None:
            if loading.get(key) is ev:
                del loading[key]
            ev.succeed((status, version))
        if status != OK and kept is not None:
            status = self._serve_kept(req, key, status)
        self._span(req, op, arrival, status)
        return status

    def _serve_kept(self, req: Request, key: int, status: int) -> int:
        """The load failed: answer the expired entry if it is still kept (stale-if-error)."""
        version = self.peek(key)
        if version is None:
            return status
        self.stale_served_total += 1
        self._answer(req, key, version)
        return FALLBACK

    def peek(self, key: int) -> int | None:
        """The version of ``key`` this instance holds, fresh or kept for stale-if-error (``None``
        if it holds none or is down). Changes nothing: no recency, no counts."""
        if not self.up:
            return None
        if self._expires is not None:
            self._purge(self.env._now)
        return self._entries.get(key)

    def _answer(self, req: Request, key: int, version: int) -> None:
        """Hand a loaded version to the reader, and measure its staleness now."""
        req.version = version
        truth = self._truth
        if truth is not None and version < truth(key):
            req.stale = True
            self.stale_reads_total += 1

    def _write(self, req: Request, op: str, arrival: float) -> Handler:
        self.writes_total += 1
        return (yield from self._pattern.write(self, req, op, arrival))

    def _invalidate_op(self, req: Request, op: str, arrival: float) -> Handler:
        epoch = self._epoch
        hop = self._hit_delay
        if hop is not None:
            yield from self._sleep(hop())
            if self._epoch != epoch:
                return self._fail(req, op, arrival)
        self._invalidate(req.key)
        self._span(req, op, arrival, OK)
        return OK


    # ---- waiting, calling, failing ----------------------------------------------------------
    def _sleep(self, delay: float) -> Generator[Event, Any, None]:
        if self._crashable:
            yield AnyOf(self.env, (Timeout(self.env, delay), self._crash_event))
        else:
            yield Timeout(self.env, delay)

    def _call(self, req: Request, op: str) -> Handler:
        assert self._backing is not None
        if not self._crashable:
            return (yield from self._backing(req, op))
        call = self.env.process(self._backing(req, op))
        yield AnyOf(self.env, (call, self._crash_event))
        return cast(int, call.value) if call.triggered else ERROR

    def _span(self, req: Request, op: str, arrival: float, status: int) -> None:
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, arrival, arrival, self.env._now, status)

    def _fail(self, req: Request, op: str, arrival: float) -> int:
        self.failed_total += 1
        self._span(req, op, arrival, ERROR)
        return ERROR
