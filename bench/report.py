"""The benchmark's tables (Markdown), the targets' verdicts, and their place in bench/README.md."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from catchup import CatchUp
from polltime import PollTiming
from serving import Serving
from slowquery import SlowQueryEffect

BEGIN = "<!-- bench:begin (written by `make bench`; edits here are overwritten) -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class SizeResult:
    """One gauge size measured on both exporters."""

    series: int
    ours_poll: PollTiming
    ours: Serving
    qe_poll: PollTiming | None
    qe: Serving | None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024:.0f} KiB" if nbytes < 1024 * 1024 else f"{nbytes / 2**20:.1f} MiB"


def _cpu(seconds: float) -> str:
    return "— (polls overran the interval)" if math.isnan(seconds) else f"{seconds:.3f}"


def _ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x" if ours > 0 and not math.isnan(theirs) else "—"


def gauge_table(results: list[SizeResult]) -> str:
    head = (
        "| series | exporter | poll s (raw fetch s) | poll ÷ raw | CPU s/poll "
        "| scrape gzip median / p99 ms (size) | scrape plain median / p99 ms (size) | RSS MiB |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [head]
    for r in results:
        rows = [("kpi-exporter", r.ours_poll, r.ours)]
        if r.qe_poll is not None and r.qe is not None:
            rows.append(("query-exporter", r.qe_poll, r.qe))
        for name, poll, serving in rows:
            lines.append(
                f"| {r.series:,} | {name} | {poll.wall:.3f} ({poll.raw:.3f}) "
                f"| {poll.wall / poll.raw:.1f}x | {_cpu(serving.cpu_per_poll)} "
                f"| {_ms(serving.gzip.median)} / {_ms(serving.gzip.p99)} "
                f"({_size(serving.gzip.size)}{'' if serving.gzip.gzip else ', not gzipped'}) "
                f"| {_ms(serving.plain.median)} / {_ms(serving.plain.p99)} "
                f"({_size(serving.plain.size)}) | {serving.rss_mib:.0f} |\n"
            )
        if r.qe_poll is not None and r.qe is not None:
            ours, qe = r.ours, r.qe
            lines.append(
                f"| {r.series:,} | *query-exporter ÷ kpi-exporter* "
                f"| {_ratio(r.qe_poll.wall, r.ours_poll.wall)} | "
                f"| {_ratio(qe.cpu_per_poll, ours.cpu_per_poll)} "
                f"| {_ratio(qe.gzip.median, ours.gzip.median)} / "
                f"{_ratio(qe.gzip.p99, ours.gzip.p99)} "
                f"| {_ratio(qe.plain.median, ours.plain.median)} / "
                f"{_ratio(qe.plain.p99, ours.plain.p99)} "
                f"| {_ratio(qe.rss_mib, ours.rss_mib)} |\n"
            )
    return "".join(lines)


def slow_table(effects: dict[str, SlowQueryEffect]) -> str:
    lines = [
        "| exporter | scrape median while the 2 s query runs (n) | otherwise (n) "
        "| 1 s KPI: median gap / max gap s (polls) |\n|---|---:|---:|---:|\n"
    ]
    for name, e in effects.items():
        lines.append(
            f"| {name} | {_ms(e.during_median)} ms ({e.during}) "
            f"| {_ms(e.outside_median)} ms ({e.outside}) "
            f"| {e.fast_median_gap:.2f} / {e.fast_max_gap:.2f} ({e.fast_polls}) |\n"
        )
    return "".join(lines)


def catchup_table(results: list[CatchUp]) -> str:
    lines = [
        "| cursor KPI | rows | kpi-exporter rows/s | raw psycopg rows/s (same batches) "
        "| ÷ raw | spawn → caught up s | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n"
    ]
    for c in results:
        lines.append(
            f"| {c.variant} | {c.rows:,} | {c.rate:,.0f} | {c.raw_rate:,.0f} "
            f"| {c.rate / c.raw_rate:.0%} | {c.spawn_to_done:.1f} | {c.peak_mib:.0f} |\n"
        )
    return "".join(lines)


def verdicts(
    results: list[SizeResult], slow: dict[str, SlowQueryEffect], catchups: list[CatchUp]
) -> str:
    """Each target of issues 2 and 3 with the figure measured and whether it was met."""
    checks: list[tuple[str, str, bool]] = []
    big = max(results, key=lambda r: r.series)
    n = f"{big.series:,}"
    for form, stats in (("gzip", big.ours.gzip), ("plain", big.ours.plain)):
        checks.append(
            (
                f"{n}-series scrape median < 25 ms ({form})",
                f"{_ms(stats.median)} ms",
                stats.median < 0.025,
            )
        )
    ratio = big.ours_poll.wall / big.ours_poll.raw
    checks.append((f"{n}-series poll ≤ 2x raw fetch", f"{ratio:.1f}x", ratio <= 2.0))
    checks.append(
        (f"RSS < 120 MiB at {n} series", f"{big.ours.rss_mib:.0f} MiB", big.ours.rss_mib < 120)
    )
    ours_slow = slow.get("kpi-exporter")
    if ours_slow is not None:
        change = ours_slow.during_median / ours_slow.outside_median
        checks.append(
            (
                "scrape latency unchanged while a slow query runs (within 1.5x)",
                f"{change:.2f}x",
                change < 1.5,
            )
        )
        checks.append(
            (
                "another KPI not delayed (1 s KPI's max gap < 1.5 s)",
                f"{ours_slow.fast_max_gap:.2f} s",
                ours_slow.fast_max_gap < 1.5,
            )
        )
    for c in catchups:
        share = c.rate / c.raw_rate
        checks.append((f"catch-up ({c.variant}) ≥ 50% of raw fetch", f"{share:.0%}", share >= 0.5))
    lines = ["| target | measured | met |\n|---|---:|---|\n"]
    lines.extend(
        f"| {what} | {value} | {'yes' if ok else '**no**'} |\n" for what, value, ok in checks
    )
    return "".join(lines)


def mariadb_verdicts(results: list[SizeResult]) -> str:
    """The gauge targets again for MariaDB, as rows that continue the verdicts table."""
    big = max(results, key=lambda r: r.series)
    n = f"{big.series:,}"
    ratio = big.ours_poll.wall / big.ours_poll.raw
    checks = [
        (f"MariaDB: {n}-series poll ≤ 2x raw fetch", f"{ratio:.1f}x", ratio <= 2.0),
        (
            f"MariaDB: {n}-series scrape median < 25 ms (gzip)",
            f"{_ms(big.ours.gzip.median)} ms",
            big.ours.gzip.median < 0.025,
        ),
        (
            f"MariaDB: RSS < 120 MiB at {n} series",
            f"{big.ours.rss_mib:.0f} MiB",
            big.ours.rss_mib < 120,
        ),
    ]
    return "".join(
        f"| {what} | {value} | {'yes' if ok else '**no**'} |\n" for what, value, ok in checks
    )


def write_readme(readme: Path, body: str) -> None:
    """Replace what stands between the markers (appending them the first time)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{BEGIN}\n{body.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        before = text[: text.index(BEGIN)]
        after = text[text.index(END) + len(END) :]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)
