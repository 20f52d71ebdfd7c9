"""The demo business database: portable schema, seeded history and a traffic simulator."""

from __future__ import annotations

import logging
import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from exporter.sources import registry
from exporter.sources.base import DemoDialect

log = logging.getLogger(__name__)

DAY = 86400.0

# Each backend's DemoDialect names its identity column, string type and insert placeholder;
# every other type name is portable (SQLite maps DOUBLE PRECISION to REAL affinity and BIGINT
# to INTEGER affinity).

_TABLES = {
    "users": "id {id}, created_at DOUBLE PRECISION NOT NULL",
    "sessions": (
        "id {id}, user_id BIGINT NOT NULL, service {text} NOT NULL, "
        "last_seen DOUBLE PRECISION NOT NULL"
    ),
    "payments": (
        "id {id}, user_id BIGINT NOT NULL, status {text} NOT NULL, payment_method {text} NOT NULL, "
        "plan {text} NOT NULL, currency {text} NOT NULL, amount_usd DOUBLE PRECISION NOT NULL, "
        "error_type {text}, created_at DOUBLE PRECISION NOT NULL"
    ),
    "generations": (
        "id {id}, status {text} NOT NULL, type {text} NOT NULL, error_type {text}, "
        "created_at DOUBLE PRECISION NOT NULL"
    ),
    "token_usage": (  # nosec B105  # a column list, not a password
        "id {id}, model {text} NOT NULL, type {text} NOT NULL, tokens INTEGER NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL"
    ),
    "queue_jobs": (
        "id {id}, queue_name {text} NOT NULL, status {text} NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, "
        "finished_at DOUBLE PRECISION, duration_seconds DOUBLE PRECISION"
    ),
    "http_requests": (
        "id {id}, route {text} NOT NULL, status_code INTEGER NOT NULL, "
        "duration_seconds DOUBLE PRECISION NOT NULL, service {text} NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL"
    ),
    "errors": (
        "id {id}, service {text} NOT NULL, error_type {text} NOT NULL, severity {text} NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL"
    ),
    "feature_events": (
        "id {id}, feature {text} NOT NULL, action {text} NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL"
    ),
}

# What the KPI queries filter and order by; ids are the primary keys.
_INDEXES = (
    ("users_created_at", "users", "created_at"),
    ("sessions_last_seen", "sessions", "last_seen"),
    ("sessions_user_last_seen", "sessions", "user_id, last_seen"),
    ("payments_created_at", "payments", "created_at"),
    ("generations_created_at", "generations", "created_at"),
    ("token_usage_created_at", "token_usage", "created_at"),
    ("queue_jobs_status", "queue_jobs", "status"),
    ("queue_jobs_finished_at_id", "queue_jobs", "finished_at, id"),
    ("queue_jobs_created_at", "queue_jobs", "created_at"),
    ("http_requests_created_at", "http_requests", "created_at"),
    ("errors_created_at", "errors", "created_at"),
    ("feature_events_created_at", "feature_events", "created_at"),
)

_INSERT_COLUMNS = {
    "users": ("created_at",),
    "sessions": ("user_id", "service", "last_seen"),
    "payments": (
        "user_id",
        "status",
        "payment_method",
        "plan",
        "currency",
        "amount_usd",
        "error_type",
        "created_at",
    ),
    "generations": ("status", "type", "error_type", "created_at"),
    "token_usage": ("model", "type", "tokens", "created_at"),
    "queue_jobs": (
        "queue_name",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "duration_seconds",
    ),
    "http_requests": ("route", "status_code", "duration_seconds", "service", "created_at"),
    "errors": ("service", "error_type", "severity", "created_at"),
    "feature_events": ("feature", "action", "created_at"),
}

# Events per simulated second in normal operation.
RATES = {
    "users": 0.2,
    "returning_sessions": 0.3,
    "session_touches": 6.0,
    "payments": 0.5,
    "generations": 2.0,
    "jobs": 2.0,
    "http_requests": 10.0,
    "errors": 0.6,
    "feature_views": 1.5,
}
WEEK = 7 * DAY
TUESDAY = 5 * DAY  # Tuesday 00:00 UTC into an epoch-aligned week (1970-01-01 was a Thursday)


@dataclass(frozen=True)
class Trouble:
    """A kind of simulated trouble: `length` seconds from `offset` into every `every` seconds
    since the epoch, so a backtest knows from the clock alone when each one was."""

    name: str
    every: float
    offset: float
    length: float

    def active(self, at: float) -> bool:
        return (at - self.offset) % self.every < self.length

    def windows(self, since: float, until: float) -> list[tuple[float, float]]:
        """(start, end) of each occurrence overlapping [since, until)."""
        found = []
        first = math.floor((since - self.offset) / self.every)
        last = math.ceil((until - self.offset) / self.every)
        for period in range(first, last + 1):
            start = period * self.every + self.offset
            if start + self.length > since and start < until:
                found.append((start, start + self.length))
        return found


# Incidents: failures, 5xx and slow requests rise for 90 s every 3 hours (00:00, 03:00, ... UTC).
INCIDENT = Trouble("incident", 3 * 3600.0, 0.0, 90.0)
# Outages: 12 minutes daily at 12:00 UTC (so each begins with an incident): what the brief's
# rate alerts catch; rules/README.md has the sums.
OUTAGE = Trouble("outage", DAY, 12 * 3600.0, 720.0)
# Queue stalls: Tuesdays 06:30-07:30 UTC the images workers' upscaler hangs; the STALL_HANG
# share of images jobs (those that need it) hang until the stall ends and then run again, so
# the queue's running jobs climb about 2.4 a minute (rules/README.md: when the forecast fires).
QUEUE_STALL = Trouble("queue_stall", WEEK, TUESDAY + 6.5 * 3600, 3600.0)
STALLED_QUEUE = "images"
STALL_HANG = 0.1
# Payments halt: the payment gateway is down for 20 minutes every Tuesday from 11:00 UTC and
# no payment row is written, so revenue goes stale (RevenueUsdFreshnessBudgetBurn).
PAYMENTS_HALT = Trouble("payments_halt", WEEK, TUESDAY + 11 * 3600.0, 1200.0)
# Login outage: nobody can sign up, sign in or be seen (no new users or sessions, no visits), so
# active users fall to 0 within 5 minutes; ActiveUsersAnomaly's baseline is Monday, clean.
LOGIN_OUTAGE = Trouble("login_outage", WEEK, TUESDAY + 17.5 * 3600, 1800.0)
# The model provider down, Tuesdays 09:30-10:45 UTC: PROVIDER_OUTAGE_FAILURE of generations fail,
# enough for GenerationSuccessErrorBudgetBurn's 1h/5m page (rules/README.md has the sums).
PROVIDER_OUTAGE = Trouble("provider_outage", WEEK, TUESDAY + 9.5 * 3600, 75 * 60.0)
# The database slow, Tuesdays 13:30-14:45 UTC: SLOW_DATABASE_SHARE of the requests of the routes
# that query it wait SLOW_DATABASE_WAIT more, for HttpRequestDurationLatencyBudgetBurn's page.
SLOW_DATABASE = Trouble("slow_database", WEEK, TUESDAY + 13.5 * 3600, 75 * 60.0)
# Every kind of trouble the simulator has; weekly kinds keep Tuesdays (UTC) apart from the rest.
TROUBLES = (
    INCIDENT,
    OUTAGE,
    QUEUE_STALL,
    PROVIDER_OUTAGE,
    PAYMENTS_HALT,
    SLOW_DATABASE,
    LOGIN_OUTAGE,
)

# Failure shares (normal, in an incident) the demo's alerts are tuned on (rules/README.md).
PAYMENT_FAILURE = (0.0005, 0.4)  # 0.075 failures per 5 minutes normally: "more than 3" is rare
GENERATION_FAILURE = (0.005, 0.3)
JOB_FAILURE_INCIDENT = 0.3  # normally each queue's own Queue.failure
SERVER_ERROR = (0.01, 0.1)  # share of HTTP requests answered 5xx
SLOW_TAIL = (0.01, 0.05)  # share of HTTP requests 5-20 times slower than their route's median
ERROR_BURST = 5  # errors per error arrival in an incident (1 normally)
# In an outage: every error arrival is a burst of OUTAGE_ERROR_BURST errors of the api
# component, OUTAGE_CRITICAL of them critical (24/s from 0.6/s, 2.4/s critical); each webhook
# job arrives with OUTAGE_RETRIES retries, jobs fail OUTAGE_JOB_FAILURE (8.6 webhook failures/s);
# OUTAGE_SLOW_TAIL of requests are in the slow tail.
OUTAGE_ERROR_BURST = 40
OUTAGE_CRITICAL = 0.1
OUTAGE_RETRIES = 15
OUTAGE_JOB_FAILURE = 0.9
OUTAGE_SLOW_TAIL = 0.25
# The page needs over 72% failing over 1h and 5m: 95% crosses it in the hour 45 minutes in.
PROVIDER_OUTAGE_FAILURE = 0.95
PROVIDER_OUTAGE_ERRORS = (("timeout", 0.7), ("model_error", 0.3))
# Every slowed request is over the SLO's 2 s: 90% of a database route's requests, where the
# page needs 67.2% over 1h and 5m.
SLOW_DATABASE_SHARE = 0.9
SLOW_DATABASE_WAIT = (2.0, 8.0)  # seconds, uniform
SEED_HISTORY_DAYS = 60
SEED_USERS = 5000
SEED_EVENT_SECONDS = 300.0
MAX_CATCH_UP = 60.0  # a simulator that was paused does not insert a burst of hours

SERVICES = (("web", 0.55), ("ios", 0.3), ("android", 0.15))
PAYMENT_METHODS = (("card", 0.7), ("paypal", 0.2), ("bank_transfer", 0.1))
PLANS = {"starter": 9.0, "pro": 29.0, "team": 99.0}
PLAN_WEIGHTS = (("starter", 0.5), ("pro", 0.35), ("team", 0.15))
CURRENCIES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
CURRENCY_WEIGHTS = (("USD", 0.6), ("EUR", 0.3), ("GBP", 0.1))
PAYMENT_ERRORS = (
    ("card_declined", 0.45),
    ("insufficient_funds", 0.25),
    ("expired_card", 0.15),
    ("gateway_timeout", 0.1),
    ("fraud_suspected", 0.05),
)
GENERATION_TYPES = (("text", 0.5), ("image", 0.25), ("code", 0.2), ("audio", 0.05))
GENERATION_ERRORS = (
    ("timeout", 0.4),
    ("rate_limited", 0.3),
    ("model_error", 0.2),
    ("content_filter", 0.1),
)
MODELS = {
    "text": (("gpt-4o", 0.4), ("gpt-4o-mini", 0.6)),
    "code": (("claude-3-5-sonnet", 0.7), ("gpt-4o", 0.3)),
    "audio": (("whisper-1", 1.0),),
}


@dataclass(frozen=True)
class Queue:
    """A job queue: how long jobs wait and run (medians, seconds) and how often they fail."""

    name: str
    share: float
    wait: float
    run: float
    failure: float


QUEUES = (
    Queue("emails", 0.4, 0.5, 1.2, 0.03),
    Queue("webhooks", 0.3, 0.2, 0.3, 0.06),
    Queue("images", 0.2, 2.0, 8.0, 0.04),
    Queue("reports", 0.1, 5.0, 25.0, 0.05),
)
_QUEUE = {q.name: q for q in QUEUES}


@dataclass(frozen=True)
class Route:
    """An HTTP route: its share of traffic, median latency (s), success code, service, and
    whether its requests wait on the database (slowed in SLOW_DATABASE)."""

    path: str
    share: float
    median: float
    ok_status: int
    service: str
    database: bool = False


ROUTES = (
    Route("/api/generate", 0.25, 0.5, 201, "api"),  # waits on the model provider
    Route("/api/payments", 0.1, 0.25, 201, "billing", database=True),
    Route("/api/users", 0.2, 0.05, 200, "api", database=True),
    Route("/api/jobs", 0.15, 0.08, 200, "api", database=True),
    Route("/dashboard", 0.1, 0.15, 200, "web", database=True),
    Route("/health", 0.2, 0.005, 200, "api"),
)
CLIENT_ERRORS = ((400, 0.3), (401, 0.25), (404, 0.3), (429, 0.15))
SERVER_ERRORS = ((500, 0.6), (502, 0.2), (503, 0.2))
ERROR_TYPES = (
    ("ValidationError", 0.35),
    ("TimeoutError", 0.25),
    ("DatabaseError", 0.15),
    ("PaymentGatewayError", 0.1),
    ("RateLimitError", 0.15),
)
ERROR_SERVICES = (("api", 0.6), ("worker", 0.25), ("billing", 0.15))
SEVERITIES = (("warning", 0.6), ("error", 0.33), ("critical", 0.07))
FEATURES = ("image_editor", "code_assistant", "export_pdf", "team_sharing", "voice_input")


def incident(at: float) -> bool:
    """Whether `at` falls in a simulated incident (failures, 5xx and slow requests rise)."""
    return INCIDENT.active(at)


def outage(at: float) -> bool:
    """Whether `at` falls in a simulated outage (an error storm, webhook retries failing, slow
    requests); an outage's first 90 s are also an incident."""
    return OUTAGE.active(at)


def _share(shares: tuple[float, float], at: float) -> float:
    """The (normal, incident) share that applies at `at`."""
    return shares[1] if incident(at) else shares[0]


def create_schema(conn: Any, dialect: str) -> None:
    """Create the demo tables and indexes if missing, then commit."""
    ddl = demo_dialect(dialect)
    cur = conn.cursor()
    for table, columns in _TABLES.items():
        columns = columns.format(id=ddl.identity, text=ddl.text)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    existing: list[str] = []
    if ddl.index_names is not None:
        cur.execute(ddl.index_names)
        existing = [name for (name,) in cur.fetchall()]
    for statement in index_statements(ddl, existing):
        cur.execute(statement)
    conn.commit()


def index_statements(ddl: DemoDialect, existing: Sequence[str]) -> list[str]:
    """The demo's CREATE INDEX statements: each IF NOT EXISTS, or, on an engine without that
    (ddl.index_names: MySQL 8), only those of the indexes not in `existing` (names from
    ddl.index_names, compared case-insensitively as MySQL does)."""
    if ddl.index_names is None:
        return [f"CREATE INDEX IF NOT EXISTS {n} ON {t} ({c})" for n, t, c in _INDEXES]
    present = {name.lower() for name in existing}
    return [f"CREATE INDEX {n} ON {t} ({c})" for n, t, c in _INDEXES if n not in present]


def seed(conn: Any, dialect: str, now: float, rng: random.Random) -> None:
    """Insert a realistic history into empty tables: SEED_HISTORY_DAYS of users and sessions,
    the traffic of the last incident before the recent minutes (a minute either side), then
    SEED_EVENT_SECONDS of traffic up to `now`; commits. Incidents come every 3 hours: without
    the last one a new demo shows no failed payment for up to that long. (demo_history puts
    days of events between the users and the recent minutes instead.)"""
    seed_users(conn, dialect, now, rng)
    recent = now - SEED_EVENT_SECONDS
    start, end = INCIDENT.windows(recent - INCIDENT.every - 60, recent - 60)[-1]
    until = min(end + 60, recent)
    insert_events(conn, dialect, until, rng, until - (start - 60))
    seed_recent_activity(conn, dialect, now, rng)


def seed_users(conn: Any, dialect: str, now: float, rng: random.Random) -> None:
    """SEED_HISTORY_DAYS of users and their sessions into empty tables; commits."""
    demo_dialect(dialect)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM users")
    if cur.fetchone()[0]:
        raise ValueError("seed() needs an empty database")
    created = sorted(
        _signed_in(now - SEED_HISTORY_DAYS * DAY * rng.random() ** 1.3 - 60.0)
        for _ in range(SEED_USERS)
    )
    _insert(cur, dialect, "users", [(at,) for at in created])
    cur.execute("SELECT id, created_at FROM users ORDER BY id")
    sessions: list[tuple[int, str, float]] = []
    for user_id, since in cur.fetchall():
        if rng.random() < 0.35:  # churner: used the product for a few days, then left
            last = min(since + rng.expovariate(1 / (3 * DAY)), now - 60.0)
        else:
            last = max(since, now - rng.expovariate(1 / (1.5 * DAY)))
        sessions.append((user_id, _pick(rng, SERVICES), max(since, _signed_in(last))))
        for _ in range(rng.choice((0, 0, 1, 2))):
            at = _signed_in(rng.uniform(since, last))
            sessions.append((user_id, _pick(rng, SERVICES), max(since, at)))
    # recent sessions get the highest ids, which is where the simulator touches most
    sessions.sort(key=lambda row: (row[2], row[0]))
    _insert(cur, dialect, "sessions", sessions)
    conn.commit()


def seed_recent_activity(conn: Any, dialect: str, now: float, rng: random.Random) -> None:
    """The last SEED_EVENT_SECONDS of traffic up to `now`, in 30 s ticks; commits."""
    step = 30.0
    steps = int(SEED_EVENT_SECONDS // step)
    for index in range(steps):
        insert_activity(conn, dialect, now - (steps - 1 - index) * step, rng, step)


def insert_activity(
    conn: Any, dialect: str, now: float, rng: random.Random, seconds: float
) -> None:
    """Insert the rows of `seconds` of simulated traffic ending at `now`, then commit."""
    demo_dialect(dialect)
    if seconds <= 0:
        return
    _users_and_sessions(conn.cursor(), dialect, rng, _arrivals(rng, now - seconds, seconds))
    insert_events(conn, dialect, now, rng, seconds)


def _arrivals(
    rng: random.Random, start: float, seconds: float, load: float = 1.0
) -> Callable[[float], list[float]]:
    """Sorted Poisson arrival times in [start, start + seconds) at `load` times a rate."""

    def times(rate: float) -> list[float]:
        count = _poisson(rng, rate * load * seconds)
        return sorted(start + seconds * rng.random() for _ in range(count))

    return times


def insert_events(
    conn: Any, dialect: str, now: float, rng: random.Random, seconds: float, load: float = 1.0
) -> None:
    """Insert the event rows (payments, generations, jobs, requests, errors, features) of
    `seconds` of traffic ending at `now` at `load` times the normal RATES, then commit. Users
    and sessions are insert_activity's (demo_history writes them with Visits)."""
    demo_dialect(dialect)
    if seconds <= 0:
        return
    start = now - seconds
    cur = conn.cursor()
    times = _arrivals(rng, start, seconds, load)
    _payments(cur, dialect, rng, times(RATES["payments"]))
    _generations(cur, dialect, rng, times(RATES["generations"]))
    _queue_jobs(cur, dialect, rng, start, now, times(RATES["jobs"]))
    _http_requests(cur, dialect, rng, times(RATES["http_requests"]))
    _errors(cur, dialect, rng, now, times(RATES["errors"]))
    _feature_events(cur, dialect, rng, now, times(RATES["feature_views"]))
    conn.commit()


def _signed_in(at: float) -> float:
    """`at`, or when it falls in a login outage the moment before it began (seeded times)."""
    if not LOGIN_OUTAGE.active(at):
        return at
    return at - (at - LOGIN_OUTAGE.offset) % LOGIN_OUTAGE.every - 1.0


def _signing_in(at_times: list[float]) -> list[float]:
    """The arrivals outside login outages: in one nobody signs up, signs in or is seen."""
    return [at for at in at_times if not LOGIN_OUTAGE.active(at)]


RECENT_USERS = 300.0  # a returning user is this many sign-ups back on average
RECENT_SESSIONS = 150.0  # a touched session is this many sessions back on average (~5 minutes)


def _returning_user(rng: random.Random, total_users: int) -> int:
    """The user id of a returning session among users 1..total_users."""
    if rng.random() < 0.95:  # mostly recent sign-ups coming back on another device
        return max(1, total_users - int(rng.expovariate(1 / RECENT_USERS)))
    return rng.randint(1, total_users)


def _touched_session(rng: random.Random, last_session: int) -> int:
    """The number (1..last_session, in order of creation) of the session a touch sees."""
    if rng.random() < 0.99:  # mostly the users who are around right now
        return max(1, last_session - int(rng.expovariate(1 / RECENT_SESSIONS)))
    return rng.randint(1, last_session)  # now and then someone long gone comes back


def _users_and_sessions(
    cur: Any, dialect: str, rng: random.Random, times: Callable[[float], list[float]]
) -> None:
    """New users with their first session, returning users' new sessions, sessions seen (a
    touch moves its session's last_seen: only the last visit stays)."""
    cur.execute("SELECT COALESCE(max(id), 0) FROM users")
    last_user = int(cur.fetchone()[0])
    joined = _signing_in(times(RATES["users"]))
    _insert(cur, dialect, "users", [(at,) for at in joined])
    cur.execute(
        _sql(dialect, "SELECT id, created_at FROM users WHERE id > ? ORDER BY id"), (last_user,)
    )
    sessions = [(user_id, _pick(rng, SERVICES), at) for user_id, at in cur.fetchall()]
    total_users = sessions[-1][0] if sessions else last_user
    if total_users:
        for at in _signing_in(times(RATES["returning_sessions"])):
            sessions.append((_returning_user(rng, total_users), _pick(rng, SERVICES), at))
    _insert(cur, dialect, "sessions", sessions)
    cur.execute("SELECT COALESCE(max(id), 0) FROM sessions")
    last_session = int(cur.fetchone()[0])
    if not last_session:
        return
    touches = [
        (at, at, _touched_session(rng, last_session))
        for at in _signing_in(times(RATES["session_touches"]))
    ]
    if touches:  # MariaDB's executemany refuses an empty list
        cur.executemany(
            _sql(
                dialect,
                "UPDATE sessions SET last_seen = CASE WHEN last_seen < ? THEN ? ELSE last_seen "
                "END WHERE id = ?",
            ),
            touches,
        )


class Visits:
    """The simulator's sessions for a history, which keeps every visit where the simulator
    keeps only the last: a session row per visit (last_seen = its time), so the active users
    of any past instant are in the rows. Users, sessions and touches arrive at the simulator's
    rates, pick users and sessions as it does (_returning_user, _touched_session, in time
    order: only users and sessions that exist by then) and stop in login outages.

    Sessions are numbered in creation order, starting with the table's rows (the seed's);
    settle() appends the last SETTLED sessions with their last visit, the table the simulator
    would have left, so that its touches go on where the history stops."""

    SETTLED = 2000  # the simulator touches further back than 2000 sessions 1% of the time

    def __init__(self, cur: Any) -> None:
        cur.execute("SELECT COALESCE(max(id), 0) FROM users")
        self.users = int(cur.fetchone()[0])
        cur.execute("SELECT user_id, service, last_seen FROM sessions ORDER BY id")
        rows = cur.fetchall()
        self.sessions: list[tuple[int, str]] = [(int(u), str(s)) for u, s, _ in rows]
        self.seen: list[float] = [float(at) for _, _, at in rows]

    def insert(
        self,
        cur: Any,
        dialect: str,
        rng: random.Random,
        now: float,
        seconds: float,
        load: float = 1.0,
    ) -> None:
        """The users, sessions and visits of `seconds` of traffic ending at `now` at `load`
        times the normal RATES (no commit)."""
        times = _arrivals(rng, now - seconds, seconds, load)
        joined = _signing_in(times(RATES["users"]))
        _insert(cur, dialect, "users", [(at,) for at in joined])
        if joined:
            cur.execute(
                _sql(dialect, "SELECT id FROM users WHERE id > ? ORDER BY id"), (self.users,)
            )
            ids = [int(user_id) for (user_id,) in cur.fetchall()]
        arrivals = sorted(
            [(at, 0) for at in joined]
            + [(at, 1) for at in _signing_in(times(RATES["returning_sessions"]))]
            + [(at, 2) for at in _signing_in(times(RATES["session_touches"]))]
        )
        rows = []
        joins = iter(ids) if joined else iter(())
        for at, kind in arrivals:
            if kind == 2:
                if not self.sessions:
                    continue
                number = _touched_session(rng, len(self.sessions))
                user, service = self.sessions[number - 1]
                self.seen[number - 1] = at
            else:
                if kind == 0:
                    self.users = user = next(joins)
                elif self.users:
                    user = _returning_user(rng, self.users)
                else:
                    continue
                service = _pick(rng, SERVICES)
                self.sessions.append((user, service))
                self.seen.append(at)
            rows.append((user, service, at))
        _insert(cur, dialect, "sessions", rows)

    def settle(self, cur: Any, dialect: str) -> None:
        """Append the last SETTLED sessions, each with its last visit (no instant's count
        changes: each row repeats a visit)."""
        first = max(0, len(self.sessions) - self.SETTLED)
        tail = zip(self.sessions[first:], self.seen[first:], strict=True)
        rows = [(user, service, at) for (user, service), at in tail]
        _insert(cur, dialect, "sessions", rows)


def _payments(cur: Any, dialect: str, rng: random.Random, at_times: list[float]) -> None:
    cur.execute("SELECT COALESCE(max(id), 0) FROM users")
    users = int(cur.fetchone()[0])
    rows = []
    for at in at_times:
        plan = _pick(rng, PLAN_WEIGHTS)
        currency = _pick(rng, CURRENCY_WEIGHTS)
        failed = rng.random() < _share(PAYMENT_FAILURE, at)
        row = (
            rng.randint(1, max(1, users)),
            "failed" if failed else "succeeded",
            _pick(rng, PAYMENT_METHODS),
            plan,
            currency,
            round(PLANS[plan] * CURRENCIES[currency], 2),
            _pick(rng, PAYMENT_ERRORS) if failed else None,
            at,
        )
        # drawn all the same, so the other tables' rows do not change with the calendar
        if not PAYMENTS_HALT.active(at):
            rows.append(row)
    _insert(cur, dialect, "payments", rows)


def _generations(cur: Any, dialect: str, rng: random.Random, at_times: list[float]) -> None:
    generations = []
    tokens = []
    for at in at_times:
        kind = _pick(rng, GENERATION_TYPES)
        provider_down = PROVIDER_OUTAGE.active(at)
        share = PROVIDER_OUTAGE_FAILURE if provider_down else _share(GENERATION_FAILURE, at)
        failed = rng.random() < share
        errors = PROVIDER_OUTAGE_ERRORS if provider_down else GENERATION_ERRORS
        generations.append(
            (
                "failure" if failed else "success",
                kind,
                _pick(rng, errors) if failed else None,
                at,
            )
        )
        if kind in MODELS:
            model = _pick(rng, MODELS[kind])
            tokens.append((model, "input", max(1, int(rng.lognormvariate(math.log(600), 0.8))), at))
            if not failed:
                output = max(1, int(rng.lognormvariate(math.log(350), 0.9)))
                tokens.append((model, "output", output, at))
    _insert(cur, dialect, "generations", generations)
    _insert(cur, dialect, "token_usage", tokens)


def _queue_jobs(
    cur: Any, dialect: str, rng: random.Random, start: float, now: float, at_times: list[float]
) -> None:
    """New jobs wait, run and finish; jobs left queued or running earlier progress too.

    Waiting and running times are exponential (memoryless), so a job that was still
    queued or running at `start` can be advanced without remembering when it was due."""
    cur.execute(
        "SELECT id, queue_name, status, started_at FROM queue_jobs "
        "WHERE status = 'queued' OR status = 'running' ORDER BY id"
    )
    updates: list[tuple[Any, ...]] = []
    for job_id, name, status, started in cur.fetchall():
        queue = _QUEUE.get(name)
        if queue is None:
            continue
        if status == "queued":
            started = start + rng.expovariate(1 / queue.wait)
            if started > now:
                continue
        else:
            started = float(started)
        finished = _job_end(
            rng, queue, started, max(start, started) + rng.expovariate(1 / queue.run)
        )
        if finished > now:
            if status == "queued":
                updates.append(("running", started, None, None, job_id))
            continue
        failed = rng.random() < _job_failure(queue, finished)
        outcome = "failed" if failed else "succeeded"
        updates.append((outcome, started, finished, finished - started, job_id))
    if updates:  # MariaDB's executemany refuses an empty list
        cur.executemany(
            _sql(
                dialect,
                "UPDATE queue_jobs SET status = ?, started_at = ?, finished_at = ?, "
                "duration_seconds = ? WHERE id = ?",
            ),
            updates,
        )
    rows: list[tuple[Any, ...]] = []
    arrivals = []
    for at in at_times:
        queue = QUEUES[_index(rng, [q.share for q in QUEUES])]
        retries = OUTAGE_RETRIES if queue.name == "webhooks" and outage(at) else 0
        arrivals += [(at, queue)] * (1 + retries)
    for at, queue in arrivals:
        started = at + rng.expovariate(1 / queue.wait)
        if started > now:
            rows.append((queue.name, "queued", at, None, None, None))
            continue
        finished = _job_end(rng, queue, started, started + _run_time(rng, queue))
        if finished > now:
            rows.append((queue.name, "running", at, started, None, None))
            continue
        failed = rng.random() < _job_failure(queue, finished)
        outcome = "failed" if failed else "succeeded"
        rows.append((queue.name, outcome, at, started, finished, finished - started))
    _insert(cur, dialect, "queue_jobs", rows)


def _run_time(rng: random.Random, queue: Queue) -> float:
    return rng.lognormvariate(math.log(queue.run), 0.8)


def _job_end(rng: random.Random, queue: Queue, started: float, finished: float) -> float:
    """When a job started at `started`, due to end at `finished`, ends: in a queue stall the
    STALL_HANG share of the stalled queue's jobs hang until the stall is over, then run again.
    A running job's end is drawn anew each tick, so which jobs hang must not be: it is those
    that started in the first STALL_HANG of a second."""
    hangs = queue.name == STALLED_QUEUE and started % 1.0 < STALL_HANG
    if not hangs or not QUEUE_STALL.active(finished):
        return finished
    into = (finished - QUEUE_STALL.offset) % QUEUE_STALL.every
    return finished - into + QUEUE_STALL.length + _run_time(rng, queue)


def _job_failure(queue: Queue, finished: float) -> float:
    if outage(finished):
        return OUTAGE_JOB_FAILURE
    return JOB_FAILURE_INCIDENT if incident(finished) else queue.failure


def _http_requests(cur: Any, dialect: str, rng: random.Random, at_times: list[float]) -> None:
    rows = []
    shares = [r.share for r in ROUTES]
    for at in at_times:
        route = ROUTES[_index(rng, shares)]
        duration = rng.lognormvariate(math.log(route.median), 0.5)
        slow = OUTAGE_SLOW_TAIL if outage(at) else _share(SLOW_TAIL, at)
        if rng.random() < slow:  # the slow tail: locks, cold caches
            duration *= rng.uniform(5.0, 20.0)
        if route.database and SLOW_DATABASE.active(at) and rng.random() < SLOW_DATABASE_SHARE:
            duration += rng.uniform(*SLOW_DATABASE_WAIT)
        roll = rng.random()
        server_error = _share(SERVER_ERROR, at)
        if roll < server_error:
            status = _pick(rng, SERVER_ERRORS)
        elif roll < 0.05 + server_error:
            status = _pick(rng, CLIENT_ERRORS)
        else:
            status = route.ok_status
        rows.append((route.path, status, round(duration, 6), route.service, at))
    _insert(cur, dialect, "http_requests", rows)


def _errors(cur: Any, dialect: str, rng: random.Random, now: float, at_times: list[float]) -> None:
    """Errors come in small bursts during an incident (ERROR_BURST times the usual rate), in
    large ones from the api component during an outage."""
    rows = []
    for at in at_times:
        if outage(at):
            for burst in range(OUTAGE_ERROR_BURST):
                severity = "critical" if rng.random() < OUTAGE_CRITICAL else "error"
                offset = 0.05 * burst * rng.random()  # the burst spreads over 2 s
                rows.append(("api", _pick(rng, ERROR_TYPES), severity, min(now, at + offset)))
            continue
        for burst in range(ERROR_BURST if incident(at) else 1):
            rows.append(
                (
                    _pick(rng, ERROR_SERVICES),
                    _pick(rng, ERROR_TYPES),
                    _pick(rng, SEVERITIES),
                    min(now, at + burst * rng.random()),
                )
            )
    rows.sort(key=lambda row: row[3])
    _insert(cur, dialect, "errors", rows)


def _feature_events(
    cur: Any, dialect: str, rng: random.Random, now: float, at_times: list[float]
) -> None:
    """A small funnel per view: viewed, then sometimes clicked, then sometimes completed."""
    rows = []
    for at in at_times:
        feature = rng.choice(FEATURES)
        rows.append((feature, "viewed", at))
        if rng.random() < 0.45:
            clicked = min(now, at + rng.uniform(0.0, 2.0))
            rows.append((feature, "clicked", clicked))
            if rng.random() < 0.6:
                rows.append((feature, "completed", min(now, clicked + rng.uniform(0.0, 5.0))))
    rows.sort(key=lambda row: row[2])
    _insert(cur, dialect, "feature_events", rows)


_ROWS_PER_INSERT = 500  # at most 4,500 bound values a statement (SQLite allows 32,766)


def _insert(cur: Any, dialect: str, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    columns = _INSERT_COLUMNS[table]
    row_marks = "(" + ", ".join("?" for _ in columns) + ")"
    # Multi-row INSERTs, not executemany: MariaDB's bulk executemany leaves gaps in
    # AUTO_INCREMENT ids, and the simulator picks users and sessions by id.
    for first in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[first : first + _ROWS_PER_INSERT]
        marks = ", ".join(row_marks for _ in chunk)
        # identifiers from module constants; every value is a bound parameter
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {marks}"  # nosec B608
        cur.execute(_sql(dialect, statement), [value for row in chunk for value in row])


def _sql(dialect: str, statement: str) -> str:
    """Our statements use `?`; a driver may want `%s` (no statement here has a literal ? or %)."""
    return statement.replace("?", demo_dialect(dialect).placeholder)


@cache
def demo_dialect(scheme: str) -> DemoDialect:
    """The demo DDL of the backend serving `scheme` DSNs (sqlite, postgresql, ...)."""
    try:
        demo = registry.load(registry.entry_for(scheme)).demo
    except registry.BackendError as exc:
        raise ValueError(f"unknown dialect {scheme!r}: {exc.message}") from None
    if demo is None:
        raise ValueError(f"unknown dialect {scheme!r}: its backend declares no demo dialect")
    return demo


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a normal above 30."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _index(rng: random.Random, weights: Sequence[float]) -> int:
    roll = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        roll -= weight
        if roll < 0:
            return index
    return len(weights) - 1


def _pick(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    return choices[_index(rng, [weight for _, weight in choices])][0]


class Simulator:
    """Keeps a demo SQLite database moving: creates and seeds it, then inserts every tick."""

    def __init__(self, path: Path, tick: float = 1.0, seed: int | None = None) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self.path = Path(path)
        self.tick = tick
        self._rng = random.Random(seed)  # nosec B311  # simulated traffic, no secret
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.ticks = 0
        self.failures = 0

    def start(self) -> None:
        """Create and seed the database if needed (synchronously), then start the thread."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            create_schema(conn, "sqlite")
            if conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0:
                seed(conn, "sqlite", time.time(), self._rng)
                log.info("demo database %s created and seeded", self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="demo-simulator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread and close the database; False if it did not stop within `timeout`."""
        thread = self._thread
        if thread is None:
            return True
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("demo simulator did not stop within %.1fs", timeout)
            return False
        self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        last = time.time()
        while not self._stop.wait(self.tick):
            now = time.time()
            seconds = min(max(now - last, 0.0), MAX_CATCH_UP)
            try:
                insert_activity(conn, "sqlite", now, self._rng, seconds)
            except sqlite3.Error as exc:
                # a reader holding a lock for too long: skip this tick, try again on the next
                conn.rollback()
                self.failures += 1
                log.warning("demo simulator tick failed: %s", exc)
                continue
            last = now
            self.ticks += 1
