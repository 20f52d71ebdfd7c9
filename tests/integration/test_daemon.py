"""Daemon reloads in-process: what a new spec changes, the polls follow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from exporter.runtime.daemon import Daemon
from exporter.spec.loading import load_spec

SPEC = """\
exporter: {{labels: {{service: {service}}}, namespace: "{namespace}"}}
databases:
  app: {{dsn: "sqlite:///{db}"}}
kpis:
  - {{name: orders, type: gauge, database: app, interval: 1m, query: SELECT 3 AS value}}
"""


class TestReload:
    def test_exporter_labels_and_namespace_changes_reach_the_series(self, tmp_path: Path) -> None:
        db = tmp_path / "app.db"
        sqlite3.connect(db).close()
        spec = tmp_path / "spec.yaml"
        spec.write_text(SPEC.format(service="a", namespace="", db=db))
        daemon = Daemon(load_spec([spec]), [spec])
        try:
            assert daemon.poll_all_once()
            assert b'orders{service="a"} 3.0' in daemon.publication.body(False, False)
            spec.write_text(SPEC.format(service="b", namespace="shop", db=db))
            assert daemon.reload() == (True, [])
            body = daemon.publication.body(False, False)
            assert b"orders{" not in body  # the old series are withdrawn at once
            assert daemon.poll_all_once()
            assert b'shop_orders{service="b"} 3.0' in daemon.publication.body(False, False)
        finally:
            daemon.stop(grace=0)
