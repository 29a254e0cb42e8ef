"""A throwaway PostgreSQL server from Debian's packages, for the test run only.

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user
(created by Debian's postgresql package) through runuser.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from tests.ports import free_port


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test`, which installs it")
    return Path(found[-1]).parent


TEMPLATE = "openline_template"


def ram_disk(root: str = "/dev/shm", least: int = 1024**3) -> str | None:
    """A RAM-backed tmpfs with `least` bytes to spare; None if there is none (a container's
    /dev/shm is often 64 MB). The cluster keeps its files there: the server runs with fsync
    off, so the disk only ever cost it the bulk writes of CREATE DATABASE (a copy of the
    template took 0.3 s on a virtual disk, 0.02 s here). tests/conftest.py puts the rest
    of the run's temporary files there too."""
    try:
        with open("/proc/mounts") as mounts:
            tmpfs = any(line.split()[1:3] == [root, "tmpfs"] for line in mounts)
        stat = os.statvfs(root)
    except (OSError, IndexError):
        return None
    roomy = stat.f_bavail * stat.f_frsize >= least and os.access(root, os.W_OK | os.X_OK)
    return root if tmpfs and roomy else None


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="openline-pg-", dir=ram_disk()))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        self.templated = False
        self.running = False
        self._copies: _Copies | None = None
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.resume()

    def pause(self) -> None:
        """Stop the server as an operator's restart does (fast: sessions are ended, every
        client loses its connection), keeping its data for `resume`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def resume(self) -> None:
        """Start the server on its data directory and port, and wait until it answers."""
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            "-c max_wal_size=128MB"  # each copy of the template is WAL-logged: recycle it soon
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                self.running = True
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new database: a copy of the migrated template once `make_template` has run
        (a file copy, much faster than running every migration for each test), else empty."""
        import psycopg

        template = f' TEMPLATE "{TEMPLATE}"' if self.templated else ""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{template}')
        return self.url(name)

    def make_template(self) -> None:
        """Migrate one database to the latest schema, for every later database to copy.
        The migrations themselves run here, once per session, on a real PostgreSQL."""
        from openline.adapters.db import Database
        from openline.adapters.migrate import upgrade

        db = Database(self.create_database(TEMPLATE))
        try:
            upgrade(db)
        finally:
            db.dispose()  # a template must have no connections when it is copied
        self.templated = True

    def fresh_database(self, template: str = TEMPLATE) -> tuple[str, str]:
        """(name, URL) of a new copy of the migrated template (or of `template`, which no
        one may be connected to any more), made ahead of need by a thread of its own (see
        `_Copies`)."""
        if self._copies is None:
            self._copies = _Copies(self)
        name = self._copies.take(template)
        return name, self.url(name)

    def discard_database(self, name: str) -> None:
        """Drop a database from `fresh_database` soon, on the copier's thread."""
        assert self._copies is not None
        self._copies.discard(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._copies is not None:
            self._copies.stop()
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class _Copies:
    """Copies of the migrated template (and of each other database asked to be copied)
    made `ahead` of the tests that take them, and databases the tests are done with
    dropped, on one thread with one connection: the server does that work while the tests'
    process goes on with its own (a test that takes a database waits only if none is
    ready)."""

    def __init__(self, server: PostgresServer, ahead: int = 4) -> None:
        assert server.templated, "make_template first"
        self.server = server
        self.ahead = ahead
        self._ready: dict[str, deque[str]] = {}  # by template, in the order first asked for
        self._doomed: deque[str] = deque()
        self._failed: BaseException | None = None
        self._stopping = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="pg-copies", daemon=True)
        self._thread.start()

    def take(self, template: str) -> str:
        with self._cv:
            ready = self._ready.setdefault(template, deque())
            self._cv.notify_all()
            while not ready:
                if self._failed is not None:
                    raise RuntimeError(f"copying the database {template} failed") from self._failed
                self._cv.wait()
            name = ready.popleft()
            self._cv.notify_all()
            return name

    def _short(self, least: int) -> str | None:
        """A template with fewer than `least` copies ready, if any."""
        return next((t for t, ready in self._ready.items() if len(ready) < least), None)

    def discard(self, name: str) -> None:
        with self._cv:
            self._doomed.append(name)
            self._cv.notify_all()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(30)

    def _run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={self.server.port} user=postgres dbname=postgres", autocommit=True
            ) as conn:
                while True:
                    with self._cv:
                        while not (self._stopping or self._doomed or self._short(self.ahead)):
                            self._cv.wait()
                        if self._stopping:
                            return
                        # Dropping waits while fewer than two copies of a template are ready
                        # (a test takes two).
                        drop = bool(self._doomed) and self._short(min(2, self.ahead)) is None
                        doomed = self._doomed.popleft() if drop else None
                        template = self._short(min(2, self.ahead)) or self._short(self.ahead)
                    if doomed is not None:
                        conn.execute(f'DROP DATABASE IF EXISTS "{doomed}" WITH (FORCE)')
                        continue
                    assert template is not None
                    name = "t_" + uuid.uuid4().hex[:16]
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    with self._cv:
                        self._ready[template].append(name)
                        self._cv.notify_all()
        except BaseException as exc:
            with self._cv:
                self._failed = exc
                self._cv.notify_all()
            raise
