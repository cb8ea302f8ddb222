"""The parameter audit: every setting of every kind, and of every call policy, is accounted for.

The fields are enumerated from the registry (each built-in kind's parameter model, nested
models included; the settings every kind shares once, as ``component.*``; the call policies
once, as ``call.*``). Each must be in at least one of:

``OBSERVED``
    A short run (about 300 requests) in which changing it, and only it, changes the run's raw
    tables: ``field: (base, context, change)`` compares ``base`` + ``context`` with
    ``base`` + ``context`` + ``change`` (overrides by key path, as ``--set`` gives them).
``REFUSED``
    Contexts in which the setting has no effect, each a case of ``tests/test_bad_input.py``
    that must exit 2 with a located error (run here again).
``COVERED``
    Settings whose effect needs more than a short run of a small scenario (regions, a
    failover, a rebuild...): the test that shows it, checked to exist.

A new parameter fails :func:`test_every_parameter_is_audited` until it is added to one of them.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

import simulator
from simulator import registry
from simulator.calls import (
    CallSpec,
    ChoiceBranch,
    ChoiceSpec,
    MaybeSpec,
    ParallelSpec,
    ReenterSpec,
)
from simulator.cli import main
from simulator.components.params import ComponentParams
from simulator.distributions import _Dist
from tests.test_bad_input import CASES, _check, _prepare

TESTS = Path(__file__).parent
#: step models: settings themselves where they appear (their fields are audited as ``step.*``)
STEPS = ParallelSpec | MaybeSpec | ChoiceSpec | ReenterSpec


# ---- enumeration ----------------------------------------------------------------------------

def _models_in(tp: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []

    def walk(t: Any) -> None:
        if typing.get_origin(t) is Annotated:
            walk(typing.get_args(t)[0])
        elif isinstance(t, type) and issubclass(t, BaseModel):
            found.append(t)
        else:
            for a in typing.get_args(t):
                walk(a)

    walk(tp)
    return found


def _leaves(model: type[BaseModel], prefix: str, skip: frozenset[str] = frozenset()
            ) -> set[str]:
    """Dotted names of the settings of ``model``; distributions and calls are settings
    themselves (their own fields are audited once, as ``call.*``)."""
    out: set[str] = set()
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        nested = [m for m in _models_in(f.annotation)
                  if not issubclass(m, _Dist | CallSpec | STEPS)]
        if nested:
            for m in nested:
                out |= _leaves(m, f"{prefix}.{name}")
        else:
            out.add(f"{prefix}.{name}")
    return out


def enumerate_parameters() -> set[str]:
    """Every setting of every built-in kind, the shared ones and the call policies."""
    fields = _leaves(ComponentParams, "component")
    fields |= _leaves(CallSpec, "call")
    for prefix, model in (("step.maybe", MaybeSpec), ("step.choice", ChoiceBranch),
                          ("step.reenter", ReenterSpec)):
        fields |= _leaves(model, prefix)
    shared = frozenset(ComponentParams.model_fields)
    for name, kind in registry.kinds().items():
        if kind.params.__module__.startswith("simulator.components."):
            fields |= _leaves(kind.params, name, shared)
    return fields


# ---- short runs -----------------------------------------------------------------------------

EXP = "exponential"
POLICY = "components.api.calls.*.0."  # the api's call to db, in the "svc" base

BASES: dict[str, dict[str, Any]] = {
    "svc": {
        "duration": 3, "workloads": {"w": {
            "arrivals": {"process": "poisson", "rate": 100}, "target": "api",
            "mix": {"read": 0.7, "write": 0.3}, "keys": {"popularity": "zipf", "n": 50, "s": 1.0}}},
        "components": {
            "api": {"kind": "service", "workers": 2, "service_time": {"dist": EXP, "mean": 0.005},
                    "calls": {"*": [{"to": "db"}]}},
            "db": {"kind": "service", "workers": 2, "service_time": {"dist": EXP, "mean": 0.005},
                   "service_time_by_op": {"write": {"dist": EXP, "mean": 0.008}}},
            "db2": {"kind": "service", "service_time": 0.002},
            "q": {"kind": "queue"}},
        "faults": [{"at": 0, "kind": "error", "target": "db", "probability": 0.1}]},
    "lb": {
        "duration": 3, "workloads": {"w": {
            "arrivals": {"process": "poisson", "rate": 150}, "target": "lb",
            "keys": {"popularity": "zipf", "n": 50, "s": 1.0}}},
        "components": {
            "lb": {"kind": "load_balancer", "backends": ["api"]},
            "api": {"kind": "service", "replicas": 3,
                    "service_time": {"dist": EXP, "mean": 0.01}},
            "api2": {"kind": "service", "service_time": {"dist": EXP, "mean": 0.01}}}},
    "cache": {
        "duration": 3, "workloads": {"w": {
            "arrivals": {"process": "poisson", "rate": 100}, "target": "c",
            "mix": {"read": 0.8, "write": 0.2},
            "keys": {"popularity": "zipf", "n": 100, "s": 1.0}}},
        "components": {
            "c": {"kind": "cache", "backing": "db", "capacity": 10},
            "db": {"kind": "service", "workers": 4, "service_time": {"dist": EXP, "mean": 0.005}},
            "db2": {"kind": "service", "workers": 4, "service_time": 0.001}}},
    "queue": {
        "duration": 3, "workloads": {"w": {
            "arrivals": {"process": "poisson", "rate": 100}, "target": "q"}},
        "components": {
            "q": {"kind": "queue"}, "q2": {"kind": "queue"}, "dlq": {"kind": "queue"},
            "c": {"kind": "consumer", "source": "q", "concurrency": 2,
                  "service_time": {"dist": EXP, "mean": 0.005}, "calls": ["api"]},
            "api": {"kind": "service", "workers": 4, "service_time": 0.001},
            "api2": {"kind": "service", "workers": 4, "service_time": 0.001}},
        "faults": [{"at": 0, "kind": "error", "target": "api", "probability": 0.3}]},
    "topic": {
        "duration": 3, "workloads": {"w": {
            "arrivals": {"process": "poisson", "rate": 100}, "target": "t"}},
        "components": {
            "t": {"kind": "topic", "subscriptions": ["a", "b"]},
            "ca": {"kind": "consumer", "source": "t.a",
                   "service_time": {"dist": EXP, "mean": 0.009}},
            "cb": {"kind": "consumer", "source": "t.b", "service_time": 0.001}}},
    "db": {
        "duration": 3, "workloads": {"w": {
            "arrivals": {"process": "poisson", "rate": 150}, "target": "db",
            "mix": {"read": 0.7, "write": 0.3},
            "keys": {"popularity": "zipf", "n": 100, "s": 1.0}}},
        "components": {
            "db": {"kind": "database", "pool": {"size": 2},
                   "service_time": {"dist": EXP, "mean": 0.005}}}},
}

REP = "components.db.replication."
SHARDS = "components.db.shards."
CON = "components.c."
HC = {"components.lb.health_check": {"interval": 0.2},
      "faults": [{"at": 0.5, "kind": "crash", "target": "api[0]", "duration": 1.5}]}
OD = {"components.lb.outlier_detection": {"consecutive_errors": 3},
      "faults": [{"at": 0, "kind": "error", "target": "api[0]", "probability": 0.6},
                 {"at": 0, "kind": "error", "target": "api[1]", "probability": 0.6}]}
TRIP = {POLICY + "breaker": {"minimum_number_of_calls": 10, "sliding_window_size": 20,
                             "wait_duration_in_open_state": 0.2},
        "faults": [{"at": 0, "kind": "error", "target": "db", "probability": 0.6}]}
BR = POLICY + "breaker."
SLOW = {**TRIP, "faults": [], BR + "slow_call_duration_threshold": 0.01}
RETRY = {POLICY + "retry": {"attempts": 3}}
BUDGET = {POLICY + "retry": {"attempts": 3, "budget": {"ratio": 0.01,
                                                       "min_retries_per_second": 1}}}
HEDGE = {POLICY + "hedge": {"delay": 0.005}}
PCT = {POLICY + "hedge": {"percentile": 90, "min_samples": 10}}
NO: dict[str, Any] = {}  # no context
TTL = {CON + "ttl": 0.2}
WB = {CON + "pattern": "write_behind"}
CAP = {"components.q.capacity": 5, "components.c.concurrency": 1}
TCAP = {"components.t.capacity": 5}
ONE = {REP[:-1]: {"followers": 1, "reads": "round_robin"}}
BACKOFF = {CON + "backoff": {}}
RANGE = {SHARDS[:-1]: {"count": 2, "scheme": "range", "key_space": 100}}

#: field -> (base, context, change): the change alone must change the raw tables.
OBSERVED: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "component.replicas": ("svc", NO, {"components.api.replicas": 2}),
    "service.workers": ("svc", NO, {"components.api.workers": 1}),
    "service.queue_limit": ("svc", NO, {"components.api.queue_limit": 0}),
    "service.queue_discipline": ("svc", {"components.api.workers": 1},
                                 {"components.api.queue_discipline": "lifo"}),
    "service.service_time": ("svc", NO, {"components.api.service_time": 0.02}),
    "service.service_time_by_op": ("svc", NO, {"components.api.service_time_by_op":
                                                {"write": 0.02}}),
    "service.speed": ("svc", NO, {"components.api.speed": 2}),
    "service.hold_worker": ("svc", {"components.api.workers": 1},
                            {"components.api.hold_worker": False}),
    "service.calls": ("svc", NO, {"components.api.calls": {"*": ["db2"]}}),
    "service.on_failure": ("svc", NO, {"components.api.on_failure": {"*": ["db2"]}}),
    "call.to": ("svc", NO, {POLICY + "to": "db2"}),
    "call.op": ("svc", NO, {POLICY + "op": "write"}),
    "call.timeout": ("svc", NO, {POLICY + "timeout": 0.004}),
    "call.retry.attempts": ("svc", RETRY, {POLICY + "retry.attempts": 5}),
    "call.retry.backoff": ("svc", RETRY, {POLICY + "retry.backoff": "constant"}),
    "call.retry.base": ("svc", RETRY, {POLICY + "retry.base": 0.1}),
    "call.retry.multiplier": ("svc", RETRY, {POLICY + "retry.multiplier": 4}),
    "call.retry.max_backoff": ("svc", RETRY, {POLICY + "retry.max_backoff": 0.001}),
    "call.retry.jitter": ("svc", RETRY, {POLICY + "retry.jitter": "none"}),
    "call.retry.retry_on": ("svc", RETRY, {POLICY + "retry.retry_on": ["timeout"]}),
    "call.retry.budget.ratio": ("svc", BUDGET, {POLICY + "retry.budget.ratio": 1}),
    "call.retry.budget.min_retries_per_second": (
        "svc", BUDGET, {POLICY + "retry.budget.min_retries_per_second": 100}),
    "call.retry.budget.ttl": ("svc", BUDGET, {POLICY + "retry.budget.ttl": 0.01}),
    "call.breaker.failure_rate_threshold": ("svc", TRIP, {BR + "failure_rate_threshold": 90}),
    "call.breaker.slow_call_rate_threshold": ("svc", SLOW, {BR + "slow_call_rate_threshold": 5}),
    "call.breaker.slow_call_duration_threshold": (
        "svc", {**SLOW, BR + "slow_call_rate_threshold": 5},
        {BR + "slow_call_duration_threshold": 1}),
    "call.breaker.sliding_window_type": ("svc", {**TRIP, BR + "sliding_window_size": 1},
                                         {BR + "sliding_window_type": "time_based"}),
    "call.breaker.sliding_window_size": ("svc", TRIP, {BR + "sliding_window_size": 5}),
    "call.breaker.minimum_number_of_calls": ("svc", TRIP, {BR + "minimum_number_of_calls": 60}),
    "call.breaker.wait_duration_in_open_state": (
        "svc", TRIP, {BR + "wait_duration_in_open_state": 1}),
    "call.breaker.permitted_number_of_calls_in_half_open_state": (
        "svc", TRIP, {BR + "permitted_number_of_calls_in_half_open_state": 1}),
    "call.breaker.max_wait_duration_in_half_open_state": (
        "svc", TRIP, {BR + "max_wait_duration_in_half_open_state": 0.001}),
    "call.breaker.consecutive_failures": ("svc", {POLICY + "breaker": {}},
                                          {BR + "consecutive_failures": 2}),
    "call.breaker.record_statuses": ("svc", TRIP, {BR + "record_statuses": ["timeout"]}),
    "call.hedge.delay": ("svc", HEDGE, {POLICY + "hedge.delay": 0.001}),
    "call.hedge.percentile": ("svc", PCT, {POLICY + "hedge.percentile": 50}),
    "call.hedge.min_samples": ("svc", PCT, {POLICY + "hedge.min_samples": 1000}),
    "call.hedge.max_hedges": ("svc", HEDGE, {POLICY + "hedge.max_hedges": 3}),
    "call.hedge.cancel": ("svc", {**HEDGE, "components.db.workers": 1},
                          {POLICY + "hedge.cancel": False}),
    "call.rate_limit.rate": ("svc", {POLICY + "rate_limit": {"rate": 50}},
                             {POLICY + "rate_limit.rate": 20}),
    "call.rate_limit.burst": ("svc", {POLICY + "rate_limit": {"rate": 50}},
                              {POLICY + "rate_limit.burst": 10}),
    "call.bulkhead.max_concurrent_calls": (
        "svc", {POLICY + "bulkhead": {"max_concurrent_calls": 1}},
        {POLICY + "bulkhead.max_concurrent_calls": 2}),
    "call.bulkhead.max_wait": ("svc", {POLICY + "bulkhead": {"max_concurrent_calls": 1}},
                               {POLICY + "bulkhead.max_wait": 0.01}),
    "call.fallback.latency": ("svc", {POLICY + "fallback": {}},
                              {POLICY + "fallback.latency": 0.01}),
    "call.fallback.kind": ("svc", {POLICY + "fallback": {}},
                           {POLICY + "fallback": {"kind": "enqueue", "queue": "q"}}),
    "call.fallback.queue": ("svc", NO, {POLICY + "fallback": {"kind": "enqueue", "queue": "q"}}),
    "call.fallback.cache": (
        "cache", {"workloads.w.target": {"to": "c", "timeout": 0.001},
                  CON + "hit_latency": {"dist": EXP, "mean": 0.001}},
        {"workloads.w.target.fallback": {"kind": "stale", "cache": "c"}}),
    "step.maybe.probability": ("svc", {POLICY[:-3]: [{"call": "db", "probability": 0.5}]},
                               {POLICY + "probability": 0.9}),
    "step.choice.weight": ("svc", {POLICY[:-3]: [{"choice": [{"weight": 1, "steps": ["db"]},
                                                             {"weight": 1}]}]},
                           {POLICY + "choice.1.weight": 5}),
    "step.choice.steps": ("svc", {POLICY[:-3]: [{"choice": [{"weight": 1}]}]},
                          {POLICY + "choice.0.steps": ["db"]}),
    "step.reenter.probability": ("svc", {POLICY[:-3]: [
        {"reenter": "db2", "probability": 0.5}]}, {POLICY + "probability": 0.9}),
    "step.maybe.call": ("svc", {POLICY[:-3]: [{"call": "db", "probability": 0.5}]},
                        {POLICY + "call": "db2"}),
    "step.reenter.reenter": ("svc", {POLICY[:-3]: [{"reenter": "db2", "probability": 0.5}]},
                             {POLICY + "reenter": "db"}),
    "step.reenter.max_reentries": ("svc", {POLICY[:-3]: [
        {"reenter": "api", "probability": 0.5}]}, {POLICY + "max_reentries": 1}),
    "call.network.profile": ("svc", NO, {POLICY + "network": {"profile": "cross_zone"}}),
    "call.network.latency": ("svc", NO, {POLICY + "network": {"latency": 0.001}}),
    "call.network.loss": ("svc", {POLICY + "timeout": 0.05},
                          {POLICY + "network": {"loss": 0.1}}),
    "load_balancer.strategy": ("lb", NO, {"components.lb.strategy": "random"}),
    "load_balancer.backends": ("lb", NO, {"components.lb.backends": ["api", "api2"]}),
    "load_balancer.weights": ("lb", {"components.lb.strategy": "weighted_random"},
                              {"components.lb.weights": [1, 1, 8]}),
    "load_balancer.choice_count": ("lb", {"components.lb.strategy": "power_of_d"},
                                   {"components.lb.choice_count": 3}),
    "load_balancer.replacement": ("lb", {"components.lb.strategy": "power_of_two"},
                                  {"components.lb.replacement": True}),
    "load_balancer.decay_time": ("lb", {"components.lb.strategy": "least_response_time"},
                                 {"components.lb.decay_time": 0.01}),
    "load_balancer.vnodes": ("lb", {"components.lb.strategy": "consistent_hash"},
                             {"components.lb.vnodes": 2}),
    "load_balancer.health_check.interval": ("lb", HC,
                                            {"components.lb.health_check.interval": 0.05}),
    "load_balancer.health_check.unhealthy_threshold": (
        "lb", HC, {"components.lb.health_check.unhealthy_threshold": 5}),
    "load_balancer.health_check.healthy_threshold": (
        "lb", HC, {"components.lb.health_check.healthy_threshold": 4}),
    "load_balancer.outlier_detection.consecutive_errors": (
        "lb", OD, {"components.lb.outlier_detection.consecutive_errors": 10}),
    "load_balancer.outlier_detection.base_ejection_time": (
        "lb", OD, {"components.lb.outlier_detection.base_ejection_time": 0.1}),
    "load_balancer.outlier_detection.max_ejection_percent": (
        "lb", OD, {"components.lb.outlier_detection.max_ejection_percent": 100}),
    "load_balancer.healthy_panic_threshold": ("lb", OD,
                                              {"components.lb.healthy_panic_threshold": 100}),
    "cache.backing": ("cache", NO, {CON + "backing": "db2"}),
    "cache.pattern": ("cache", NO, {CON + "pattern": "write_through"}),
    "cache.policy": ("cache", NO, {CON + "policy": "fifo"}),
    "cache.capacity": ("cache", NO, {CON + "capacity": 30}),
    "cache.lfu_counts": ("cache", {CON + "policy": "lfu"}, {CON + "lfu_counts": "all_keys"}),
    "cache.ttl": ("cache", NO, {CON + "ttl": 0.2}),
    "cache.ttl_mode": ("cache", TTL, {CON + "ttl_mode": "after_access"}),
    "cache.stale_if_error": (
        "cache", {**TTL, "faults": [{"at": 0, "kind": "error", "target": "db",
                                     "probability": 0.5}]}, {CON + "stale_if_error": 1}),
    "cache.hit_latency": ("cache", NO, {CON + "hit_latency": 0.001}),
    "cache.miss_latency": ("cache", NO, {CON + "miss_latency": 0.003}),
    "cache.coalesce": ("cache", NO, {CON + "coalesce": True}),
    "cache.early_expiration.beta": ("cache", {**TTL, CON + "early_expiration": {}},
                                    {CON + "early_expiration.beta": 50}),
    "cache.write_ops": ("cache", NO, {CON + "write_ops": ["update"]}),
    "cache.flush_interval": ("cache", WB, {CON + "flush_interval": 0.05}),
    "cache.flush_batch": ("cache", WB, {CON + "flush_batch": 1}),
    "queue.capacity": ("queue", {"components.c.concurrency": 1},
                       {"components.q.capacity": 5}),
    "queue.overflow": ("queue", CAP, {"components.q.overflow": "block"}),
    "queue.max_block": ("queue", {**CAP, "components.q.overflow": "block"},
                        {"components.q.max_block": 0.001}),
    "queue.publish_time": ("queue", NO, {"components.q.publish_time": 0.002}),
    "consumer.source": ("queue", NO, {CON + "source": "q2"}),
    "consumer.concurrency": ("queue", NO, {CON + "concurrency": 1}),
    "consumer.service_time": ("queue", NO, {CON + "service_time": 0.008}),
    "consumer.calls": ("queue", NO, {CON + "calls": ["api2"]}),
    "consumer.on_failure": ("queue", NO, {CON + "on_failure": ["api2"]}),
    "consumer.ack": ("queue", NO, {CON + "ack": "on_receive"}),
    "consumer.visibility_timeout": ("queue", NO, {CON + "visibility_timeout": 0.002}),
    "consumer.max_attempts": ("queue", NO, {CON + "max_attempts": 1}),
    "consumer.backoff.type": ("queue", BACKOFF, {CON + "backoff.type": "constant"}),
    "consumer.backoff.delay": ("queue", BACKOFF, {CON + "backoff.delay": 0.1}),
    "consumer.backoff.multiplier": ("queue", {CON + "backoff": {"delay": 0.1}},
                                    {CON + "backoff.multiplier": 4}),
    "consumer.backoff.max_delay": ("queue", BACKOFF, {CON + "backoff.max_delay": 0.1}),
    "consumer.backoff.jitter": ("queue", BACKOFF, {CON + "backoff.jitter": "full"}),
    "consumer.dead_letter": ("queue", {CON + "max_attempts": 1}, {CON + "dead_letter": "dlq"}),
    "consumer.reconnect_interval": (
        "queue", {"faults": [{"at": 1, "kind": "partition", "duration": 0.5,
                              "between": ["c", "q"]}]}, {CON + "reconnect_interval": 0.1}),
    "topic.subscriptions": ("topic", NO, {"components.t.subscriptions": ["a", "b", "c"]}),
    "topic.capacity": ("topic", NO, {"components.t.capacity": 5}),
    "topic.overflow": ("topic", TCAP, {"components.t.overflow": "block"}),
    "topic.max_block": ("topic", {**TCAP, "components.t.overflow": "block"},
                        {"components.t.max_block": 0.001}),
    "topic.publish_time": ("topic", NO, {"components.t.publish_time": 0.002}),
    "database.pool.size": ("db", NO, {"components.db.pool.size": 1}),
    "database.pool.acquire_timeout": ("db", {"components.db.pool.size": 1},
                                      {"components.db.pool.acquire_timeout": 0.002}),
    "database.pool.max_waiting": ("db", {"components.db.pool.size": 1},
                                  {"components.db.pool.max_waiting": 0}),
    "database.service_time": ("db", NO, {"components.db.service_time": 0.003}),
    "database.write_ops": ("db", ONE, {"components.db.write_ops": ["insert"]}),
    "database.shards.count": ("db", {SHARDS[:-1]: {"count": 2}}, {SHARDS + "count": 3}),
    "database.shards.scheme": ("db", {SHARDS[:-1]: {"count": 2}}, {SHARDS + "scheme": "mod"}),
    "database.shards.vnodes": ("db", {SHARDS[:-1]: {"count": 2}}, {SHARDS + "vnodes": 1}),
    "database.shards.boundaries": ("db", RANGE, {SHARDS + "boundaries": [5]}),
    "database.shards.key_space": ("db", RANGE, {SHARDS + "key_space": 10}),
    "database.replication.followers": ("db", ONE, {REP + "followers": 2}),
    "database.replication.lag": ("db", ONE, {REP + "lag": {"dist": EXP, "mean": 0.2}}),
    "database.replication.ordered": ("db", {**ONE, REP + "lag": {"dist": EXP, "mean": 0.05}},
                                     {REP + "ordered": True}),
    "database.replication.reads": ("db", ONE, {REP + "reads": "read_your_writes"}),
    "database.replication.writes": ("db", ONE, {REP + "writes": "sync"}),
    "database.replication.write_quorum": (
        "db", {REP[:-1]: {"followers": 2, "writes": "quorum", "write_quorum": 1}},
        {REP + "write_quorum": 3}),
    "database.replication.read_quorum": (
        "db", {REP[:-1]: {"followers": 2, "reads": "quorum", "read_quorum": 1}},
        {REP + "read_quorum": 3}),
}

#: field -> cases of tests/test_bad_input.py refusing it where the chosen mode ignores it.
REFUSED: dict[str, tuple[str, ...]] = {
    "call.retry.multiplier": ("retry-multiplier-with-constant-backoff",),
    "call.retry.jitter": ("retry-jitter-with-decorrelated-backoff",),
    "call.hedge.min_samples": ("hedge-min-samples-with-a-fixed-delay",),
    "call.rate_limit.capacity": ("rate-limit-capacity-with-token-bucket",),
    "call.rate_limit.max_wait": ("rate-limit-max-wait-with-token-bucket",),
    "call.rate_limit.limit": ("rate-limit-limit-with-leaky-bucket",
                              "rate-limit-window-without-limit"),
    "call.rate_limit.window": ("rate-limit-window-with-token-bucket",),
    "call.rate_limit.sync_interval": ("rate-limit-sync-interval-with-instance-scope",),
    "call.fallback.queue": ("enqueue-fallback-to-a-service",
                            "enqueue-fallback-of-a-consumer-call-to-a-service",
                            "enqueue-fallback-to-unknown-queue"),
    "call.fallback.cache": ("stale-fallback-not-a-cache", "stale-fallback-without-cache"),
    "cache.ttl_mode": ("cache-ttl-mode-without-ttl",),
    "cache.stale_if_error": ("stale-if-error-without-ttl",),
    "cdn.policy": ("cdn-policy-without-capacity",),
    "cdn.stale_if_error": ("cdn-stale-if-error-without-ttl",),
    "database.shards.vnodes": ("db-vnodes-with-mod-sharding",),
    "consumer.visibility_timeout": ("consumer-visibility-timeout-with-ack-on-receive",),
    "consumer.backoff.multiplier": ("consumer-backoff-multiplier-with-constant-backoff",),
    "consumer.on_failure": ("consumer-compensation-without-calls",),
    "load_balancer.healthy_panic_threshold": ("lb-panic-threshold-without-health-checks",),
    "service.hold_worker": ("service-hold-worker-without-calls",),
    "service.on_failure": ("service-compensation-for-an-operation-without-calls",),
    "event_store.snapshot_time": ("snapshot-time-without-snapshots",),
}

_CDN = "test_cdn.py::"
_ES = "test_event_sourcing.py::"
#: field -> the test showing its effect (it needs regions, a failover, a rebuild, a CDN...).
COVERED: dict[str, str] = {
    # only a balancer picks hosts; the audit's short runs call services directly
    "call.hedge.avoid_previous_hosts": "test_previous_hosts.py::test_without_the_option_one_"
                                       "hedge_in_n_lands_on_the_original",
    "call.retry.avoid_previous_hosts": "test_previous_hosts.py::test_retries_after_a_failure_"
                                       "go_to_another_instance",
    "component.kind": "test_bad_input.py::test_bad_input_gives_exit_code_2_and_a_located_message"
                      " (it is what chooses every other setting; unknown kinds are refused)",
    "component.region": "test_regions.py::test_cross_region_call_pays_exactly_the_sampled_one_"
                        "way_draws",
    "load_balancer.geo_by": "test_regions.py::test_latency_based_geo_routing_measures_and_"
                            "prefers_the_faster_region",
    "cache.local_to": "test_cache.py::test_local_cache_instance_i_serves_app_instance_i",
    "database.replication.regions": "test_regions.py::test_a_follower_in_another_region_gets_"
                                    "writes_after_lag_plus_link",
    "database.replication.failover.detection": "test_failover.py::test_writes_fail_for_exactly_"
                                               "detection_plus_promotion",
    "database.replication.failover.promotion": "test_failover.py::test_writes_fail_for_exactly_"
                                               "detection_plus_promotion",
    "cdn.edges.region": _CDN + "test_requests_go_to_the_edge_of_their_region",
    "cdn.origin": _CDN + "test_origin_timeout_covers_the_network_round_trip",
    "cdn.default_edge": _CDN + "test_first_edge_is_the_default",
    "cdn.capacity": _CDN + "test_every_request_is_accounted_for",
    "cdn.policy": _CDN + "test_every_request_is_accounted_for",
    "cdn.ttl": _CDN + "test_each_edge_hit_ratio_matches_the_ttl_formula",
    "cdn.ttl_mode": _CDN + "test_each_edge_hit_ratio_matches_the_ttl_formula",
    "cdn.stale_if_error": _CDN + "test_stale_if_error_at_the_edge",
    "cdn.assets.keys": _CDN + "test_asset_classes_expire_on_their_own_ttl",
    "cdn.assets.ttl": _CDN + "test_asset_classes_expire_on_their_own_ttl",
    "cdn.assets.name": _CDN + "test_asset_classes_expire_on_their_own_ttl (a label for people:"
                              " it changes no run)",
    "cdn.hit_latency": _CDN + "test_latency_of_a_hit_a_miss_and_without_the_cdn",
    "cdn.coalesce": _CDN + "test_every_request_is_accounted_for",
    "cdn.on_edge_down": _CDN + "test_a_crashed_edge_sends_its_users_to_the_origin",
    "cdn.bypass": _CDN + "test_latency_of_a_hit_a_miss_and_without_the_cdn",
    "event_store.workers": _ES + "test_conflict_ratio_matches_the_dead_time_closed_form",
    "event_store.queue_limit": _ES + "test_crashes_of_the_store_and_of_the_read_model",
    "event_store.load.base": _ES + "test_rebuild_time_grows_linearly_with_the_events_without_"
                                   "snapshots",
    "event_store.load.per_event": _ES + "test_rebuild_time_grows_linearly_with_the_events_"
                                        "without_snapshots",
    "event_store.decide_time": _ES + "test_conflict_ratio_matches_the_dead_time_closed_form",
    "event_store.append_time": _ES + "test_conflict_ratio_matches_the_dead_time_closed_form",
    "event_store.snapshot_every": _ES + "test_snapshots_bound_the_rebuild_time_of_every_command",
    "event_store.snapshot_time": _ES + "test_snapshots_bound_the_rebuild_time_of_every_command",
    "event_store.conflict_retries": _ES + "test_conflicts_rise_with_the_write_rate_per_"
                                          "aggregate_with_retries",
    "event_store.retry_backoff": _ES + "test_conflicts_rise_with_the_write_rate_per_aggregate_"
                                       "with_retries",
    "event_store.publish": _ES + "test_a_store_may_publish_to_its_read_model_directly",
    "event_store.query_ops": _ES + "test_read_after_write_staleness_is_the_lag_tail_beyond_the_"
                                   "read",
    "read_model.store": _ES + "test_read_model_must_name_an_event_store",
    "read_model.workers": _ES + "test_projection_lag_and_stale_reads_fall_with_projector_"
                                "concurrency",
    "read_model.queue_limit": _ES + "test_crashes_of_the_store_and_of_the_read_model",
    "read_model.read_time": _ES + "test_stale_flag_agrees_with_the_projection_intervals",
    "read_model.apply_time": _ES + "test_projection_lag_and_stale_reads_fall_with_projector_"
                                   "concurrency",
    "read_model.apply_ops": _ES + "test_a_store_may_publish_to_its_read_model_directly",
    "read_model.reads_during_rebuild": _ES + "test_reads_during_a_rebuild_can_be_rejected",
}

_AS = "test_autoscaling.py::"
#: the autoscaling block is one model for services and consumers, run by one controller: each
#: field's effect is shown once, by the test of the kind named (the HPA's arithmetic alone, or a
#: run); fields one kind refuses are shown refused there
_AUTOSCALING = {
    "min_replicas": "test_min_and_max_clamp",
    "max_replicas": "test_min_and_max_clamp",
    "sync_period": "test_replica_trajectory_equals_the_hand_computation (syncs at its multiples)",
    "tolerance": "test_tolerance_keeps_the_count_and_ceil_sets_it",
    "metrics.type": "test_consumer_trajectory_on_queue_length_equals_the_hand_computation",
    "metrics.average_utilization": "test_replica_trajectory_equals_the_hand_computation",
    "metrics.average_value": "test_tolerance_keeps_the_count_and_ceil_sets_it",
    "metrics.activation_queue_length": "test_consumer_scales_to_zero_after_the_cooldown_and_"
                                       "back_on_activation",
    "metrics.scale_on_in_flight": "test_queue_length_counts_in_flight_and_delayed_as_chosen",
    "metrics.scale_on_delayed": "test_queue_length_counts_in_flight_and_delayed_as_chosen",
    "metrics.percentile": "test_latency_metric_is_an_object_value_and_runs_away_when_latency_"
                          "is_not_load",
    "metrics.value": "test_latency_metric_is_an_object_value_and_runs_away_when_latency_is_"
                     "not_load",
    "behavior.scale_up.stabilization_window_seconds": "test_scale_up_window_delays_and_scale_"
                                                      "down_select_policy",
    "behavior.scale_up.select_policy": "test_scale_up_policies_limit_change_per_period_and_"
                                       "select_policy",
    "behavior.scale_up.policies.type": "test_scale_up_policies_limit_change_per_period_and_"
                                       "select_policy",
    "behavior.scale_up.policies.value": "test_scale_up_policies_limit_change_per_period_and_"
                                        "select_policy",
    "behavior.scale_up.policies.period_seconds": "test_scale_up_policies_limit_change_per_"
                                                 "period_and_select_policy",
    "behavior.scale_down.stabilization_window_seconds": "test_scale_down_stabilization_takes_"
                                                        "the_highest_recent_recommendation",
    "behavior.scale_down.select_policy": "test_scale_up_window_delays_and_scale_down_select_"
                                         "policy",
    "behavior.scale_down.policies.type": "test_scale_down_stabilization_takes_the_highest_"
                                         "recent_recommendation",
    "behavior.scale_down.policies.value": "test_scale_down_stabilization_takes_the_highest_"
                                          "recent_recommendation",
    "behavior.scale_down.policies.period_seconds": "test_scale_down_stabilization_takes_the_"
                                                   "highest_recent_recommendation",
    "provisioning_delay": "test_replica_trajectory_equals_the_hand_computation",
    "termination_grace_period": "test_scale_in_loses_no_request",
    "cooldown_period": "test_consumer_scales_to_zero_after_the_cooldown_and_back_on_activation",
    "cold_start.initial_speed": "test_schedule_sets_the_bounds_and_a_new_instance_starts_slow",
    "cold_start.ramp": "test_schedule_sets_the_bounds_and_a_new_instance_starts_slow",
    "schedule.at": "test_schedule_sets_the_bounds_and_a_new_instance_starts_slow",
    "schedule.min_replicas": "test_schedule_sets_the_bounds_and_a_new_instance_starts_slow",
    "schedule.max_replicas": "test_schedule_sets_the_bounds_and_a_new_instance_starts_slow",
}
_REFUSED_ON = {  # shown refused on that kind
    ("service", "metrics.activation_queue_length"): "test_queue_length_is_a_consumers_metric",
    ("service", "metrics.scale_on_in_flight"): "test_queue_length_is_a_consumers_metric",
    ("service", "metrics.scale_on_delayed"): "test_queue_length_is_a_consumers_metric",
    ("service", "cooldown_period"): "test_queue_length_is_a_consumers_metric (it needs "
                                    "min_replicas 0, which needs a queue)",
    ("consumer", "cold_start.initial_speed"): "test_queue_length_is_a_consumers_metric",
    ("consumer", "cold_start.ramp"): "test_queue_length_is_a_consumers_metric",
}
for _kind in ("service", "consumer"):
    for _field, _test in _AUTOSCALING.items():
        COVERED[f"{_kind}.autoscaling.{_field}"] = _AS + _REFUSED_ON.get((_kind, _field), _test)
COVERED["component.cost.per_instance_hour"] = _AS + "test_cost_is_instance_seconds_times_" \
                                                    "price_exactly"
COVERED["component.cost.per_million_requests"] = _AS + "test_cost_is_instance_seconds_times_" \
                                                       "price_exactly"

# the service queue block (issue 16): each setting is shown by its own exact test
_DQ = "test_disciplines.py::"
COVERED.update({
    "service.queue.discipline": _DQ + "test_queue_block_is_the_shorthands_written_out",
    "service.queue.limit": _DQ + "test_processor_sharing_rejects_beyond_its_limit",
    "service.queue.preemptive": _DQ + "test_preemptive_resume_interrupts_and_resumes_with_the_"
                                      "work_left",
    "service.queue.target": _DQ + "test_codel_first_drop_is_where_rfc_8289_puts_it",
    "service.queue.interval": _DQ + "test_codel_first_drop_is_where_rfc_8289_puts_it",
    "service.queue.standing_after": _DQ + "test_adaptive_lifo_serves_the_newest_only_under_a_"
                                          "standing_queue",
})


def _apply(spec: dict[str, Any], overrides: dict[str, Any]) -> None:
    for path, value in overrides.items():
        if path == "faults":
            spec["faults"] = [*spec.get("faults", []), *value]
            continue
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = spec
        for p in parents:
            node = node[p]
        node[last] = copy.deepcopy(value)


@functools.cache
def _fingerprint(base: str, overrides: str) -> str:
    spec = copy.deepcopy(BASES[base])
    for layer in json.loads(overrides):
        _apply(spec, layer)
    results = simulator.simulate(simulator.parse_scenario(spec), seed=1)
    h = hashlib.sha256()
    for name, df in sorted(results.tables.items()):
        h.update(name.encode())
        h.update(df.to_csv(index=False).encode())
    return h.hexdigest()


# ---- the audit ------------------------------------------------------------------------------

def test_every_parameter_is_audited() -> None:
    enumerated = enumerate_parameters()
    audited = set(OBSERVED) | set(REFUSED) | set(COVERED)
    assert sorted(enumerated - audited) == [], "new parameters: add them to the audit"
    assert sorted(audited - enumerated) == [], "audited names that are no parameter"
    assert len(enumerated) > 150  # the walk reaches the nested models


@pytest.mark.parametrize("field", sorted(OBSERVED))
def test_changing_the_parameter_changes_the_tables(field: str) -> None:
    base, context, change = OBSERVED[field]
    before = _fingerprint(base, json.dumps([context]))
    after = _fingerprint(base, json.dumps([context, change]))
    assert before != after, f"{field}: {change} changed nothing in a short run"


_BY_ID = {c.id: c for c in CASES}


@pytest.mark.parametrize("case_id", sorted({i for ids in REFUSED.values() for i in ids}))
def test_refused_where_ignored(case_id: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    c = _BY_ID[case_id]
    argv, file = _prepare(c, tmp_path)
    code = main(["validate", *argv[1:]])
    _check(c, file, code, capsys.readouterr().err)


def test_covering_tests_exist() -> None:
    names: dict[str, set[str]] = {}
    for field, where in COVERED.items():
        file, _, test = where.partition("::")
        if file not in names:
            tree = ast.parse((TESTS / file).read_text())
            names[file] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert test.split(" ")[0] in names[file], f"{field}: no test {where}"

# client-side adaptive throttling (issue 16): its effect needs an overloaded backend
_TH = "test_throttling.py::"
COVERED.update({
    "call.adaptive_throttle.k": _TH + "test_overload_settles_at_the_formulas_fixed_point",
    "call.adaptive_throttle.window": _TH + "test_the_probability_is_the_books_formula_over_a_"
                                           "trailing_window",
    "call.adaptive_throttle.reject_on": _TH + "test_a_backend_rejection_is_not_an_accept_and_a_"
                                              "timeout_is_by_default",
})

# rate limiter algorithms and the global scope (issue 16): each shown by an exact test
_RL = "test_ratelimit.py::"
COVERED.update({
    "call.rate_limit.algorithm": _RL + "test_each_algorithm_passes_exactly_the_hand_computed_"
                                       "requests",
    "call.rate_limit.capacity": _RL + "test_each_algorithm_passes_exactly_the_hand_computed_"
                                      "requests",
    "call.rate_limit.max_wait": _RL + "test_each_algorithm_passes_exactly_the_hand_computed_"
                                      "requests",
    "call.rate_limit.limit": _RL + "test_each_algorithm_passes_exactly_the_hand_computed_"
                                   "requests",
    "call.rate_limit.window": _RL + "test_each_algorithm_passes_exactly_the_hand_computed_"
                                    "requests",
    "call.rate_limit.scope": _RL + "test_global_limit_in_a_run_is_one_limiter_when_"
                                   "synchronised_at_once (global), test_scope_target_shares_"
                                   "one_limit_among_the_callers_with_the_same_one (target)",
    "call.rate_limit.sync_interval": _RL + "test_global_fixed_window_overshoot_is_the_hand_"
                                           "computed_one",
})

# service admission (issue 16): shedding and adaptive concurrency limits need overload, or
# hand-checked sample sequences
_AD = "test_admission.py::"
COVERED.update({f"service.admission.{k}": _AD + v for k, v in {
    "policy": "test_every_request_ends_once_and_every_refusal_is_counted",
    "max_queue_time": "test_shedding_by_queue_time_refuses_exactly_the_arrivals_behind_an_old_"
                      "head",
    "max_utilization": "test_shedding_by_utilization_drops_the_least_important_class_first",
    "window": "test_shedding_by_utilization_drops_the_least_important_class_first",
    "initial_limit": "test_aimd_limit_trajectory_with_constant_service",
    "min_limit": "test_aimd_adds_while_busy_and_multiplies_down_on_drops",
    "max_limit": "test_aimd_adds_while_busy_and_multiplies_down_on_drops",
    "backoff_ratio": "test_aimd_adds_while_busy_and_multiplies_down_on_drops",
    "timeout": "test_aimd_limit_trajectory_with_constant_service",
    "increase": "test_aimd_increase_is_the_additive_step",
    "alpha": "test_vegas_explicit_alpha_beta_and_smoothing",
    "beta": "test_vegas_explicit_alpha_beta_and_smoothing",
    "smoothing": "test_vegas_explicit_alpha_beta_and_smoothing",
    "probe_multiplier": "test_vegas_probes_the_no_load_rtt_every_probe_multiplier_x_limit_"
                        "samples",
    "long_window": "test_gradient2_long_window_and_queue_size",
    "queue_size": "test_gradient2_long_window_and_queue_size",
    "concurrency_update_interval": "test_envoy_gradient_measures_min_rtt_then_updates_per_"
                                   "window",
    "max_concurrency_limit": "test_envoy_percentile_jitter_and_max_limit",
    "sample_aggregate_percentile": "test_envoy_percentile_jitter_and_max_limit",
    "min_rtt_calc.jitter": "test_envoy_percentile_jitter_and_max_limit",
    "min_rtt_calc.interval": "test_envoy_gradient_measures_min_rtt_then_updates_per_window",
    "min_rtt_calc.request_count": "test_envoy_gradient_measures_min_rtt_then_updates_per_"
                                  "window",
    "min_rtt_calc.min_concurrency": "test_envoy_gradient_remeasures_after_five_updates_at_the_"
                                    "minimum",
    "min_rtt_calc.buffer": "test_envoy_gradient_measures_min_rtt_then_updates_per_window",
}.items()})

# a service's internals (issue 17): each setting is shown by an exact-timing test
_IN = "test_service_internals.py::"
COVERED.update({
    "service.internals.cores": _IN + "test_event_loops_take_requests_in_turn",
    "service.internals.threading": _IN + "test_thread_pool_cores_are_time_sliced",
    "service.internals.threads": _IN + "test_thread_pool_throughput_is_bounded_by_threads_and_"
                                       "cores",
    "service.internals.steps.cpu": _IN + "test_event_loop_cpu_step_blocks_every_request_of_its_"
                                         "loop",
    "service.internals.steps.io": _IN + "test_event_loop_io_step_blocks_no_request",
    "service.internals.steps.memory": _IN + "test_memory_limit_refuses_arrivals_at_or_above_it",
    "service.internals.memory.limit": _IN + "test_memory_limit_refuses_arrivals_at_or_above_it",
    "service.internals.memory.on_limit": _IN + "test_memory_limit_slows_cpu_steps_above_it",
    "service.internals.memory.slowdown": _IN + "test_memory_limit_slows_cpu_steps_above_it",
    "service.internals.gc.every": _IN + "test_scheduled_gc_pause_stops_cpu_steps_not_io",
    "service.internals.gc.pause": _IN + "test_scheduled_gc_pause_stops_cpu_steps_not_io",
    "service.internals.gc.after_allocated": _IN + "test_allocation_driven_gc_pauses_after_each_"
                                                  "allocated_amount",
})
