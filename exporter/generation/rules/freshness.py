"""A KPI's freshness SLO: the share of time its data was younger than `max_age`.

The data's age is the time since the KPI's last successful poll (the exporter's
last-success timestamp); for a cursor KPI it is the cursor lag when that is older (the newest
row read is older than the poll: no rows came in). A recorded 0/1 series says whether the data
is fresh; its group's fixed interval makes its mean over a window the share of that time."""

from __future__ import annotations

from fractions import Fraction

from exporter.conventions import (
    SelfMetric,
    freshness_burn_alert_name,
    freshness_slo_names,
    words,
)
from exporter.generation import promql
from exporter.generation.promql import duration
from exporter.generation.rules.model import RecordRule, capital, number
from exporter.generation.rules.slo import Sli
from exporter.spec.model import Kpi, Spec


def freshness_level(spec: Spec) -> list[str]:
    """The labels of the 0/1 series: those the rules' selector fixes with `=`, `kpi` and
    `database` (the labels `absent_over_time` gives the series of an exporter that is gone):
    a KPI on several databases is fresh or stale on each."""
    fixed = [m.name for m in promql.parse_matchers(spec.exporter.rule_selector()) if m.op == "="]
    return [*dict.fromkeys(fixed), "kpi", "database"]


def fresh_record(spec: Spec, kpi: Kpi) -> RecordRule:
    """1 while the KPI's data is younger than max_age, else 0, never missing.

    Success timestamps are read over the last max_age: an exporter that is down or gone keeps
    its last one until it is max_age old, then has none in range, and `absent_over_time` gives
    0 for each of the KPI's databases (stale, not missing, so the outage spends the budget).
    The freshest replica counts."""
    freshness = kpi.freshness
    assert freshness is not None
    span = duration(freshness.max_age)
    selector = promql.selector(spec, {"kpi": kpi.name})
    # the success timestamps of one database, exactly, for `absent_over_time`
    own = [promql.selector(spec, {"kpi": kpi.name, "database": d}) for d in spec.databases_of(kpi)]
    since = f"time() - max_over_time({SelfMetric.LAST_SUCCESS}{selector}[{span}])"
    age = since
    if kpi.cursor is not None:
        lag = f"last_over_time({SelfMetric.CURSOR_LAG}{selector}[{span}])"
        age = f"({lag} > ({since}))\n  or\n  ({since})"
    level = ", ".join(freshness_level(spec))
    fresh = f"min by ({level}) (\n  {age}\n) < bool {number(freshness.max_age)}"
    gone = "\nor\n".join(
        f"0 * absent_over_time({SelfMetric.LAST_SUCCESS}{one}[{span}])" for one in own
    )
    return RecordRule(
        freshness_slo_names(kpi.name).good,
        f"{fresh}\nor\n{gone}",
        tuple(sorted(spec.exporter.labels.items())),
    )


def freshness_sli(spec: Spec, kpi: Kpi) -> Sli:
    freshness = kpi.freshness
    assert freshness is not None
    name = capital(words(kpi.name))
    return Sli(
        names=freshness_slo_names(kpi.name),
        alert=freshness.name or freshness_burn_alert_name(kpi.name),
        kpi=kpi.name,
        objective=Fraction(str(freshness.objective)),
        period=freshness.window,
        subject=f"{name} freshness",
        what=f"{name} data was older than {duration(freshness.max_age)} for {{share}} of the "
        "last {window}",
        labels=[*freshness_level(spec), *sorted(spec.exporter.labels)],
    )
