"""Rules and dashboards of KPIs on several databases: failing and stale alerts per database,
thresholds over the value summed across databases, a $database variable on the dashboards."""

from __future__ import annotations

from pathlib import Path

from support.dashboards import demo_spec
from support.many_databases import many_databases

from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.rendering import render_board
from exporter.generation.rules.health import health_rules
from exporter.generation.rules.thresholds import threshold_alert
from exporter.spec.labels import ratio_labels, ratio_level
from exporter.spec.loading import load_spec
from exporter.spec.model import Spec


def test_thresholds_judge_the_sum_over_databases(tmp_path: Path) -> None:
    _, spec = many_databases(tmp_path)
    gauge, counter = spec.kpi("open_orders"), spec.kpi("signups_total")
    assert threshold_alert(spec, gauge, gauge.alerts[0]).expr == (
        'sum without (instance, database, region) (open_orders{job="kpi-exporter"}) > 100'
    )
    assert threshold_alert(spec, counter, counter.alerts[0]).expr == (
        'sum without (instance, database) (rate(signups_total{job="kpi-exporter"}[5m])) < 0.5'
    )


def test_a_threshold_by_the_database_label_stays_per_database(tmp_path: Path) -> None:
    path, _ = many_databases(tmp_path)
    path.write_text(
        path.read_text().replace(
            "alerts: [{severity: warning, above: 100, for: 5m}]",
            "alerts: [{severity: warning, above: 100, for: 5m, by: [database]}]",
        )
    )
    spec = load_spec([path], env={}).spec
    gauge = spec.kpi("open_orders")
    assert threshold_alert(spec, gauge, gauge.alerts[0]).expr == (
        'max by (job, database) (open_orders{job="kpi-exporter"}) > 100'
    )


def test_failing_and_stale_alerts_per_database(tmp_path: Path) -> None:
    _, spec = many_databases(tmp_path)
    failing = [r for r in health_rules(spec) if r.alert == "KpiExporterKpiFailing"]
    by_database = {r.label("database"): r.expr for r in failing}
    # the spanning KPIs' rule sets no database: each alert keeps its series' own
    assert by_database == {
        None: 'kpi_exporter_kpi_up{job="kpi-exporter", kpi=~"open_orders|signups_total"} == 0',
        "app": 'kpi_exporter_kpi_up{job="kpi-exporter", kpi=~"queue_depth"} == 0',
    }


def test_database_variable_and_panel_selectors(tmp_path: Path) -> None:
    _, spec = many_databases(tmp_path)
    rendered = [render_board(board) for board in boards(spec)]
    for board in rendered:
        variables = [v["name"] for v in board["templating"]["list"]]
        assert variables == ["datasource", "job", "instance", "database"], board["title"]
    exprs = [
        target["expr"]
        for board in rendered
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    gauge = [e for e in exprs if "open_orders{" in e]
    assert (
        'sum(max by (database) (open_orders{job=~"$job", instance=~"$instance", '
        'database=~"$database"}))' in gauge
    )
    assert all('database=~"$database"' in e for e in exprs if "signups_total{" in e)
    assert all("$database" not in e for e in exprs if "queue_depth{" in e)


def test_no_database_variable_without_a_kpi_on_several() -> None:
    for board in boards(demo_spec()):
        names = [v["name"] for v in render_board(board)["templating"]["list"]]
        assert "database" not in names


def panel_exprs(spec: Spec, prefix: str) -> dict[str, list[str]]:
    """Each panel's target expressions, by key, for the panels whose key starts with prefix."""
    return {
        panel.key: [t.expr for t in panel.targets]
        for board in boards(spec)
        for row in board.rows
        for panel in row.panels
        if panel.key.startswith(prefix)
    }


def with_ratios(tmp_path: Path) -> Spec:
    return load_spec([with_ratios_file(tmp_path)], env={}).spec


def with_ratios_file(tmp_path: Path) -> Path:
    """The many-databases spec plus two ratios: paid_share of counters that both span the
    tenants, app_paid_share of a spanning counter over one on the app database."""
    path, _ = many_databases(tmp_path)
    counters = (
        "  - {name: paid_total, type: counter, database: 'tenant_*', interval: 1m,"
        " labels: [plan], query: 'SELECT plan, 1 AS value FROM paid'}\n"
        "  - {name: app_signups_total, type: counter, database: app, interval: 1m,"
        " labels: [plan], query: 'SELECT plan, 1 AS value FROM signups'}\n"
        "ratios:\n"
        "  - {name: paid_share, good: paid_total, total: [signups_total]}\n"
        "  - {name: app_paid_share, good: paid_total, total: [app_signups_total]}\n"
    )
    path.write_text(path.read_text() + counters)
    return path


def test_a_ratio_is_per_database_only_when_all_its_counters_span_them(tmp_path: Path) -> None:
    spec = with_ratios(tmp_path)
    both, mixed = spec.ratios
    assert ratio_level(spec, both) is None  # sum without (instance): one ratio per tenant
    assert ratio_labels(spec, both) == ["job", "database", "service", "plan"]
    assert ratio_level(spec, mixed) == ["job", "service", "plan"]  # databases summed away


def test_the_target_panel_follows_the_database_variable(tmp_path: Path) -> None:
    """A KPI's "vs target" stat judges the databases the dashboard shows, like its other
    panels: before, it summed every database whatever $database selected."""
    path, _ = many_databases(tmp_path)
    text = path.read_text()
    text = text.replace(
        "alerts: [{severity: warning, rate: 5m, below: 0.5, for: 10m}]",
        "alerts: [{severity: warning, rate: 5m, below: 0.5, for: 10m}]\n"
        "    target: {value: 2, direction: above}",
    )
    text = text.replace(
        "    database: [eu, us]\n    interval: 1m\n    query: SELECT 1 AS value\n",
        "    database: [eu, us]\n    interval: 1m\n    labels: [status]\n"
        "    query: SELECT status, 1 AS value FROM orders\n"
        "    target: {value: 50, direction: below}\n",
    )
    text += (
        "  - {name: checkout_seconds, type: histogram, database: 'tenant_*', interval: 1m,"
        " cursor: id, buckets: [0.5, 1], target: {value: 1, direction: below},"
        " query: 'SELECT id, seconds AS value FROM checkouts WHERE id > :cursor"
        " ORDER BY id LIMIT :batch'}\n"
    )
    path.write_text(text)
    spec = load_spec([path], env={}).spec
    targets = panel_exprs(spec, "target/")
    assert sorted(targets) == [
        "target/checkout_seconds",
        "target/open_orders",
        "target/signups_total",
    ]
    assert targets["target/signups_total"] == [
        'sum(rate(signups_total{job=~"$job", instance=~"$instance", database=~"$database"}'
        "[$__rate_interval]))"
    ]
    assert targets["target/open_orders"] == [
        'sum(max by (database) (open_orders{job=~"$job", instance=~"$instance", '
        'database=~"$database"}))'
    ]
    assert targets["target/checkout_seconds"] == [
        "histogram_quantile(0.95, sum by (le) (rate(checkout_seconds_bucket"
        '{job=~"$job", instance=~"$instance", database=~"$database"}[$__rate_interval])))'
    ]


def test_a_per_database_ratio_follows_the_database_variable(tmp_path: Path) -> None:
    """A ratio recorded per database (all its counters span them) filters by $database in its
    gauge and trend, like its counters' panels; one summed over databases does not. Before,
    both summed every database whatever the variable selected."""
    spec = with_ratios(tmp_path)
    exprs = panel_exprs(spec, "ratio/")
    matchers = '{job=~"$job", instance=~"$instance", database=~"$database"}'
    assert exprs["ratio/paid_share/value"] == [
        f"(sum(rate(paid_total{matchers}[5m])) or vector(0)) / "
        f"(sum(rate(signups_total{matchers}[5m])) or vector(0))"
    ]
    assert exprs["ratio/paid_share/trend"] == [
        'job:paid_share:ratio_rate5m{job=~"$job", database=~"$database"}'
    ]
    assert all("$database" not in e for e in exprs["ratio/app_paid_share/trend"])
    assert all("$database" not in e for e in exprs["ratio/app_paid_share/value"])


def test_slo_panels_of_a_kpi_or_ratio_on_several_databases_follow_the_variable(
    tmp_path: Path,
) -> None:
    """The SLO rows of a per-database ratio, a histogram and a freshness SLO on several
    databases filter their recorded series by $database (freshness by the self-metrics'
    `database` label); before, each summed every database whatever the variable selected."""
    path = with_ratios_file(tmp_path)
    text = path.read_text().replace(
        "  - {name: paid_share, good: paid_total, total: [signups_total]}\n",
        "  - {name: paid_share, good: paid_total, total: [signups_total],"
        " slo: {objective: 99, period: 30d}}\n",
    )
    text = text.replace(
        "kpis:\n",
        "kpis:\n"
        "  - {name: checkout_seconds, type: histogram, database: 'tenant_*', interval: 1m,"
        " cursor: id, buckets: [0.5, 1], slo: {objective: 0.95, latency: 1s, window: 28d},"
        " freshness: {max_age: 5m, objective: 0.999},"
        " query: 'SELECT id, seconds AS value FROM checkouts WHERE id > :cursor"
        " ORDER BY id LIMIT :batch'}\n",
    )
    path.write_text(text)
    spec = load_spec([path], env={}).spec
    exprs = panel_exprs(spec, "slo/")
    assert sorted({key.rsplit("/", 1)[0] for key in exprs}) == [
        "slo/checkout_seconds-freshness",
        "slo/checkout_seconds-latency",
        "slo/paid_share",
    ]
    assert exprs["slo/paid_share/budget"] == [
        'job:paid_share:error_budget_remaining{job=~"$job", database=~"$database"}'
    ]
    read = [e for key, es in exprs.items() if not key.endswith("/objective") for e in es]
    assert len(read) == 12  # SLI, budget and two page windows of burn, for each of three
    assert all('database=~"$database"' in e for e in read), read
