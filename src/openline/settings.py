"""Station settings: one pydantic-settings class, read from the home's settings.toml.

Environment variables (prefix OPENLINE_) override the file; `OPENLINE_DATABASE_URL`
selects PostgreSQL instead of the home's SQLite file. Settings are validated once and
passed into `create_app(settings)`; nothing is read at import time.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from openline.adapters.notify import webhook_signer
from openline.core.card import validate_name, validate_url
from openline.errors import EnvelopeRefused, HomeError, InvalidInput

SETTINGS_FILE = "settings.toml"
DATABASE_FILE = "openline.db"  # the SQLite database, when no database_url is set
LOG_LEVELS = ("debug", "info", "warning", "error")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENLINE_", extra="forbid")

    home: Path
    name: str
    url: str
    database_url: str | None = None
    languages: list[str] = Field(default_factory=lambda: ["en"])
    answer_deadline_s: int = Field(default=60, ge=5, le=86_400)
    # An envelope waiting this long for the peer's receipt raises `line_down` (line_health).
    line_down_after_s: int = Field(default=30, ge=5, le=86_400)
    # A line silent this long is tested with a handshake (delivery.check_line).
    line_check_s: int = Field(default=300, ge=10, le=86_400)
    # A peer whose clock is proved off ours by more than this raises `clock_skew`.
    clock_skew_alert_s: float = Field(default=5.0, ge=0.1, le=86_400)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    log_level: str = "info"
    # Reverse proxies whose X-Forwarded-For names the client (addresses or networks). None
    # by default: a header any client can write must not choose the address the login
    # limit counts and the audit trail records.
    trusted_proxies: list[str] = Field(default_factory=list, max_length=20)
    # Notifications besides the console (see docs/operations.md#notifications).
    console_url: str | None = None  # links in notifications point here
    time_zone: str = "UTC"  # local time shown beside UTC on the roster
    webhook_urls: list[str] = Field(default_factory=list, max_length=10)
    webhook_secret: str | None = None  # whsec_…, Standard Webhooks; prefer OPENLINE_WEBHOOK_SECRET
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_from: str | None = None
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None  # prefer OPENLINE_SMTP_PASSWORD

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Europe/Berlin") from None
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {v!r}")
        return v.lower()

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: str | None) -> str | None:
        if v is not None:  # checked even before any webhook_urls use it
            webhook_signer(v)
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for proxy in v:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"a proxy is an IP address or network such as 127.0.0.1 or 10.0.0.0/8, got {proxy!r}"
                ) from None
        return v

    @field_validator("webhook_urls")
    @classmethod
    def _webhooks(cls, v: list[str]) -> list[str]:
        for url in v:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError(f"webhook URL must be http(s)://host/…, got {url!r}")
        return v

    @model_validator(mode="after")
    def _channels_complete(self) -> Settings:
        if self.webhook_urls and not self.webhook_secret:
            raise ValueError("webhook_urls need webhook_secret (a whsec_… Standard Webhooks secret)")
        if self.smtp_host and not self.smtp_from:
            raise ValueError("smtp_host needs smtp_from (the sender address)")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            return validate_name(v)
        except EnvelopeRefused as exc:
            raise ValueError(exc.detail) from None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        try:
            return validate_url(v)
        except EnvelopeRefused as exc:
            raise ValueError(exc.detail) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / DATABASE_FILE}"

    @property
    def listen(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "127.0.0.1", parts.port or default


def load(home: Path) -> Settings:
    """Read `home/settings.toml` (environment overrides) or explain what is wrong."""
    path = home / SETTINGS_FILE
    if not path.is_file():
        raise HomeError(
            f"no station home at {home} (missing {SETTINGS_FILE}); "
            "create one with `openline init --name NAME --url URL`"
        )
    environment: dict[str, Any] = {}
    try:
        values: dict[str, Any] = TomlConfigSettingsSource(Settings, toml_file=path)()
        environment = EnvSettingsSource(Settings)()
        values.update(environment)  # OPENLINE_* variables win over the file
        values.pop("home", None)  # the home is where we read from, never a setting
        return Settings(home=home, **values)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"], environment) for e in exc.errors())
        raise InvalidInput(f"settings in {path} are not valid: {problems}") from None
    except ValueError as exc:
        raise InvalidInput(f"settings in {path} are not valid TOML: {exc}") from None


def _problem(loc: tuple[int | str, ...], message: str, environment: dict[str, Any]) -> str:
    """One setting's problem, naming the key (and the variable, when one set it)."""
    key = ".".join(map(str, loc))
    if loc and loc[0] in environment:
        key += f" (from OPENLINE_{str(loc[0]).upper()})"
    message = message.removeprefix("Value error, ")
    return f"{key}: {message}" if key else message  # a rule across keys names them itself


def render_toml(values: dict[str, Any]) -> str:
    """Settings as TOML. Values are strings, ints or lists of strings; JSON quoting is valid
    TOML basic-string quoting for these."""
    lines = ["# OpenLine station settings. Environment variables OPENLINE_<NAME> override."]
    for key, value in values.items():
        if value is None:
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
