"""Push generated dashboards to a Grafana through its HTTP API (folder by name, overwrite)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

USER_AGENT = "kpi-exporter"


class GrafanaError(Exception):
    """Grafana refused a request or could not be reached; the message says what to do."""


@dataclass(frozen=True)
class Pushed:
    """One dashboard Grafana accepted."""

    uid: str
    title: str
    url: str
    version: int | None


def safe_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class GrafanaClient:
    """A minimal client of the endpoints the push needs, with a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        where = f"{method} {safe_url(self.base)}{path}"
        try:
            response = self.session.request(
                method, self.base + path, json=body, timeout=self.timeout
            )
        except requests.Timeout:
            raise GrafanaError(f"{where}: no answer within {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise GrafanaError(
                f"{where}: cannot reach Grafana ({type(exc).__name__}); check --grafana-url "
                "and that Grafana is running"
            ) from None
        if response.status_code >= 400:
            raise GrafanaError(f"{where}: {_explain(response)}")
        try:
            return response.json()
        except ValueError:
            raise GrafanaError(f"{where}: the answer is not JSON (is this a Grafana?)") from None

    def folder_uid(self, title: str) -> str:
        """The uid of the top-level folder with this title, created when missing."""
        folders = self._call("GET", "/api/folders?limit=1000")
        for folder in folders if isinstance(folders, list) else []:
            if isinstance(folder, dict) and folder.get("title") == title:
                return str(folder["uid"])
        created = self._call("POST", "/api/folders", {"title": title})
        return str(created["uid"])

    def put_dashboard(self, dashboard: dict[str, Any], folder_uid: str, message: str) -> Pushed:
        """Create or overwrite a dashboard by uid in the folder."""
        body = {
            "dashboard": {**dashboard, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": message,
        }
        answer = self._call("POST", "/api/dashboards/db", body)
        return Pushed(
            uid=str(answer.get("uid", dashboard.get("uid"))),
            title=str(dashboard.get("title")),
            url=str(answer.get("url", "")),
            version=answer.get("version"),
        )


def _explain(response: requests.Response) -> str:
    try:
        detail = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        detail = ""
    detail = f" ({detail})" if detail else ""
    code = response.status_code
    if code == 401:
        return (
            f"401 Unauthorized{detail}: Grafana rejected the token; set GRAFANA_TOKEN or "
            "--token-file to a valid service-account token"
        )
    if code == 403:
        return (
            f"403 Forbidden{detail}: the token may not write dashboards or folders; give its "
            "service account the Editor role (or dashboards:write on the folder)"
        )
    if code == 412:
        return (
            f"412 Precondition Failed{detail}: a different dashboard with the same title or "
            "uid is in the way; rename or remove it in Grafana"
        )
    return f"HTTP {code}{detail}"


def push(
    client: GrafanaClient, dashboards: Sequence[dict[str, Any]], folder: str, message: str
) -> list[Pushed]:
    """Push every dashboard into the folder; the first refusal stops with GrafanaError."""
    folder_uid = client.folder_uid(folder)
    return [client.put_dashboard(d, folder_uid, message) for d in dashboards]
