"""Generated dashboards' PromQL: promtool parses every panel target."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from conftest import tool
from support.dashboards import panels_of

# Grafana's own variables and ours, expanded the way the dashboard linter does before parsing.
EXPANSIONS = {
    "${datasource}": "prometheus",
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "6h",
    "$job": "kpi-exporter",
    "$instance": "127.0.0.1:9091",
}


def expand(expr: str) -> str:
    for name in sorted(EXPANSIONS, key=len, reverse=True):
        expr = expr.replace(name, EXPANSIONS[name])
    return expr


class TestPromtool:
    def test_every_target_parses(self, tmp_path: Path, rendered: list[dict[str, Any]]) -> None:
        promtool = tool("promtool")
        rules = []
        for number, board in enumerate(rendered):
            for panel in panels_of(board):
                for target in panel["targets"]:
                    rules.append(
                        {
                            "record": f"dashboard_{number}:panel_{panel['id']}_{target['refId']}",
                            "expr": expand(target["expr"]),
                        }
                    )
            for variable in board["templating"]["list"]:
                if variable["type"] == "query":
                    inner = re.fullmatch(r"label_values\((.*), \w+\)", variable["query"]["query"])
                    assert inner, variable
                    rules.append(
                        {
                            "record": f"dashboard_{number}:{variable['name']}",
                            "expr": expand(inner.group(1)),
                        }
                    )
        assert rules
        path = tmp_path / "panels.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(rules)} rules found" in done.stdout
