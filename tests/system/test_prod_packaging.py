"""Shipped deployment files: promtool accepts the scrape configs, systemd the unit, and so on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT, free_port, need, tool
from test_production import gauge_spec, make_values_db

PACKAGING = ROOT / "packaging"


def test_scrape_configs_pass_promtool(tmp_path: Path) -> None:
    promtool = tool("promtool")
    # the examples point at /etc/prometheus files; give promtool real ones to open
    (tmp_path / "kpi-exporter-ca.crt").write_text("")
    (tmp_path / "kpi-exporter.password").write_text("change me\n")
    targets = tmp_path / "targets"
    targets.mkdir()
    shutil.copy(PACKAGING / "prometheus/targets-kpi-exporter.yml", targets / "kpi-exporter.yml")
    for name in ("scrape-static.yml", "scrape-file-sd.yml"):
        text = (
            (PACKAGING / "prometheus" / name).read_text().replace("/etc/prometheus", str(tmp_path))
        )
        config = tmp_path / name
        config.write_text(text)
        result = subprocess.run(
            [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # the target file is the shape file_sd reads
    groups = yaml.safe_load((PACKAGING / "prometheus/targets-kpi-exporter.yml").read_text())
    assert all(set(g) == {"targets", "labels"} for g in groups)
    assert {g["labels"]["replica"] for g in groups} == {"a", "b"}


def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    need(analyze is not None, "systemd-analyze is not installed")
    assert analyze is not None
    text = (PACKAGING / "kpi-exporter.service").read_text()
    for line in (
        "Type=notify",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=kpi-exporter",
        "ReadWritePaths=/var/lib/kpi-exporter",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line
    executable = Path(sys.executable).parent / "kpi-exporter"
    unit = tmp_path / "kpi-exporter.service"
    unit.write_text(text.replace("/usr/local/bin/kpi-exporter", str(executable)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "kpi-exporter.service" in line
    ]
    assert problems == [], problems


def test_dockerfile_healthcheck_command_probes_health(run_exporter, tmp_path: Path) -> None:
    """The image cannot be built here; its HEALTHCHECK command is run against a real exporter."""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert "/etc/kpi-exporter" in text and 'VOLUME ["/var/lib/kpi-exporter"]' in text
    match = re.search(r"^  CMD (\[.*\])$", text, re.MULTILINE)
    assert match is not None
    command = json.loads(match.group(1))
    assert command[0] == "python"
    command[0] = sys.executable

    db = tmp_path / "values.db"
    make_values_db(db, {"probe_gauge": 1.0})
    spec = tmp_path / "spec.yaml"
    spec.write_text(gauge_spec(db, ["probe_gauge"]))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready(path="/health")
    env = {"METRICS_PORT": str(exporter.port), "PATH": "/usr/bin:/bin"}
    healthy = subprocess.run(command, env=env, capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr
    env["METRICS_PORT"] = str(free_port())
    down = subprocess.run(command, env=env, capture_output=True, timeout=30)
    assert down.returncode == 1 and b"Connection refused" in down.stderr, down.stderr
