"""Shipped examples: the ServiceMonitor and web config files are valid and consistent."""

from __future__ import annotations

import bcrypt
import yaml
from conftest import ROOT

PACKAGING = ROOT / "packaging"


def test_servicemonitor_and_web_config_examples() -> None:
    service, monitor = yaml.safe_load_all(
        (PACKAGING / "kubernetes/servicemonitor.yaml").read_text()
    )
    assert (service["kind"], monitor["kind"]) == ("Service", "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    port_names = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]

    from exporter.serving.webconfig import WebConfigFile

    data = yaml.safe_load((PACKAGING / "web.yml").read_text())
    parsed = WebConfigFile.model_validate(data)
    hashed = parsed.basic_auth_users["prometheus"].get_secret_value().encode()
    assert bcrypt.checkpw(b"change me", hashed)
