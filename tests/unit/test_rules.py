"""Generated Prometheus rules in-process: the demo's alerts cover the brief, output is
deterministic and independent of KPI order."""

from __future__ import annotations

from pathlib import Path

from support.rules import COMMITTED, RICH, rule_groups

from exporter.generation.rule_files import render_files
from exporter.spec.loading import load_spec
from exporter.spec.model import Spec


def _spec(tmp_path: Path, text: str) -> Spec:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return load_spec([path]).spec


def test_demo_covers_the_brief_alerts() -> None:
    alerts: dict[str, list[dict]] = {}
    for group in rule_groups(COMMITTED):
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.setdefault(rule["alert"], []).append(rule)
    expected = {
        "HighErrorRate": ("rate(errors_total", "[5m])) > 10", "5m", "warning"),
        "CriticalErrorRate": ('severity="critical"', "[5m])) > 1", "1m", "critical"),
        "HighQueueFailureRate": ("rate(queue_failures_total", "[5m])) > 5", "5m", "warning"),
        "PaymentFailures": ("floor(increase(payment_failures", "[5m]))) > 3", "1m", "critical"),
        "LowGenerationSuccessRate": ("job:generation_success:ratio_rate5m", "< 0.95", "2m", None),
        "HighResponseTime": ("histogram_quantile(0.95", "> 2", "5m", "warning"),
        "KpiExporterDown": ('up{job="kpi-exporter"}', "== 0", "1m", "critical"),
        "GenerationSuccessErrorBudgetBurn": ("error_ratio_rate1h", "> 0.72\n", None, None),
    }
    for name, (part, bound, wait, severity) in expected.items():
        rule = next(r for r in alerts[name] if part in r["expr"] and bound in r["expr"])
        assert part in rule["expr"] and bound in rule["expr"], (name, rule["expr"])
        if wait:
            assert rule["for"] == wait, name
        if severity:
            assert rule["labels"]["severity"] == severity, name


def test_output_is_deterministic_and_order_free(tmp_path: Path) -> None:
    spec = _spec(tmp_path, RICH)
    again = render_files(spec)
    assert render_files(spec) == again
    shuffled = spec.model_copy(update={"kpis": list(reversed(spec.kpis))})
    shuffled = shuffled.model_copy(update={"ratios": list(reversed(spec.ratios))})
    assert render_files(shuffled) == again
