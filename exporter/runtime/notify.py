"""systemd's sd_notify protocol: READY, RELOADING, STOPPING, STATUS and watchdog pings."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from logging import DEBUG, WARNING

from exporter.log import event


def _address(value: str) -> str | bytes | None:
    """NOTIFY_SOCKET as a socket address: a path, or '@name' for the abstract namespace."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other forms: not for us


class SystemdNotifier:
    """Sends notifications when NOTIFY_SOCKET is set; otherwise every call does nothing."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6
        self._socket: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *fields: str) -> bool:
        """One datagram of KEY=VALUE lines; False (logged once at debug) when it cannot go."""
        if self._socket is None or self.address is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            event(DEBUG, "sd_notify_failed", error=exc.strerror or str(exc))
            return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the spec")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def start_watchdog(self, alive: Callable[[], bool]) -> None:
        """Ping WATCHDOG=1 at half the interval while `alive()` says the service works."""
        if self._socket is None or self.watchdog_interval is None:
            return
        period = self.watchdog_interval / 2

        def loop() -> None:
            while not self._stop.wait(period):
                if alive():
                    self.send("WATCHDOG=1")
                else:
                    # Let systemd's watchdog fire: the process is up but no longer works.
                    event(WARNING, "watchdog_withheld", why="scheduler or HTTP server stopped")

        self._thread = threading.Thread(target=loop, name="sd-watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
