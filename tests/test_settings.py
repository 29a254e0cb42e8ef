"""Settings: the home's file, overridden by OPENLINE_* variables, validated once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from openline.adapters.notify import WebhookChannel
from openline.errors import HomeError, InvalidInput
from openline.services.setup import init_home
from openline.settings import SETTINGS_FILE, load


@pytest.fixture
def home(tmp_path: Path) -> Path:
    init_home(tmp_path / "home", "stuttgart", "http://127.0.0.1:8001")
    return tmp_path / "home"


def test_settings_come_from_the_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENLINE_URL", "OPENLINE_DATABASE_URL", "OPENLINE_HOME"):
        monkeypatch.delenv(var, raising=False)
    s = load(home)
    assert (s.name, s.url, s.listen, s.languages) == (
        "stuttgart",
        "http://127.0.0.1:8001",
        ("127.0.0.1", 8001),
        ["en"],
    )
    assert s.effective_database_url == f"sqlite:///{home / 'openline.db'}"


def test_environment_overrides_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINE_URL", "https://stuttgart.example:8443")
    monkeypatch.setenv("OPENLINE_LANGUAGES", '["de", "en"]')
    monkeypatch.setenv("OPENLINE_DATABASE_URL", "postgresql://db.example/openline")
    monkeypatch.setenv("OPENLINE_HOME", "/somewhere/else")
    s = load(home)
    assert s.url == "https://stuttgart.example:8443"
    assert s.listen == ("stuttgart.example", 8443)
    assert s.languages == ["de", "en"]
    assert s.effective_database_url == "postgresql://db.example/openline"
    assert s.home == home  # the home read from is never overridden


def test_bad_settings_name_the_key_and_value(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLINE_URL", raising=False)
    text = (home / SETTINGS_FILE).read_text()
    (home / SETTINGS_FILE).write_text(text.replace('"http://127.0.0.1:8001"', '"gopher://x"'))
    with pytest.raises(InvalidInput, match=r"url: .*http\(s\)"):
        load(home)
    (home / SETTINGS_FILE).write_text("name = ")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load(home)
    (home / SETTINGS_FILE).write_text(text + "answer_deadline_s = 1\n")
    with pytest.raises(InvalidInput, match="answer_deadline_s"):
        load(home)
    (home / SETTINGS_FILE).write_text(text + 'colour = "red"\n')
    with pytest.raises(InvalidInput, match="colour"):
        load(home)


def test_a_missing_home_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="openline init"):
        load(tmp_path / "nothing")


def test_log_level_is_one_of_four_in_any_case(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINE_LOG_LEVEL", "WARNING")
    assert load(home).log_level == "warning"  # as uvicorn and the logging module both take it
    for bad in ("verbose", "", "trace"):
        monkeypatch.setenv("OPENLINE_LOG_LEVEL", bad)
        with pytest.raises(
            InvalidInput,
            match=rf"log_level \(from OPENLINE_LOG_LEVEL\): must be one of debug, info, warning, error, "
            rf"got '{bad}'$",
        ):
            load(home)
    monkeypatch.delenv("OPENLINE_LOG_LEVEL")
    (home / SETTINGS_FILE).write_text((home / SETTINGS_FILE).read_text() + 'log_level = "loud"\n')
    with pytest.raises(InvalidInput, match=r"not valid: log_level: must be one of .*, got 'loud'$"):
        load(home)


def test_a_webhook_secret_is_checked_when_the_settings_load(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENLINE_WEBHOOK_URLS", raising=False)
    good = "whsec_" + base64.b64encode(b"k" * 32).decode()
    monkeypatch.setenv("OPENLINE_WEBHOOK_SECRET", good)
    assert load(home).webhook_secret == good
    # Each refused as the webhook channel would refuse it, without webhook_urls yet, the
    # secret itself never quoted.
    for bad, says in [
        ("", "starts with 'whsec_'"),
        ("foo", "starts with 'whsec_'"),
        ("whsec_foo", "is 'whsec_' followed by base64"),
        ("whsec_J3V6MA==", "needs at least 24 bytes, got 4"),
    ]:
        monkeypatch.setenv("OPENLINE_WEBHOOK_SECRET", bad)
        with pytest.raises(
            InvalidInput, match=rf"webhook_secret \(from OPENLINE_WEBHOOK_SECRET\): .*{says}$"
        ) as e:
            load(home)
        assert "J3V6MA" not in str(e.value)
        with pytest.raises(ValueError, match=says):
            WebhookChannel(bad)
