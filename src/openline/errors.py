"""OpenLine's errors, one tree for the whole station.

    OpenLineError                 base: a code, an HTTP status and a human explanation
    ├── InvalidInput              a request, setting or CLI argument is malformed (422)
    ├── NotFound                  the named line, call, peer or user does not exist (404)
    ├── Conflict                  the action does not fit the current state (409)
    │   └── IllegalTransition     a state machine (a call's, a notice's, ...) refuses the event
    ├── Unauthorized              no or bad credentials; a bad request signature (401)
    ├── Forbidden                 credentials are good but the role may not do this (403)
    ├── EnvelopeRefused           an inbound envelope failed a wire check (400)
    ├── PeerUnreachable           the peer station did not answer (502)
    ├── DatabaseUnavailable       the station's own database is out of reach (503)
    │   └── DatabaseDamaged       ... or SQLite finds its file damaged: a backup mends it
    ├── UnsafePermissions         a key or API token file others may read or write
    └── HomeError                 the station home is missing, exists already, is damaged or
                                  cannot be written; its database holds no station, is
                                  damaged, or was written by a newer OpenLine

Every error carries a `Code` (the wire error code, stable across versions) and a
message that says what was expected and what was found. The HTTP layer turns any of
them into an RFC 9457 problem document in one exception handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path


class Code(StrEnum):
    """Wire error codes. Stable: clients and peers match on them."""

    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CONFLICT = "conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    UNAUTHORIZED = "unauthorized"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    CSRF = "csrf"
    FORBIDDEN = "forbidden"
    # Envelope and station-to-station refusals.
    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    BAD_SIGNATURE = "bad_signature"
    WRONG_DESTINATION = "wrong_destination"
    UNKNOWN_STATION = "unknown_station"
    REPLAY = "replay"
    SEQUENCE_GAP = "sequence_gap"
    LINE_NOT_ACTIVE = "line_not_active"
    LINE_SUSPENDED = "line_suspended"
    KEY_CHANGED = "key_changed"
    BAD_CARD = "bad_card"
    PEER_UNREACHABLE = "peer_unreachable"
    PEER_REFUSED = "peer_refused"
    # Station home.
    HOME_EXISTS = "home_exists"
    HOME_MISSING = "home_missing"
    DATABASE_TOO_NEW = "database_too_new"
    DATABASE_DAMAGED = "database_damaged"
    UNSAFE_PERMISSIONS = "unsafe_permissions"
    CANNOT_WRITE = "cannot_write"
    STATION_NOT_RUNNING = "station_not_running"
    STATION_NO_ANSWER = "station_no_answer"
    STATION_TOO_OLD = "station_too_old"
    CANNOT_LISTEN = "cannot_listen"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL = "internal"


class OpenLineError(Exception):
    """Base of every error OpenLine raises on purpose."""

    code: Code = Code.INTERNAL
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str, *, code: Code | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.detail


class InvalidInput(OpenLineError):
    code = Code.INVALID_INPUT
    status = 422
    title = "Invalid input"


def check_one_of(name: str, value: object, allowed: Sequence[str]) -> None:
    """Refuse (`InvalidInput`) a value that is none of `allowed`, naming them all."""
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


class NotFound(OpenLineError):
    code = Code.NOT_FOUND
    status = 404
    title = "Not found"


class Conflict(OpenLineError):
    code = Code.CONFLICT
    status = 409
    title = "Conflict"


class IllegalTransition(Conflict):
    code = Code.ILLEGAL_TRANSITION
    title = "Illegal transition"


class Unauthorized(OpenLineError):
    code = Code.UNAUTHORIZED
    status = 401
    title = "Unauthorized"


class TooManyAttempts(OpenLineError):
    """Failed logins from this name or address: the next attempt must wait."""

    code = Code.TOO_MANY_ATTEMPTS
    status = 429
    title = "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class CsrfRefused(OpenLineError):
    """A console form or request without this session's CSRF token."""

    code = Code.CSRF
    status = 403
    title = "Cross-site request refused"


class Forbidden(OpenLineError):
    code = Code.FORBIDDEN
    status = 403
    title = "Forbidden"


class EnvelopeRefused(OpenLineError):
    """An inbound envelope (or card) failed a check; the code says which."""

    status = 400
    title = "Envelope refused"

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(detail, code=code)


class RequestTooLarge(EnvelopeRefused):
    """A request body past the station's limit, found as it is read (sent in chunks, it
    declared no length): `oversize`, titled as one refused before it is read."""

    title = "Request too large"

    def __init__(self, detail: str) -> None:
        super().__init__(Code.OVERSIZE, detail)


class PeerUnreachable(OpenLineError):
    code = Code.PEER_UNREACHABLE
    status = 502
    title = "Peer station unreachable"


class DatabaseUnavailable(OpenLineError):
    """The station's database cannot be reached or cannot take the work (a PostgreSQL
    server down, restarting, or out of disk, memory or connections; an SQLite file locked
    too long, unreadable or on a full disk): the station itself is fine and tries
    again; `reason` is the driver's own words."""

    code = Code.DATABASE_UNAVAILABLE
    status = 503
    title = "Database unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the station cannot reach its database ({reason}); it keeps trying, so try again "
            "shortly (if it failed during this request, check whether the change was made first)"
        )
        self.reason = reason


class DatabaseDamaged(DatabaseUnavailable):
    """SQLite found the station's database file damaged (SQLITE_CORRUPT, SQLITE_NOTADB): a
    failing disk or file system, a file cut short or copied while in use. It does not mend
    by itself: the operator restores a backup. A client (a peer too) is told that much;
    `diagnostics()`, for the operator, names the file and what to do."""

    code = Code.DATABASE_DAMAGED
    title = "Database damaged"

    def __init__(self, reason: str, file: Path | None = None) -> None:
        OpenLineError.__init__(
            self,
            f"the station's database is damaged ({reason}); only its operator can mend it, by "
            "restoring a backup",
        )
        self.reason = reason
        self.file = file

    def diagnostics(self) -> str:
        where = f" {self.file}" if self.file else ""
        return (
            f"the database{where} is damaged (SQLite: {self.reason}): restore the latest backup of "
            'the station home, with the station stopped (docs/operations.md, "Backing up and restoring")'
        )


class UnsafePermissions(OpenLineError):
    """A private file (a station key, an API token) that its group or others may read or
    write: refused, as ssh refuses such a private key, before it is used."""

    code = Code.UNSAFE_PERMISSIONS
    title = "Unsafe file permissions"


class HomeError(OpenLineError):
    code = Code.HOME_MISSING
    status = 500
    title = "Station home problem"


def cannot_write(doing: str, path: object, exc: OSError) -> HomeError:
    """The operating system's refusal (`NotADirectoryError`, `PermissionError`, a read-only
    or full file system) when we tried to `doing` ("create the station home", "back up
    to") `path`, as one line: the path, the file refused if another, and the system's own
    reason. The caller has removed whatever it had made."""
    reason = exc.strerror or str(exc)
    other = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return HomeError(f"cannot {doing} {path}: {reason}{other}; nothing was changed", code=Code.CANNOT_WRITE)
