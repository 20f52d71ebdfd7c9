"""Sharding: replicas 0/3, 1/3, 2/3 together publish exactly what one unsharded replica does."""

from __future__ import annotations

import re
from pathlib import Path

from support.sharding import NAMES, sha_owner
from test_production import gauge_spec, make_values_db, sample_lines


def _kpi_series(body: str) -> set[str]:
    """KPI series plus the per-KPI self-metric lines that must also split exactly."""
    lines = sample_lines(body, "shard_kpi_")
    lines |= sample_lines(body, "kpi_exporter_kpi_up") | sample_lines(body, "kpi_exporter_series{")
    return lines


def test_three_shards_publish_exactly_one_replicas_series(run_exporter, tmp_path: Path) -> None:
    db = tmp_path / "values.db"
    make_values_db(db, {name: float(i * 10 + 1) for i, name in enumerate(NAMES)})
    spec = tmp_path / "spec.yaml"
    spec.write_text(gauge_spec(db, NAMES, interval="30s"))

    whole = run_exporter(["-c", str(spec)])
    shards = [run_exporter(["-c", str(spec), "--shard", f"{i}/3"]) for i in range(3)]
    for exporter in (whole, *shards):
        exporter.wait_ready()

    expected = _kpi_series(whole.metrics())
    assert len(sample_lines(whole.metrics(), "shard_kpi_")) == len(NAMES)
    parts = []
    for index, exporter in enumerate(shards):
        body = exporter.metrics()
        assert f'kpi_exporter_shard_info{{shard="{index}",shards="3"}} 1.0' in body
        series = _kpi_series(body)
        names = set(re.findall(r"^(shard_kpi_\d+)", "\n".join(sorted(series)), re.MULTILINE))
        assert names == {n for n in NAMES if sha_owner(n, 3) == index}
        parts.append(series)
    assert sum(1 for p in parts if p) >= 2, "the names should spread over the shards"
    assert set().union(*parts) == expected
    for a in range(3):
        for b in range(a + 1, 3):
            assert not parts[a] & parts[b], "a series published by two shards"
    assert 'kpi_exporter_shard_info{shard="0",shards="1"} 1.0' in whole.metrics()
