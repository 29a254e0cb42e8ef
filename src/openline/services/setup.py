"""`openline init`: create a station home, all or nothing."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from openline.adapters import home as homefiles
from openline.adapters.db import Database, normalise_url
from openline.adapters.migrate import require_empty, upgrade
from openline.core.card import validate_languages, validate_name, validate_url
from openline.core.clock import Clock, SystemClock
from openline.core.keys import StationKeys
from openline.errors import Code, EnvelopeRefused, HomeError, InvalidInput, cannot_write
from openline.services import accounts
from openline.settings import DATABASE_FILE, SETTINGS_FILE, render_toml

ADMIN_NAME = "admin"


@dataclass(frozen=True)
class InitResult:
    home: Path
    admin_name: str
    admin_password: str
    token: str
    database_url: str


def init_home(
    home: Path,
    name: str,
    url: str,
    *,
    database_url: str | None = None,
    languages: list[str] | None = None,
    clock: Clock | None = None,
) -> InitResult:
    try:
        validate_name(name)
        url = validate_url(url)
        validate_languages(languages or ["en"])  # what every peer will check in our card
    except EnvelopeRefused as exc:
        raise InvalidInput(exc.detail) from None
    if database_url:
        database_url = normalise_url(database_url)
    home = home.expanduser().absolute()
    try:
        return _init_in(home, name, url, database_url, languages or ["en"], clock or SystemClock())
    except OSError as exc:  # a parent that is a file, no permission, a read-only file system
        raise cannot_write("create the station home", home, exc) from None


def _init_in(
    home: Path, name: str, url: str, database_url: str | None, languages: list[str], clock: Clock
) -> InitResult:
    if home.exists() and not home.is_dir():
        raise HomeError(f"{home} is a file, not a directory; nothing was changed", code=Code.HOME_EXISTS)
    ours = [
        home / f
        for f in (
            SETTINGS_FILE,
            homefiles.SIGNING_KEY,
            homefiles.ENCRYPTION_KEY,
            homefiles.TOKEN_FILE,
            homefiles.LEDGER_KEY,
            homefiles.COSIGN_KEY,
            DATABASE_FILE,
        )
    ]
    if any(p.exists() for p in ours):
        raise HomeError(
            f"{home} already holds a station home; nothing was changed. To start over, stop the "
            f"station and remove it (rm -r {home}), or pass another --home.",
            code=Code.HOME_EXISTS,
        )
    made = homefiles.made_by_mkdir(home)
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return _create(home, name, url, database_url, languages, clock)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        else:
            for p in [*ours, home / f"{DATABASE_FILE}-wal", home / f"{DATABASE_FILE}-shm"]:
                with contextlib.suppress(OSError):  # the first error is the one to report
                    p.unlink(missing_ok=True)
        raise


def _create(
    home: Path, name: str, url: str, database_url: str | None, languages: list[str], clock: Clock
) -> InitResult:
    db_url = database_url or f"sqlite:///{home / DATABASE_FILE}"
    if not database_url:
        # Sealed bodies and password hashes: the database file is as private as the keys.
        homefiles.write_secret(home / DATABASE_FILE, b"")
    db = Database(db_url, pool=False)
    try:
        require_empty(db)
        upgrade(db)
        with db.write() as conn:
            password = accounts.one_time_password()
            now = clock.now()
            admin_id = accounts.create_user(
                conn, now, ADMIN_NAME, accounts.Role.ADMINISTRATOR, password, must_change_password=True
            )
            token = accounts.issue_token(conn, now, admin_id, "cli")
    finally:
        db.dispose()
    homefiles.write_keys(home, StationKeys.generate())
    homefiles.write_secret(home / homefiles.TOKEN_FILE, (token + "\n").encode())
    settings = {"name": name, "url": url, "languages": languages}
    if database_url:
        settings["database_url"] = database_url
    # 0600: a PostgreSQL URL may carry a password.
    homefiles.write_secret(home / SETTINGS_FILE, render_toml(settings).encode())
    return InitResult(home, ADMIN_NAME, password, token, db_url)
