"""A scenario fuzzer: validation is the contract.

Anything :func:`simulator.loads_scenario` (``simulator validate``) accepts must run without a
traceback, and anything it refuses must be refused with a :class:`~simulator.ScenarioError`
(located problems), never another exception.

Each mutant starts from one shipped scenario (``scenarios/*.yaml``). Most mutations work on the
data (load the YAML, change the node at a random key path, dump it back): delete a key, swap a
value's type, make a number negative, zero, huge, tiny, NaN or infinite, put unicode in a string
or a key, nest a value deeply, rename or misname a reference, copy a subtree from another
scenario, add an unknown key, give a ``--set`` override. Some work on the text (delete,
duplicate or swap lines, insert characters, cut the file short). A mutant the loader accepts
is then run, shortened first when it would create more than :data:`RUN_REQUESTS` requests
(every time in it is scaled by the same factor, so faults stay inside the run), under a time
limit of :data:`TIME_LIMIT` seconds of CPU: a run past it is a hang.

``tests/test_fuzz.py`` runs a bounded number of mutants in the suite (hypothesis drives the
random choices); ``make fuzz`` runs ``python -m tests.fuzz_scenarios --mutants 10000`` and
prints the counts and every distinct failure with its reproducer.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import math
import multiprocessing
import random
import signal
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import ScenarioError, ScenarioWarning, TopologyError
from simulator.units import parse_duration
from simulator.yamlfile import load_yaml_file, load_yaml_text

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
#: A mutant expected to create more requests than this is shortened before it is run.
RUN_REQUESTS = 300
#: CPU seconds a validation or a shortened run may take; past it, it counts as a hang.
TIME_LIMIT = 10.0

Path_ = tuple[Any, ...]


# ---- the shipped scenarios ----------------------------------------------------------------

def bases() -> list[tuple[str, dict[str, Any]]]:
    """Every shipped scenario as (file name, data), in file-name order; files a workload
    names (a trace) are made absolute, since mutants are loaded as text."""
    out = []
    for p in sorted(SCENARIOS.glob("*.yaml")):
        data = load_yaml_file(p)[0]
        for workload in (data.get("workloads") or {}).values():
            arrivals = workload.get("arrivals") if isinstance(workload, dict) else None
            if isinstance(arrivals, dict) and isinstance(arrivals.get("file"), str):
                arrivals["file"] = str(SCENARIOS / arrivals["file"])
        out.append((p.name, data))
    return out


def _pool(all_bases: list[tuple[str, dict[str, Any]]]) -> dict[Any, list[Any]]:
    """Every subtree of every base, by the key it sits under (for cross-over mutations)."""
    pool: dict[Any, list[Any]] = {}
    for _, data in all_bases:
        for path, node in _walk(data):
            if path:
                pool.setdefault(path[-1], []).append(node)
    return pool


def _walk(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, i))


def _names(data: Any) -> list[str]:
    """Component and workload names of a scenario (the targets of references)."""
    out: list[str] = []
    if isinstance(data, dict):
        for section in ("components", "workloads"):
            if isinstance(data.get(section), dict):
                out += [str(k) for k in data[section]]
    return out


# ---- mutations ----------------------------------------------------------------------------

HUGE: list[Any] = [10**6, 10**9, 2**31, 2**63, 2**64, 10**30, 10**400, 1e18, 1e300,
                   1.7976931348623157e308, "1e400", "1e400s", "1e400/s", "1e308ms", "1e30 requests",
                   "999999999d", "1M/s"]
TINY: list[Any] = [1e-300, 5e-324, 1e-9, "1e-400s", "1ns", "5e-324s", "0.000001ms"]
NONFINITE: list[Any] = [math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "infs", "nan/s",
                        "inf/s", "NaN", ".inf"]
UNICODE: list[str] = ["µs", "\uff41\uff50\uff49", "api\u200b", "💥", "naïve", "\u202eapi",
                      "дб", "a\x00b", "", " ", "\t", "é" * 300, "5\u00a0ms", "\uff11\uff10ms"]
TYPES: list[Any] = ["text", 3, 2.5, True, False, None, [], {}, [1, 2], {"a": 1}, "5ms", "10/s",
                    -7, 0.0]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _set(data: Any, path: Path_, value: Any) -> None:
    parent = _get(data, path[:-1])
    parent[path[-1]] = value


def _get(data: Any, path: Path_) -> Any:
    for k in path:
        data = data[k]
    return data


def _mutate_value(rng: random.Random, value: Any, data: Any, pool: dict[Any, list[Any]],
                  key: Any) -> Any:
    """A new value for one node."""
    op = rng.choices(["swap_type", "negative", "zero", "huge", "tiny", "nonfinite", "unicode",
                      "nest", "rename_ref", "scale", "crossover", "bump"],
                     weights=[2, 2, 2, 2, 2, 2, 1, 1, 2, 6, 4, 2])[0]
    n = _number(value)
    if op == "swap_type":
        return copy.deepcopy(rng.choice(TYPES))
    if op == "negative":
        if n is not None:
            return -n if n else -1
        return f"-{value}" if isinstance(value, str) else -1
    if op == "zero":
        return rng.choice([0, 0.0, "0s", "0/s", "0ms", -0.0])
    if op == "huge":
        return rng.choice(HUGE)
    if op == "tiny":
        return rng.choice(TINY)
    if op == "nonfinite":
        return rng.choice(NONFINITE)
    if op == "unicode":
        u = rng.choice(UNICODE)
        return f"{value}{u}" if isinstance(value, str) and rng.random() < 0.5 else u
    if op == "nest":
        depth = rng.choice([2, 5, 20, 63, 70, 200])
        for _ in range(depth):
            value = [value] if rng.random() < 0.5 else {"a": value}
        return value
    if op == "rename_ref":
        names = _names(data)
        if names and rng.random() < 0.6:
            return rng.choice(names)
        base = value if isinstance(value, str) else rng.choice(names or ["api"])
        return rng.choice([base[:-1], base + "x", base.upper(), f"{base}[0]", f"{base}[99]",
                           f"{base}.leader", "nowhere"])
    if op == "scale":
        if n is not None:
            out = n * 10 ** rng.uniform(-4, 4)
            return int(out) if isinstance(value, int) else out
        if isinstance(value, str):
            try:
                return parse_duration(value) * 10 ** rng.uniform(-4, 4)
            except ValueError:
                pass
        return value
    if op == "bump":
        if n is not None:
            return type(value)(n + rng.choice([-1, 1]))
        return value
    # crossover: a subtree from another scenario found under the same key
    options = pool.get(key) or pool.get(rng.choice(list(pool)))
    return copy.deepcopy(rng.choice(options or [value]))


def mutate_data(rng: random.Random, data: dict[str, Any], pool: dict[Any, list[Any]]
                ) -> list[str]:
    """Apply one data-level mutation to ``data`` in place; return ``--set`` overrides to give
    the loader (usually none)."""
    paths = [p for p, _ in _walk(data) if p]
    if not paths:
        return []
    path = rng.choice(paths)
    parent = _get(data, path[:-1])
    key = path[-1]
    op = rng.choices(["value", "delete", "rename_key", "add_key", "duplicate", "override"],
                     weights=[10, 3, 2, 1, 1, 1])[0]
    if op == "delete":
        del parent[key]
    elif op == "rename_key" and isinstance(parent, dict):
        new = rng.choice([f"{key}x", str(key)[:-1], rng.choice(UNICODE), 5, None, True,
                          rng.choice(_names(data) or ["api"])])
        if new not in parent:
            value = parent.pop(key)
            parent[new] = value
            if rng.random() < 0.5:  # a consistent rename: references follow
                for p, node in list(_walk(data)):
                    if p and node == key and isinstance(node, str):
                        _set(data, p, new)
    elif op == "add_key" and isinstance(parent, dict):
        parent[rng.choice(["extra", "mean", "rate", "kind", "to", "replicas", "ttl", "weight",
                           "at", "💥"])] = copy.deepcopy(rng.choice(TYPES + HUGE))
    elif op == "duplicate" and isinstance(parent, dict):
        parent[f"{key}2"] = copy.deepcopy(parent[key])
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    elif op == "override":
        value = _mutate_value(rng, parent[key], data, pool, key)
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True,
                              width=10**9).strip().removesuffix("...").strip()
        return [f"{'.'.join(map(str, path))}={text}"]
    else:
        parent[key] = _mutate_value(rng, parent[key], data, pool, key)
    return []


def mutate_text(rng: random.Random, text: str) -> str:
    """One text-level mutation of a YAML document."""
    lines = text.splitlines()
    op = rng.choice(["delete_line", "duplicate_line", "swap_lines", "insert_chars", "truncate",
                     "indent", "replace_char"])
    i = rng.randrange(len(lines)) if lines else 0
    if not lines:
        return rng.choice(UNICODE)
    if op == "delete_line":
        del lines[i]
    elif op == "duplicate_line":
        lines.insert(i, lines[i])
    elif op == "swap_lines":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "indent":
        lines[i] = rng.choice([" ", "  ", "\t", ""]) + lines[i].lstrip(rng.choice([" ", ""]))
    else:
        pos = rng.randrange(len(text) + 1)
        if op == "truncate":
            return text[:pos]
        chars = rng.choice([":", "-", "[", "{", "&a", "*a", "!!python/none", "'", '"', "#",
                            "%", "|", "\ufeff", "💥", "\x00", "<<: *a", "? "])
        if op == "replace_char":
            return text[:pos] + chars + text[pos + 1:]
        return text[:pos] + chars + text[pos:]
    return "\n".join(lines) + "\n"


@dataclass
class Mutant:
    """One scenario to try: YAML text and ``--set`` overrides."""

    base: str
    text: str
    overrides: list[str] = field(default_factory=list)

    def reproducer(self) -> str:
        sets = "".join(f" --set '{o}'" for o in self.overrides)
        return f"# from scenarios/{self.base}; simulator run FILE{sets}\n{self.text}"


def make_mutant(rng: random.Random, all_bases: list[tuple[str, dict[str, Any]]],
                pool: dict[Any, list[Any]]) -> Mutant:
    """Draw one mutant: a base, one to four data mutations, sometimes a text mutation."""
    name, base = rng.choice(all_bases)
    data = copy.deepcopy(base)
    overrides: list[str] = []
    for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3])):
        overrides += mutate_data(rng, data, pool)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if rng.random() < 0.15:
        text = mutate_text(rng, text)
    return Mutant(name, text, overrides)


# ---- running one mutant --------------------------------------------------------------------

class HangError(Exception):
    """A validation or a run past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`HangError` in the main thread after ``seconds`` of this process's CPU
    time (``ITIMER_PROF``): the time the run itself takes, whatever else shares the machine,
    so a loaded machine does not turn slow runs into hangs (nor hide a real one: a runaway
    simulation burns CPU)."""
    def alarm(signum: int, frame: Any) -> None:
        raise HangError(f"past the {seconds:g}s limit")

    old = signal.signal(signal.SIGPROF, alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def _scale_times(data: dict[str, Any], factor: float) -> None:
    """Multiply every time of the run by ``factor`` (duration, warm-up, drain, faults,
    schedule steps), so a shortened run keeps its faults inside it."""
    def scaled(value: Any) -> Any:
        try:
            return parse_duration(value) * factor
        except ValueError:
            return value

    for key in ("duration", "drain"):
        if key in data:
            data[key] = scaled(data[key])
    if "warmup" in data and data["warmup"] != "auto":
        data["warmup"] = scaled(data["warmup"])
    for fault in data.get("faults") or []:
        for key in ("at", "duration"):
            if isinstance(fault, dict) and key in fault:
                fault[key] = scaled(fault[key])
    for w in (data.get("workloads") or {}).values():
        arrivals = w.get("arrivals") if isinstance(w, dict) else None
        if isinstance(arrivals, dict) and isinstance(arrivals.get("steps"), list):
            for step in arrivals["steps"]:
                if isinstance(step, dict) and "at" in step:
                    step["at"] = scaled(step["at"])


@dataclass
class Outcome:
    """What one mutant did: ``refused`` (a ScenarioError), ``ran``, ``too_big`` (accepted, but
    still refused once shortened, so not run), ``traceback`` or ``hang``."""

    status: str
    detail: str = ""
    signature: str = ""


def _signature(exc: BaseException, phase: str) -> str:
    """Where an exception came from: the phase, its type, the deepest simulator frame."""
    while exc.__cause__ is not None:  # SimPy re-raises a process's exception from the run
        exc = exc.__cause__
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "simulator" in f.filename and "fuzz" not in Path(f.filename).name]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{phase}: {type(exc).__name__} at {where}"


def check(mutant: Mutant, time_limit_s: float = TIME_LIMIT) -> Outcome:
    """Load the mutant; if accepted, run it (shortened) and print its tables."""
    from simulator.cli import print_tables, print_verdict
    from simulator.engine import simulate
    from simulator.scenario import loads_scenario, parse_scenario
    from simulator.scenario.overrides import apply_overrides

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScenarioWarning)
        try:
            with time_limit(time_limit_s):
                scenario = loads_scenario(mutant.text, mutant.overrides, source="mutant.yaml")
        except ScenarioError:
            return Outcome("refused")
        except HangError as exc:
            return Outcome("hang", f"validation {exc}", "validate: hang")
        except Exception as exc:  # the contract: nothing but a ScenarioError
            return Outcome("traceback", traceback.format_exc(), _signature(exc, "validate"))
        try:
            n = scenario.expected_requests()
            if n > RUN_REQUESTS:
                data, _ = load_yaml_text(mutant.text, "mutant.yaml")
                apply_overrides(data, mutant.overrides, "mutant.yaml")
                data.pop("variants", None)
                _scale_times(data, RUN_REQUESTS / n)
                try:
                    scenario = parse_scenario(data)
                except ScenarioError:
                    return Outcome("too_big")
            with time_limit(time_limit_s), contextlib.redirect_stdout(io.StringIO()):
                results = simulate(scenario)
                print_verdict(results)
                print_tables(results)
        except HangError as exc:
            return Outcome("hang", f"run {exc}", "run: hang")
        except TopologyError as exc:  # clean, but validate should have said so
            return Outcome("traceback", f"TopologyError: {exc}", _signature(exc, "build"))
        except Exception as exc:
            return Outcome("traceback", traceback.format_exc(), _signature(exc, "run"))
    return Outcome("ran")


# ---- the long run (make fuzz) --------------------------------------------------------------

_STATE: dict[str, Any] = {}


def _init() -> None:
    all_bases = bases()
    _STATE.update(bases=all_bases, pool=_pool(all_bases))


def _one(seed: int) -> tuple[int, Outcome, Mutant]:
    if not _STATE:
        _init()
    mutant = make_mutant(random.Random(seed), _STATE["bases"], _STATE["pool"])
    return seed, check(mutant), mutant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz_scenarios",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="first mutant's seed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/fuzz"),
                        help="where reproducers of failures are written")
    args = parser.parse_args(argv)
    counts: Counter[str] = Counter()
    failures: dict[str, tuple[int, Outcome, Mutant, int]] = {}
    t0 = time.perf_counter()
    seeds = range(args.seed, args.seed + args.mutants)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs, initializer=_init, maxtasksperchild=500) as pool:
        for done, (seed, outcome, mutant) in enumerate(pool.imap_unordered(_one, seeds, 8), 1):
            counts[outcome.status] += 1
            if outcome.status in ("traceback", "hang"):
                print(f"  seed {seed}: {outcome.signature}", flush=True)  # found as it runs
                seen = failures.get(outcome.signature)
                failures[outcome.signature] = ((seed, outcome, mutant, seen[3] + 1) if seen
                                               else (seed, outcome, mutant, 1))
            if done % 1000 == 0:
                print(f"  {done} mutants, {time.perf_counter() - t0:.0f}s: {dict(counts)}",
                      flush=True)
    accepted = counts["ran"] + counts["too_big"]
    print(f"mutants: {args.mutants} (seeds {args.seed}..{args.seed + args.mutants - 1}) in "
          f"{time.perf_counter() - t0:.0f}s\n"
          f"refused cleanly (ScenarioError): {counts['refused']}\n"
          f"accepted: {accepted}, ran: {counts['ran']}, not run (refused once shortened to "
          f"{RUN_REQUESTS} requests): {counts['too_big']}\n"
          f"tracebacks: {counts['traceback']}\nhangs (over {TIME_LIMIT:g} CPU s): "
          f"{counts['hang']}")
    if failures:
        args.out.mkdir(parents=True, exist_ok=True)
    for signature, (seed, outcome, mutant, times) in sorted(failures.items()):
        digest = hashlib.sha256(mutant.text.encode()).hexdigest()[:10]
        path = args.out / f"{digest}.yaml"
        path.write_text(mutant.reproducer(), encoding="utf-8")
        last = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ""
        print(f"\n{signature} ({times}x), e.g. seed {seed}: {last}\n  reproducer: {path}"
              + "".join(f" --set '{o}'" for o in mutant.overrides))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
