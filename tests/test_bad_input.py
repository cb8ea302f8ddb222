"""Bad input never produces a traceback.

Every row of ``CASES`` is a broken scenario (or a broken command line). Each must exit with code
2 and print, on stderr, a ``file:line: key.path: message`` line naming the expected line and key
path and containing the expected fragment of the message, with no traceback. File-level problems
(empty, missing, unreadable) have no line; ``--set`` problems have no line either, since they come
from the command line.

Most rows are the tiny valid scenario ``BASE`` with some lines replaced, inserted or deleted, so
the expected line numbers can be read off ``BASE``.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from simulator.cli import main

BASE_LINES = [
    "name: t",                                              # 1
    "duration: 2s",                                         # 2
    "workloads:",                                           # 3
    "  w:",                                                 # 4
    "    arrivals: {process: poisson, rate: 10/s}",         # 5
    "    target: api",                                      # 6
    "components:",                                          # 7
    "  api:",                                               # 8
    "    kind: service",                                    # 9
    "    workers: 2",                                       # 10
    "    service_time: {dist: exponential, mean: 10ms}",    # 11
]
BASE = "\n".join(BASE_LINES) + "\n"


def edit(changes: dict[int, str | None] | None = None, append: str = "") -> str:
    """BASE with line ``n`` replaced by ``changes[n]`` (None deletes it; may hold several lines)."""
    out = []
    for n, line in enumerate(BASE_LINES, start=1):
        new = (changes or {}).get(n, line)
        if new is not None:
            out.append(new)
    return "\n".join(out) + "\n" + append


#: BASE with a load balancer ``lb`` in front of ``api``; ``lb`` is defined on line 12.
def with_lb(lb: str) -> str:
    return edit({6: "    target: lb"}, append=f"  lb: {lb}\n")


#: two regions (``us-east``, ``eu-west``), appended to BASE: ``regions:`` is on line 12 (13 when
#: one line of BASE was replaced by two).
REGIONS = "regions:\n  names: [us-east, eu-west]\n  latency:\n    us-east: {eu-west: 40ms}\n"


def placed(region: str, append: str = REGIONS) -> str:
    """BASE with ``api`` placed at ``region`` (line 11) and the regions block after it."""
    return edit({10: f"    workers: 2\n    region: {region}"}, append=append)


@dataclass(frozen=True)
class Case:
    """One broken input and what the error must say.

    ``text`` is written to ``<tmp>/scenario.yaml`` (bytes as they are; None: no file is
    written). ``args`` is the command line, ``{file}`` and ``{tmp}`` being substituted. ``line``
    and ``path`` are the expected location (None / "" when there is none), ``fragments`` what the
    message must contain.
    """

    id: str
    text: str | bytes | None
    line: int | None
    path: str
    fragments: tuple[str, ...]
    args: tuple[str, ...] = ("run", "{file}")
    file: str = "{tmp}/scenario.yaml"


def case(id: str, text: str | bytes | None, line: int | None, path: str, *fragments: str,
         args: tuple[str, ...] = ("run", "{file}"), file: str = "{tmp}/scenario.yaml") -> Case:
    return Case(id, text, line, path, fragments, args, file)


CASES = [
    # ---- malformed YAML ----------------------------------------------------------------
    case("yaml-syntax-error", "name: t\nduration: [2s\nworkloads: {}\n", 3, "",
         "invalid YAML, column 10", "expected ',' or ']'", "started on line 2"),
    case("tab-indentation", "name: t\nworkloads:\n\tw: 1\n", 3, "",
         "invalid YAML, column 1", "indent with spaces, not tabs"),
    case("duplicate-top-level-key", edit(append="duration: 3s\n"), 12, "duration",
         "duplicate key 'duration' (first defined on line 2)"),
    case("duplicate-nested-key", edit({10: "    workers: 2\n    workers: 3"}), 11,
         "components.api.workers", "duplicate key 'workers' (first defined on line 10)"),
    case("multi-document", edit(append="---\nname: other\n"), 12, "",
         "found a second YAML document"),
    case("python-tag-refused",
         edit({1: "name: !!python/object/apply:os.system ['touch {tmp}/pwned']"}), 1, "",
         "YAML tag '!!python/object/apply:os.system' is not allowed"),
    case("custom-tag-refused", edit({10: "    workers: !int 2"}), 10, "",
         "YAML tag '!int' is not allowed"),
    case("unhashable-key", edit(append="? [a, b]\n: 3\n"), 12, "", "found unhashable key"),
    case("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n"
        for p, n in zip("abcdefg", "bcdefgh", strict=True)), 1, "", "alias bomb"),
    case("nested-too-deeply", "a: " + "[" * 3000 + "]" * 3000 + "\n", None, "",
         "nested too deeply"),
    case("nested-100-levels", "a: " + "[" * 100 + "]" * 100 + "\n", 1, "a" + ".0" * 64,
         "nested more than 64 levels deep"),
    case("control-character", edit({10: "    workers: 2\x07"}), 10, "",
         "invalid YAML: character '\\x07' (U+0007) is not allowed in YAML"),
    case("control-character-in-a-set-value", BASE, None, "name", "value is not valid YAML",
         "(U+0001) is not allowed", args=("run", "{file}", "--set", "name=a\x01b")),
    case("non-utf8-bytes", b"name: caf\xe9\nduration: 2s\n", None, "", "not UTF-8 text"),
    # ---- not a scenario at all -----------------------------------------------------------
    case("empty-file", "", None, "", "the file is empty"),
    case("only-a-comment", "# nothing here yet\n", None, "", "the file is empty"),
    case("top-level-list", "- name: t\n- duration: 2s\n", 1, "",
         "expected a mapping of scenario keys, got list"),
    case("missing-file", None, None, "", "no such file", file="{tmp}/nope.yaml"),
    case("directory-instead-of-file", None, None, "", "is a directory", file="{tmp}"),
    # ---- unknown keys and kinds ----------------------------------------------------------
    case("unknown-top-level-key", edit(append="metrix: {interval: 1s}\n"), 12, "metrix",
         "unknown key 'metrix'; did you mean 'metrics'?", "allowed: components"),
    case("unknown-component-key", edit({10: "    worker: 2"}), 10, "components.api.worker",
         "unknown key 'worker'; did you mean 'workers'?"),
    case("warmup-neither-duration-nor-auto", edit(append="warmup: soon\n"), 12, "warmup",
         "expected a duration", "or auto"),
    case("stale-fallback-not-a-cache",
         edit({6: "    target: {to: api, fallback: {kind: stale, cache: api2}}"},
              append="  api2: {kind: service}\n"),
         6, "workloads.w.target.fallback.cache", "'api2' is not a cache"),
    case("enqueue-fallback-to-a-service",
         edit({6: "    target: {to: api, fallback: {kind: enqueue, queue: api2}}"},
              append="  api2: {kind: service}\n"),
         6, "workloads.w.target.fallback.queue", "'api2' is a service, not a queue or a topic"),
    case("enqueue-fallback-of-a-consumer-call-to-a-service",
         edit({6: "    target: q"},
              append="  q: {kind: queue}\n  c: {kind: consumer, source: q, calls: [{to: api, "
                     "fallback: {kind: enqueue, queue: api}}]}\n"),
         13, "components.c.calls.0.fallback.queue", "'api' is a service, not a queue"),
    case("enqueue-fallback-to-unknown-queue",
         edit({6: "    target: c"},
              append="  c: {kind: cache, capacity: 5, backing: {to: api, fallback: "
                     "{kind: enqueue, queue: qq}}}\n  q: {kind: queue}\n"),
         12, "components.c.backing.fallback.queue", "unknown component 'qq'; did you mean 'q'?"),
    case("stale-fallback-without-cache",
         edit({6: "    target: {to: api, fallback: {kind: stale}}"}),
         6, "workloads.w.target.fallback", "cache is required with kind stale"),
    case("stale-if-error-without-ttl",
         edit({6: "    target: c"},
              append="  c: {kind: cache, backing: api, capacity: 5, stale_if_error: 5s}\n"),
         12, "components.c.stale_if_error", "stale_if_error needs a ttl"),
    case("unknown-call-key", edit({6: "    target: {to: api, opp: read}"}), 6,
         "workloads.w.target.opp", "did you mean 'op'?"),
    case("unknown-distribution-key", edit({11: "    service_time: {dist: exponential, meen: 1s}"}),
         11, "components.api.service_time.meen", "did you mean 'mean'?"),
    case("unknown-kind", edit({9: "    kind: servce"}), 9, "components.api.kind",
         "unknown kind 'servce'; did you mean 'service'?", "load_balancer"),
    case("missing-kind", edit({9: None}), 8, "components.api", "missing required key 'kind'"),
    case("unknown-distribution", edit({11: "    service_time: {dist: exponentail, mean: 1s}"}),
         11, "components.api.service_time.dist", "did you mean 'exponential'?"),
    case("unknown-arrival-process", edit({5: "    arrivals: {process: poison, rate: 10/s}"}), 5,
         "workloads.w.arrivals.process", "unknown process 'poison'; did you mean 'poisson'?"),
    case("unknown-key-popularity",
         edit({6: "    target: api\n    keys: {popularity: zipff, n: 9}"}), 7,
         "workloads.w.keys.popularity", "did you mean 'zipf'?"),
    case("unknown-lb-strategy", with_lb("{kind: load_balancer, strategy: round_robn, "
                                        "backends: [api]}"),
         12, "components.lb.strategy", "got 'round_robn'", "did you mean 'round_robin'?"),
    # ---- wrong types and out-of-range numbers --------------------------------------------
    case("string-for-int", edit({10: "    workers: lots"}), 10, "components.api.workers",
         "valid integer", "got 'lots'"),
    case("fraction-for-int", edit({10: "    workers: 2.5"}), 10, "components.api.workers",
         "fractional part"),
    case("null-for-int", edit({10: "    workers:"}), 10, "components.api.workers",
         "valid integer", "got None"),
    case("component-not-a-mapping", edit({8: "  api: 5", 9: None, 10: None, 11: None}), 8,
         "components.api", "got 5"),
    case("negative-workers", edit({10: "    workers: -1"}), 10, "components.api.workers",
         "greater than or equal to 1", "got -1"),
    case("zero-rate", edit({5: "    arrivals: {process: poisson, rate: 0}"}), 5,
         "workloads.w.arrivals.rate", "greater than 0"),
    case("negative-rate", edit({5: "    arrivals: {process: poisson, rate: -5/s}"}), 5,
         "workloads.w.arrivals.rate", "greater than 0", "-5"),
    case("boolean-rate", edit({5: "    arrivals: {process: poisson, rate: true}"}), 5,
         "workloads.w.arrivals.rate", "expected a rate such as 800/s"),
    case("negative-seed", edit(append="seed: -1\n"), 12, "seed", "greater than or equal to 0"),
    case("bad-name-in-target", edit({6: "    target: 'a pi'"}), 6, "workloads.w.target.to",
         "got 'a pi'"),
    # ---- units ----------------------------------------------------------------------------
    case("rate-unknown-unit", edit({5: "    arrivals: {process: poisson, rate: 5/fortnight}"}), 5,
         "workloads.w.arrivals.rate", "unknown time unit 'fortnight'"),
    case("duration-unknown-unit", edit({2: "duration: 10 parsecs"}), 2, "duration",
         "unknown time unit 'parsecs'", "use one of ns, us, ms, s"),
    case("distribution-unknown-unit",
         edit({11: "    service_time: {dist: exponential, mean: 5 fortnights}"}), 11,
         "components.api.service_time.mean", "unknown time unit 'fortnights'"),
    # ---- inconsistent values --------------------------------------------------------------
    case("warmup-not-shorter-than-duration", edit({2: "duration: 2s\nwarmup: 5s"}), 3, "warmup",
         "warmup (5s) must be shorter than duration (2s)"),
    case("missing-duration", edit({2: None}), 1, "duration", "missing required key 'duration'"),
    case("infinite-duration", edit({2: "duration: .inf"}), 2, "duration",
         "must be a finite duration"),
    case("duration-past-the-largest-float", edit({2: "duration: 1e400"}), 2, "duration",
         "must be a finite duration, got '1e400'"),
    case("duration-past-the-largest-float-reported-with-a-missing-key",
         edit({2: "duration: 1e400", 9: None}), 2, "duration", "must be a finite duration"),
    case("missing-key-reported-with-an-infinite-duration",
         edit({2: "duration: 1e400s", 9: None}), 8, "components.api",
         "missing required key 'kind'"),
    case("drain-nan", edit(append="drain: .nan\n"), 12, "drain", "must be a finite duration"),
    case("warmup-past-the-largest-float", edit(append="warmup: 1e400ms\n"), 12, "warmup",
         "must be a finite duration, got '1e400ms'"),
    case("rate-past-the-largest-float",
         edit({5: "    arrivals: {process: poisson, rate: 1e400/s}"}), 5,
         "workloads.w.arrivals.rate", "must be a finite rate"),
    case("integer-past-the-largest-float", edit({11: "    service_time: 1" + "0" * 400}), 11,
         "components.api.service_time.constant.value",
         "must be a finite duration, got an integer of 1329 bits"),
    case("mix-weight-nan", edit({6: "    target: api\n    mix: {read: .nan, write: 1}"}), 7,
         "workloads.w.mix.read", "input should be a finite number, got nan"),
    case("mix-weight-inf", edit({6: "    target: api\n    mix: {read: .inf, write: 1}"}), 7,
         "workloads.w.mix.read", "input should be a finite number, got inf"),
    case("regions-weight-nan",
         edit({6: "    target: api\n    regions: {us-east: .nan, eu-west: 1}"}, append=REGIONS),
         7, "workloads.w.regions.us-east", "input should be a finite number"),
    case("lognormal-cv-inf",
         edit({11: "    service_time: {dist: lognormal, mean: 1ms, cv: .inf}"}), 11,
         "components.api.service_time.cv", "input should be a finite number, got inf"),
    case("replication-lag-cv-inf",
         edit({6: "    target: db"}, append="  db: {kind: database, replication: {followers: 1, "
              "ordered: true, lag: {dist: lognormal, mean: 1ms, cv: .inf}}}\n"), 12,
         "components.db.replication.lag.cv", "input should be a finite number"),
    case("mix-weights-sum-past-the-largest-float",
         edit({6: "    target: api\n    mix: {read: 1e308, write: 1.7e308}"}), 7,
         "workloads.w.mix", "mix weights sum to inf, past the largest float"),
    case("regions-weights-sum-past-the-largest-float",
         edit({6: "    target: api\n    regions: {us-east: 1.7e308, eu-west: 1.7e308}"},
              append=REGIONS), 7, "workloads.w.regions", "regions weights sum to inf"),
    case("empirical-weights-sum-past-the-largest-float",
         edit({11: "    service_time: {dist: empirical, values: [1ms, 2ms], "
                   "weights: [1e308, 1e308]}"}), 11,
         "components.api.service_time.weights", "weights sum to inf"),
    case("mixture-weights-sum-past-the-largest-float",
         edit({11: "    service_time: {dist: mixture, components: [{weight: 1e308, of: 1ms}, "
                   "{weight: 1e308, of: 2ms}]}"}), 11,
         "components.api.service_time.components", "components' weights sum to inf"),
    case("lb-weights-sum-past-the-largest-float",
         with_lb("{kind: load_balancer, strategy: weighted_random, backends: [api2], "
                 "weights: [1.5e308, 1.5e308]}\n  api2: {kind: service, replicas: 2}"), 12,
         "components.lb.weights", "weights sum to inf"),
    case("lognormal-p99-too-far-above-p50",
         edit({11: "    service_time: {dist: lognormal, p50: 1ms, p99: 1e300s}"}), 11,
         "components.api.service_time.p99", "p99 (1e+300s) is too far above p50 (0.001s)",
         "past the largest float"),
    case("lognormal-cv-whose-square-overflows",
         edit({11: "    service_time: {dist: lognormal, mean: 1ms, cv: 1e300}"}), 11,
         "components.api.service_time.cv", "cv 1e+300 overflows", "cv at most 1.34e+154"),
    case("lognormal-mu-whose-mean-overflows",
         edit({11: "    service_time: {dist: lognormal, mu: 800, sigma: 1}"}), 11,
         "components.api.service_time.mu", "mean exp(mu + sigma²/2) past the largest float"),
    case("gamma-cv-whose-square-overflows",
         edit({11: "    service_time: {dist: gamma, mean: 1ms, cv: 1e200}"}), 11,
         "components.api.service_time.cv", "cv 1e+200 is out of range"),
    case("gamma-cv-whose-square-underflows",
         edit({11: "    service_time: {dist: gamma, mean: 1ms, cv: 1e-200}"}), 11,
         "components.api.service_time.cv", "cv 1e-200 is out of range"),
    case("weibull-shape-whose-mean-overflows",
         edit({11: "    service_time: {dist: weibull, shape: 0.001, scale: 1s}"}), 11,
         "components.api.service_time.shape", "shape 0.001 is too small"),
    case("replication-lag-p99-overflows",
         edit({6: "    target: db"}, append="  db: {kind: database, replication: {followers: 1, "
              "lag: {dist: lognormal, p50: 1ms, p99: 1e200s}}}\n"), 12,
         "components.db.replication.lag.p99", "too far above p50"),
    case("shift-whose-mean-overflows",
         edit({11: "    service_time: {dist: constant, value: 1.7e308, shift: 1.7e308}"}), 11,
         "components.api.service_time", "parameters of this constant distribution overflow"),
    case("lognormal-mean-without-cv",
         edit({11: "    service_time: {dist: lognormal, mean: 10ms}"}), 11,
         "components.api.service_time", "give exactly one of: mean and cv"),
    case("uniform-high-below-low",
         edit({11: "    service_time: {dist: uniform, low: 2s, high: 1s}"}), 11,
         "components.api.service_time.high", "high must be greater than low"),
    case("empirical-weights-count",
         edit({11: "    service_time: {dist: empirical, values: [1ms, 2ms], weights: [1]}"}), 11,
         "components.api.service_time.weights", "as many entries as values"),
    case("speed-list-length-not-replicas",
         edit({10: "    workers: 2\n    replicas: 3\n    speed: [1, 2]"}), 12,
         "components.api.speed", "speed lists 2 values but replicas is 3"),
    case("lb-weights-count-mismatch",
         with_lb("{kind: load_balancer, strategy: weighted_random, backends: [api], "
                 "weights: [1, 2]}"),
         12, "components.lb.weights", "one weight per backend instance (1), got 2"),
    case("lb-health-check-interval-below-a-millisecond",
         with_lb("{kind: load_balancer, backends: [api], health_check: {interval: 1ns}}"), 12,
         "components.lb.health_check.interval", "greater than or equal to 0.001", "1e-09"),
    case("lb-no-backends", with_lb("{kind: load_balancer, backends: []}"), 12,
         "components.lb.backends", "at least 1 item"),
    case("mix-all-zero-weights", edit({6: "    target: api\n    mix: {read: 0, write: 0}"}), 7,
         "workloads.w.mix", "not all zero"),
    case("schedule-not-starting-at-zero",
         edit({5: "    arrivals: {process: schedule, steps: [{at: 1s, rate: 5}]}"}), 5,
         "workloads.w.arrivals", "the first step must be at 0s"),
    case("cdn-default-edge-not-an-edge",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east, eu-west], "
              "origin: api, ttl: 60s, default_edge: ap-south}\n"), 12,
         "components.cdn.default_edge", "'ap-south' is not one of the edges (us-east, eu-west)"),
    case("cdn-replicas-not-its-edges",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east, eu-west], "
              "origin: api, ttl: 60s, replicas: 3}\n"), 12,
         "components.cdn.replicas", "one instance per edge (2 edges)"),
    case("cdn-asset-classes-overlap",
         edit({6: "    target: cdn"}, append="  cdn:\n    kind: cdn\n    edges: [us-east]\n"
              "    origin: api\n    ttl: 1h\n    assets:\n"
              "      - {name: html, keys: [0, 99], ttl: 60s}\n"
              "      - {name: js, keys: [50, 199], ttl: 1d}\n"), 17,
         "components.cdn.assets", "classes 'html' [0, 99] and 'js' [50, 199] overlap"),
    case("cdn-without-regions",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east], origin: api, "
              "ttl: 60s}\n"), 12, "components.cdn.edges.0.region",
         "region 'us-east' given but the scenario has no regions block"),
    case("cdn-origin-latency",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east], origin: api, "
              "ttl: 60s, origin_latency: 80ms}\n" + REGIONS), 12, "components.cdn",
         "the edge-to-origin latency is the link between the edge's region and the origin's"),
    # ---- settings the chosen mode ignores ---------------------------------------------------
    case("retry-multiplier-with-constant-backoff",
         edit({6: "    target: {to: api, retry: {backoff: constant, multiplier: 3}}"}), 6,
         "workloads.w.target.retry.multiplier", "ignored by backoff constant",
         "applies to backoff exponential"),
    case("retry-jitter-with-decorrelated-backoff",
         edit({6: "    target: {to: api, retry: {backoff: decorrelated, jitter: equal}}"}), 6,
         "workloads.w.target.retry.jitter", "ignored by backoff decorrelated"),
    case("rate-limit-burst-with-fixed-window",
         edit({6: "    target: {to: api, rate_limit: {algorithm: fixed_window, limit: 5, "
                  "window: 1s, burst: 3}}"}), 6,
         "workloads.w.target.rate_limit.burst", "ignored by algorithm fixed_window",
         "applies to token_bucket"),
    case("rate-limit-capacity-with-token-bucket",
         edit({6: "    target: {to: api, rate_limit: {rate: 5, capacity: 3}}"}), 6,
         "workloads.w.target.rate_limit.capacity", "ignored by algorithm token_bucket"),
    case("rate-limit-max-wait-with-token-bucket",
         edit({6: "    target: {to: api, rate_limit: {rate: 5, max_wait: 1s}}"}), 6,
         "workloads.w.target.rate_limit.max_wait", "ignored by algorithm token_bucket"),
    case("rate-limit-rate-with-sliding-window",
         edit({6: "    target: {to: api, rate_limit: {algorithm: sliding_window_log, "
                  "limit: 5, window: 1s, rate: 5}}"}), 6,
         "workloads.w.target.rate_limit.rate", "ignored by algorithm sliding_window_log"),
    case("rate-limit-limit-with-leaky-bucket",
         edit({6: "    target: {to: api, rate_limit: {algorithm: leaky_bucket, rate: 5, "
                  "capacity: 2, limit: 5}}"}), 6,
         "workloads.w.target.rate_limit.limit", "ignored by algorithm leaky_bucket"),
    case("rate-limit-window-with-token-bucket",
         edit({6: "    target: {to: api, rate_limit: {rate: 5, window: 1s}}"}), 6,
         "workloads.w.target.rate_limit.window", "ignored by algorithm token_bucket"),
    case("rate-limit-window-without-limit",
         edit({6: "    target: {to: api, rate_limit: {algorithm: fixed_window, window: 1s}}"}),
         6, "workloads.w.target.rate_limit", "limit is required with algorithm fixed_window"),
    case("rate-limit-sync-interval-with-instance-scope",
         edit({6: "    target: {to: api, rate_limit: {rate: 5, sync_interval: 100ms}}"}), 6,
         "workloads.w.target.rate_limit.sync_interval", "ignored with scope instance"),
    case("hedge-min-samples-with-a-fixed-delay",
         edit({6: "    target: {to: api, hedge: {delay: 5ms, min_samples: 10}}"}), 6,
         "workloads.w.target.hedge.min_samples", "ignored with a fixed delay"),
    case("cache-ttl-mode-without-ttl",
         edit({6: "    target: c"}, append="  c: {kind: cache, backing: api, capacity: 5, "
              "ttl_mode: after_access}\n"), 12, "components.c.ttl_mode", "without a ttl"),
    case("cdn-policy-without-capacity",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east], origin: api, "
              "ttl: 60s, policy: lfu}\n" + REGIONS), 12, "components.cdn.policy",
         "ignored without a capacity"),
    case("cdn-stale-if-error-without-ttl",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east], origin: api, "
              "capacity: 10, stale_if_error: 60s}\n" + REGIONS), 12,
         "components.cdn.stale_if_error", "needs a ttl or assets"),
    case("db-vnodes-with-mod-sharding",
         edit({6: "    target: db"}, append="  db: {kind: database, shards: {count: 2, "
              "scheme: mod, vnodes: 10}}\n"), 12, "components.db.shards.vnodes",
         "ignored by scheme mod"),
    case("consumer-visibility-timeout-with-ack-on-receive",
         edit({6: "    target: q"}, append="  q: {kind: queue}\n  c: {kind: consumer, "
              "source: q, ack: on_receive, visibility_timeout: 5s}\n"), 13,
         "components.c.visibility_timeout", "ignored with ack on_receive"),
    case("consumer-backoff-multiplier-with-constant-backoff",
         edit({6: "    target: q"}, append="  q: {kind: queue}\n  c: {kind: consumer, "
              "source: q, backoff: {type: constant, multiplier: 3}}\n"), 13,
         "components.c.backoff.multiplier", "ignored by type constant"),
    case("consumer-compensation-without-calls",
         edit({6: "    target: q"}, append="  q: {kind: queue}\n  c: {kind: consumer, "
              "source: q, on_failure: [api]}\n"), 13,
         "components.c.on_failure", "makes no calls"),
    case("lb-panic-threshold-without-health-checks",
         with_lb("{kind: load_balancer, backends: [api], healthy_panic_threshold: 10}"), 12,
         "components.lb.healthy_panic_threshold", "without health_check or outlier_detection"),
    case("service-hold-worker-without-calls", edit({10: "    workers: 2\n    hold_worker: false"}),
         11, "components.api.hold_worker", "ignored by a service without calls"),
    case("service-compensation-for-an-operation-without-calls",
         edit(append="    calls: {read: [db]}\n    on_failure: {write: [db]}\n"
                     "  db: {kind: service}\n"), 13,
         "components.api.on_failure", "operation 'write' makes no calls"),
    case("internals-replaces-workers",
         edit({11: "    internals: {steps: {'*': [{cpu: 1ms}]}}"}), 10,
         "components.api.workers", "ignored by internals"),
    case("internals-threads-with-event-loop",
         edit({10: None, 11: "    internals:\n      threading: event_loop\n      threads: 4\n"
                             "      steps: {'*': [{cpu: 1ms}]}"}), 12,
         "components.api.internals.threads", "ignored by threading: event_loop"),
    case("internals-event-loop-has-no-queue",
         edit({10: "    queue_limit: 5", 11: "    internals: {threading: event_loop, "
                                             "steps: {'*': [{cpu: 1ms}]}}"}), 10,
         "components.api.queue_limit", "nothing waits for a thread"),
    case("internals-gc-needs-a-trigger",
         edit({10: None, 11: "    internals: {gc: {pause: 5ms}, steps: {'*': [{cpu: 1ms}]}}"}),
         10, "components.api.internals.gc", "exactly one of every"),
    case("internals-memory-size-unit",
         edit({10: None, 11: "    internals:\n      memory: {limit: 2 apples}\n"
                             "      steps: {'*': [{cpu: 1ms}]}"}), 11,
         "components.api.internals.memory.limit", "must be a size in bytes"),
    case("internals-slowdown-with-refuse",
         edit({10: None, 11: "    internals:\n      memory: {limit: 1GB, slowdown: 3}\n"
                             "      steps: {'*': [{cpu: 1ms}]}"}), 11,
         "components.api.internals.memory.slowdown", "ignored by on_limit: refuse"),
    # ---- references -----------------------------------------------------------------------
    case("missing-target", edit({6: None}), 4, "workloads.w.target",
         "missing required key 'target'"),
    case("target-unknown-component", edit({6: "    target: apii"}), 6, "workloads.w.target",
         "unknown component 'apii'; did you mean 'api'?"),
    case("lb-backend-unknown", with_lb("{kind: load_balancer, backends: [apx]}"), 12,
         "components.lb.backends.0", "unknown component 'apx'; did you mean 'api'?"),
    case("cdn-origin-unknown",
         edit({6: "    target: cdn"}, append="  cdn: {kind: cdn, edges: [us-east], origin: apx, "
              "ttl: 60s}\n"), 12, "components.cdn.origin",
         "unknown component 'apx'; did you mean 'api'?"),
    case("call-to-unknown-component",
         edit(append="    calls: {read: [dbb]}\n  db: {kind: service}\n"), 12,
         "components.api.calls.read.0", "unknown component 'dbb'; did you mean 'db'?"),
    case("reference-cycle",
         edit(append="    calls: {read: [b]}\n  b: {kind: service, calls: {read: [api]}}\n"), 13,
         "components.b.calls.read.0", "reference cycle: api -> b -> api"),
    case("self-reference", edit(append="    calls: {read: [{parallel: [api]}]}\n"), 12,
         "components.api.calls.read.0.parallel.0", "component 'api' refers to itself"),
    case("strategy-needs-what-backend-lacks",
         with_lb("{kind: load_balancer, strategy: join_shortest_queue, backends: [lb2]}\n"
                 "  lb2: {kind: load_balancer, backends: [api]}"), 12, "components.lb",
         "join_shortest_queue needs backends that report in_system"),
    # ---- regions ---------------------------------------------------------------------------
    case("region-unknown-did-you-mean", placed("eu-wset"), 11, "components.api.region",
         "unknown region 'eu-wset'; did you mean 'eu-west'?"),
    case("region-without-regions-block", placed("us-east", append=""), 11,
         "components.api.region", "the scenario has no regions block"),
    case("region-list-per-replica-length", placed("[us-east, eu-west]"), 11,
         "components.api.region", "lists 2 region(s) but there are 1 instances"),
    case("region-missing-link",
         edit(append="regions:\n  names: [us-east, eu-west, ap-south]\n  latency:\n"
                     "    us-east: {eu-west: 40ms, ap-south: 90ms}\n"), 14, "regions.latency",
         "no latency between 'eu-west' and 'ap-south'"),
    case("region-unknown-in-latency",
         edit(append="regions:\n  names: [us-east, eu-west]\n  latency:\n"
                     "    us-east: {eu-wst: 40ms}\n"), 15, "regions.latency.us-east.eu-wst",
         "unknown region 'eu-wst'; did you mean 'eu-west'?"),
    case("region-unknown-in-client-spread",
         edit({6: "    target: api\n    regions: {us-east: 1, ap-south: 1}"}, append=REGIONS), 7,
         "workloads.w.regions.ap-south", "unknown region 'ap-south'",
         "(regions: us-east, eu-west)"),
    case("region-outage-of-unknown-region",
         placed("us-east", append=REGIONS + "faults:\n  - {kind: region_outage, at: 1s, "
                                           "region: us-west}\n"), 18, "faults.0.region",
         "unknown region 'us-west'; did you mean 'us-east'?"),
    case("region-spread-of-a-kind-that-cannot-route-by-region",
         edit({6: "    target: c"}, append="  c: {kind: cache, capacity: 10, backing: api, "
                                            "replicas: 2, region: [us-east, eu-west]}\n"
                                            + REGIONS), 12,
         "components.c.region", "a cache cannot spread its instances over regions"),
    case("geo-backend-not-placed",
         edit({6: "    target: lb"}, append="  lb: {kind: load_balancer, strategy: geo, "
                                             "backends: [api]}\n" + REGIONS), 12,
         "components.lb.backends.0", "strategy geo needs every backend placed in a region"),
    # ---- runs that would never end --------------------------------------------------------
    case("rate-too-high-to-ever-finish",
         edit({2: "duration: 1000s", 5: "    arrivals: {process: poisson, rate: 1e12/s}"}), 3,
         "workloads", "about 1e+15 requests"),
    case("sampling-interval-too-small", edit(append="metrics: {interval: 1ns}\n"), 12,
         "metrics.interval", "about 2e+09 samples"),
    case("on-off-periods-of-zero-length",
         edit({5: "    arrivals: {process: on_off, rate: 10, on: 0s, off: 0s}"}), 5,
         "workloads.w.arrivals", "time would never advance"),
    # ---- --set overrides ------------------------------------------------------------------
    case("set-without-equals", BASE, None, "--set", "bad --set 'duration'",
         "expected key.path=value", args=("run", "{file}", "--set", "duration")),
    case("set-unknown-path-did-you-mean", BASE, None, "component.api.workers",
         "no key 'component' in the scenario; did you mean 'components'?",
         args=("run", "{file}", "--set", "component.api.workers=3")),
    case("set-unknown-section-did-you-mean", BASE, None, "metrix.interval",
         "did you mean 'metrics'?", args=("run", "{file}", "--set", "metrix.interval=2s")),
    case("set-unknown-leaf-key", BASE, None, "components.api.wrkers",
         "did you mean 'workers'?", "(from --set)",
         args=("run", "{file}", "--set", "components.api.wrkers=3")),
    case("set-invalid-value-type", BASE, None, "components.api.workers",
         "valid integer", "got 'many'", "(from --set)",
         args=("run", "{file}", "--set", "components.api.workers=many")),
    case("set-value-not-yaml", BASE, None, "components.api.workers",
         "value is not valid YAML",
         args=("run", "{file}", "--set", "components.api.workers=[1")),
    case("set-inside-a-value", BASE, None, "duration.x", "'duration' is a value, not a mapping",
         args=("run", "{file}", "--set", "duration.x=1")),
    case("set-list-index-out-of-range", with_lb("{kind: load_balancer, backends: [api]}"), None,
         "components.lb.backends.3", "is a list of 1 item(s)",
         args=("run", "{file}", "--set", "components.lb.backends.3=api")),
    case("set-on-validate", BASE, None, "components.api.workers", "greater than or equal to 1",
         args=("validate", "{file}", "--set", "components.api.workers=0")),
    # ---- event sourcing and CQRS ----------------------------------------------------------
    case("read-model-store-not-an-event-store",
         edit({6: "    target: view"}, append="  view: {kind: read_model, store: api}\n"), 12,
         "components.view.store", "must be an event_store; 'api' is a service"),
    case("read-model-unknown-store",
         edit({6: "    target: view"},
              append="  orders: {kind: event_store}\n  view: {kind: read_model, store: ordrs}\n"),
         13, "components.view.store", "unknown component 'ordrs'; did you mean 'orders'?"),
    case("event-store-replicated",
         edit(append="  orders: {kind: event_store, replicas: 2}\n"), 12,
         "components.orders.replicas", "replicas must be 1: an event store is one logical log"),
    case("snapshot-time-without-snapshots",
         edit(append="  orders: {kind: event_store, snapshot_time: 5ms}\n"), 12,
         "components.orders.snapshot_time", "snapshot_time needs snapshot_every"),
    case("rebuild-a-service",
         edit(append="faults:\n  - {at: 1s, kind: rebuild, target: api}\n"), 13,
         "faults.0.kind", "a service does not support rebuild faults"),
    case("rebuild-with-a-duration",
         edit({6: "    target: view"},
              append="  orders: {kind: event_store}\n  view: {kind: read_model, store: orders}\n"
                     "faults:\n  - {at: 1s, duration: 2s, kind: rebuild, target: view}\n"), 15,
         "faults.0.duration", "unknown key 'duration'"),
    case("crash-node-of-a-service",
         edit(append="faults:\n  - {at: 1s, kind: crash, target: api, node: leader}\n"), 13,
         "faults.0.node", "a service has no nodes"),
    case("crash-node-unknown-follower",
         edit({6: "    target: db"},
              append="  db: {kind: database, replication: {followers: 2}}\n"
                     "faults:\n  - {at: 1s, kind: crash, target: db, node: follower3}\n"), 14,
         "faults.0.node", "unknown node 'follower3'", "leader, follower1, follower2"),
    case("failover-without-followers",
         edit({6: "    target: db"},
              append="  db:\n    kind: database\n    replication:\n      followers: 0\n"
                     "      failover: {detection: 5s}\n"), 16,
         "components.db.replication.failover", "failover needs at least one follower"),
    # ---- streaming request metrics -------------------------------------------------------
    case("streaming-with-spans", edit(append="metrics: {requests: streaming, spans: true}\n"),
         12, "metrics.spans", "per-hop rows grow with the run"),
    case("streaming-with-auto-warmup",
         edit(append="warmup: auto\nmetrics: {requests: streaming}\n"), 12, "warmup",
         "warmup: auto (MSER-5) needs the requests table"),
    case("streaming-unknown-mode", edit(append="metrics: {requests: sketch}\n"), 12,
         "metrics.requests", "streaming"),
    # ---- service admission -----------------------------------------------------------------
    case("admission-initial-below-min-limit",
         edit({10: "    workers: 2\n    admission:\n      policy: aimd\n      initial_limit: 2\n"
                   "      min_limit: 5"}), 13, "components.api.admission.initial_limit",
         "initial_limit (2) must be between the lowest limit (5) and max_limit (200)"),
    case("admission-window-without-utilization",
         edit({10: "    workers: 2\n    admission:\n      policy: shed\n"
                   "      max_queue_time: 50ms\n      window: 2s"}), 14,
         "components.api.admission.window", "window is ignored without max_utilization"),
    case("admission-increasing-class-thresholds",
         edit({10: "    workers: 2\n    admission: {policy: shed, max_utilization: [0.8, 0.9]}"}),
         11, "components.api.admission.max_utilization", "must not increase",
         "less important classes are shed first"),
    case("admission-unknown-policy",
         edit({10: "    workers: 2\n    admission: {policy: token_bucket}"}), 11,
         "components.api.admission.policy", "unknown policy 'token_bucket'", "aimd", "vegas"),
]


def test_the_table_is_big_and_distinct() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.text, c.args, c.file) for c in CASES}) == len(CASES)


def _prepare(c: Case, tmp_path: Path) -> tuple[list[str], str]:
    file = c.file.format(tmp=tmp_path)
    if isinstance(c.text, bytes):
        Path(file).write_bytes(c.text)
    elif c.text is not None:
        Path(file).write_text(c.text.replace("{tmp}", str(tmp_path)), encoding="utf-8")
    return [a.format(file=file, tmp=tmp_path) for a in c.args], file


def _expected_prefix(c: Case, file: str) -> str:
    where = file if c.line is None else f"{file}:{c.line}"
    return f"{where}: {c.path}: " if c.path else f"{where}: "


def _check(c: Case, file: str, code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    prefix = _expected_prefix(c, file)
    matching = [ln for ln in lines if ln.startswith(prefix)]
    assert matching, f"no line starts with {prefix!r}:\n{err}"
    assert any(all(f in ln for f in c.fragments) for ln in matching), (
        f"no line starting with {prefix!r} contains {c.fragments}:\n{err}")


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_bad_input_gives_exit_code_2_and_a_located_message(
    c: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, file = _prepare(c, tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    _check(c, file, code, err)
    assert out == ""  # a failed run prints no summary
    assert not (tmp_path / "pwned").exists()  # no YAML tag ever runs code


SUBPROCESS_CASES = [c for c in CASES if c.id in (
    "yaml-syntax-error", "python-tag-refused", "unknown-component-key", "set-without-equals",
    "missing-file", "rate-too-high-to-ever-finish")]


@pytest.mark.parametrize("c", SUBPROCESS_CASES, ids=lambda c: c.id)
def test_bad_input_in_a_real_process(c: Case, tmp_path: Path) -> None:
    argv, file = _prepare(c, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "simulator", *argv], capture_output=True,
                          text=True, timeout=120)
    _check(c, file, proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert not (tmp_path / "pwned").exists()


# ---- command-line problems that are not about a scenario's content ------------------------

CLI_CASES = [
    ("negative-seed", ("run", "{file}", "--seed", "-1"), "--seed must be between 0 and"),
    ("huge-seed", ("run", "{file}", "--seed", str(2**70)), "--seed must be between 0 and"),
    ("plots-without-out", ("run", "{file}", "--plots"), "--plots needs --out"),
    ("out-is-a-file", ("run", "{file}", "--out", "{file}"), "exists and is not a directory"),
    ("out-is-a-foreign-directory", ("run", "{file}", "--out", "{tmp}/precious"),
     "refusing to replace it"),
    ("unknown-format", ("run", "{file}", "--format", "xlsx"), "invalid choice: 'xlsx'"),
    ("unknown-command", ("frobnicate",), "invalid choice: 'frobnicate'"),
    ("no-command", (), "the following arguments are required"),
]


@pytest.mark.parametrize(("args", "fragment"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_bad_command_lines(args: tuple[str, ...], fragment: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "scenario.yaml"
    file.write_text(BASE)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    argv = [a.format(file=file, tmp=tmp_path) for a in args]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert fragment in err
    assert file.read_text() == BASE  # nothing was overwritten
    assert (precious / "notes.txt").read_text() == "keep me"


def _models(tp: Any, seen: set[type]) -> None:
    """Every pydantic model reachable from the annotation ``tp``, into ``seen``."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return
        seen.add(tp)
        for f in tp.model_fields.values():
            _models(f.annotation, seen)
    for arg in typing.get_args(tp):
        _models(arg, seen)


def test_no_model_of_the_format_accepts_infinity_or_nan() -> None:
    """No float of the format has a stated meaning for infinity (an absent key is what means
    unbounded), so every model reachable from the scenario refuses inf and NaN: a new model
    that forgets ``allow_inf_nan=False`` fails here."""
    from simulator.scenario import scenario_model

    seen: set[type] = set()
    _models(scenario_model(), seen)
    assert len(seen) > 30
    lax = sorted(m.__name__ for m in seen if m.model_config.get("allow_inf_nan") is not False)
    assert lax == []


# ---- validate -----------------------------------------------------------------------------

def test_validate_reports_every_bad_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    workers = tmp_path / "workers.yaml"
    workers.write_text(edit({10: "    workers: 0"}))
    kind = tmp_path / "kind.yaml"
    kind.write_text(edit({9: "    kind: servise"}))
    missing = tmp_path / "missing.yaml"
    code = main(["validate", str(good), str(workers), str(missing), str(kind)])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"{good}: ok" in out
    assert f"{workers}:10: components.api.workers: " in err
    assert f"{missing}: no such file" in err
    assert f"{kind}:9: components.api.kind: unknown kind 'servise'; did you mean 'service'?" in err
    assert "Traceback" not in err


def test_validate_all_good_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for i in range(2):
        f = tmp_path / f"s{i}.yaml"
        f.write_text(BASE)
        files.append(str(f))
    assert main(["validate", *files]) == 0
    out, err = capsys.readouterr()
    assert out.count(": ok") == 2 and err == ""


# ---- YAML that must keep its meaning ------------------------------------------------------

def test_on_and_off_are_keys_not_booleans(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """YAML 1.1 reads ``on:``/``off:`` as True/False; scenarios use YAML 1.2 booleans."""
    f = tmp_path / "s.yaml"
    f.write_text(edit({5: "    arrivals: {process: on_off, rate: 10, on: 1s, off: 1s}"}))
    assert main(["validate", str(f)]) == 0, capsys.readouterr().err


def test_yes_and_no_still_work_for_booleans(tmp_path: Path) -> None:
    from simulator.scenario import load_scenario

    f = tmp_path / "s.yaml"
    f.write_text(edit({10: "    workers: 2\n    hold_worker: no"},
                      append="    calls: {read: [db]}\n  db: {kind: service}\n"))
    assert load_scenario(f).components["api"].hold_worker is False  # type: ignore[attr-defined]


def test_merge_keys_are_located_and_not_duplicates(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(edit(append="  api2:\n    <<: {kind: service, workers: -3}\n    replicas: 2\n"))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:13: components.api2.workers: input should be greater than or equal to 1" in err


def test_a_huge_breaker_window_is_refused(tmp_path: Path) -> None:
    """A count-based window is a deque of that many calls: 2**64 overflowed at build time (a
    fuzzer's find); the model bounds it."""
    from simulator.policies import BreakerPolicy

    with pytest.raises(ValueError, match="less than or equal to 10000000"):
        BreakerPolicy(sliding_window_size=2**64)


def test_a_consumer_publishing_to_its_own_source_is_refused(tmp_path: Path) -> None:
    """Every message taken would publish another, without end (a fuzzer's hang); a
    probabilistic publish back is a bounded feedback and stays allowed."""
    import simulator

    spec = {"name": "loop", "duration": "2s",
            "workloads": {"w": {"arrivals": {"process": "poisson", "rate": "10/s"},
                                "target": "q"}},
            "components": {"q": {"kind": "queue"},
                           "c": {"kind": "consumer", "source": "q", "service_time": "1ms",
                                 "calls": ["q"]}}}
    with pytest.raises(simulator.ScenarioError, match="publishes to its own source 'q'"):
        simulator.parse_scenario(spec)
    spec["components"]["c"]["calls"] = [{"call": "q", "probability": 0.5}]
    simulator.parse_scenario(spec)
