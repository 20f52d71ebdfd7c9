"""Issue 13's backtest of the demo alerts over days of the demo's own history, by hand.

    .venv/bin/python bench/demo_backtest.py [--days 7] [--step 30s] [--work DIR]

Writes `--days` of history (exporter.demo_history, into SQLite) ending now, backfills it
(`backfill`, then `backfill --rules` twice: the SLOs' long windows read recorded series),
loads the blocks into a real Prometheus and runs `backtest` over all but the first 20
minutes. Prints, per alert, its episodes, hours firing, share of the window, the kinds of
trouble (demo.TROUBLES) its episodes fall in and how many fall in none, then the time each
stage took. The calendar repeats weekly, so 7 days hold every kind; the 60-day column weighs
each episode by how often its rarest kind of trouble comes in 60 days; an alert whose inputs
have no sample (the exporter's health) shows "no data". The work directory keeps
backtest.json and window.json. Not part of `make bench`: results are recorded in
bench/README.md.
Every process it starts is bound to 127.0.0.1 on a free port and stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter import demo, demo_history
from exporter.generation.rules.build import build_rules
from exporter.spec.loading import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "config" / "demo.yaml"
WARMUP = 20 * 60  # 5m rates and the 15m offset of HttpRequestsNotIncreasing need data behind
SLACK = 360  # an episode may end up to a 5m window and two steps after its trouble


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prometheus(directory: Path, step: int) -> Iterator[str]:
    """A Prometheus on the blocks in `directory / "tsdb"`; its URL, stopped by PID on exit."""
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"evaluation_interval": f"{step}s"}}))
    log = (directory / "prometheus.log").open("ab")
    proc = subprocess.Popen(  # nosec B603 B607  # the Debian prometheus binary, no shell
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=90d",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a 60-day TSDB takes a while to open
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {directory / 'prometheus.log'}")
            try:
                if requests.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus not ready within 600 s")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(  # nosec B603  # our own CLI, argument list
        [sys.executable, "-m", "exporter.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def move_blocks(source: Path, tsdb: Path) -> None:
    for block in source.iterdir():
        shutil.move(str(block), tsdb / block.name)


def read_by_rules() -> list[str]:
    """The demo KPIs whose metrics the generated rules read (a `kpi="..."` matcher does not
    count), plus those with a freshness SLO (read through the exporter's own series): the
    session gauges over days of visits cost hundreds of ms a step and no alert reads them."""
    spec = load_spec([SPEC]).spec
    rules = build_rules(spec)
    exprs = " ".join(rule.expr for group in rules.alerts + rules.records for rule in group.rules)
    return [
        kpi.name
        for kpi in spec.kpis
        if kpi.freshness is not None
        or re.search(rf"(?<![\w\"|]){kpi.name}(_bucket|_count|_sum)?(?![\w\"|])", exprs)
    ]


def kinds_of(episode: dict[str, Any]) -> list[str]:
    """The kinds of trouble whose window (plus SLACK) holds the episode."""
    return [
        trouble.name
        for trouble in demo.TROUBLES
        for start, end in trouble.windows(episode["start"] - SLACK - trouble.length, episode["end"])
        if start <= episode["start"] and episode["end"] <= end + SLACK
    ]


def weight(episode: dict[str, Any], since: float, until: float) -> float:
    """How many such episodes 60 days hold per one here: by the rarest kind of trouble that
    holds the episode (its occurrences in 60 days over those in the window), by time for an
    episode in no trouble."""
    kinds = [t for t in demo.TROUBLES if t.name in kinds_of(episode)]
    if not kinds:
        return 60 * demo.DAY / (until - since)
    rarest = max(kinds, key=lambda t: t.every)
    return 60 * demo.DAY / rarest.every / len(rarest.windows(since, until))


def table(report: dict[str, Any], since: float, until: float) -> str:
    merged: dict[str, list[dict[str, Any]]] = {}
    with_data: set[str] = set()  # alerts with a rule whose inputs have samples
    for alert in report["alerts"]:
        merged.setdefault(alert["alert"], []).extend(alert["episodes"])
        if not alert["no_data"]:
            with_data.add(alert["alert"])
    lines = [
        "| alert | episodes | hours firing | share | in trouble (episodes by kind) "
        "| outside trouble | 60 days, projected (episodes, hours) |",
        "|---|---|---|---|---|---|---|",
    ]
    for alert in sorted(merged):
        if alert not in with_data:  # the exporter's health: no `up` or KPI-up history here
            lines.append(f"| {alert} | no data | | | | | |")
            continue
        episodes = merged[alert]
        firing = sum(e["seconds"] for e in episodes)
        by_kind: dict[str, int] = {}
        outside = 0
        for episode in episodes:
            kinds = kinds_of(episode)
            if not kinds:
                outside += 1
            for kind in dict.fromkeys(kinds):
                by_kind[kind] = by_kind.get(kind, 0) + 1
        shown = ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) or "—"
        weights = [weight(e, since, until) for e in episodes]
        projected = sum(weights)
        hours = sum(w * e["seconds"] for w, e in zip(weights, episodes, strict=True)) / 3600
        lines.append(
            f"| {alert} | {len(episodes)} | {firing / 3600:.2f} "
            f"| {100 * firing / (until - since):.2f}% | {shown} | {outside} "
            f"| {projected:.0f}, {hours:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--step", type=int, default=30, help="seconds")
    parser.add_argument("--work", type=Path, help="kept; a temporary directory otherwise")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="demo-backtest-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KPI_DEMO_DSN": f"sqlite:///{work / 'demo.db'}",
        "KPI_STATE_DIR": str(work / "state"),
    }
    timings: list[tuple[str, float]] = []

    def timed(stage: str, started: float) -> None:
        timings.append((stage, time.monotonic() - started))
        print(f"{stage}: {timings[-1][1]:.0f} s", file=sys.stderr, flush=True)

    started = time.monotonic()
    demo_history.seed_file(work / "demo.db", args.days)
    timed(f"history ({args.days:g} days into SQLite)", started)
    until = (time.time() - demo.SEED_EVENT_SECONDS - 60) // args.step * args.step
    since = until - args.days * demo.DAY + demo.SEED_EVENT_SECONDS + 120
    window = ["--since", repr(since), "--until", repr(until), "--step", f"{args.step}s"]
    spec = ["-c", str(SPEC)]
    started = time.monotonic()
    kpis = [arg for kpi in read_by_rules() for arg in ("--kpi", kpi)]
    cli("backfill", *spec, *window, *kpis, "--label", "instance=demo:9091",
        "-o", str(work / "blocks"), env=env)  # fmt: skip
    timed("backfill", started)
    directory = work / "prometheus"
    (directory / "tsdb").mkdir(parents=True, exist_ok=True)
    move_blocks(work / "blocks", directory / "tsdb")
    for rules_pass in ("rules-1", "rules-2"):
        started = time.monotonic()
        with prometheus(directory, args.step) as url:
            cli("backfill", *spec, *window, "--rules", "--prometheus", url,
                "-o", str(work / rules_pass), env=env)  # fmt: skip
        move_blocks(work / rules_pass, directory / "tsdb")
        timed(f"backfill --rules ({rules_pass})", started)
    started = time.monotonic()
    with prometheus(directory, args.step) as url:
        out = cli("backtest", *spec, "--prometheus", url, "--since", repr(since + WARMUP),
                  "--until", repr(until), "--format", "json", env=env)  # fmt: skip
    timed("backtest", started)
    (work / "backtest.json").write_text(out)
    # the backtested window, so the table can be drawn again from backtest.json
    (work / "window.json").write_text(json.dumps({"since": since + WARMUP, "until": until}))
    report = json.loads(out)
    hours = (until - since - WARMUP) / 3600
    print(f"\n{args.days:g} days of demo history, backtested {hours:.1f} h at {args.step} s"
          f" steps (work directory {work}):\n")  # fmt: skip
    print(table(report, since + WARMUP, until))
    print("\n| stage | seconds |\n|---|---|")
    for stage, seconds in timings:
        print(f"| {stage} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
