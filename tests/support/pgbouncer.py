"""A real PgBouncer (Debian's package) in transaction pooling in front of the test server,
started on a free port with its own config, log and pid file, and stopped by its PID."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

POOL_SIZE = 3  # server connections per (database, user)

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {dir}/userlist.txt
admin_users = {user}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 50
server_reset_query =
ignore_startup_parameters = {ignore}
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


@dataclass
class PgBouncer:
    port: int
    user: str
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop this PgBouncer (by its PID); its server sessions end with it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str) -> list[dict[str, Any]]:
        """A SHOW command on PgBouncer's admin console, as dicts."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(
            self.dsn("pgbouncer"), autocommit=True, prepare_threshold=None, row_factory=dict_row
        ) as conn:
            return conn.execute(command).fetchall()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pgbouncer(
    executable: str, server_dsn: str, ignore_startup_parameters: str = "", timeout: float = 20.0
) -> Iterator[PgBouncer]:
    """PgBouncer running until the block ends; fails when it does not listen within `timeout`."""
    server = urlsplit(server_dsn)
    user = server.username or "postgres"
    directory = Path(tempfile.mkdtemp(prefix="kpi-pgbouncer-"))
    command = [executable]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: it switches to postgres
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        command += ["-u", "postgres"]
    listen = _free_port()
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        CONFIG.format(
            host=server.hostname or "127.0.0.1",
            port=server.port or 5432,
            listen=listen,
            dir=directory,
            user=user,
            pool_size=POOL_SIZE,
            ignore=ignore_startup_parameters,
        )
    )
    for path in directory.iterdir():
        os.chmod(path, 0o644)
    process = subprocess.Popen(
        [*command, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    bouncer = PgBouncer(listen, user, directory / "pgbouncer.log", process)
    try:
        _wait_listening(process, listen, timeout, bouncer.log)
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float, log: Path) -> None:
    import time

    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            text = log.read_text() if log.exists() else ""
            raise AssertionError(f"pgbouncer exited with {process.returncode}: {stderr}{text}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    raise AssertionError(f"pgbouncer did not listen on {port} within {timeout}s")
