"""The station database: SQLite in WAL mode by default, PostgreSQL for production.

Writes go through `Database.write()`, one transaction per use case. On SQLite every
write transaction starts with BEGIN IMMEDIATE, so two writers queue on the database
lock instead of deadlocking when a reader upgrades; inside one process a lock keeps
writer threads from spinning on SQLITE_BUSY. `Database.read()` transactions start with a
plain (deferred) BEGIN: in WAL mode a reader sees one snapshot and neither waits for a
writer nor holds one up, whereas BEGIN IMMEDIATE would take the write lock and leave
readers and writers sleeping in SQLite's busy handler. synchronous=FULL: a receipt says
"stored", and that must survive a power cut, not just a crash.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from openline.errors import DatabaseDamaged, DatabaseUnavailable, InvalidInput

log = logging.getLogger("openline.db")
# After a write found the database out of reach, how long writes must commit without one
# failing before it counts as back (`Database._watched`).
SETTLE_SECONDS = 30.0


def normalise_url(url: str) -> str:
    """Accept the usual spellings and pick our drivers (pysqlite, psycopg 3)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"database URL is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise InvalidInput(f"database URL must be sqlite:// or postgresql://, got {backend!r}")


def shown_url(url: str) -> str:
    """A database URL as errors and logs may show it: without its password, whether in
    `user:password@` or in a `password=` parameter (libpq takes either)."""
    parsed = make_url(url)
    secret = [k for k in parsed.query if k.lower() == "password"]
    return parsed.difference_update_query(secret).render_as_string(hide_password=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool: bool = True,
        background_checkpoints: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`background_checkpoints`: SQLite's WAL is copied into the database file by
        `Checkpointer` instead of by whichever commit crosses the threshold, so no commit
        waits for that copy and its fsync (it showed as the tail of delivery latency)."""
        self.url = normalise_url(url)
        self.background_checkpoints = background_checkpoints and self.url.startswith("sqlite")
        self.is_sqlite = self.url.startswith("sqlite")
        name = make_url(self.url).database if self.is_sqlite else None
        self.file = Path(name) if name and name != ":memory:" else None  # named if found damaged
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
        if not pool:
            kwargs = {k: v for k, v in kwargs.items() if k not in ("pool_size", "pool_pre_ping")}
            kwargs["poolclass"] = NullPool
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        # Called with False when a transaction finds the database out of reach, and with
        # True when it is back (`_answered`): once per change, whoever's transaction it was.
        self.on_reachability: list[Callable[[bool], None]] = []
        self.up = True
        self._up_lock = threading.Lock()
        self._monotonic = monotonic
        self._write_failed_at: float | None = None  # the last write out of reach, until settled
        self._stored_since = False  # a write committed after it
        # What closing it left for the next start to finish, each saying why nothing is lost.
        self.unfinished: list[str] = []
        if self.is_sqlite:
            _configure_sqlite(self.engine, autocheckpoint=not self.background_checkpoints)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed if the block returns, rolled back if it raises.
        A database out of reach raises `DatabaseUnavailable` (see `reachable`)."""
        with (
            self._watched(write=True),
            self._write_lock or nullcontext(),
            self.engine.connect() as conn,
            conn.begin(),
        ):
            if self.is_sqlite:
                _sqlite_begin(conn, "BEGIN IMMEDIATE")
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (on SQLite a deferred BEGIN), rolled back when the block ends."""
        with self._watched(write=False), self.engine.connect() as conn:  # closing it rolls back
            if self.is_sqlite:
                _sqlite_begin(conn, "BEGIN")
            yield conn

    @contextmanager
    def _watched(self, *, write: bool) -> Iterator[None]:
        """`reachable`, and tell `on_reachability` when that changes.

        A database that can be read but not written (an SQLite file on a full disk, a
        PostgreSQL server out of disk) is out of reach: nothing the peer sends can be
        stored. So a write that fails keeps the database down until writes commit again,
        whatever reads succeed meanwhile; and as a full disk lets a small write through now
        and then (SQLite reuses the space its WAL has), until one has committed and none
        has failed for `SETTLE_SECONDS`, or the outage would flap with every write."""
        try:
            with reachable(self.file):
                yield
        except DatabaseDamaged:
            # The database answered, from a damaged file: not an outage that ends by itself,
            # nor one to flip the console and /metrics between down and up at each read.
            raise
        except DatabaseUnavailable:
            self._unreachable(write=write)
            raise
        except BaseException:
            # A statement refused, or the caller's own error: the database answered, but
            # a write that rolled back stored nothing.
            self._answered(stored=False)
            raise
        self._answered(stored=write)

    def _unreachable(self, *, write: bool) -> None:
        with self._up_lock:
            if write:
                self._write_failed_at = self._monotonic()
                self._stored_since = False
            turned, self.up = self.up, False
        if turned:
            self._tell(False)

    def _answered(self, *, stored: bool) -> None:
        if self.up and self._write_failed_at is None:
            return  # the common case, at the end of every transaction: nothing to tell
        with self._up_lock:
            if stored:
                self._stored_since = True
            failed = self._write_failed_at
            if failed is not None:
                if not self._stored_since or self._monotonic() - failed < SETTLE_SECONDS:
                    return
                self._write_failed_at = None
            turned, self.up = not self.up, True
        if turned:
            self._tell(True)

    def _tell(self, up: bool) -> None:
        for hook in self.on_reachability:
            try:
                hook(up)
            except Exception:
                log.exception("a reachability hook failed")

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database file (SQLite; PASSIVE: never waits
        for readers or writers)."""
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def dispose(self) -> None:
        self.engine.dispose()


# SQLite's primary result codes that mean the file, not the statement, is the trouble.
_SQLITE_UNAVAILABLE = {
    5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED",
    10: "SQLITE_IOERR",
    13: "SQLITE_FULL",
    14: "SQLITE_CANTOPEN",
}
# SQLite's primary result codes for a damaged file: a page that is not what it must be (a
# file cut short, overwritten, a failing disk), a header that is not SQLite's.
_SQLITE_DAMAGED = {11: "SQLITE_CORRUPT", 26: "SQLITE_NOTADB"}
# PostgreSQL's: the server shutting down or starting (57P0x); too many connections, its
# disk full, out of memory (53xxx: it cannot take the work, whatever the work).
_POSTGRES_UNAVAILABLE = {"57P01", "57P02", "57P03", "53100", "53200", "53300"}


def _out_of_reach(error: BaseException | None) -> bool:
    """Whether a driver's exception says the database is out of reach (a server down,
    restarting or refusing connections; a connection lost; an SQLite file locked too
    long, unreadable or on a full disk), as opposed to a statement it refused."""
    if isinstance(error, sqlite3.Error):
        return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_UNAVAILABLE
    psycopg = sys.modules.get("psycopg")  # loaded if the error is its own
    if psycopg is not None and isinstance(error, psycopg.OperationalError):
        state = error.sqlstate
        # No SQLSTATE: the client's own failure to connect or to read the server's answer.
        return state is None or state.startswith("08") or state in _POSTGRES_UNAVAILABLE
    return False


def _damaged(error: BaseException | None) -> bool:
    """Whether a driver's exception says SQLite found the database file damaged."""
    code = getattr(error, "sqlite_errorcode", 0) if isinstance(error, sqlite3.Error) else 0
    return (code & 0xFF) in _SQLITE_DAMAGED


def as_outage(
    error: BaseException | None, file: Path | None, *, invalidated: bool = False
) -> DatabaseUnavailable | None:
    """A driver's exception as the outage it means: the SQLite `file` damaged, or the
    database out of reach (or the connection `invalidated` under it); None for any other
    error (a statement refused). `reachable` turns what SQLAlchemy raises with it; the
    checkpointer and the backup, which use the driver's connection, call it themselves."""
    if _damaged(error):
        return DatabaseDamaged(_words(error), file)
    if invalidated or _out_of_reach(error):
        return DatabaseUnavailable(_words(error))
    return None


def _words(error: BaseException | None) -> str:
    words = str(error).strip()
    return words.splitlines()[0][:200] if words else type(error).__name__


@contextmanager
def reachable(file: Path | None = None) -> Iterator[None]:
    """Turn a database out of reach into `DatabaseUnavailable` (503 to a client; a
    worker logs it once and tries again), and the SQLite `file` found damaged into
    `DatabaseDamaged` (the same, said so), leaving every other database error as it is."""
    try:
        yield
    except DBAPIError as exc:
        outage = as_outage(exc.orig, file, invalidated=exc.connection_invalidated)
        if outage is None:
            raise
        raise outage from exc
    except Exception as exc:  # from a driver's connection used as it is (LISTEN)
        if not _out_of_reach(exc):
            raise
        raise DatabaseUnavailable(_words(exc)) from exc


class Outage:
    """What one background worker saw of a database outage, logged when it began and when
    it ended rather than at every retry: each worker retries about once a second, and a
    traceback a second from each buried everything else in the log."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.since: float | None = None
        self.damaged = False

    def absorbs(self, exc: BaseException) -> bool:
        """Whether `exc` is the database out of reach (or damaged): if so it is this
        outage's, logged when the outage begins; anything else is the caller's to log."""
        if not isinstance(exc, DatabaseUnavailable):
            return False
        if self.since is None:
            self.since = time.monotonic()
            self.damaged = isinstance(exc, DatabaseDamaged)
            if isinstance(exc, DatabaseDamaged):
                log.error(
                    f"database damaged; the {self.worker} retries, but only a restored backup mends "
                    f"it: {exc.diagnostics()}"
                )
            else:
                log.error(f"database unavailable; the {self.worker} retries until it is back: {exc.reason}")
        return True

    def ended(self) -> None:
        if self.since is not None:
            down = time.monotonic() - self.since
            self.since = None
            if self.damaged:  # this step did not read the damaged pages; others may
                log.warning(f"the {self.worker} resumed after {down:.0f} s; the database is still damaged")
            else:
                log.warning(f"database reachable again; the {self.worker} resumed after {down:.0f} s")


def sqlite_backup(source: Path, target: Path) -> int:
    """Copy the SQLite database at `source` into `target` (an empty file) with SQLite's
    online backup API in one step: one read transaction, so a consistent snapshot however
    busy the station writing it is. The copy must pass `PRAGMA integrity_check`; its size
    is returned. `DatabaseDamaged` when `source` is damaged (SQLite says so while copying
    it, or the copy of its pages fails the check); `DatabaseUnavailable` when either file
    cannot be used."""
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # pages=-1: every page in one step
                verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:  # whatever the cause, no copy can be made
        raise as_outage(exc, source) or DatabaseUnavailable(_words(exc)) from exc
    if verdict != "ok":  # page for page as the source's: the source is damaged
        raise DatabaseDamaged(f"integrity check: {' '.join(verdict.split())[:200]}", source)
    return target.stat().st_size


CHANGES_CHANNEL = "openline_changes"


def announce(conn: Connection, payload: str) -> None:
    """Tell every process sharing this PostgreSQL database that this transaction changed
    something (delivered at commit, not at all on rollback). SQLite has one process."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANGES_CHANNEL, "payload": payload}
        )


class ChangeListener:
    """A thread that LISTENs on PostgreSQL for `announce`d changes and hands each
    payload to `on_change` (in this process: the console's live updates). Each time it
    starts listening, after a lost connection too, it calls `on_listening` first:
    changes announced while nobody listened are lost, so whatever shows them must look
    again at everything."""

    def __init__(
        self,
        db: Database,
        on_change: Callable[[str], None],
        on_listening: Callable[[], None] = lambda: None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.on_change = on_change
        self.on_listening = on_listening
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        outage = Outage("change listener")
        while not self._stop.is_set():
            try:
                with reachable():
                    self._listen(outage)
            except Exception as exc:  # the database went away: try again shortly
                if not outage.absorbs(exc):
                    log.exception("listening for changes failed; retrying")
                self.listening.clear()
                self._stop.wait(self.poll_seconds)

    def _listen(self, outage: Outage) -> None:
        raw = self.db.engine.raw_connection()
        try:
            conn = raw.driver_connection
            conn.autocommit = True  # type: ignore[union-attr]
            conn.execute(f"LISTEN {CHANGES_CHANNEL}")  # type: ignore[union-attr]
            self.listening.set()
            outage.ended()
            self.on_listening()
            while not self._stop.is_set():
                for note in conn.notifies(timeout=self.poll_seconds):  # type: ignore[union-attr]
                    self.on_change(note.payload)
        finally:
            raw.invalidate()  # its session is LISTENing: never back into the pool


def for_update(conn: Connection, query: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
    """`query` with a row lock (FOR UPDATE) on PostgreSQL. On SQLite it is returned as it is:
    BEGIN IMMEDIATE has already locked the whole database for the write transaction."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=skip_locked)
    return query


WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes a checkpointed WAL keeps (SQLite journal_size_limit)


def _configure_sqlite(engine: Engine, *, autocheckpoint: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # A burst (a bulk load of sites, a drain after an outage) grows the WAL, which keeps
        # its size once checkpointed: cut back to this when it starts over.
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        if not autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()


def _sqlite_begin(conn: Connection, statement: str) -> None:
    """Start the transaction on SQLite, where pysqlite leaves it to us (isolation_level None)
    and SQLAlchemy's own begin sends nothing.

    Only `Database.read()` and `write()` begin transactions, and they say which kind, so no
    engine "begin" event is needed: with any engine event registered, SQLAlchemy dispatches
    events around every statement, a third of the Python calls a small read makes. Sent
    straight to the driver for the same reason; an error is wrapped as SQLAlchemy wraps one."""
    dbapi = conn.connection.dbapi_connection
    try:
        dbapi.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error, dialect=conn.dialect) from exc


class Checkpointer:
    """Runs `Database.checkpoint()` every `interval` seconds on a thread of its own."""

    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self.db = db
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop, after a last checkpoint that leaves the database file complete. If that
        fails (a full disk), it is logged once and left to the next start: the WAL keeps
        every commit, SQLite reads it when the database is opened again, and the
        checkpointer then copies it."""
        self._stop.set()
        self._thread.join(timeout)
        try:
            self.db.checkpoint()
        except Exception as exc:
            log.warning(
                f"the last checkpoint failed ({_words(exc)}); the WAL keeps every commit and is "
                "copied into the database file after the next start"
            )
            self.db.unfinished.append("the last WAL checkpoint (nothing is lost: the WAL keeps every commit)")

    def _run(self) -> None:
        outage = Outage("checkpointer")
        while not self._stop.wait(self.interval):
            try:
                self.db.checkpoint()
            except Exception as exc:  # a busy or failed checkpoint is retried next time
                turned = as_outage(exc, self.db.file)
                if turned is None or not outage.absorbs(turned):
                    log.exception("checkpoint failed")
            else:
                outage.ended()
