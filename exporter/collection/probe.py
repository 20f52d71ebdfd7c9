"""`check --connect`: run each KPI's query once and compare its columns with the spec."""

from __future__ import annotations

import time
from typing import Any

from exporter.collection.binding import bind_params
from exporter.sources.base import QueryError, Source
from exporter.sources.registry import open_source
from exporter.spec.model import Kpi, Spec
from exporter.spec.params import placeholders


def expected_columns(kpi: Kpi) -> list[tuple[str, str]]:
    """(column, role) pairs the result must have."""
    columns = [(name, "label") for name in kpi.labels]
    if kpi.value_column:
        columns.append((kpi.value_column, "value"))
    if kpi.cursor:
        columns.append((kpi.cursor, "cursor"))
    if kpi.tiebreak:
        columns.append((kpi.tiebreak, "tiebreak"))
    if kpi.event_time_column and kpi.event_time_column != kpi.cursor:
        columns.append((kpi.event_time_column, "event_time"))
    if kpi.type == "histogram" and not kpi.cursor:
        columns.append(("le", "bucket bound"))
        if kpi.sum:
            columns.append((kpi.sum, "sum"))
    return columns


def probe_params(kpi: Kpi, now: float) -> dict[str, Any]:
    """What a first poll binds, but one row at most: the columns are all the check needs."""
    return bind_params(
        kpi,
        placeholders(kpi.query),
        now,
        cursor=kpi.initial_cursor,
        tiebreak=0,
        last_success=0.0,
        batch=1,
    )


def probe_spec(spec: Spec) -> list[str]:
    """Every problem found, one line each, naming the KPI and database."""
    problems: list[str] = []
    sources: dict[str, Source] = {}
    try:
        for kpi in spec.kpis:
            for database in spec.databases_of(kpi):  # a KPI on several databases: each
                problems += _probe(spec, kpi, database, sources)
    finally:
        for source in sources.values():
            source.close()
    return problems


def _probe(spec: Spec, kpi: Kpi, database: str, sources: dict[str, Source]) -> list[str]:
    """One KPI's query on one database, its columns compared with the spec's."""
    where = f"kpi {kpi.name} (database {database})"
    try:
        if database not in sources:
            sources[database] = open_source(
                database, spec.databases[database], spec.exporter.pool_timeout
            )
        rows = sources[database].query(kpi.query, probe_params(kpi, time.time()), kpi.timeout)
    except QueryError as exc:
        return [f"{where}: query failed ({exc.reason}): {exc.message}"]
    found = ", ".join(rows.columns) or "none"
    return [
        f"{where}: {role} column {column!r} is missing from the result (columns: {found})"
        for column, role in expected_columns(kpi)
        if column not in rows.columns
    ]
