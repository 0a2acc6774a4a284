"""The service database: the SQLite file (default) or PostgreSQL when KYODO_DATABASE_URL is set.

The store's SQL is written once, in SQLite's dialect; on PostgreSQL each statement is translated
(placeholders, INSERT OR IGNORE, column types, json functions) and values come back as SQLite
gives them (int/float aggregates, bytes, JSON as text). Every block is one transaction.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

DATABASE_URL = "KYODO_DATABASE_URL"
# one key for every kyodo worker: concurrent CREATE TABLE IF NOT EXISTS races on PostgreSQL
DDL_LOCK = 0x6B796F646F


def database_url() -> str | None:
    """The PostgreSQL URL the service store lives in, or None for the SQLite file."""
    return os.environ.get(DATABASE_URL) or None


class Database(Protocol):
    """A backend: transactions, schema scripts and the column check of additive migrations."""

    def transaction(self, durable: bool = False) -> Any: ...

    def script(self, sql: str) -> None: ...

    def columns(self, table: str) -> set[str]: ...

    def add_column(self, table: str, column: str) -> None: ...


def open_database(path: str | Path, url: str | None = None) -> Database:
    """PostgreSQL at url (default: $KYODO_DATABASE_URL), else the SQLite file at path."""
    url = url if url is not None else database_url()
    return PostgresDB(url) if url else SQLiteDB(Path(path))


class SQLiteDB:
    """One SQLite (WAL) file, one connection per thread; writers serialised by BEGIN IMMEDIATE."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT around a block; ROLLBACK on error, so writes are atomic.

        The connection runs WAL with synchronous=NORMAL: a commit survives a crash of the
        process, but a power loss can undo the last commits (never corrupt the file). `durable`
        commits with synchronous=FULL (the WAL is fsynced before COMMIT returns): for records
        people typed in, such as reviewer feedback, which no one can recompute.
        """
        conn = self.connection()
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:  # the connection is reused by this thread's next, ordinary transaction
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    def script(self, sql: str) -> None:
        self.connection().executescript(sql)

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.connection().execute(f"PRAGMA table_info({table})")}

    def add_column(self, table: str, column: str) -> None:
        try:
            self.connection().execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except sqlite3.OperationalError as exc:  # another worker migrated first
            if "duplicate column" not in str(exc):
                raise


# ---- PostgreSQL ----

_DDL = [(re.compile(p, re.I), r) for p, r in (
    (r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", "BIGSERIAL PRIMARY KEY"),
    (r"\bINTEGER\b", "BIGINT"),  # SQLite integers are 64-bit
    (r"\bREAL\b", "DOUBLE PRECISION"),  # PostgreSQL REAL is float4: Unix seconds would round
    (r"\bBLOB\b", "BYTEA"),
    (r"\bADD\s+COLUMN\b", "ADD COLUMN IF NOT EXISTS"),
)]
_QUERY = [(re.compile(p, re.I), r) for p, r in (
    # json_each(x) WHERE json_each.value = ? keeps its alias and column name
    (r"\bjson_each\(([\w.]+)\)", r"jsonb_array_elements_text(\1::jsonb) AS json_each(value)"),
    (r"\bjson_group_array\(", "json_agg("),
    (r"\bjson_array\(", "json_build_array("),
)]
_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)


@lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """One SQLite statement in PostgreSQL's dialect (placeholders become %s)."""
    sql = sql.strip().rstrip(";")
    if re.match(r"\s*(CREATE|ALTER)\b", sql, re.I):
        for pattern, repl in _DDL:
            sql = pattern.sub(repl, sql)
    for pattern, repl in _QUERY:
        sql = pattern.sub(repl, sql)
    if _IGNORE.match(sql):
        sql = _IGNORE.sub("INSERT INTO", sql) + " ON CONFLICT DO NOTHING"
    return _placeholders(sql)


def _placeholders(sql: str) -> str:
    """? -> %s and % -> %% outside string literals (psycopg2's paramstyle)."""
    out, quoted = [], False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        out.append("%s" if ch == "?" and not quoted else "%%" if ch == "%" else ch)
    return "".join(out)


def _statements(script: str) -> list[str]:
    return [s for s in (part.strip() for part in script.split(";")) if s]


class PgConnection:
    """A psycopg2 connection that takes the store's SQLite-dialect statements."""

    def __init__(self, raw: Any):
        self.raw = raw
        self._ddl_locked = False

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        self._lock_ddl(sql)
        cur = self.raw.cursor()
        cur.execute(to_postgres(sql), tuple(args))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        from psycopg2.extras import execute_batch

        self._lock_ddl(sql)
        cur = self.raw.cursor()
        execute_batch(cur, to_postgres(sql), [tuple(r) for r in rows], page_size=200)
        return cur

    def _lock_ddl(self, sql: str) -> None:
        """Schema changes from several workers at once take turns (until the commit)."""
        if not self._ddl_locked and re.match(r"\s*(CREATE|ALTER)\b", sql, re.I):
            self.raw.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
            self._ddl_locked = True


class PostgresDB:
    """A PostgreSQL database; connections are pooled (one per concurrent transaction)."""

    def __init__(self, url: str, keep: int = 8):
        self.url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)  # SQLAlchemy form
        if not re.match(r"^postgres(ql)?://", self.url):
            raise ValueError(f"{DATABASE_URL} must be a postgresql://user@host:port/database "
                             f"URL, got {url.split('@')[-1]!r}")
        self.keep = keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import psycopg2
        import psycopg2.extensions as ext
        import psycopg2.extras

        raw = psycopg2.connect(self.url)
        # values as SQLite returns them: bytes, JSON as its text, exact numerics as int/float
        ext.register_type(ext.new_type(psycopg2.BINARY.values, "KYODO_BYTES",
                                       lambda v, cur: None if v is None
                                       else psycopg2.BINARY(v, cur).tobytes()), raw)
        ext.register_type(ext.new_type(ext.DECIMAL.values, "KYODO_NUMBER", _number), raw)
        psycopg2.extras.register_default_json(raw, loads=lambda text: text)
        psycopg2.extras.register_default_jsonb(raw, loads=lambda text: text)
        return raw

    def _borrow(self) -> Any:
        with self._lock:
            raw = self._idle.pop() if self._idle else None
        return raw if raw is not None and not raw.closed else self._connect()

    def _give_back(self, raw: Any) -> None:
        if raw.closed:
            return  # a dropped connection is replaced by a new one on the next borrow
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(raw)
                return
        raw.close()

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[PgConnection]:
        """BEGIN ... COMMIT around a block; ROLLBACK on error, so writes are atomic. Every
        commit is durable here (PostgreSQL's default synchronous_commit=on); `durable` is
        accepted for the SQLite store's sake."""
        raw = self._borrow()
        try:
            yield PgConnection(raw)
            raw.commit()
        except BaseException:
            try:
                raw.rollback()
            except Exception:  # the connection broke: never pool it again
                raw.close()
            raise
        finally:
            self._give_back(raw)

    def script(self, sql: str) -> None:
        with self.transaction() as conn:
            for stmt in _statements(sql):
                conn.execute(stmt)

    def columns(self, table: str) -> set[str]:
        with self.transaction() as conn:
            cur = conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                               "table_schema = current_schema() AND table_name = ?", (table,))
            return {c for (c,) in cur.fetchall()}

    def add_column(self, table: str, column: str) -> None:
        with self.transaction() as conn:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def _number(value: str | None, _cur: Any) -> int | float | None:
    """NUMERIC (what SUM of BIGINT gives) as int when whole, else float, as SQLite returns."""
    if value is None:
        return None
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)
