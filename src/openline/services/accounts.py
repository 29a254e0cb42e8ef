"""People and API tokens. Passwords are argon2id hashes (argon2-cffi); API tokens are
256-bit random values stored as SHA-256 hashes, which is enough for secrets that are
never chosen by people."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select

from openline.adapters.schema import api_tokens, audit, users
from openline.errors import Conflict, Forbidden, InvalidInput, Unauthorized

_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 defaults
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
TOKEN_PREFIX = "olt_"  # noqa: S105 - a visible prefix, not a secret


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    WATCH_OFFICER = "watch_officer"


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: Role

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"{self.name} is {self.role.value}; this needs one of: {allowed}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: Connection, now: int, name: str, role: Role, password: str, *, must_change_password: bool = False
) -> int:
    if not USERNAME_RE.fullmatch(name):
        raise InvalidInput(f"user name must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
    if len(password) < 12:
        raise InvalidInput("password must have at least 12 characters")
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
        )
    )
    user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    conn.execute(insert(audit).values(at=now, actor="system", action="user.create", target=name))
    return user_id


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


def authenticate(conn: Connection, token: str) -> Principal:
    row = conn.execute(
        select(users.c.id, users.c.name, users.c.role, users.c.disabled)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == hash_token(token))
    ).first()
    if row is None or row.disabled:
        raise Unauthorized("the API token is not valid")
    return Principal(row.id, row.name, Role(row.role))
