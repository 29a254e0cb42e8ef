"""The password hashing the station really uses: argon2id with RFC 9106's low-memory
profile (the in-process tests swap in the cheapest cost, see conftest.py). A serve
process's hash is read back from its database."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from tests.harness import StationProcess, add_user


def test_a_station_hashes_passwords_with_argon2id_at_rfc_9106_cost(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    s.start()
    try:
        add_user(s, "anna", "watch_officer", "a long passphrase here")
    finally:
        s.stop()
    engine = create_engine(f"sqlite:///{s.home / 'openline.db'}")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE name = 'anna'")).scalar_one()
    engine.dispose()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(stored, "a long passphrase here")
