"""The station home: a directory with settings, private keys, the API token and (by
default) the SQLite database. Secrets are written with mode 0600 from the start."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openline.core.keys import StationKeys, load_encryption_pem, load_signing_pem, private_pem
from openline.errors import HomeError, InvalidInput

_TOKEN_RE = re.compile(rb"[A-Za-z0-9_-]{1,200}")

SIGNING_KEY = "signing.key"
ENCRYPTION_KEY = "encryption.key"
LEDGER_KEY = "ledger.key"  # signs checkpoints
COSIGN_KEY = "cosign.key"  # cosigns the peer's checkpoints, nothing else
TOKEN_FILE = "api-token"  # noqa: S105 - a file name


def write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


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
    return load_signing_pem(path.read_bytes())


def load_keys(home: Path) -> StationKeys:
    try:
        signing = load_signing_pem((home / SIGNING_KEY).read_bytes())
        encryption = load_encryption_pem((home / ENCRYPTION_KEY).read_bytes())
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
        token = token_in((home / TOKEN_FILE).read_bytes())
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
    naming the file: missing, unreadable, or holding something else."""
    try:
        token = token_in(path.read_bytes())
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
