"""Hand-written promtool tests of generated rules (issue 14): tests/system/promtool/boundaries.yaml
is a small shop spec (not the demo) with one alert of every kind (thresholds, count, ratio,
absent, no-increase, anomaly, forecast, and the ratio, latency and freshness SLOs' page burn);
boundaries.test.yaml probes each at its bound with series and expected alerts written by hand.
The rules come from the generator now; the expectations never do. Then the threshold mutations
issue 14 names (and the like for the other kinds), applied by hand to the generated rule text,
each fail those tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import tool
from support.rules import generate

HERE = Path(__file__).resolve().parent / "promtool"
SPEC = HERE / "boundaries.yaml"
TESTS = HERE / "boundaries.test.yaml"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rules generated from the spec, once for the module."""
    out = tmp_path_factory.mktemp("boundaries") / "rules"
    result = generate(SPEC, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture
def rules(generated: Path, tmp_path: Path) -> Path:
    """A copy of the generated rules for one test, with the hand-written tests beside them."""
    out = tmp_path / "rules"
    shutil.copytree(generated, out)
    shutil.copy(TESTS, out / TESTS.name)
    return out


def promtool_test(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=900,  # the whole file takes about 70 s of CPU
    )


def test_hand_written_boundary_tests_pass(rules: Path) -> None:
    result = promtool_test(rules / TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


Edit = tuple[str, str, int]  # generated text, mutated text, times it occurs in the rule

# the page's minimum-traffic guard, and the form it had before (avg_over_time(...) * window)
YOUNG_GUARD = "sum_over_time(job:{SLO}:event_sample_rate5m[1h:5m]) * 300 >= 60\n"
OLD_GUARD = "avg_over_time(job:{SLO}:event_sample_rate5m[1h]) * 3600 >= 60\n"
LATENCY_SLO, RATIO_SLO = "pack_seconds_latency", "checkout_success"

# (case, rule, edits): bugs a generator could have, each applied by hand to the generated rule
# files. The "threshold" cases are issue 14's: the operator turned inclusive, the bound
# halved (in the expression and the wording), the bound halved with the summary unchanged.
# BacklogHigh has a hand-written summary, so its two halvings are one.
MUTATIONS: list[tuple[str, str, list[Edit]]] = [
    (
        "threshold: > turned >=",
        "BacklogHigh",
        [('backlog{job="shop-kpis"} > 40\n', 'backlog{job="shop-kpis"} >= 40\n', 1)],
    ),
    (
        "threshold: bound halved",
        "BacklogHigh",
        [('backlog{job="shop-kpis"} > 40\n', 'backlog{job="shop-kpis"} > 20\n', 1)],
    ),
    (
        "threshold: < turned <=",
        "BacklogLow",
        [('backlog{job="shop-kpis"} < 5\n', 'backlog{job="shop-kpis"} <= 5\n', 1)],
    ),
    (
        "threshold: bound halved, wording too",
        "BacklogLow",
        [
            ('backlog{job="shop-kpis"} < 5\n', 'backlog{job="shop-kpis"} < 2.5\n', 1),
            ("Backlog is below 5.", "Backlog is below 2.5.", 1),
            ("info threshold of 5 (", "info threshold of 2.5 (", 1),
        ],
    ),
    (
        "threshold: bound halved, summary unchanged",
        "BacklogLow",
        [('backlog{job="shop-kpis"} < 5\n', 'backlog{job="shop-kpis"} < 2.5\n', 1)],
    ),
    ("count: > turned >=", "RefundBurst", [("[5m]))) > 5\n", "[5m]))) >= 5\n", 1)]),
    ("count: bound halved", "RefundBurst", [("[5m]))) > 5\n", "[5m]))) > 2.5\n", 1)]),
    (
        "count: increase not floored",
        "RefundBurst",
        [("floor(increase(refunds_total", "(increase(refunds_total", 1)],
    ),
    (
        "ratio: < turned <=",
        "CheckoutsFailing",
        [("ratio_rate5m < 0.8 and", "ratio_rate5m <= 0.8 and", 1)],
    ),
    (
        "ratio: bound halved",
        "CheckoutsFailing",
        [("ratio_rate5m < 0.8 and", "ratio_rate5m < 0.4 and", 1)],
    ),
    (
        "ratio: min_events >= turned >",
        "CheckoutsFailing",
        [("events_rate5m * 300 >= 60", "events_rate5m * 300 > 60", 1)],
    ),
    (
        "ratio: min_events halved",
        "CheckoutsFailing",
        [("events_rate5m * 300 >= 60", "events_rate5m * 300 >= 30", 1)],
    ),
    (
        "burn: > turned >=",
        "CheckoutSuccessErrorBudgetBurn",
        [("> 0.9\n", ">= 0.9\n", 2)],
    ),
    (
        "burn: factor halved",
        "CheckoutSuccessErrorBudgetBurn",
        [("> 0.9\n", "> 0.45\n", 2)],
    ),
    ("anomaly: z > turned >=", "BacklogAnomaly", [(") > 3 * job:", ") >= 3 * job:", 1)]),
    ("anomaly: z halved", "BacklogAnomaly", [(") > 3 * job:", ") > 1.5 * job:", 1)]),
    (
        "anomaly: min_change > turned >=",
        "BacklogAnomaly",
        [(") > 0.2 * abs(", ") >= 0.2 * abs(", 1)],
    ),
    ("anomaly: wrong hour", "BacklogAnomaly", [("offset 90m", "offset 60m", 4)]),
    ("forecast: > turned >=", "BacklogPredictedHigh", [("1920) > 100\n", "1920) >= 100\n", 1)]),
    ("forecast: limit halved", "BacklogPredictedHigh", [("1920) > 100\n", "1920) > 50\n", 1)]),
    (
        "forecast: near > turned >=",
        "BacklogPredictedHigh",
        [('backlog{job="shop-kpis"} > 60', 'backlog{job="shop-kpis"} >= 60', 1)],
    ),
    ("absent: for halved", "BacklogAbsent", [("for: 10m\n", "for: 5m\n", 1)]),
    ("no increase: window halved", "RefundsNotIncreasing", [("[30m])) == 0", "[15m])) == 0", 1)]),
    # the burn factor is written by the one function every SLO kind shares: halving it is
    # probed on the ratio's SLO above (each SLO group costs about 20 s of promtool's CPU)
    (
        "latency burn: > turned >=",
        "PackLatencyBudgetBurn",
        [("> 0.9\n", ">= 0.9\n", 2)],
    ),
    # the minimum-traffic guard as it was: the mean sampled rate times the whole window, which
    # counts a series younger than the window as if it had had that rate all along
    (
        "latency burn: young series' events read over the whole window",
        "PackLatencyBudgetBurn",
        [(YOUNG_GUARD.format(SLO=LATENCY_SLO), OLD_GUARD.format(SLO=LATENCY_SLO), 1)],
    ),
    (
        "burn: young series' events read over the whole window",
        "CheckoutSuccessErrorBudgetBurn",
        [(YOUNG_GUARD.format(SLO=RATIO_SLO), OLD_GUARD.format(SLO=RATIO_SLO), 1)],
    ),
    # a recording rule, checked by the test's promql_expr_test of it
    ("freshness: < turned <=", "job:shipped_freshness:fresh", [("< bool 300", "<= bool 300", 1)]),
    ("freshness: max_age halved", "job:shipped_freshness:fresh", [("< bool 300", "< bool 150", 1)]),
]


def _mutate(text: str, rule: str, old: str, new: str, count: int) -> tuple[str, int]:
    """`text` with `old` replaced by `new` inside the alerting or recording rules named `rule`,
    and how many replacements were made; in each such rule `old` occurs `count` times or not
    at all (the caller fails a mutation that does not apply)."""
    blocks = text.split("\n  - ")
    hits = 0
    for index, block in enumerate(blocks):
        if block.startswith((f"alert: {rule}\n", f"record: {rule}\n")):
            assert block.count(old) in (0, count), (rule, old, block)
            hits += block.count(old)
            blocks[index] = block.replace(old, new)
    return "\n  - ".join(blocks), hits


def _tests_of(rule: str) -> dict:
    """The hand-written test file cut down to the groups that check `rule` (an alert, or a
    recording rule queried by a promql_expr_test)."""
    document = yaml.safe_load(TESTS.read_text())
    document["tests"] = [
        group
        for group in document["tests"]
        if any(check["alertname"] == rule for check in group.get("alert_rule_test", []))
        or any(check["expr"] == rule for check in group.get("promql_expr_test", []))
    ]
    assert document["tests"], rule
    return document


@pytest.mark.parametrize(
    ("rule", "edits"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_mutated_rules_fail_the_hand_written_tests(
    rules: Path, rule: str, edits: list[Edit]
) -> None:
    for old, new, count in edits:
        hits = 0
        for name in ("prometheus_alerts.yaml", "prometheus_rules.yaml"):
            text, found = _mutate((rules / name).read_text(), rule, old, new, count)
            (rules / name).write_text(text)
            hits += found
        assert hits >= count, f"{old!r} is not in the generated {rule} rule: update the mutation"
    path = rules / "mutant.test.yaml"
    path.write_text(yaml.safe_dump(_tests_of(rule)))
    result = promtool_test(path)
    output = result.stdout + result.stderr
    # the rules load and the tests run: one of `rule`'s checks expected other alerts or values
    # than it got (a rule that fails to load or a missing file would also exit 1, without these)
    assert result.returncode == 1, output
    checked = f"alertname: {rule}," if ":" not in rule else f'expr: "{rule}"'
    assert checked in output and "got:" in output, (edits, output)
