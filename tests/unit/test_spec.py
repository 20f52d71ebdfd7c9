"""Spec loading and validation in-process: durations, placeholders, merging, and every error
class naming file, line, field and KPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.specs import BASE, kpi, write

from exporter.conventions import format_duration
from exporter.spec.fields import parse_duration
from exporter.spec.loading import SpecError, load_spec
from exporter.spec.model import Kpi
from exporter.spec.params import placeholders, to_paramstyle, to_pyformat


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec([write(tmp_path, text)], env=env or {})
    return [str(p) for p in caught.value.problems]


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), (15, 15)],
    )
    def test_parses(self, text: object, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["30", "5 minutes", "-1s", "0s", True, None])
    def test_refuses(self, text: object) -> None:
        with pytest.raises(ValueError):
            parse_duration(text)

    def test_formats_promql(self) -> None:
        assert [format_duration(s) for s in (300, 3600, 90, 86400 * 3)] == ["5m", "1h", "90s", "3d"]


class TestPlaceholders:
    def test_ignores_strings_comments_and_casts(self) -> None:
        query = (
            "SELECT x::int, ':a', $$ :b $$ -- :c\nFROM t /* :d */ WHERE y > :cursor AND z = :now"
        )
        assert placeholders(query) == {"cursor", "now"}

    def test_pyformat_escapes_percent(self) -> None:
        assert to_pyformat("SELECT '5%' WHERE a LIKE 'x%' AND b = :now") == (
            "SELECT '5%%' WHERE a LIKE 'x%%' AND b = %(now)s"
        )

    def test_dollar_style_for_duckdb(self) -> None:
        query = "SELECT x::int, ':a', '5%' -- :c\nFROM t WHERE y > :cursor::TIMESTAMP AND z = :now"
        assert to_paramstyle(query, "dollar") == (
            "SELECT x::int, ':a', '5%' -- :c\nFROM t WHERE y > $cursor::TIMESTAMP AND z = $now"
        )

    def test_sqlalchemy_text_keeps_placeholders_and_escapes_other_colons(self) -> None:
        # text() would read ':a' in the string, ':c' in the comment and ':1' as parameters,
        # and would not see ':cursor' glued to a '::' cast
        query = "SELECT x::int, ':a', $$ :b $$ -- :c\nFROM t WHERE y > :cursor::date AND z = :1"
        assert to_paramstyle(query, "sqlalchemy") == (
            "SELECT x::int, '\\:a', $$ \\:b $$ -- \\:c\n"
            "FROM t WHERE y > :cursor ::date AND z = \\:1"
        )


class TestLoading:
    def test_valid_spec_loads(self, tmp_path: Path) -> None:
        loaded = load_spec([write(tmp_path, BASE)], env={})
        assert [k.name for k in loaded.spec.kpis] == ["active_users"]
        assert loaded.spec.exporter.port == 9091
        assert len(loaded.digest) == 64

    def test_substitution_with_default_and_env(self, tmp_path: Path) -> None:
        text = BASE.replace("sqlite:///app.db", "${DSN:-sqlite:///fallback.db}").replace(
            "labels: {service: billing}", "labels: {service: '${SERVICE}'}\n  port: ${PORT:-9100}"
        )
        loaded = load_spec([write(tmp_path, text)], env={"SERVICE": "pay"})
        db = loaded.spec.databases["app"]
        assert db.dsn is not None and db.dsn.get_secret_value() == "sqlite:///fallback.db"
        assert loaded.spec.exporter.labels == {"service": "pay"}
        assert loaded.spec.exporter.port == 9100

    def test_missing_variable_is_located(self, tmp_path: Path) -> None:
        text = BASE.replace("sqlite:///app.db", "${APP_DATABASE_URL}")
        assert problems(tmp_path, text) == [
            f"{tmp_path}/spec.yaml:5: databases.app.dsn: "
            "environment variable APP_DATABASE_URL is not set"
        ]

    def test_files_and_directories_merge(self, tmp_path: Path) -> None:
        (tmp_path / "d").mkdir()
        write(tmp_path, BASE, "d/a.yaml")
        write(tmp_path, kpi("", name="other"), "d/b.yaml")
        with pytest.raises(SpecError) as caught:
            load_spec([tmp_path / "d"], env={})
        text = "\n".join(str(p) for p in caught.value.problems)
        assert "b.yaml:4: databases.app: database 'app' is already defined in another file" in text

    def test_duplicate_kpi_across_files(self, tmp_path: Path) -> None:
        first = write(tmp_path, BASE, "a.yaml")
        second = write(
            tmp_path,
            "kpis:\n  - {name: active_users, type: gauge, database: app, interval: 1m,"
            " query: SELECT 1 AS value}\n",
            "b.yaml",
        )
        with pytest.raises(SpecError) as caught:
            load_spec([first, second], env={})
        assert [str(p) for p in caught.value.problems] == [
            f"{second}:2: kpis[0].name: duplicate KPI 'active_users' (KPI 'active_users')"
        ]

    def test_secret_never_in_errors(self, tmp_path: Path) -> None:
        text = BASE.replace(
            "sqlite:///app.db", "postgresql://u:hunter2secret@127.0.0.1/db\n    bogus: 1"
        )
        found = problems(tmp_path, text)
        assert found and not any("hunter2secret" in p for p in found)


class TestCheckErrors:
    """Each class of spec error, with the exact file:line and field."""

    CASES = [
        ("labels: [le]", "kpis[1].labels[0]: 'le' is a reserved label name", 17),
        (
            "labels: [__x]",
            "kpis[1].labels[0]: '__x': label names starting with '__' are reserved",
            17,
        ),
        ("timeout: 30x", "kpis[1].timeout: '30x' is not a duration", 17),
        ("unknown: 1", "kpis[1].unknown: unknown key 'unknown'", 17),
        ("schedule: '*/5 * * * *'", "set exactly one of 'interval' and 'schedule'", 12),
        ("schedule: 'not cron'", "kpis[1].schedule: invalid cron expression", 17),
        ("max_series: 0", "kpis[1].max_series: Input should be greater than or equal to 1", 17),
    ]

    @pytest.mark.parametrize(("extra", "message", "line"), CASES)
    def test_kpi_field_errors(self, tmp_path: Path, extra: str, message: str, line: int) -> None:
        found = problems(tmp_path, kpi(extra))
        assert any(message in p and p.startswith(f"{tmp_path}/spec.yaml:") for p in found), found
        assert any(p.startswith(f"{tmp_path}/spec.yaml:{line}:") for p in found), found
        assert all("(KPI 'bad_kpi')" in p for p in found), found

    def test_counter_name_needs_total(self, tmp_path: Path) -> None:
        found = problems(tmp_path, kpi("", kind="counter", name="payments"))
        assert any("must end in '_total' (rename it payments_total)" in p for p in found)

    def test_unknown_database(self, tmp_path: Path) -> None:
        found = problems(
            tmp_path, kpi("").replace("database: app\n    interval", "database: nope\n    interval")
        )
        assert any(":14: kpis[1].database: unknown database 'nope' (app)" in p for p in found)

    def test_metric_name(self, tmp_path: Path) -> None:
        found = problems(tmp_path, kpi("", name="'bad-name'"))
        assert any(
            "kpis[1].name: 'bad-name' is not a valid Prometheus metric name" in p for p in found
        )

    def test_unknown_parameter(self, tmp_path: Path) -> None:
        found = problems(tmp_path, kpi("", query="SELECT 1 AS value WHERE x > :since"))
        assert any("query uses unknown parameter(s) :since" in p for p in found)

    def test_cursor_query_must_use_cursor(self, tmp_path: Path) -> None:
        found = problems(
            tmp_path,
            kpi(
                "cursor: id",
                kind="counter",
                name="events_total",
                query="SELECT id FROM t LIMIT :batch",
            ),
        )
        assert any("a cursor KPI's query must use :cursor" in p for p in found)

    CURSOR_QUERY = "SELECT id, at, kind FROM t WHERE id > :cursor ORDER BY id LIMIT :batch"

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ("cursor: id\nevent_time: kind\nlabels: [kind]", "cannot also be a label"),
            ("cursor: id\nevent_time: at\nvalue: at", "cannot also be the value column"),
        ],
    )
    def test_event_time_misuse(self, tmp_path: Path, extra: str, message: str) -> None:
        body = kpi(extra, kind="counter", name="events_total", query=self.CURSOR_QUERY)
        found = problems(tmp_path, body)
        assert any(message in p and "(KPI 'events_total')" in p for p in found), found

    def test_event_time_needs_a_cursor(self, tmp_path: Path) -> None:
        found = problems(tmp_path, kpi("event_time: at"))
        assert any("kpis[1]: 'event_time' needs 'cursor' (KPI 'bad_kpi')" in p for p in found)

    def test_event_time_defaults_to_a_timestamp_cursor(self, tmp_path: Path) -> None:
        def loaded(extra: str) -> Kpi:
            body = kpi(extra, kind="counter", name="events_total", query=self.CURSOR_QUERY)
            return load_spec([write(tmp_path, body)], env={}).spec.kpis[-1]

        assert loaded("cursor: id").event_time_column is None
        assert loaded("cursor: id\nevent_time: at").event_time_column == "at"
        timestamp = loaded("cursor: id\ninitial_cursor: '1970-01-01T00:00:00+00:00'")
        assert timestamp.event_time_column == "id"

    def test_constant_label_clash(self, tmp_path: Path) -> None:
        found = problems(tmp_path, kpi("labels: [service]"))
        assert any("kpis[1].labels: service clash with exporter.labels" in p for p in found)

    def test_invalid_yaml(self, tmp_path: Path) -> None:
        found = problems(tmp_path, BASE + "  - name: [unclosed\n")
        assert len(found) == 1 and found[0].startswith(f"{tmp_path}/spec.yaml:")
        assert "invalid YAML" in found[0]

    def test_python_tags_are_refused(self, tmp_path: Path) -> None:
        found = problems(tmp_path, "exporter: !!python/object/apply:os.system ['touch /tmp/pwn']\n")
        assert "could not determine a constructor" in found[0]
        assert not Path("/tmp/pwn").exists()

    def test_alias_bomb_is_refused(self, tmp_path: Path) -> None:
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 9):
            lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
        found = problems(tmp_path, "\n".join(lines) + "\n")
        assert "expands to more than" in found[0]
