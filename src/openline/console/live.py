"""Live updates for the console: every commit that changes calls, alerts or notices is
announced to each connected browser over Server-Sent Events (`event: change`, with what
changed: `{"changed": ["notices"], "n": 12}`), which then re-fetches what it shows.

With SQLite there is one `serve` process and its commits feed the hub directly; with
PostgreSQL every commit also NOTIFYs, and each process's hub is fed by a LISTENing
thread, so a browser connected to any process hears of changes made by all of them.
When that thread listens again after losing its connection (PostgreSQL restarted), the
hub announces `["connected"]` (`resync`), as a new stream does: every browser re-fetches
everything, since whatever was committed while nobody listened went unannounced. So it
does when the database goes out of reach (`["database_unavailable"]`: the refresh fails,
and the page says why) and when it is back. Commits happen on worker threads, so
`publish` hands the event to the event loop thread-safely. A slow browser never holds
anything up: each has a bounded queue, and a full queue just drops the event (the next
one makes it re-fetch everything anyway).

A stream lasts as long as the session it was opened with: every `SESSION_CHECK_SECONDS`
it asks whether that session goes on (an administrator may have disabled the user or
reset the password, or it expired), and when it does not, it says so (`event: ended`)
and ends. The browser then goes to the login page, or, when it has logged in again
meanwhile, opens a stream with its new session.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable

from openline.services.station import Tx

QUEUE_LIMIT = 100
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 1.0  # how often a stream checks whether the server is shutting down
SESSION_CHECK_SECONDS = 5.0  # how often a stream checks that its session goes on
ENDED = 'event: ended\ndata: {"ended": "session"}\n\n'


class Hub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.published = 0

    # With PostgreSQL every process hears every commit (its own included) through
    # LISTEN/NOTIFY (`adapters.db.ChangeListener` calls `on_announcement`), so the local
    # hook stays quiet; with SQLite there is one process and the hook is the source.
    via_database = False
    # Whether the database is out of reach as `on_reachability` last said: a stream that
    # starts meanwhile says so too (its refreshes may well succeed: a full disk reads).
    database_down = False

    def on_commit(self, tx: Tx) -> None:
        """`Station.on_commit` hook."""
        if tx.touched and not self.via_database:
            self.publish(sorted(tx.touched))

    def on_reachability(self, up: bool) -> None:
        """`Database.on_reachability` hook: the database went out of reach, or came back.
        Either way every browser re-fetches: its refresh then fails, and the console says
        why (the station cannot reach its database), or succeeds, and the notice goes."""
        self.database_down = not up
        self.publish(["connected"] if up else ["database_unavailable"])

    def resync(self) -> None:
        """`ChangeListener.on_listening` hook: what was committed while nobody listened
        went unannounced, so every browser re-fetches everything, as a new stream does."""
        self.publish(["connected"])

    def on_announcement(self, payload: str) -> None:
        try:
            what = json.loads(payload)
        except ValueError:
            return
        if isinstance(what, list) and all(isinstance(w, str) for w in what):
            self.publish(what)

    def publish(self, what: list[str]) -> None:
        with self._lock:
            loop = self._loop
        if loop is None or loop.is_closed():
            return
        self.published += 1
        data = json.dumps({"changed": what, "n": self.published})
        loop.call_soon_threadsafe(self._fanout, data)

    def _fanout(self, data: str) -> None:
        for queue in list(self._queues):
            if queue.qsize() < QUEUE_LIMIT:
                queue.put_nowait(data)

    async def stream(
        self, stopping: Callable[[], bool], session_ended: Callable[[], bool] | None = None
    ) -> AsyncIterator[str]:
        """SSE text for one browser, until it goes away, the server stops or its session
        ends (`session_ended`, which reads the database: it runs on a worker thread)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield "retry: 1000\n\n"  # reconnect after a second if the station restarts
            # Whatever changed while this browser was loading or reconnecting is not lost:
            # it re-fetches once as soon as it is listening.
            yield 'event: change\ndata: {"changed": ["connected"]}\n\n'
            if self.database_down:
                yield 'event: change\ndata: {"changed": ["database_unavailable"]}\n\n'
            idle = 0.0
            check_at = loop.time() + SESSION_CHECK_SECONDS
            while not stopping():
                if session_ended is not None and loop.time() >= check_at:
                    if await asyncio.to_thread(session_ended):
                        yield ENDED
                        return
                    check_at = loop.time() + SESSION_CHECK_SECONDS
                try:
                    data = await asyncio.wait_for(queue.get(), POLL_SECONDS)
                except TimeoutError:
                    idle += POLL_SECONDS
                    if idle >= HEARTBEAT_SECONDS:
                        idle = 0.0
                        yield ": still here\n\n"
                    continue
                idle = 0.0
                yield f"event: change\ndata: {data}\n\n"
        finally:
            self._queues.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._queues)
