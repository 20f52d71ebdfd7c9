"""A KPI on several databases: `database:` as a name, a list or a glob, the database label,
databases' own labels, and each mistake named by file, line, field and KPI."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.spec.loading import SpecError, load_spec

HEAD = """\
exporter:
  labels: {service: shop}
databases:
  eu: {dsn: "sqlite:///eu.db", labels: {region: europe}}
  us: {dsn: "sqlite:///us.db"}
  tenant_a: {dsn: "sqlite:///a.db"}
  tenant_b: {dsn: "sqlite:///b.db"}
kpis:
  - name: orders
    type: gauge
    interval: 30s
    query: SELECT 1 AS value
"""


def spec_file(tmp_path: Path, database: str, extra: str = "", head: str = HEAD) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(head + f"    database: {database}\n" + extra)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec([path], env={})
    return [str(p) for p in caught.value.problems]


class TestResolution:
    @pytest.mark.parametrize(
        ("database", "names", "spans"),
        [
            ("eu", ["eu"], False),
            ("[us, eu]", ["us", "eu"], True),
            ('"tenant_*"', ["tenant_a", "tenant_b"], True),
            ('["tenant_?", eu, tenant_a]', ["tenant_a", "tenant_b", "eu"], True),
            ('"e[u]"', ["eu"], True),  # a glob matching one database still spans
        ],
    )
    def test_names_in_order_once_each(
        self, tmp_path: Path, database: str, names: list[str], spans: bool
    ) -> None:
        spec = load_spec([spec_file(tmp_path, database)], env={}).spec
        kpi = spec.kpis[0]
        assert spec.databases_of(kpi) == names
        assert kpi.spans_databases is spans

    def test_series_labels(self, tmp_path: Path) -> None:
        path = spec_file(
            tmp_path,
            "[eu, us]",
            head=HEAD.replace("labels: {service", "database_label: site\n  labels: {service"),
        )
        spec = load_spec([path], env={}).spec
        kpi = spec.kpis[0]
        assert spec.series_labels(kpi, "eu") == {
            "service": "shop",
            "region": "europe",
            "site": "eu",
        }
        assert spec.series_labels(kpi, "us") == {"service": "shop", "site": "us"}

    def test_a_single_database_kpi_gets_no_database_label(self, tmp_path: Path) -> None:
        spec = load_spec([spec_file(tmp_path, "eu")], env={}).spec
        assert spec.series_labels(spec.kpis[0], "eu") == {"service": "shop", "region": "europe"}


class TestErrors:
    def test_unknown_name_in_a_list(self, tmp_path: Path) -> None:
        path = spec_file(tmp_path, "[eu, ap]")
        assert problems(path) == [
            f"{path}:13: kpis[0].database[1]: unknown database 'ap' "
            "(eu, tenant_a, tenant_b, us) (KPI 'orders')"
        ]

    def test_unknown_name_in_a_block_list_points_at_its_line(self, tmp_path: Path) -> None:
        path = spec_file(tmp_path, "\n      - eu\n      - ap")
        assert problems(path) == [
            f"{path}:15: kpis[0].database[1]: unknown database 'ap' "
            "(eu, tenant_a, tenant_b, us) (KPI 'orders')"
        ]

    def test_a_glob_matching_nothing(self, tmp_path: Path) -> None:
        path = spec_file(tmp_path, '"shard_*"')
        assert problems(path) == [
            f"{path}:13: kpis[0].database: glob 'shard_*' matches no database "
            "(eu, tenant_a, tenant_b, us) (KPI 'orders')"
        ]

    @pytest.mark.parametrize(
        ("database", "message"),
        [
            ("[eu, eu]", "eu listed more than once"),
            ("[]", "name at least one database"),
            (
                "7",
                "7 is not a database name or glob: give a name under 'databases', "
                "a list of names, or a glob such as 'tenant_*'",
            ),
            (
                '"eu db"',
                "'eu db' is not a database name or glob: give a name under "
                "'databases', a list of names, or a glob such as 'tenant_*'",
            ),
        ],
    )
    def test_malformed(self, tmp_path: Path, database: str, message: str) -> None:
        path = spec_file(tmp_path, database)
        assert problems(path) == [f"{path}:13: kpis[0].database: {message} (KPI 'orders')"]

    def test_the_database_label_as_a_kpi_label(self, tmp_path: Path) -> None:
        path = spec_file(tmp_path, '"tenant_*"', "    labels: [database]\n")
        assert problems(path) == [
            f"{path}:14: kpis[0].labels: database is exporter.database_label, which names the "
            "database of each series of a KPI on several databases; rename the column or set "
            "database_label (KPI 'orders')"
        ]

    def test_the_database_label_as_a_kpi_label_is_fine_on_one_database(
        self, tmp_path: Path
    ) -> None:
        load_spec([spec_file(tmp_path, "us", "    labels: [database]\n")], env={})

    def test_a_database_label_clashing_with_a_kpi_label(self, tmp_path: Path) -> None:
        path = spec_file(tmp_path, "[us, eu]", "    labels: [region]\n")
        assert problems(path) == [
            f"{path}:14: kpis[0].labels: region clash with databases.eu.labels (KPI 'orders')"
        ]

    def test_database_labels_clashing_with_exporter_labels_and_the_database_label(
        self, tmp_path: Path
    ) -> None:
        head = HEAD.replace(
            'us: {dsn: "sqlite:///us.db"}',
            'us: {dsn: "sqlite:///us.db", labels: {service: x, database: y}}',
        )
        path = spec_file(tmp_path, "eu", head=head)
        assert problems(path) == [
            f"{path}:5: databases.us.labels.database: database is exporter.database_label, "
            "set from the database's name",
            f"{path}:5: databases.us.labels.service: service clashes with exporter.labels",
        ]

    def test_exporter_labels_holding_the_database_label(self, tmp_path: Path) -> None:
        head = HEAD.replace("labels: {service: shop}", "labels: {service: shop, database: x}")
        path = spec_file(tmp_path, "[eu, us]", head=head)
        assert problems(path) == [
            f"{path}:2: exporter.labels.database: database is exporter.database_label, which "
            "names the database of each series of a KPI on several databases"
        ]
