"""A copy of a station home that is safe to take while the station runs.

Copying the files of a running SQLite station (cp, rsync, tar) can catch the database
file and its write-ahead log at different moments: a copy that does not open, or one
that silently lacks transactions the station had acknowledged. `backup` copies the
database through SQLite's online backup API in one step (one read transaction: a
consistent snapshot, taken without stopping the station), checks the copy's integrity,
and writes the settings and keys beside it, so that the destination is itself a station
home: `openline serve --home DEST` runs it.

A PostgreSQL station's database is not in its home: its settings and keys are copied,
and the database is left to PostgreSQL's own tools (pg_dump).
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from openline.adapters import home as homefiles
from openline.adapters.db import shown_url, sqlite_backup
from openline.errors import Code, DatabaseDamaged, DatabaseUnavailable, HomeError, InvalidInput, cannot_write
from openline.settings import DATABASE_FILE, SETTINGS_FILE, Settings, load

# What a home holds besides its database; the ledger and cosigning keys of a home made
# before they existed are made on first use, so a home may lack them.
REQUIRED = (SETTINGS_FILE, homefiles.SIGNING_KEY, homefiles.ENCRYPTION_KEY, homefiles.TOKEN_FILE)
OPTIONAL = (homefiles.LEDGER_KEY, homefiles.COSIGN_KEY)


@dataclass(frozen=True)
class BackupResult:
    station: str
    destination: Path
    files: tuple[str, ...]  # copied, in the destination
    database_bytes: int | None  # the SQLite copy's size; None when the database is PostgreSQL
    database_url: str | None  # the PostgreSQL database left to pg_dump, password hidden


def backup(home: Path, destination: Path) -> BackupResult:
    """Copy the station home at `home` to `destination` (a new or empty directory, made
    0700; every file 0600), while the station runs or not. All or nothing: on any
    failure, whatever was written to the destination is removed."""
    settings = load(home)
    home = settings.home.absolute()
    destination = destination.expanduser().absolute()
    try:
        return _backup(settings, home, destination)
    except OSError as exc:  # a parent that is a file, no permission, a read-only file system
        raise cannot_write("back up to", destination, exc) from None


def _backup(settings: Settings, home: Path, destination: Path) -> BackupResult:
    # Resolved: through a symlink to the home (as DEST or as --home), DEST is still inside it.
    real, real_home = destination.resolve(), home.resolve()
    if real.is_relative_to(real_home):
        through = f" (through a symbolic link: it is {real})" if real != destination else ""
        raise InvalidInput(
            f"{destination} is inside the station home {home}{through}: back it up somewhere else"
        )
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise HomeError(
            f"{destination} exists and is not an empty directory; nothing was changed. "
            "Back up to a new directory.",
            code=Code.HOME_EXISTS,
        )
    missing = [name for name in REQUIRED if not (home / name).is_file()]
    if missing:
        raise HomeError(f"the station home {home} lacks {', '.join(missing)}: nothing to back up from")
    files = [name for name in (*REQUIRED, *OPTIONAL) if (home / name).is_file()]
    try:
        contents = {name: (home / name).read_bytes() for name in files}
    except OSError as exc:
        raise HomeError(f"cannot read the station home {home}: {exc.strerror} ({exc.filename})") from None
    made = homefiles.made_by_mkdir(destination)
    written: list[Path] = []
    try:
        destination.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in files:
            homefiles.write_secret(destination / name, contents[name])
            written.append(destination / name)
        if settings.database_url:
            return BackupResult(
                settings.name, destination, tuple(files), None, shown_url(settings.database_url)
            )
        written.append(destination / DATABASE_FILE)
        source = home / DATABASE_FILE
        if not source.is_file():
            raise HomeError(f"no database at {source}: nothing to back up")
        homefiles.write_secret(destination / DATABASE_FILE, b"")  # private from its first byte
        try:
            size = sqlite_backup(source, destination / DATABASE_FILE)
        except DatabaseDamaged as exc:
            raise HomeError(f"{exc.diagnostics()}; no copy was made", code=Code.DATABASE_DAMAGED) from None
        except DatabaseUnavailable as exc:
            raise HomeError(
                f"cannot copy the database {source}: {exc.reason}", code=Code.DATABASE_UNAVAILABLE
            ) from None
        return BackupResult(settings.name, destination, (*files, DATABASE_FILE), size, None)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        else:
            for path in written:
                for leftover in (
                    path,
                    path.with_name(path.name + "-wal"),
                    path.with_name(path.name + "-shm"),
                ):
                    with contextlib.suppress(OSError):  # the first error is the one to report
                        leftover.unlink(missing_ok=True)
        raise
