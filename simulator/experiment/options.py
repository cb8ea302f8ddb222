"""How an experiment runs: where (executor, workers, scheduler), with which run cache, and
whether it shows progress. One object shared by ``replicate``, ``compare``, ``sweep`` and
``capacity`` (and built by the CLI from its options)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.experiment.cache import RunCache
    from simulator.experiment.executors import Executor


@dataclass(frozen=True)
class ExperimentOptions:
    """Where and how the runs of an experiment execute; results never depend on it.

    Parameters
    ----------
    executor
        ``processes`` (default: a process pool over all cores), ``serial`` (in this process),
        ``dask`` (a Dask cluster: ``scheduler``), or an :class:`~simulator.experiment.Executor`
        instance (kept open for reuse; the experiment does not close it).
    workers
        Processes of the ``processes`` executor (default: the machine's cores).
    scheduler
        Address of a running Dask scheduler for ``dask`` (default: a local cluster).
    cache
        Directory of a run cache: finished runs are reused from it and an interrupted
        experiment resumes (entries are keyed by the resolved scenario, seed and code version).
    progress
        Show a progress bar (default: when standard error is a terminal).
    force
        Accept scenarios and experiments over the soft limits of :mod:`simulator.limits`
        (instances, ring tokens, per-key and table memory, sweep points, replications).
    """

    executor: str | Executor = "processes"
    workers: int | None = None
    scheduler: str | None = None
    cache: str | Path | None = None
    progress: bool | None = None
    force: bool = False

    @classmethod
    def of(cls, options: ExperimentOptions | None, settings: Mapping[str, Any]
           ) -> ExperimentOptions:
        """The options given, or those the keywords ``settings`` name (``executor=...``);
        both at once, or an unknown keyword, is a TypeError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)} (options: "
                            f"{', '.join(sorted(names))})")
        if options is not None and settings:
            raise TypeError(f"give either options= or {', '.join(sorted(settings))}=, not both")
        return cls(**settings) if options is None else options

    def run_cache(self) -> RunCache | None:
        """The run cache (None without ``cache``)."""
        from simulator.experiment.cache import RunCache

        return RunCache(self.cache) if self.cache is not None else None

    @contextmanager
    def running(self) -> Iterator[Executor]:
        """The executor, closed afterwards if made here."""
        from simulator.experiment.output import executor_for

        with executor_for(self.executor, self.workers, self.scheduler) as ex:
            yield ex
