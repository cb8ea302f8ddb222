"""Write ``checkout.csv``, the recorded trace ``scenarios/trace_replay.yaml`` replays.

A stand-in for a production access log: 90 seconds of a shop's API, one row per request
with its Unix timestamp (milliseconds), the operation and the user id. Traffic is bursty as
real traffic is: a two-state Markov-modulated Poisson process (a calm state at 60
requests/s, a burst state at 240/s; bursts last 2 s on average, calm spells 8 s), so the mean
rate is about 96/s but a tenth of the time it runs at two and a half times that. Checkouts are
one request in ten, users Zipf-distributed. Deterministic (seed 2026):

    python scenarios/traces/make_checkout_trace.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SECONDS = 90.0
START_MS = 1_764_806_400_000  # 2025-12-04 00:00 UTC: a log's epoch timestamps
CALM, BURST = 60.0, 240.0
CALM_S, BURST_S = 8.0, 2.0


def main() -> None:
    rng = np.random.default_rng(2026)
    t, times, burst = 0.0, [], False
    while t < SECONDS:
        spell = rng.exponential(BURST_S if burst else CALM_S)
        rate = BURST if burst else CALM
        n = rng.poisson(rate * spell)
        times.extend(np.sort(t + rng.uniform(0, spell, n)))
        t, burst = t + spell, not burst
    stamps = [START_MS + x * 1000 for x in times if x < SECONDS]
    users = rng.zipf(1.3, len(stamps)) % 5000
    ops = np.where(rng.random(len(stamps)) < 0.1, "checkout", "browse")
    out = Path(__file__).with_name("checkout.csv")
    with out.open("w", encoding="utf-8") as fh:
        fh.write("timestamp_ms,op,user_id\n")
        for s, o, u in zip(stamps, ops, users, strict=True):
            fh.write(f"{s:.0f},{o},{u}\n")
    print(f"{out}: {len(stamps)} rows")


if __name__ == "__main__":
    main()
