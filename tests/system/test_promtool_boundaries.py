"""Hand-written promtool tests of generated rules (issue 14): tests/system/promtool/boundaries.yaml
is a small shop spec (not the demo) with one alert of every kind, boundaries.test.yaml probes
each at its bound with series and expected alerts written by hand. The rules come from the
generator now; the expectations never do. Then the threshold mutations issue 14 names (and the
like for the other kinds), applied by hand to the generated rule text, each fail those tests."""

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
        timeout=300,
    )


def test_hand_written_boundary_tests_pass(rules: Path) -> None:
    result = promtool_test(rules / TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


Edit = tuple[str, str, int]  # generated text, mutated text, times it occurs in the rule

# (case, alert, edits): bugs a generator could have, each applied by hand to the generated
# alerts file. The "threshold" cases are issue 14's: the operator turned inclusive, the bound
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
        [("> (14.4 * 0.0625)", ">= (14.4 * 0.0625)", 2)],
    ),
    (
        "burn: factor halved",
        "CheckoutSuccessErrorBudgetBurn",
        [("> (14.4 * 0.0625)", "> (7.2 * 0.0625)", 2)],
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
]


def _mutate(text: str, alert: str, old: str, new: str, count: int) -> str:
    """`text` with `old` replaced by `new` inside `alert`'s rules only; the mutation must apply
    exactly `count` times in each rule of that name (a mutation that does not apply fails)."""
    blocks = text.split("\n  - ")
    hits = 0
    for index, block in enumerate(blocks):
        if block.startswith(f"alert: {alert}\n"):
            assert block.count(old) in (0, count), (alert, old, block)
            hits += block.count(old)
            blocks[index] = block.replace(old, new)
    assert hits >= count, f"{old!r} is not in the generated {alert} rule: update the mutation"
    return "\n  - ".join(blocks)


def _tests_of(alert: str) -> dict:
    """The hand-written test file cut down to the groups that check `alert`."""
    document = yaml.safe_load(TESTS.read_text())
    document["tests"] = [
        group
        for group in document["tests"]
        if any(check["alertname"] == alert for check in group.get("alert_rule_test", []))
    ]
    assert document["tests"], alert
    return document


@pytest.mark.parametrize(
    ("alert", "edits"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_mutated_rules_fail_the_hand_written_tests(
    rules: Path, alert: str, edits: list[Edit]
) -> None:
    alerts = rules / "prometheus_alerts.yaml"
    original = alerts.read_text()
    text = original
    for old, new, count in edits:
        text = _mutate(text, alert, old, new, count)
    alerts.write_text(text)
    path = rules / "mutant.test.yaml"
    path.write_text(yaml.safe_dump(_tests_of(alert)))
    result = promtool_test(path)
    output = result.stdout + result.stderr
    # the rules load and the tests run: one of `alert`'s checks expected other alerts than it
    # got (a rule that fails to load or a missing file would also exit 1, without these)
    assert result.returncode == 1, output
    assert f"alertname: {alert}," in output and "got:" in output, (edits, output)
