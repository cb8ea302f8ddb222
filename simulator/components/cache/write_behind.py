"""Write-behind: acknowledged writes queue per key (apart from the
    entries, so eviction never loses one) and a background flusher hands them to the store."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simpy import AllOf, AnyOf, Event, Timeout

from simulator.components.cache.entries import CacheEntries
from simulator.messages import OK, Request


class CacheWriteBehind(CacheEntries):
    """Write-behind: acknowledged writes queue per key (apart from the
    entries, so eviction never loses one) and a background flusher hands them to the store."""

    # ---- write-behind ---------------------------------------------------------------------
    def _write_back(self, req: Request, key: int) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending[0] += 1
            version = pending[1]
        else:
            truth = self._truth
            version = (max(truth(key), self._flushing.get(key, -1)) + 1 if truth is not None
                       else 0)
            self._pending[key] = [1, version]
        self._pending_writes += 1
        self._fill(key, version, None, overwrite=True)
        req.version = version
        wake = self._wake
        if wake is not None and len(self._pending) >= self._flush_batch:
            self._wake = None
            wake.succeed()

    def _flusher(self) -> Generator[Event, Any, None]:
        env = self.env
        while True:
            wake = self._wake = Event(env)
            yield AnyOf(env, (Timeout(env, self._flush_interval), wake))
            self._wake = None
            pending = self._pending
            todo = len(pending)  # this round: the keys waiting now; later writes wait for the next
            while todo > 0 and pending:
                epoch = self._epoch
                calls = []
                n = min(self._flush_batch, todo, len(pending))
                todo -= n
                for _ in range(n):
                    key, (writes, version) = pending.popitem(last=False)
                    self._pending_writes -= writes
                    self._flushing[key] = version
                    calls.append(env.process(self._flush_key(key, writes, version, epoch)))
                yield AllOf(env, calls)

    def _flush_key(self, key: int, writes: int, version: int, epoch: int
                   ) -> Generator[Event, Any, None]:
        """Write one key's coalesced writes to the store; put them back if that fails."""
        assert self._backing is not None
        req = Request(-1, -1, "write", key, 1.0, self.env._now)
        status = yield from self._backing(req, "write")
        if self._flushing.get(key) == version:
            del self._flushing[key]
        self.flush_writes_total += 1
        if status == OK:
            self.flushed_writes_total += writes
        elif self._epoch != epoch or not self.up:  # crashed meanwhile: nobody retries them
            self.lost_writes_total += writes
            self.ctx.recorder.event(self.env._now, self.group, self.name, "lost_writes",
                                    f"{writes} writes of key {key}: flush failed after a crash")
        else:
            self.flush_failures_total += 1
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = [writes, version]
                self._pending.move_to_end(key, last=False)
            else:
                pending[0] += writes
            self._pending_writes += writes
