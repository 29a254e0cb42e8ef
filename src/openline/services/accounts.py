"""People and API tokens. Passwords are argon2id hashes (argon2-cffi); API tokens are
256-bit random values stored as SHA-256 hashes, which is enough for secrets that are
never chosen by people."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from openline.adapters.db import for_update
from openline.adapters.schema import api_tokens, audit, sessions, users
from openline.core.clock import rfc3339
from openline.errors import Code, Conflict, EnvelopeRefused, Forbidden, InvalidInput, NotFound, Unauthorized
from openline.services import pages

_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 defaults
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
# An e-mail address as the station takes it: the API's schema and `create_user` both use
# this, so the console, the API and the CLI accept and refuse the same addresses.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MAX_EMAIL = 254  # RFC 5321, section 4.5.3.1.3: the longest path
_EMAIL_RE = re.compile(EMAIL_PATTERN)
TOKEN_PREFIX = "olt_"  # noqa: S105 - a visible prefix, not a secret
MAX_LABEL = 64  # api_tokens.label


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    WATCH_OFFICER = "watch_officer"
    SENIOR_WATCH_OFFICER = "senior_watch_officer"
    COMMANDER = "commander"
    AUDITOR = "auditor"


class Permission(StrEnum):
    VIEW = "view"  # the station, lines, calls and their event logs: metadata
    READ_CONTENT = "read_content"  # subjects, message text, summaries, reasons
    WORK_CALLS = "work_calls"  # place, pick up, say, close, decline, cancel
    MANAGE_LINES = "manage_lines"
    MANAGE_USERS = "manage_users"
    MANAGE_ROSTER = "manage_roster"  # shifts and overrides
    READ_AUDIT = "read_audit"


_WATCH = frozenset({Permission.VIEW, Permission.READ_CONTENT, Permission.WORK_CALLS})

# The one table of who may do what; every route asks it through `Principal.require`.
# The administrator keeps the station's keys on disk and so can read content anyway;
# pretending otherwise would protect nothing. Auditors see what happened, not what was said.
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMINISTRATOR: frozenset(Permission),
    Role.WATCH_OFFICER: _WATCH,
    Role.SENIOR_WATCH_OFFICER: _WATCH | {Permission.MANAGE_ROSTER},
    Role.COMMANDER: _WATCH,
    Role.AUDITOR: frozenset({Permission.VIEW, Permission.READ_AUDIT}),
}


# The roles that answer calls: who may be on the roster, who covers it, whom a page may
# usefully wake.
CALL_ROLES = tuple(r.value for r in Role if Permission.WORK_CALLS in GRANTS[r])


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            holders = ", ".join(r.value for r in Role if permission in GRANTS[r])
            raise Forbidden(f"{self.name} is {self.role.value}; {permission.value} needs one of: {holders}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record(conn: Connection, now: int, actor: str, action: str, target: str | None = None) -> None:
    """One line of the audit trail: who did what to what, when. Same transaction as the act."""
    conn.execute(insert(audit).values(at=now, actor=actor[:128], action=action, target=target))


def parse_role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role must be one of {roles}, got {value!r}") from None


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def check_email(email: object) -> None:
    if not isinstance(email, str) or len(email) > MAX_EMAIL or not _EMAIL_RE.fullmatch(email):
        raise InvalidInput(f"email: expected an address such as duty@example.org, got {email!r:.80}")
    # As a token's label (`check_label`): an invisible or right-to-left mark would show the
    # address in tables and pages as another one than the one mail goes to.
    if not email.isprintable():
        raise InvalidInput(f"email: must be printable characters, no invisible ones, got {email!r:.80}")


def one_time_password() -> str:
    return secrets.token_urlsafe(15)


def create_user(
    conn: Connection,
    now: int,
    name: str,
    role: Role,
    password: str,
    *,
    must_change_password: bool = False,
    actor: str = "system",
    email: str | None = None,
) -> int:
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise InvalidInput(
            "user name must be 1-64 lowercase ASCII letters a-z, digits 0-9, '.', '_' or '-', starting with "
            f"a letter or digit, got {name!r}"
        )
    _check_password(password)
    if email is not None:
        check_email(email)
    if conn.execute(select(users.c.id).where(users.c.name == name)).first():
        raise Conflict(f"a user named {name!r} exists already")
    result = conn.execute(
        insert(users).values(
            name=name,
            role=role.value,
            password_hash=_HASHER.hash(password),
            must_change_password=must_change_password,
            disabled=False,
            created_at=now,
            email=email,
        )
    )
    user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    record(conn, now, actor, "user.create", f"{name} ({role.value})")
    return user_id


def user_json(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "role": row.role,
        "disabled": bool(row.disabled),
        "must_change_password": bool(row.must_change_password),
        "totp": row.totp_secret is not None,  # whether, never what: the secret stays here
        "email": row.email,
        "created_at": rfc3339(row.created_at),
    }


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [user_json(r) for r in conn.execute(select(users).order_by(users.c.name))]


def _user(conn: Connection, name: str) -> Any:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return row


def get_user(conn: Connection, name: str) -> dict[str, Any]:
    return user_json(_user(conn, name))


def set_disabled(conn: Connection, now: int, actor: str, name: str, disabled: bool) -> dict[str, Any]:
    """Disable (or enable again) a user. A disabled user's API tokens stop working at once
    and their console sessions end for good: enabling them again brings none back.
    The last enabled administrator cannot be disabled: nobody could manage the station."""
    row = _user(conn, name)
    if disabled and row.role == Role.ADMINISTRATOR.value and not row.disabled:
        others = conn.execute(
            select(func.count()).where(
                users.c.role == Role.ADMINISTRATOR.value, users.c.disabled.is_(False), users.c.id != row.id
            )
        ).scalar_one()
        if not others:
            raise Conflict(f"{name!r} is the last enabled administrator; add another one first")
    if bool(row.disabled) != disabled:
        conn.execute(update(users).where(users.c.id == row.id).values(disabled=disabled))
        # On enabling too: a disabled user cannot log in, so any session left is one the
        # disabling ended (or a station older than this rule kept).
        end_sessions(conn, row.id)
        record(conn, now, actor, "user.disable" if disabled else "user.enable", name)
    return get_user(conn, name)


def end_sessions(conn: Connection, user_id: int, *, keep: str | None = None) -> None:
    """End the user's console sessions, all of them or all but the one whose id is `keep`."""
    query = delete(sessions).where(sessions.c.user_id == user_id)
    conn.execute(query if keep is None else query.where(sessions.c.id != keep))


def set_password(conn: Connection, now: int, actor: str, name: str, password: str | None) -> str | None:
    """A user sets their own password, or without one gets a one-time password (returned
    once). Audited as `user.password_changed`, apart from an administrator's
    `user.reset_password`; which sessions end is the caller's to say
    (`sessions.change_password`)."""
    return _set_password(conn, now, actor, _user(conn, name), password, "user.password_changed")


def reset_password(conn: Connection, now: int, actor: str, name: str, password: str | None) -> str | None:
    """An administrator gives a user a new password (see `set_password`), as after a leak:
    every console session of the user ends, since whoever held the old password may hold one."""
    row = _user(conn, name)
    generated = _set_password(conn, now, actor, row, password, "user.reset_password")
    end_sessions(conn, row.id)
    return generated


def _set_password(
    conn: Connection, now: int, actor: str, row: Any, password: str | None, action: str
) -> str | None:
    generated = None
    if password is None:
        password = generated = one_time_password()
    _check_password(password)
    conn.execute(
        update(users)
        .where(users.c.id == row.id)
        .values(password_hash=_HASHER.hash(password), must_change_password=generated is not None)
    )
    record(conn, now, actor, action, row.name)
    return generated


def list_audit(conn: Connection, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    """The audit trail newest first; with `before` (an entry's id), the entries older than it."""
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(pages.after(conn, audit, before, (audit.c.id,), "audit entry"))
    rows = conn.execute(query)
    return [
        {"id": r.id, "at": rfc3339(r.at), "actor": r.actor, "action": r.action, "target": r.target}
        for r in rows
    ]


def check_password(conn: Connection, name: str, password: str) -> Principal:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None or row.disabled:
        _HASHER.hash(password)  # same work either way: no user-enumeration by timing
        raise Unauthorized("unknown user or wrong password")
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("unknown user or wrong password") from None
    return Principal(row.id, row.name, Role(row.role))


def issue_token(conn: Connection, now: int, user_id: int, label: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(user_id=user_id, token_hash=hash_token(token), label=label, created_at=now)
    )
    return token


def check_label(label: object) -> str:
    """A token's label as people tell their tokens apart ("laptop", "roster script"):
    1 to MAX_LABEL printable characters, not only spaces. It is shown in tables and the
    audit trail, so no control characters."""
    if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL:
        raise InvalidInput(f"label must have 1 to {MAX_LABEL} characters, got {label!r:.80}")
    if not label.isprintable() or not label.strip():
        raise InvalidInput(f"label must be printable characters, not only spaces, got {label!r:.80}")
    return label


def _token_json(row: Any, user: str) -> dict[str, Any]:
    return {"id": row.id, "user": user, "label": row.label, "created_at": rfc3339(row.created_at)}


def add_token(conn: Connection, now: int, actor: str, name: str, label: str) -> dict[str, Any]:
    """Issue an API token for a user: the token's record with the token itself, which
    the station keeps only as a hash, so this is the one time anyone sees it. A disabled
    user gets none (their tokens would not work); a label is unique per user."""
    check_label(label)
    # Locked, so that two requests cannot both find the label free (PostgreSQL; SQLite's
    # write transaction holds the whole database already).
    row = conn.execute(for_update(conn, select(users).where(users.c.name == name))).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    if row.disabled:
        raise Conflict(f"{name!r} is disabled: enable them first (`openline user enable {name}`)")
    taken = select(api_tokens.c.id).where(api_tokens.c.user_id == row.id, api_tokens.c.label == label)
    if conn.execute(taken).first():
        raise Conflict(f"{name!r} has a token labelled {label!r} already: choose another label")
    token = issue_token(conn, now, row.id, label)
    issued = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == hash_token(token))).one()
    record(conn, now, actor, "user.token.issue", _token_target(name, issued))
    return {**_token_json(issued, name), "token": token}


def list_tokens(conn: Connection, name: str) -> list[dict[str, Any]]:
    """A user's API tokens, oldest first, without the secrets (the station has only hashes)."""
    row = _user(conn, name)
    rows = conn.execute(select(api_tokens).where(api_tokens.c.user_id == row.id).order_by(api_tokens.c.id))
    return [_token_json(r, name) for r in rows]


def revoke_token(conn: Connection, now: int, actor: str, name: str, token_id: int) -> dict[str, Any]:
    """Revoke one of a user's API tokens: its row goes, so it stops working at once. The
    last token held by an enabled administrator stays: without one nobody could issue
    tokens again, since the console cannot."""
    user = _user(conn, name)
    row = conn.execute(
        select(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user.id)
    ).first()
    if row is None:
        raise NotFound(f"{name!r} has no API token {token_id} (`openline user token list {name}`)")
    if user.role == Role.ADMINISTRATOR.value and not user.disabled:
        others = conn.execute(
            select(func.count())
            .select_from(api_tokens.join(users, api_tokens.c.user_id == users.c.id))
            .where(
                users.c.role == Role.ADMINISTRATOR.value,
                users.c.disabled.is_(False),
                api_tokens.c.id != row.id,
            )
        ).scalar_one()
        if not others:
            raise Conflict(
                f"token {token_id} of {name!r} is the last API token of an enabled administrator: "
                "issue another first, or nobody could manage the station's users and tokens"
            )
    conn.execute(delete(api_tokens).where(api_tokens.c.id == row.id))
    record(conn, now, actor, "user.token.revoke", _token_target(name, row))
    return _token_json(row, name)


def _token_target(name: str, row: Any) -> str:
    return f"{name} (token {row.id}: {row.label})"


# Built once: every API request runs it, and building a SQLAlchemy statement costs
# several times more than executing it.
_TOKEN_HOLDER = (
    select(users.c.id, users.c.name, users.c.role, users.c.disabled)
    .join(api_tokens, api_tokens.c.user_id == users.c.id)
    .where(api_tokens.c.token_hash == bindparam("b_hash"))
)


def authenticate(conn: Connection, token: str) -> Principal:
    row = conn.execute(_TOKEN_HOLDER, {"b_hash": hash_token(token)}).first()
    if row is None or row.disabled:
        raise Unauthorized("the API token is not valid")
    return Principal(row.id, row.name, Role(row.role))


def peer_user(body: dict[str, Any], what: str) -> None:
    """An inbound body's `by`, the peer's officer, which we store and show: a user name as
    every station makes them (no control characters, no markup), or `malformed`."""
    by = body.get("by")
    if not isinstance(by, str) or not USERNAME_RE.fullmatch(by):
        raise EnvelopeRefused(Code.MALFORMED, f"{what} body: by must be a user name, got {by!r:.40}")
