"""The station home: a directory with settings, private keys, the API token and (by
default) the SQLite database. Secrets are written with mode 0600 from the start."""

from __future__ import annotations

import os
from pathlib import Path

from openline.core.keys import StationKeys, load_encryption_pem, load_signing_pem, private_pem
from openline.errors import HomeError

SIGNING_KEY = "signing.key"
ENCRYPTION_KEY = "encryption.key"
TOKEN_FILE = "api-token"  # noqa: S105 - a file name


def write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_keys(home: Path, keys: StationKeys) -> None:
    write_secret(home / SIGNING_KEY, private_pem(keys.signing))
    write_secret(home / ENCRYPTION_KEY, private_pem(keys.encryption))


def load_keys(home: Path) -> StationKeys:
    try:
        signing = load_signing_pem((home / SIGNING_KEY).read_bytes())
        encryption = load_encryption_pem((home / ENCRYPTION_KEY).read_bytes())
    except FileNotFoundError as exc:
        raise HomeError(f"station home {home} lacks its key file {exc.filename}") from None
    except ValueError as exc:
        raise HomeError(f"station home {home}: a key file is damaged: {exc}") from None
    return StationKeys(signing, encryption)


def read_token(home: Path) -> str:
    try:
        return (home / TOKEN_FILE).read_text().strip()
    except FileNotFoundError:
        raise HomeError(f"station home {home} has no {TOKEN_FILE} file") from None
