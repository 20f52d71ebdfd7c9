"""The exporters under test as subprocesses on loopback ports, and their CPU and memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QE_VENV = ROOT / "bench" / ".venv-qe"
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter:
    """One exporter process; stopped by its own PID, never by name."""

    def __init__(self, kind: str, command: list[str], port: int, log: Path, env: dict[str, str]):
        self.kind = kind
        self.port = port
        self.log = log
        self._log_handle = log.open("wb")
        self.proc = subprocess.Popen(
            command,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process (all its threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def memory_mib(self) -> tuple[float, float]:
        """(resident now, peak resident) in MiB, from /proc/PID/status."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def output(self) -> str:
        self._log_handle.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_handle.close()


def start_kpi_exporter(spec: Path, workdir: Path) -> Exporter:
    port = free_port()
    command = [sys.executable, "-m", "exporter.cli", "run", "-c", str(spec)]
    command += ["--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    return Exporter("kpi-exporter", command, port, workdir / f"kpi-exporter-{port}.log", {})


def start_query_exporter(config: Path, workdir: Path) -> Exporter:
    port = free_port()
    command = [str(QE_VENV / "bin" / "query-exporter"), "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return Exporter("query-exporter", command, port, workdir / f"query-exporter-{port}.log", {})


def wait_for(check: Callable[[], bool], timeout: float, what: str, exporter: Exporter) -> None:
    """Poll `check` every 0.1 s for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not exporter.alive():
            raise RuntimeError(
                f"{exporter.kind} exited while waiting for {what}:\n{exporter.output()}"
            )
        try:
            if check():
                return
        except (OSError, RuntimeError):
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"{exporter.kind}: no {what} after {timeout:g}s:\n{exporter.output()}")
