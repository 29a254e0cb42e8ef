"""Console logins: password (argon2id) and an optional TOTP second factor (pyotp),
server-side sessions behind an HttpOnly cookie, a CSRF token per session, and growing
delays after failed logins.

A session's cookie holds a 256-bit random token; the database keeps only its SHA-256,
so a stolen database does not yield live sessions. Sessions last `SESSION_HOURS` (a
shift and a half) and end at logout, and for good when the user is disabled, given a new
password by an administrator or a new second factor.

Throttling counts failures per user name and per client address. After the n-th failure
in a row for a name, its next attempt is refused until 2^(n-1) seconds have passed
(capped at `MAX_DELAY_S`); a success clears the name's count. An address gets
`IP_FREE_FAILURES` failures before the same doubling starts, and a success does not
clear it (one good account must not reset the count of someone trying many others); it
starts again after `IP_QUIET_S` without a failure from that address, so that a shared
watch-floor terminal's typos, hours apart, do not add up until one colleague's slip
locks everyone out for minutes while a call rings. A refused attempt does not even check
the password: it costs an attacker time, not us CPU, nor a line of the audit trail; each
lock a failure starts is one (`login.throttled`), after the failure's `login.failed`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import Connection, delete, insert, select, update

from openline.adapters.schema import login_throttle, sessions, users
from openline.core.clock import MICROS, rfc3339
from openline.errors import InvalidInput, NotFound, TooManyAttempts, Unauthorized
from openline.services import accounts
from openline.services.accounts import Principal, Role
from openline.services.station import Station

SESSION_HOURS = 12
MAX_DELAY_S = 300
IP_FREE_FAILURES = 5
IP_QUIET_S = 900  # an address's count starts again after this long without a failure
TOTP_ISSUER = "OpenLine"


@dataclass(frozen=True)
class Session:
    token: str  # goes into the cookie, never stored
    csrf: str
    principal: Principal
    must_change_password: bool
    expires_at: int  # µs: the console warns before, and sends the browser to log in at it


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name_key(username: str) -> str:
    return f"user:{username[:64]}"


def _throttle_keys(username: str, client: str) -> list[str]:
    return [_name_key(username), f"ip:{client[:64]}"]


def _check_throttle(conn: Connection, keys: list[str], now: int) -> None:
    rows = conn.execute(select(login_throttle).where(login_throttle.c.key.in_(keys))).all()
    wait = max((int(r.next_allowed_at) - now for r in rows), default=0)
    if wait > 0:
        seconds = -(-wait // MICROS)
        raise TooManyAttempts(f"too many failed logins; try again in {seconds} s", retry_after=seconds)


def _delay_s(key: str, failures: int) -> int:
    """Seconds before the next attempt after `failures` in a row. An address gets a few
    free failures (a shared watch-floor terminal mistypes too); a user name none."""
    free = IP_FREE_FAILURES if key.startswith("ip:") else 0
    return 0 if failures <= free else min(2 ** (failures - free - 1), MAX_DELAY_S)


def _record_failure(conn: Connection, keys: list[str], now: int) -> None:
    """Count a failure against the name and the address, and audit each lock it starts:
    once per lock, not per attempt the lock refuses (a flood would fill the trail)."""
    address = keys[-1]  # the actor, as in `login.failed`
    for key in keys:
        query = select(login_throttle.c.failures, login_throttle.c.next_allowed_at)
        row = conn.execute(query.where(login_throttle.c.key == key)).first()
        quiet = row is not None and key.startswith("ip:") and now >= row.next_allowed_at + IP_QUIET_S * MICROS
        failures = 1 if row is None or quiet else int(row.failures) + 1
        delay = _delay_s(key, failures) * MICROS
        if row is None:
            conn.execute(
                insert(login_throttle).values(key=key, failures=failures, next_allowed_at=now + delay)
            )
        else:
            conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key == key)
                .values(failures=failures, next_allowed_at=now + delay)
            )
        if delay:
            accounts.record(conn, now, address, "login.throttled", f"{key} until {rfc3339(now + delay)}")


def _totp_step(secret: str, code: str | None, now: int, last_step: int | None) -> int | None:
    """The 30-second step whose code `code` is, within one step of now (clock drift), and
    later than the last one accepted: a code works once (RFC 6238, section 5.2)."""
    if not code:
        return None
    totp = pyotp.TOTP(secret)
    current = now // MICROS // totp.interval
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * totp.interval), code.strip()):
            return step
    return None


def login(station: Station, username: str, password: str, totp_code: str | None, client: str) -> Session:
    """Check the credentials and open a session, or refuse: `unauthorized` (one message
    for every wrong part, so it tells an attacker nothing) or `too_many_attempts`."""
    keys = _throttle_keys(username, client)
    with station.db.read() as conn:
        _check_throttle(conn, keys, station.clock.now())
    failed: Unauthorized | None = None
    with station.tx() as tx:
        _check_throttle(tx.conn, keys, tx.now)  # again, under the write lock
        try:
            principal = accounts.check_password(tx.conn, username, password)
            row = tx.conn.execute(select(users).where(users.c.id == principal.user_id)).one()
            if row.totp_secret:
                step = _totp_step(row.totp_secret, totp_code, tx.now, row.totp_last_step)
                if step is None:
                    raise Unauthorized("unknown user, wrong password or wrong code")
                tx.conn.execute(update(users).where(users.c.id == row.id).values(totp_last_step=step))
        except Unauthorized:
            accounts.record(tx.conn, tx.now, f"ip:{client[:64]}", "login.failed", username[:64])
            _record_failure(tx.conn, keys, tx.now)
            failed = Unauthorized("unknown user, wrong password or wrong code")
        else:
            tx.conn.execute(delete(login_throttle).where(login_throttle.c.key == keys[0]))
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires_at = tx.now + SESSION_HOURS * 3600 * MICROS
            tx.conn.execute(
                insert(sessions).values(
                    id=_hash(token),
                    user_id=principal.user_id,
                    csrf=csrf,
                    created_at=tx.now,
                    expires_at=expires_at,
                )
            )
            accounts.record(tx.conn, tx.now, principal.name, "login", f"ip:{client[:64]}")
            return Session(token, csrf, principal, bool(row.must_change_password), expires_at)
    assert failed is not None
    raise failed  # after the commit: the failure is counted even though we refuse


def session_of(station: Station, token: str | None) -> Session:
    """The live session for a cookie's token, or `unauthorized`."""
    if not token:
        raise Unauthorized("log in first")
    with station.db.read() as conn:
        row = conn.execute(
            select(
                sessions.c.csrf,
                sessions.c.expires_at,
                users.c.id,
                users.c.name,
                users.c.role,
                users.c.disabled,
                users.c.must_change_password,
            )
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id == _hash(token))
        ).first()
    if row is None or row.disabled or int(row.expires_at) <= station.clock.now():
        raise Unauthorized("the session has ended; log in again")
    return Session(
        token,
        row.csrf,
        Principal(row.id, row.name, Role(row.role)),
        bool(row.must_change_password),
        int(row.expires_at),
    )


def logout(station: Station, token: str) -> None:
    with station.tx() as tx:
        tx.conn.execute(delete(sessions).where(sessions.c.id == _hash(token)))


def change_password(station: Station, session: Session, current: str, new: str) -> None:
    """The user sets their own password (and so leaves a one-time password behind).
    Every other session of theirs ends."""
    with station.tx() as tx:
        accounts.check_password(tx.conn, session.principal.name, current)
        if new == current:
            raise InvalidInput("the new password must differ from the current one")
        accounts.set_password(tx.conn, tx.now, session.principal.name, session.principal.name, new)
        accounts.end_sessions(tx.conn, session.principal.user_id, keep=_hash(session.token))


def unlock(station: Station, actor: str, username: str) -> str | None:
    """Lift the lock failed logins put on a user name, and its count: an administrator's
    way to let an officer in at once (anyone may fail logins with someone else's name,
    and keep them out for minutes while a call rings). The address's count is left: it
    is the guesser's. Returns until when the name was locked, None if it was not."""
    key = _name_key(username)
    with station.tx() as tx:
        if tx.conn.execute(select(users.c.id).where(users.c.name == username)).first() is None:
            raise NotFound(f"no user named {username!r}")
        query = select(login_throttle.c.next_allowed_at).where(login_throttle.c.key == key)
        row = tx.conn.execute(query).first()
        tx.conn.execute(delete(login_throttle).where(login_throttle.c.key == key))
        if row is None or int(row.next_allowed_at) <= tx.now:
            return None
        accounts.record(tx.conn, tx.now, actor, "user.unlock", username)
        return rfc3339(int(row.next_allowed_at))


def enroll_totp(station: Station, actor: str, username: str) -> str:
    """Give a user a TOTP second factor; returns the otpauth:// URI to show once (as a QR
    code or text) for their authenticator app."""
    secret = pyotp.random_base32()
    with station.tx() as tx:
        row = tx.conn.execute(select(users.c.id).where(users.c.name == username)).first()
        if row is None:
            raise NotFound(f"no user named {username!r}")
        # The replay guard was the old secret's: a code of the new one is new, even in a
        # step at or before the last one the old secret's code was accepted in.
        tx.conn.execute(
            update(users).where(users.c.id == row.id).values(totp_secret=secret, totp_last_step=None)
        )
        accounts.end_sessions(tx.conn, row.id)
        accounts.record(tx.conn, tx.now, actor, "user.totp", username)
    return pyotp.TOTP(secret).provisioning_uri(name=f"{username}@{station.name}", issuer_name=TOTP_ISSUER)
