"""Units in scenarios: durations (``250ms``, ``1.5s``, ``2m``), rates (``800/s``, ``5k/s``) and
request counts (``5000 requests``, ``5k requests``: a warm-up given as a number of requests).

Inside the simulator, time is a float number of simulated seconds and a rate is per second.
A bare number in a scenario means seconds (durations) or per second (rates).
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_MULTIPLIERS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zµ]*)\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*([kKM]?)\s*/\s*([a-zµ]*)\s*$")
_REQUESTS_RE = re.compile(rf"^\s*({_NUMBER})\s*([kKM]?)\s*requests?\s*$")

DURATION_PATTERN = rf"^{_NUMBER}\s*(ns|us|µs|ms|s|sec|m|min|h|d)?$"
RATE_PATTERN = rf"^{_NUMBER}\s*[kKM]?\s*/\s*(ns|us|µs|ms|s|sec|m|min|h|d)$"


def _finite(seconds: float, value: object, what: str) -> float:
    """``seconds`` if finite; infinity and NaN have no meaning in a scenario (an absent key
    is what means unbounded), and a number past the largest float (``1e400``) is infinity."""
    if not math.isfinite(seconds):
        raise ValueError(f"must be a finite {what}, got {value!r}")
    return seconds


def _float(value: int | float, what: str) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past the largest float (YAML reads 1000...0 as one)
        bits = value.bit_length() if isinstance(value, int) else 0
        raise ValueError(f"must be a finite {what}, got an integer of {bits} bits, past the "
                         "largest float (1.8e308)") from None


def parse_duration(value: object) -> float:
    """Return a duration in seconds from a number (seconds) or a string with a unit.

    Raises
    ------
    ValueError
        With a message naming the accepted units, for anything else, and for a duration that
        is not finite (``.inf``, ``nan``, ``1e400s``).
    """
    return _finite(_parse_duration(value), value, "duration")


def _parse_duration(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 250ms or 2s, got {value!r}")
    if isinstance(value, int | float):
        return _float(value, "duration")
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            number, unit = m.groups()
            if unit == "":
                return float(number)
            if unit in _DURATION_UNITS:
                return float(number) * _DURATION_UNITS[unit]
            raise ValueError(
                f"unknown time unit {unit!r} in {value!r}; use one of "
                + ", ".join(u for u in _DURATION_UNITS if u != "µs")
            )
    raise ValueError(f"expected a duration such as 250ms or 2s, got {value!r}")


def parse_rate(value: object) -> float:
    """Return a rate per second from a number (per second) or a string such as ``5k/s``.

    Raises
    ------
    ValueError
        With a message naming the accepted forms, for anything else, and for a rate that is
        not finite (``.inf``, ``nan/s``, ``1e400/s``).
    """
    return _finite(_parse_rate(value), value, "rate")


def _parse_rate(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a rate such as 800/s or 5k/s, got {value!r}")
    if isinstance(value, int | float):
        return _float(value, "rate")
    if isinstance(value, str):
        m = _RATE_RE.match(value)
        if m:
            number, mult, unit = m.groups()
            per = _DURATION_UNITS.get(unit or "s")
            if per is None:
                raise ValueError(
                    f"unknown time unit {unit!r} in rate {value!r}; use for example 800/s, "
                    "5k/s, 30/min or 2/ms"
                )
            return float(number) * _MULTIPLIERS[mult] / per
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected a rate such as 800/s or 5k/s, got {value!r}")


def parse_request_count(value: object) -> int | None:
    """Return the number of requests in a string such as ``5000 requests`` or ``5k requests``.

    Returns
    -------
    int or None
        The count; None when ``value`` is not written as a number of requests (it may then be
        a duration).

    Raises
    ------
    ValueError
        When it is written as requests but is not a whole number at least 0.
    """
    if not isinstance(value, str):
        return None
    m = _REQUESTS_RE.match(value)
    if m is None:
        return None
    number, mult = m.groups()
    count = float(number) * _MULTIPLIERS[mult]
    if not (count >= 0 and count.is_integer()):
        raise ValueError(f"a number of requests must be a whole number at least 0, got "
                         f"{value!r}")
    return int(count)


def format_duration(seconds: float) -> str:
    """Write a duration the way a scenario would (``1h``, ``90s``, ``25ms``, ``40us``), to 3
    significant figures (hours and minutes only when whole)."""
    for unit, scale in (("h", 3600.0), ("min", 60.0)):
        if seconds >= scale and seconds % scale == 0:
            return f"{seconds / scale:g}{unit}"
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if abs(seconds) >= scale or seconds == 0:
            return f"{seconds / scale:.{4 if unit == 's' else 3}g}{unit}"
    return f"{seconds / 1e-6:.3g}us"
