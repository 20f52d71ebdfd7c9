"""--shard I/N splits a KPI on several databases by (KPI, database), keeping its database label."""

from __future__ import annotations

from pathlib import Path

from support.sharding import sha_owner

from exporter.runtime.sharding import Shard
from exporter.spec.loading import load_spec

TENANTS = [f"tenant_{i:02d}" for i in range(12)]


def test_each_kpi_database_pair_runs_on_exactly_its_hashed_shard(tmp_path: Path) -> None:
    databases = "".join(f'  {t}: {{dsn: "sqlite:///{t}.db"}}\n' for t in TENANTS)
    path = tmp_path / "spec.yaml"
    path.write_text(
        "databases:\n" + databases + "kpis:\n"
        "  - {name: signups, type: gauge, database: 'tenant_*', interval: 1m,"
        " query: 'SELECT 1 AS value'}\n"
        "  - {name: one, type: gauge, database: tenant_00, interval: 1m,"
        " query: 'SELECT 1 AS value'}\n"
    )
    spec = load_spec([path], env={}).spec
    runs: dict[str, int] = {}
    for index in range(3):
        narrowed = Shard(index, 3).narrow(spec)
        for kpi in narrowed.kpis:
            if kpi.name == "signups":
                assert kpi.spans_databases  # its series keep the database label
                for database in narrowed.databases_of(kpi):
                    assert narrowed.series_labels(kpi, database) == {"database": database}
                    assert f"signups@{database}" not in runs  # one shard only
                    runs[f"signups@{database}"] = index
                    assert database in narrowed.databases
            else:
                assert kpi.name not in runs
                runs[kpi.name] = index
    expected = {f"signups@{t}": sha_owner(f"signups@{t}", 3) for t in TENANTS}
    expected["one"] = sha_owner("one", 3)
    assert runs == expected
    assert len(set(expected.values())) == 3  # the tenants spread over every shard
