"""The station home: a directory with settings, private keys, the API token and (by
default) the SQLite database. Secrets are written with mode 0600 from the start, and a key
or token file that its group or others may read or write is refused (`read_secret`)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openline.core.keys import StationKeys, load_encryption_pem, load_signing_pem, private_pem
from openline.errors import HomeError, InvalidInput, UnsafePermissions

_TOKEN_RE = re.compile(rb"[A-Za-z0-9_-]{1,200}")

SIGNING_KEY = "signing.key"
ENCRYPTION_KEY = "encryption.key"
LEDGER_KEY = "ledger.key"  # signs checkpoints
COSIGN_KEY = "cosign.key"  # cosigns the peer's checkpoints, nothing else
TOKEN_FILE = "api-token"  # noqa: S105 - a file name

# What whoever may read a private file can do with it, as its refusal says.
_GRANTS = {
    SIGNING_KEY: "the key lets anyone act as this station",
    ENCRYPTION_KEY: "the key lets anyone open what is sealed to this station",
    LEDGER_KEY: "the key lets anyone sign checkpoints of this station's ledger",
    COSIGN_KEY: "the key lets anyone cosign checkpoints as this station",
    TOKEN_FILE: "the token lets anyone act as the station's administrator",
}
USER_TOKEN_GRANTS = "the token lets anyone act as the user it was issued to"  # noqa: S105 - words


def write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_secret(path: Path, grants: str) -> bytes:
    """The contents of a private file (a station key, an API token), refused with
    `UnsafePermissions` when its group or others may read or write it: as ssh refuses such a
    private key, since whoever could read it can do what `grants` says, and whoever could
    write it can swap it. Only the mode counts, not the owner: root may use the files of the
    station's user. OS errors (missing, unreadable, a directory) are the caller's to word."""
    with path.open("rb") as f:
        mode = os.fstat(f.fileno()).st_mode  # of the file read, not of whatever the name is now
        if stat.S_ISREG(mode) and mode & 0o066:
            raise UnsafePermissions(
                f"permissions {stat.S_IMODE(mode):04o} for {path} are too open: {grants}; "
                f"chmod 600 {shlex.quote(str(path))}"
            )
        return f.read()


def made_by_mkdir(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet: what
    `path.mkdir(parents=True)` would make, and so what to remove to leave nothing behind.
    None when `path` exists."""
    outermost = None
    for p in (path, *path.parents):
        if p.exists():
            break
        outermost = p
    return outermost


def write_keys(home: Path, keys: StationKeys) -> None:
    write_secret(home / SIGNING_KEY, private_pem(keys.signing))
    write_secret(home / ENCRYPTION_KEY, private_pem(keys.encryption))
    write_secret(home / LEDGER_KEY, private_pem(keys.ledger))
    write_secret(home / COSIGN_KEY, private_pem(keys.cosign))


def _ledger_key(path: Path) -> Ed25519PrivateKey:
    """A ledger or cosigning key; a home made before the ledger existed gets one now."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            write_secret(path, private_pem(key))
    return load_signing_pem(read_secret(path, _GRANTS[path.name]))


def load_keys(home: Path) -> StationKeys:
    try:
        signing = load_signing_pem(read_secret(home / SIGNING_KEY, _GRANTS[SIGNING_KEY]))
        encryption = load_encryption_pem(read_secret(home / ENCRYPTION_KEY, _GRANTS[ENCRYPTION_KEY]))
        ledger = _ledger_key(home / LEDGER_KEY)
        cosign = _ledger_key(home / COSIGN_KEY)
    except FileNotFoundError as exc:
        raise HomeError(f"station home {home} lacks its key file {exc.filename}") from None
    except ValueError as exc:
        raise HomeError(f"station home {home}: a key file is damaged: {exc}") from None
    return StationKeys(signing, encryption, ledger, cosign)


def read_token(home: Path) -> str:
    """The home's API token: the administrator's, written by `openline init`."""
    try:
        token = token_in(read_secret(home / TOKEN_FILE, _GRANTS[TOKEN_FILE]))
    except FileNotFoundError:
        raise HomeError(f"station home {home} has no {TOKEN_FILE} file") from None
    except OSError as exc:
        raise HomeError(
            f"station home {home}: cannot read its {TOKEN_FILE} file: {exc.strerror or exc}"
        ) from None
    if token is None:
        raise HomeError(
            f"station home {home}: its {TOKEN_FILE} file is damaged (not an API token); "
            "restore it from the backup of the home (docs/operations.md)"
        )
    return token


def read_token_file(path: Path) -> str:
    """A user's API token from the file `openline user token add` wrote, or `InvalidInput`
    naming the file: missing, unreadable, or holding something else; `UnsafePermissions`
    when others may read or write it."""
    try:
        token = token_in(read_secret(path, USER_TOKEN_GRANTS))
    except FileNotFoundError:
        raise InvalidInput(f"the token file {path} does not exist") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if token is None:
        raise InvalidInput(
            f"the token file {path} holds no API token "
            "(one line, olt_…, as `openline user token add` writes it)"
        )
    return token


def token_in(data: bytes) -> str | None:
    """The API token a token file holds, or None when it holds none."""
    token = data.strip()
    # A token is URL-safe text (olt_ and base64url); anything else is a damaged file, not a
    # header to send (a control character in it would be refused by the HTTP client).
    if not token or not _TOKEN_RE.fullmatch(token):
        return None
    return token.decode("ascii")
