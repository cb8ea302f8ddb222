"""Complete reports: each scenario's report holds the tables that make the scenario what it is,
``compare`` and ``sweep`` write reports, and no report overflows the page in a real browser.

The layout check renders each report in headless Chromium (Debian's ``chromium`` package;
``make check-reports`` installs it when missing) at a laptop's and a narrow window's width, and
reads back, from a script run in the page, every element wider than the page and every table
not inside a box that scrolls. Without Chromium the check is skipped, said in the skip reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import simulator
from simulator.analysis.experiment_report import comparison_html, sweep_html
from simulator.analysis.report import report_html
from simulator.cli import main
from simulator.experiment import ExperimentOptions, compare, sweep

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["duration=12s", "warmup=2s", "faults=[]"]  # kind tables do not need the faults

#: The kind-specific tables each scenario's report must hold (their declared titles).
EXPECTED = {
    "order_pipeline.yaml": ["Queues (e2e"],
    "cache_aside.yaml": ["Caches (measured window"],
    "sharding.yaml": ["Per-shard load"],
    "multi_region.yaml": ["Client regions"],
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run reports of the four scenarios, a compare report and a sweep report."""
    out = tmp_path_factory.mktemp("reports")
    paths = {}
    for name in EXPECTED:
        r = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / name, SHORT))
        paths[name] = out / f"{name}.html"
        paths[name].write_text(report_html(r), encoding="utf-8")
    serial = ExperimentOptions(executor="serial", progress=False)
    cmp = compare(ROOT / "scenarios" / "cache_aside.yaml", replications=2, overrides=SHORT,
                  options=serial)
    paths["compare"] = out / "compare.html"
    paths["compare"].write_text(comparison_html(cmp), encoding="utf-8")
    swp = sweep(ROOT / "scenarios" / "quickstart.yaml",
                {"workloads.shoppers.arrivals.rate": ["100/s", "300/s"]}, replications=2,
                overrides=SHORT, options=serial)
    paths["sweep"] = out / "sweep.html"
    paths["sweep"].write_text(sweep_html(swp), encoding="utf-8")
    return paths


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_run_report_holds_its_kind_specific_tables(reports: dict[str, Path],
                                                     name: str) -> None:
    text = reports[name].read_text(encoding="utf-8")
    headings = re.findall(r"<h3>(.*?)</h3>", text)
    for title in EXPECTED[name]:
        assert any(h.startswith(title) for h in headings), (title, headings)


def test_the_compare_report_ranks_pairs_and_charts(reports: dict[str, Path]) -> None:
    text = reports["compare"].read_text(encoding="utf-8")
    for section in ("Variants", "Stability", "Ranking", "Charts", "Scenario"):
        assert f">{section}</h2>" in text
    assert "(baseline)" in text and "difference 95% CI" in text
    assert text.count("<img") >= 2  # means and paired differences
    assert "components.user-cache.policy=lfu" in text  # a variant's override


def test_the_sweep_report_lists_every_point(reports: dict[str, Path]) -> None:
    text = reports["sweep"].read_text(encoding="utf-8")
    assert "100/s" in text and "300/s" in text and "<img" in text
    assert "steady" in text and '<h2 id="scenario">' in text and "name: quickstart" in text


def test_compare_and_sweep_write_reports_from_the_cli(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cmp_report = tmp_path / "c.html"
    code = main(["compare", str(ROOT / "scenarios" / "cache_aside.yaml"), "-n", "2",
                 "--executor", "serial", "--no-progress", "--report", str(cmp_report),
                 *(a for s in SHORT for a in ("--set", s))])
    assert code == 0, capsys.readouterr().err
    assert "<h2 id=\"ranking\">" in cmp_report.read_text(encoding="utf-8")
    out = tmp_path / "sweep"
    code = main(["sweep", str(ROOT / "scenarios" / "quickstart.yaml"), "-n", "1", "--no-cache",
                 "--executor", "serial", "--no-progress", "--grid",
                 "workloads.shoppers.arrivals.rate=100/s,200/s", "--out", str(out), "--report",
                 *(a for s in SHORT for a in ("--set", s))])
    assert code == 0, capsys.readouterr().err
    assert (out / "report.html").is_file() and (out / "manifest.json").is_file()


def test_a_bad_report_path_is_refused_before_the_runs(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare", str(ROOT / "scenarios" / "cache_aside.yaml"), "--report",
                 str(tmp_path / "report.txt")])
    assert code == 2
    assert "give a name ending in .html" in capsys.readouterr().err


#: Run in the page once it is laid out: what sticks out of the page, and tables outside a box
#: that scrolls (a wide table must scroll inside its own box, never push the page wider).
_PROBE = """<script>
window.addEventListener('load', () => {
  const page = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > page + 1
                 && !e.closest('.table-wrap, pre'))
    .map(e => e.tagName + (e.className ? '.' + e.className : ''));
  const loose = [...document.querySelectorAll('table')]
    .filter(t => !t.parentElement.classList.contains('table-wrap')).length;
  document.body.setAttribute('data-layout', JSON.stringify(
    {wide: wide.slice(0, 10), loose: loose, page: page,
     scroll: document.documentElement.scrollWidth}));
});
</script>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None,
                    reason="no headless Chromium (apt-get install chromium; make check-reports)")
@pytest.mark.parametrize("width", [1400, 800])
def test_no_report_overflows_its_box_in_a_real_browser(reports: dict[str, Path], width: int,
                                                       tmp_path: Path) -> None:
    for name, path in reports.items():
        probed = tmp_path / f"{path.stem}.html"
        probed.write_text(path.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                          encoding="utf-8")
        dom = subprocess.run(
            [str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu",
             f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom",
             probed.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
        found = re.search(r"data-layout=\"([^\"]*)\"", dom)
        assert found, f"{name}: the probe did not run"
        layout = json.loads(found.group(1).replace("&quot;", '"'))
        assert layout["loose"] == 0, f"{name}: tables outside a scrolling box"
        assert layout["wide"] == [], f"{name} at {width}px: {layout['wide']}"
        assert layout["scroll"] <= layout["page"], f"{name} at {width}px: the page scrolls"


def test_the_sweep_chart_draws_one_curve_per_metric_not_per_steady_flag() -> None:
    """``Sweep.intervals()`` carries a ``steady`` column: it is a verdict, not a swept
    parameter, so it splits no curve and names no legend entry."""
    from matplotlib.figure import Figure

    from simulator.analysis.plots import latency_vs_load

    swp = sweep(ROOT / "scenarios" / "quickstart.yaml",
                {"workloads.shoppers.arrivals.rate": ["100/s", "300/s"]}, replications=2,
                overrides=SHORT, options=ExperimentOptions(executor="serial", progress=False))
    ax = latency_vs_load(swp, metrics=("p50", "p99"), ax=Figure().subplots())
    assert sorted(ln.get_label() for ln in ax.lines) == ["p50", "p99"]


def test_a_kind_table_shows_the_same_cells_in_the_report_and_the_terminal(
        reports: dict[str, Path]) -> None:
    """One source for both: the report renders the frame the terminal prints (units in the
    headers: the queues' end-to-end times in ms, as every latency shown to a person)."""
    from simulator import registry

    r = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "order_pipeline.yaml",
                                                   SHORT))
    declared = registry.derived_tables()["queue_summary"]
    frame = declared.display(declared.table(r))
    assert "e2e_p99_ms" in frame.columns and "e2e_p99" not in frame.columns
    text = reports["order_pipeline.yaml"].read_text(encoding="utf-8")
    assert "<th>e2e_p99_ms</th>" in text
    for cell in frame["e2e_p99_ms"]:
        assert f"<td>{cell}</td>" in text
        assert cell in declared.text(declared.table(r))
