"""The benchmark's MariaDB data: the same labelled gauge table as workload.py's, in a database
of its own (`bench_<random>`, dropped at the end), and query-exporter's name for the server."""

from __future__ import annotations

import contextlib
import uuid
from urllib.parse import quote

import mariadb
from workload import GAUGE_ROWS, SHOPS, Workload

from exporter.sources.mysql import connect_arguments


def create(dsn: str) -> Workload:
    """A fresh database with the gauge table (100k rows); its name is the Workload's schema,
    so `gauge_query` reads `bench_….gauge` from any database of the server."""
    database = f"bench_{uuid.uuid4().hex[:10]}"
    with contextlib.closing(mariadb.connect(**connect_arguments(dsn), autocommit=True)) as conn:
        cursor = conn.cursor()
        cursor.execute(f"CREATE DATABASE {database}")
        cursor.execute(
            f"CREATE TABLE {database}.gauge (id INT PRIMARY KEY, shop VARCHAR(16) NOT NULL,"
            " sku VARCHAR(16) NOT NULL, value DOUBLE NOT NULL)"
        )
        cursor.execute(f"CREATE TABLE {database}.digits (d INT PRIMARY KEY)")
        cursor.execute(
            f"INSERT INTO {database}.digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"
        )
        cursor.execute(
            f"INSERT INTO {database}.gauge SELECT n, CONCAT('shop-', n % {SHOPS}),"
            " CONCAT('sku-', LPAD(n, 6, '0')), ROUND(RAND() * 1000, 2) FROM (SELECT 1 + a.d"
            " + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n"
            f" FROM {database}.digits a, {database}.digits b, {database}.digits c,"
            f" {database}.digits e, {database}.digits f) seq WHERE n <= {GAUGE_ROWS}"
        )
        cursor.execute(f"ANALYZE TABLE {database}.gauge")
    return Workload(dsn, database)


def drop(workload: Workload) -> None:
    arguments = connect_arguments(workload.dsn)
    with contextlib.closing(mariadb.connect(**arguments, autocommit=True)) as conn:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {workload.schema}")


def server_version(dsn: str) -> str:
    with contextlib.closing(mariadb.connect(**connect_arguments(dsn))) as conn:
        return str(conn.server_info)


def sqlalchemy_url(dsn: str) -> str:
    """The same server for query-exporter (SQLAlchemy), through the same MariaDB driver."""
    arguments = connect_arguments(dsn)
    user = quote(arguments.get("user", "root"), safe="")
    password = f":{quote(arguments['password'], safe='')}" if arguments.get("password") else ""
    return (
        f"mariadb+mariadbconnector://{user}{password}@{arguments['host']}:{arguments['port']}"
        f"/{arguments.get('database', '')}"
    )
