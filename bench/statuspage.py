"""Status page render time with charts: 500 KPIs x 300 polls each (run by hand).

    .venv/bin/python bench/statuspage.py [--kpis 500] [--points 300] [--repeat 7]

Times the whole `/` body as the HTTP layer builds it — the status rows from each poll's
RecentPolls ring (copy, split into value and duration points) and statuspage.render with
both SVG charts per KPI — and prints the median and minimum wall time, the median CPU time
(steadier on a shared machine) and the page size.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from exporter.collection.recent import RecentPolls
from exporter.serving.statuspage import KpiRow, render


def filled(points: int, seed: int) -> RecentPolls:
    recent = RecentPolls(size=points)
    for i in range(points):
        total = None if i % 97 == 96 else 1000 + 300 * math.sin((i + seed) / 17)
        recent.record(1_700_000_000.0 + 15 * i, total, 0.002 + 0.001 * ((i * seed) % 7))
    return recent


def rows(rings: list[RecentPolls]) -> list[KpiRow]:
    out = []
    for n, ring in enumerate(rings):
        recent = ring.points()
        out.append(
            KpiRow(
                name=f"kpi_{n:04d}",
                type="gauge",
                database="app",
                schedule="every 15s",
                state="ok",
                last_run=recent[-1].at,
                duration=recent[-1].duration,
                series=12,
                next_run=None,
                error=None,
                values=[(p.at, p.total) for p in recent if p.total is not None],
                durations=[(p.at, p.duration) for p in recent],
                target=1100.0 if n % 2 else None,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kpis", type=int, default=500)
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rings = [filled(args.points, n) for n in range(args.kpis)]
    times, cpu = [], []
    size = 0
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        size = len(render(rows(rings)))
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    print(
        f"{args.kpis} KPIs x {args.points} polls: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms over {args.repeat} renders "
        f"(CPU: median {statistics.median(cpu) * 1000:.0f} ms); page {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
