"""Run inside query-exporter's own venv: time its poll of one query (execute, fetch, update)."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import structlog


async def _measure(config_path: Path, name: str, repeat: int) -> dict[str, float]:
    # query-exporter's own classes, as its script wires them (main.py, executor.py)
    from prometheus_aioexporter import MetricsRegistry
    from query_exporter.config import load_config
    from query_exporter.executor import QueryExecutor

    # as `query-exporter --log-level warning` runs: no per-series debug lines
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    config = load_config([config_path])
    registry = MetricsRegistry()
    registry.create_metrics(config.metrics.values())
    executor = QueryExecutor(config, registry)
    execution = next(e for e in config.queries[name].executions)
    walls, cpus = [], []
    await executor._execute_query(execution, "db")  # connect and warm up
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        await executor._execute_query(execution, "db")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    for database in executor._databases.values():
        database.close()
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


if __name__ == "__main__":
    result = asyncio.run(_measure(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
    print(json.dumps(result))
