"""Comparing variants of one scenario with common random numbers and paired differences.

Every variant runs replications ``0 .. n-1`` with the same seed. Streams are keyed by component
or workload name and purpose, so replication ``r`` of every variant draws the same requests
(arrival times, keys, work): the variants differ only by what the variant changes. The
difference of a metric between a variant and the baseline is then taken replication by
replication (paired), which removes the noise the variants share.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from simulator.analysis.stability import unstable_in
from simulator.analysis.stats import Interval, paired_interval, paired_table, welch_interval
from simulator.errors import Problem, ScenarioError
from simulator.experiment.options import ExperimentOptions
from simulator.experiment.output import manifest, write_folder
from simulator.experiment.replicate import DEFAULT_METRICS
from simulator.experiment.runs import (
    RunSpec,
    Source,
    check_tables,
    check_warmup,
    concat,
    gather,
    run_all,
    scenario_payload,
)
from simulator.limits import REPLICATIONS, SWEEP_POINTS, check_count
from simulator.scenario import Scenario


@dataclass
class Comparison:
    """Replications of several variants of a scenario, paired by replication.

    Attributes
    ----------
    variants
        The overrides of each variant, by name, in order.
    baseline
        The variant the others are compared with.
    scenarios
        The resolved scenario of each variant.
    runs
        Tidy summaries: ``variant``, ``seed``, ``replication``, ``warmup``, then the summary
        columns; one row per (variant, replication, workload or component).
    confidence
        Confidence level.
    meta
        Manifest of the experiment.
    tables
        Further tables asked for (``tables=`` of :func:`compare`), by name, tagged with
        ``variant``, ``seed``, ``replication`` and ``warmup``.
    """

    variants: dict[str, list[str]]
    baseline: str
    scenarios: dict[str, Scenario]
    runs: pd.DataFrame
    confidence: float = 0.95
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def _rows(self, scope: str, name: str | None) -> pd.DataFrame:
        rows = self.runs[self.runs["scope"] == scope]
        if name is not None:
            rows = rows[rows["name"] == name]
            if rows.empty:
                raise ValueError(f"no {scope} named {name!r} in the results")
        return rows

    @property
    def unstable(self) -> list[str]:
        """Variants that did not reach a steady state in at least one replication (see
        :mod:`simulator.analysis.stability`; the evidence is in ``tables["findings"]``)."""
        bad = unstable_in(self.tables.get("findings"), "variant")
        return [v for v in self.variants if v in bad]

    def table(self, metrics: Sequence[str] = DEFAULT_METRICS, scope: str = "workload",
              name: str | None = None, baseline: str | None = None) -> pd.DataFrame:
        """The ranked table: each variant's interval and its paired difference from the baseline.

        One row per (``name``, ``metric``, ``variant``), best first (``rank`` 1), with ``mean``,
        ``low``, ``high`` and ``diff``, ``diff_low``, ``diff_high`` (variant - baseline, paired
        by replication) and ``significant`` (the difference interval excludes 0). A variant
        that did not reach a steady state (:attr:`unstable`) has ``steady`` False, no rank and
        no significance claim. See :func:`simulator.analysis.stats.paired_table`.
        """
        return paired_table(self._rows(scope, name), "variant", baseline or self.baseline,
                            metrics, by=["scope", "name"], confidence=self.confidence,
                            unstable=self.unstable)

    def _pair(self, metric: str, variant: str, baseline: str | None, scope: str,
              name: str | None) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows(scope, name)
        if name is None:
            rows = rows[rows["name"] == rows["name"].iloc[0]]
        wide = rows.pivot_table(index=["seed", "replication"], columns="variant", values=metric,
                                dropna=False)
        return (wide[variant].to_numpy(dtype=float),
                wide[baseline or self.baseline].to_numpy(dtype=float))

    def difference(self, metric: str, variant: str, baseline: str | None = None,
                   scope: str = "workload", name: str | None = None) -> Interval:
        """Paired interval of ``metric`` of ``variant`` minus the baseline's."""
        a, b = self._pair(metric, variant, baseline, scope, name)
        return paired_interval(a, b, self.confidence)

    def unpaired_difference(self, metric: str, variant: str, baseline: str | None = None,
                            scope: str = "workload", name: str | None = None) -> Interval:
        """Welch interval of the same difference, ignoring the pairing (for comparison)."""
        a, b = self._pair(metric, variant, baseline, scope, name)
        return welch_interval(a, b, self.confidence)

    def write(self, directory: str | Path,
              fmt: Literal["parquet", "csv"] = "parquet") -> Path:
        """Write ``runs``, ``comparison`` (the ranked table), resolved scenarios and manifest."""
        return write_folder(
            directory, {"runs": self.runs, "comparison": self.table(), **self.tables}, self.meta,
            {name: s.model_dump(mode="json", by_alias=True)
             for name, s in self.scenarios.items()}, fmt)


def vary(paths: Mapping[str, Sequence[Any]], force: bool = False) -> dict[str, list[str]]:
    """Variants from values of key paths: the cartesian product, named by the values.

    ``vary({"components.lb.strategy": ["round_robin", "least_connections"]})`` gives
    ``{"round_robin": ["components.lb.strategy=round_robin"], "least_connections": [...]}``;
    with several paths, names join the values with commas (``"round_robin,2"``). A product
    over the ``sweep_points`` limit is refused (``ValueError``) before it is built, unless
    ``force``.
    """
    from simulator.experiment.sweep import override

    check_count(SWEEP_POINTS, "variants of the product (the product of the numbers of "
                "values)", math.prod(len(list(v)) for v in paths.values()), force)
    keys = list(paths)
    out: dict[str, list[str]] = {}
    for combo in itertools.product(*(paths[k] for k in keys)):
        name = ",".join(str(v) for v in combo)
        out[name] = [override(k, v) for k, v in zip(keys, combo, strict=True)]
    return out


def compare(
    scenario: Any,
    variants: Mapping[str, Sequence[str]] | None = None,
    replications: int = 5,
    *,
    baseline: str | None = None,
    seed: int | None = None,
    warmup: float | str | None = None,
    confidence: float = 0.95,
    overrides: Sequence[str] = (),
    options: ExperimentOptions | None = None,
    tables: Sequence[str] = (),
    **settings: Any,
) -> Comparison:
    """Run every variant of a scenario with common random numbers.

    Parameters
    ----------
    scenario
        A path, a validated :class:`~simulator.Scenario`, a dict or a
        :class:`~simulator.experiment.runs.Source`.
    variants
        Overrides by variant name (see :func:`vary`); default: the scenario's ``variants:``.
    replications
        Replications per variant (at least 2 for intervals).
    baseline
        Variant the others are compared with; default the first that reached a steady state
        in every replication (the first variant when none did).
    seed
        Seed of every run; default the scenario's.
    warmup
        ``None`` (the scenario's), seconds or a duration, a number of requests
        (``"5000 requests"``: the first 5000 created are left out), or ``"auto"`` (MSER-5).
    confidence
        Confidence level.
    overrides
        Overrides applied to every variant first.
    options, settings, tables
        As for :func:`~simulator.experiment.replicate`.
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    opts = ExperimentOptions.of(options, settings)
    check_count(REPLICATIONS, "replications asked for", replications, opts.force)
    source = Source.of(scenario, overrides, force=opts.force)
    base = source.resolve()
    chosen = {k: list(v) for k, v in (variants if variants is not None else base.variants).items()}
    check_count(SWEEP_POINTS, "variants to compare", len(chosen), opts.force)
    if not chosen:
        raise ScenarioError(source.name, [Problem(
            "nothing to compare: give variants (--vary key.path=a,b,c) or a variants: block")])
    explicit = baseline is not None
    baseline = next(iter(chosen)) if baseline is None else baseline
    if baseline not in chosen:
        raise ScenarioError(source.name, [Problem(
            f"baseline {baseline!r} is not one of the variants ({', '.join(chosen)})")])
    seed = base.seed if seed is None else seed
    rule = check_warmup(warmup, base)
    wanted = check_tables(tables)
    scenarios: dict[str, Scenario] = {}
    specs: list[RunSpec] = []
    tags: list[dict[str, Any]] = []
    for name, extra in chosen.items():
        resolved, payload = scenario_payload(source, extra)
        check_warmup(rule, resolved)
        scenarios[name] = resolved
        for r in range(replications):
            specs.append(RunSpec(payload, seed, r, rule, wanted))
            tags.append({"variant": name})
    store = opts.run_cache()
    with opts.running() as ex:
        outs, stats = run_all(specs, ex, store, opts.progress, desc=f"{base.name} compare")
        meta = manifest(
            "compare", source=source.name, overrides=list(source.overrides), seed=seed,
            replications=list(range(replications)), variants=chosen, baseline=baseline,
            warmup=rule, confidence=confidence, runs_computed=stats.computed,
            runs_reused=stats.reused, **ex.describe())
    runs = concat([o["summary"] for o in outs], tags)
    result = Comparison(chosen, baseline, scenarios, runs, confidence, meta,
                        gather(outs, tags, wanted))
    steady = [v for v in chosen if v not in result.unstable]
    if not explicit and baseline in result.unstable and steady:
        # differences from a run that never settled mean nothing: measure from a steady one
        result.baseline = steady[0]
        result.meta["baseline"] = steady[0]
        result.meta["baseline_note"] = (f"{baseline} did not reach a steady state; the "
                                        f"baseline is the first steady variant")
    return result
