"""Charts that tell the truth at a glance: nothing drawn of zeros only; differences of very
different magnitudes stay apart."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from simulator.analysis.plots import comparison_chart, plot_directory

VARIANTS = ["base", "huge", "medium", "small", "tiny"]


def comparison(metric: str, diffs: list[float], half: float = 0.2) -> pd.DataFrame:
    """A comparison table: the baseline and four variants with the given paired differences
    (seconds), each interval +-``half`` of its difference."""
    rows = []
    for v, d in zip(VARIANTS, [0.0, *diffs], strict=True):
        rows.append({"metric": metric, "scope": "workload", "name": "web", "variant": v,
                     "rank": len(rows) + 1, "mean": 0.1 + d, "low": 0.09 + d, "high": 0.11 + d,
                     "diff": d, "diff_low": d - abs(d) * half, "diff_high": d + abs(d) * half,
                     "significant": d != 0})
    return pd.DataFrame(rows)


def test_a_huge_difference_does_not_flatten_the_others() -> None:
    """+12,500 ms beside +74, -20 and +3 ms: on the chart, each of the small ones is at least
    15 pixels from zero and from each other (on a linear axis they would be within 1 pixel)."""
    table = comparison("p99", [12.5, 0.074, -0.020, 0.003])
    ax = comparison_chart(table, "p99", difference=True, baseline="base")
    ax.figure.canvas.draw()
    assert ax.get_xscale() == "symlog"
    ms = np.array([12500.0, 74.0, -20.0, 3.0, 0.0])
    px = ax.transData.transform(np.column_stack([ms, np.zeros(5)]))[:, 0]
    small = px[1:]  # 74, -20, 3 and the zero line
    gaps = np.abs(small[:, None] - small[None, :])[np.triu_indices(len(small), 1)]
    assert gaps.min() >= 15, gaps
    labels = {t.get_text() for t in ax.texts}
    assert {"+12,500", "+74", "-20", "+3"} <= labels  # each difference is written beside it


def test_differences_of_one_magnitude_keep_a_linear_axis() -> None:
    ax = comparison_chart(comparison("p99", [0.010, 0.020, -0.015, 0.005]), "p99",
                          difference=True, baseline="base")
    assert ax.get_xscale() == "linear"


def test_no_chart_is_written_whose_every_value_is_zero(tmp_path: Path) -> None:
    zero = comparison("error_ratio", [0.0, 0.0, 0.0, 0.0])
    zero[["mean", "low", "high"]] = 0.0
    table = pd.concat([comparison("p99", [0.01, 0.02, 0.03, 0.04]), zero])
    table.to_parquet(tmp_path / "comparison.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "compare", "baseline": "base",
                                                        "confidence": 0.95}))
    names = {p.stem for p in plot_directory(tmp_path)}
    assert names == {"comparison_p99", "comparison_p99_difference"}


def test_share_plot_compares_a_mixed_speed_fleet_with_its_capacity_split() -> None:
    from types import SimpleNamespace

    import simulator
    from simulator.components.load_balancer.plots import capacity_split

    root = Path(__file__).resolve().parents[1]
    mixed = simulator.load_scenario(root / "scenarios" / "lb_strategies.yaml")
    share = pd.DataFrame({"balancer": ["lb"] * 8, "backend": [f"api[{i}]" for i in range(8)],
                          "routed": 1, "share": 1 / 8})
    split = capacity_split(SimpleNamespace(scenario=mixed), share)
    assert split is not None
    np.testing.assert_allclose(split, np.array([2, 2, 1, 1, 1, 1, 0.5, 0.5]) / 9)
    even = simulator.load_scenario(root / "scenarios" / "quickstart.yaml")
    four = share.iloc[:4]
    assert capacity_split(SimpleNamespace(scenario=even), four) is None  # the even split says it
