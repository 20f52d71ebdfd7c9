"""Sharding: replica I of N runs the KPIs whose stable hash of the name falls in shard I."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Info

from exporter.conventions import SelfMetric
from exporter.spec.model import Kpi, Spec


@dataclass(frozen=True)
class Shard:
    """This replica's share of the KPIs: shard `index` of `count` (0/1 runs everything)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` with 0 <= I < N."""
        left, sep, right = text.partition("/")
        if not sep or not left.strip().isdigit() or not right.strip().isdigit():
            raise ValueError(f"{text!r} is not I/N (e.g. 0/3)")
        index, count = int(left), int(right)
        if count < 1 or index >= count:
            raise ValueError(f"{text!r}: need 0 <= I < N and N >= 1")
        return cls(index, count)

    def owns(self, kpi_name: str) -> bool:
        """Stable across processes, machines and Python versions (no hash randomisation)."""
        digest = hashlib.sha256(kpi_name.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def narrow(self, spec: Spec) -> Spec:
        """The spec this replica runs: its KPIs, their databases, its own cursor state dir.

        A KPI on several databases is split by (KPI, database), hashed as `name@database`: a
        KPI over a hundred tenants spreads over the shards. Each shard keeps its cursor state
        apart, so replicas on one host never prune each other's KPIs from a shared state file.
        """
        if self.count == 1:
            return spec
        kpis: list[Kpi] = []
        for kpi in spec.kpis:
            if not kpi.spans_databases:
                kpis += [kpi] if self.owns(kpi.name) else []
                continue
            # still a list: its series keep the database label whatever this shard's share
            mine = [db for db in spec.databases_of(kpi) if self.owns(f"{kpi.name}@{db}")]
            kpis += [kpi.model_copy(update={"database": mine})] if mine else []
        used = {name for k in kpis for name in spec.databases_of(k)}
        databases = {n: d for n, d in spec.databases.items() if n in used}
        state_dir = spec.exporter.state_dir / f"shard-{self.index}-of-{self.count}"
        exporter = spec.exporter.model_copy(update={"state_dir": state_dir})
        return spec.model_copy(update={"kpis": kpis, "databases": databases, "exporter": exporter})

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def declare(shard: Shard, registry: CollectorRegistry) -> None:
    """`kpi_exporter_shard_info{shard="I", shards="N"} 1` among the exporter's own metrics."""
    info = Info(SelfMetric.SHARD.family, SelfMetric.SHARD.help, registry=registry)
    info.info({"shard": str(shard.index), "shards": str(shard.count)})
