"""Which MySQL/MariaDB driver fetches fastest: 100k rows (int, decimal, varchar, datetime)
with each driver installed in this Python, median of several runs, connect time excluded.

Run by hand in a venv holding the drivers (mysqlclient and mariadb need libmariadb-dev, gcc
and the Python headers to build; PyMySQL is a pure-Python wheel):
    python bench/drivers.py [--rows 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import statistics
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

DSN = os.environ.get("KPI_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
DRIVERS = {"PyMySQL": "pymysql", "mysqlclient": "MySQLdb", "mariadb": "mariadb"}


def connect(module: str, url: Any, database: str) -> Any:
    """A connection with the driver's own defaults (unbuffered cursors stay off everywhere)."""
    driver = importlib.import_module(module)
    common = {"host": url.hostname, "port": url.port or 3306, "user": url.username or "root"}
    if module == "MySQLdb":
        return driver.connect(**common, passwd=url.password or "", database=database)
    return driver.connect(**common, password=url.password or "", database=database)


def create(url: Any, database: str, rows: int) -> None:
    conn = connect(next(m for m in DRIVERS.values() if installed(m)), url, "")
    cursor = conn.cursor()
    cursor.execute(f"CREATE DATABASE `{database}`")
    cursor.execute(f"USE `{database}`")
    cursor.execute(
        "CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(12,2) NOT NULL,"
        " customer VARCHAR(64) NOT NULL, created DATETIME NOT NULL)"
    )
    cursor.execute("CREATE TABLE digits (d INT PRIMARY KEY)")
    cursor.execute("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)")
    cursor.execute(
        "INSERT INTO orders SELECT n, ROUND(RAND() * 1000, 2), CONCAT('customer-', n % 997),"
        " TIMESTAMP('2026-01-01') + INTERVAL n SECOND FROM (SELECT 1 + a.d + 10 * b.d"
        " + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS n FROM digits a, digits b,"
        f" digits c, digits e, digits f, digits g) seq WHERE n <= {rows}"
    )
    conn.commit()
    conn.close()


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def fetch_seconds(module: str, url: Any, database: str, repeat: int) -> tuple[float, int]:
    conn = connect(module, url, database)
    cursor = conn.cursor()
    sql = "SELECT id, amount, customer, created FROM orders"
    cursor.execute(sql)
    count = len(cursor.fetchall())  # warm-up: the server's buffer pool and the driver's imports
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        cursor.execute(sql)
        cursor.fetchall()
        timings.append(time.perf_counter() - started)
    conn.close()
    return statistics.median(timings), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    url = urlsplit(DSN)
    present = [name for name, module in DRIVERS.items() if installed(module)]
    if not present:
        print("no driver installed: pip install pymysql mysqlclient mariadb", file=sys.stderr)
        return 2
    database = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        create(url, database, args.rows)
        print(f"| driver | version | fetch {args.rows:,} rows (median of {args.repeat}) |")
        print("|---|---|---|")
        for name, module in DRIVERS.items():
            if name not in present:
                print(f"| {name} | not installed | |")
                continue
            seconds, count = fetch_seconds(module, url, database, args.repeat)
            assert count == args.rows, f"{name} fetched {count} rows"
            version = importlib.metadata.version(name)
            print(f"| {name} | {version} | {seconds * 1000:.0f} ms |", flush=True)
    finally:
        conn = connect(DRIVERS[present[0]], url, "")
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
