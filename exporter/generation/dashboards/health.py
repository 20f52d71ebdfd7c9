"""The exporter's own health dashboard: targets, KPI polls, query latency and errors,
databases and spec reloads."""

from __future__ import annotations

from exporter.conventions import REASONS
from exporter.conventions import SelfMetric as M
from exporter.generation.dashboards.model import HEALTH_UID, OK, Board, Panel, Row, Target
from exporter.generation.dashboards.queries import quantile, rate, selector

UP_MAP = (("0", "down", "red"), ("1", "up", OK))
OK_MAP = (("0", "failed", "red"), ("1", "ok", OK))


def health_board() -> Board:
    """The exporter's own health: targets, KPI polls, query latency and errors, databases."""
    return Board(
        uid=HEALTH_UID,
        title="KPI exporter health",
        description="The exporter's own health: targets, KPI polls, query latency and errors, "
        "databases and spec reloads.",
        rows=(_targets_row(), _polls_row()),
        time_from="now-6h",
    )


def _targets_row() -> Row:
    """Targets up, databases up, the last spec reload and its age."""
    return Row(
        "Targets",
        (
            Panel(
                "health/up",
                "stat",
                "Targets up",
                "Prometheus' up series for each exporter target: down means scrapes fail.",
                (Target(f"max by (instance) ({selector('up')})", "{{instance}}"),),
                width=6,
                steps=((None, "red"), (1.0, OK)),
                mappings=UP_MAP,
            ),
            Panel(
                "health/databases",
                "stat",
                "Databases up",
                "1 if the exporter's last attempt to reach the database succeeded.",
                (Target(f"min by (database) ({selector(M.DATABASE_UP)})", "{{database}}"),),
                width=6,
                steps=((None, "red"), (1.0, OK)),
                mappings=UP_MAP,
            ),
            Panel(
                "health/reload",
                "stat",
                "Last spec reload",
                "Whether the last load of the spec succeeded (a failed reload keeps the old one).",
                (
                    Target(
                        f"min by (instance) ({selector(M.RELOAD_OK)})",
                        "{{instance}}",
                    ),
                ),
                width=6,
                steps=((None, "red"), (1.0, OK)),
                mappings=OK_MAP,
            ),
            Panel(
                "health/reload-age",
                "stat",
                "Since last successful reload",
                "Time since the spec was last loaded successfully.",
                (
                    Target(
                        "time() - max by (instance) (" + selector(M.RELOAD_TIME) + ")",
                        "{{instance}}",
                    ),
                ),
                unit="s",
                width=6,
            ),
        ),
    )


def _polls_row() -> Row:
    """KPI polls: up, age of the last success, query p95, errors, series, cursor rows (a
    declarative list, one Panel per entry: long, not complex)."""
    return Row(
        "KPI polls",
        (
            Panel(
                "health/kpi-up",
                "stat",
                "KPI queries up",
                "1 if the KPI's last poll succeeded; a failing KPI keeps serving its last good "
                "values.",
                (Target(f"min by (kpi) ({selector(M.KPI_UP)})", "{{kpi}}"),),
                width=12,
                steps=((None, "red"), (1.0, OK)),
                mappings=OK_MAP,
            ),
            Panel(
                "health/last-success-age",
                "bargauge",
                "Since last successful poll",
                "Age of each KPI's last good result; grows when its query fails.",
                (
                    Target(
                        "time() - max by (kpi) (" + selector(M.LAST_SUCCESS) + ")",
                        "{{kpi}}",
                    ),
                ),
                unit="s",
                width=12,
            ),
            Panel(
                "health/query-p95",
                "timeseries",
                "Query duration p95 by KPI",
                "95th percentile of each KPI's query time on its connection.",
                (
                    Target(
                        quantile(0.95, selector(M.QUERY_DURATION + "_bucket"), ["kpi"]),
                        "{{kpi}}",
                    ),
                ),
                unit="s",
                width=12,
            ),
            Panel(
                "health/errors",
                "timeseries",
                "Query errors by reason",
                f"Failed polls per second by KPI and reason ({', '.join(REASONS)}).",
                (
                    Target(
                        f"sum by (kpi, reason) ({rate(selector(M.QUERY_ERRORS))})",
                        "{{kpi}} {{reason}}",
                    ),
                ),
                unit="cps",
                width=12,
                axis_label="errors/s",
            ),
            Panel(
                "health/series",
                "timeseries",
                "Series per KPI",
                "How many series each KPI publishes.",
                (Target(f"max by (kpi) ({selector(M.SERIES)})", "{{kpi}}"),),
                width=12,
            ),
            Panel(
                "health/rows",
                "timeseries",
                "Rows processed by cursor KPIs",
                "Event rows per second that cursor KPIs applied.",
                (
                    Target(
                        f"sum by (kpi) ({rate(selector(M.ROWS_PROCESSED))})",
                        "{{kpi}}",
                    ),
                ),
                unit="rowsps",
                width=12,
                axis_label="rows/s",
            ),
        ),
    )
