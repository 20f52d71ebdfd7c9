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
auth_type = {auth_type}
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
    userlist: Path
    password: str = ""

    def stop(self) -> None:
        """Stop this PgBouncer (by its PID); its server sessions end with it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def set_password(self, password: str, database: str) -> None:
        """Rotate the user's password; the clients of `database` are dropped and must log in
        again (an idle pooled connection would otherwise go on with the old password)."""
        before = self.userlist.stat().st_mtime
        self.userlist.write_text(f'"{self.user}" "{password}"\n')
        # PgBouncer re-reads the file on RELOAD only when its mtime (in seconds) moved
        os.utime(self.userlist, (before + 2, before + 2))
        self.admin("RELOAD")
        self.password = password
        self.admin(f'KILL "{database}"')
        self.admin(f'RESUME "{database}"')  # KILL also holds new logins until RESUME

    def dsn(self, database: str, password: str | None = None) -> str:
        secret = self.password if password is None else password
        user = f"{self.user}:{secret}" if secret else self.user
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str, password: str | None = None) -> list[dict[str, Any]]:
        """A command on PgBouncer's admin console; SHOW's rows as dicts."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(
            self.dsn("pgbouncer", password),
            autocommit=True,
            prepare_threshold=None,
            row_factory=dict_row,
        ) as conn:
            cursor = conn.execute(command)
            return cursor.fetchall() if cursor.description else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pgbouncer(
    executable: str,
    server_dsn: str,
    ignore_startup_parameters: str = "",
    password: str = "",
    timeout: float = 20.0,
) -> Iterator[PgBouncer]:
    """PgBouncer running until the block ends; fails when it does not listen within `timeout`.

    With a `password`, PgBouncer itself checks it (auth_type plain), the server trusts it."""
    server = urlsplit(server_dsn)
    user = server.username or "postgres"
    directory = Path(tempfile.mkdtemp(prefix="kpi-pgbouncer-"))
    command = [executable]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: it switches to postgres
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        command += ["-u", "postgres"]
    listen = _free_port()
    userlist = directory / "userlist.txt"
    userlist.write_text(f'"{user}" "{password}"\n')
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
            auth_type="plain" if password else "trust",
        )
    )
    for path in directory.iterdir():
        os.chmod(path, 0o644)
    process = subprocess.Popen(
        [*command, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    bouncer = PgBouncer(listen, user, directory / "pgbouncer.log", process, userlist, password)
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
