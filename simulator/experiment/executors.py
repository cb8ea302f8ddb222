"""Executors: where the runs of an experiment execute.

* ``processes`` (the default): a pool of worker processes on all cores, started once and reused
  for the whole experiment (a capacity search reuses it for every point it tries).
* ``serial``: one run after the other in this process (debugging, tiny experiments).
* ``dask``: a Dask cluster, for users who outgrow one machine: an existing scheduler's address,
  or a local cluster when none is given. The workers must be able to ``import simulator``
  (and any module that registers custom component kinds).

Every executor returns the same tables: results are put back in the order of the runs, and a
run's tables depend only on its scenario, seed and replication
(``tests/test_executor_determinism.py`` checks every shipped scenario on all three).

What a remote Dask scheduler is trusted with: tasks travel pickled (``cloudpickle``), so every
worker runs whatever code the client sends, and the client unpickles whatever tables come
back. Connect only to a cluster you control, on a network you trust (Dask's TLS security
settings, ``distributed.comm.tls`` in its configuration, apply as usual). A worker running other
code would return other tables: on connecting, each worker's :func:`code_version` is compared with
this process's and a mismatch is refused (:class:`ExecutorError`); workers that join the
cluster later are not checked.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, TypeVar

from simulator.errors import SimulatorError

T = TypeVar("T")
R = TypeVar("R")

#: Names accepted by :func:`make_executor`.
EXECUTORS = ("processes", "serial", "dask")


class ExecutorError(SimulatorError):
    """An executor cannot run the experiment as asked (a scheduler out of reach, workers
    running other code); the message says which and why."""


class Executor(ABC):
    """Runs a function over items, yielding ``(index, result)`` as results arrive.

    Executors are context managers; :meth:`close` releases workers. One executor may serve
    many calls of :meth:`map_unordered`, so workers pay their start-up once.
    """

    name: str = "executor"

    @abstractmethod
    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Apply ``fn`` to every item; yield ``(index of the item, result)`` in any order.

        If the consumer stops early (an exception, an interrupt), pending work is cancelled.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """What ran the experiment, for the manifest."""
        return {"executor": self.name}


class SerialExecutor(Executor):
    """Runs everything in this process, in order."""

    name = "serial"

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Apply ``fn`` to each item in turn."""
        for i, item in enumerate(items):
            yield i, fn(item)


class ProcessExecutor(Executor):
    """A pool of worker processes (``concurrent.futures``), created on first use and reused.

    Parameters
    ----------
    workers
        Number of processes; default: every core (``os.cpu_count()``).
    start_method
        ``multiprocessing`` start method. Default ``forkserver`` where available (workers fork
        from a server that has imported the simulator once, without inheriting this process's
        threads), else ``spawn``. Custom component kinds registered in ``__main__`` (a notebook)
        are only seen by workers with ``fork``; put them in an importable module otherwise.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, start_method: str | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers or os.cpu_count() or 1
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("forkserver" if "forkserver" in methods
                                             else "spawn")
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context(self.start_method)
            if self.start_method == "forkserver":
                # imported once, in the server: every worker forks with them loaded
                ctx.set_forkserver_preload(["simulator.experiment.runs", "simulator.engine",
                                            "simulator.analysis.stats"])
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self._pool

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Submit every item to the pool; yield results as they complete."""
        if not items:
            return
        pool = self._get_pool()
        futures: dict[Future[R], int] = {pool.submit(fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=futures.__getitem__):
                    yield futures[fut], fut.result()
        except BrokenProcessPool as exc:
            self._pool = None
            raise RuntimeError(
                "a worker process died. From a script, call experiments under "
                "`if __name__ == '__main__':` (workers start with "
                f"{self.start_method!r} and import the main module), or use "
                "executor='serial'") from exc
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        """Shut the pool down, cancelling work not yet started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict[str, Any]:
        """Executor name, processes and start method."""
        return {"executor": self.name, "workers": self.workers,
                "start_method": self.start_method}


class DaskExecutor(Executor):
    """Runs on a Dask cluster (``pip install 'simulator[dask]'``).

    Parameters
    ----------
    address
        Address of a running scheduler (``tcp://host:8786``); default: start a local cluster
        of worker processes, one thread each, closed with the executor.
    workers
        Worker processes of the local cluster; default: every core.
    processes
        Local cluster only: worker processes (default) or threads in this process.
    """

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 processes: bool = True) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError as exc:  # pragma: no cover - dask is a dev dependency
            raise ImportError(
                "the dask executor needs dask.distributed: pip install 'simulator[dask]'"
            ) from exc
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.address = address
        self.workers = workers or os.cpu_count() or 1
        self.processes = processes
        self._client: Any = None
        self._cluster: Any = None

    #: seconds to wait for a remote scheduler before giving up
    connect_timeout = 10.0

    def _get_client(self) -> Any:
        if self._client is None:
            from distributed import Client, LocalCluster

            if self.address:
                try:
                    self._client = Client(self.address, timeout=self.connect_timeout)
                except (OSError, TimeoutError) as exc:
                    raise ExecutorError(
                        f"cannot reach the Dask scheduler at {self.address} within "
                        f"{self.connect_timeout:g} s: {exc}") from exc
                check_versions(self._client.run(_worker_code_version))
            else:
                self._cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                    host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR,
                )
                self._client = Client(self._cluster)
        return self._client

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Submit every item to the cluster; yield results as they complete."""
        if not items:
            return
        from distributed import as_completed

        client = self._get_client()
        futures = client.map(fn, list(items), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                yield index[fut.key], fut.result()
        finally:
            client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        """Close the client (and the local cluster, if this executor started it)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def describe(self) -> dict[str, Any]:
        """Executor name and scheduler (or local cluster size)."""
        if self.address:
            return {"executor": self.name, "scheduler": self.address}
        return {"executor": self.name, "scheduler": "local", "workers": self.workers}


def _worker_code_version() -> str:
    """This process's simulator code version (what a Dask worker runs for the check)."""
    from simulator.experiment.runs import code_version

    return code_version()


def check_versions(workers: dict[str, str]) -> None:
    """Refuse workers whose simulator code differs from this process's.

    Parameters
    ----------
    workers
        Worker address -> its :func:`~simulator.experiment.runs.code_version`.

    Raises
    ------
    ExecutorError
        When any worker runs other code (its tables would not be this code's tables).
    """
    mine = _worker_code_version()
    other = {w: v for w, v in sorted(workers.items()) if v != mine}
    if other:
        listed = ", ".join(f"{w} runs {v}" for w, v in list(other.items())[:3])
        more = f" and {len(other) - 3} more" if len(other) > 3 else ""
        raise ExecutorError(
            f"{len(other)} of {len(workers)} Dask worker(s) run other simulator code than "
            f"this process ({mine}): {listed}{more}; install the same version (and the same "
            "plug-in kinds) on every worker")


def make_executor(
    executor: str | Executor = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
) -> Executor:
    """Return an executor by name (``processes``, ``serial``, ``dask``) or pass one through.

    Parameters
    ----------
    executor
        A name of :data:`EXECUTORS`, or an :class:`Executor` (returned as is).
    workers
        Processes (``processes``) or local Dask workers (``dask``); default every core.
    scheduler
        Dask scheduler address; default: a local cluster.
    """
    if isinstance(executor, Executor):
        return executor
    if executor == "serial":
        return SerialExecutor()
    if executor == "processes":
        return ProcessExecutor(workers)
    if executor == "dask":
        return DaskExecutor(scheduler, workers)
    raise ValueError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
