"""The CLI's client for its own station's local API, authenticated by the home's token, or
by a user's own token in the file OPENLINE_TOKEN_FILE names."""

from __future__ import annotations

import math
import os
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from openline.adapters.home import read_token, read_token_file
from openline.errors import Code, InvalidInput, OpenLineError, UnsafePermissions
from openline.settings import load


class ApiError(OpenLineError):
    """The station answered with a problem document."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code_text = code


def seg(value: str) -> str:
    """One path segment from an argument someone typed (a call id, a peer's name): escaped,
    so that `../lines`, `?x=1` or `#x` stay inside it and name nothing else; empty refused."""
    if not value.strip():
        raise OpenLineError("an id or name is needed, got an empty one", code=Code.INVALID_INPUT)
    return quote(value, safe="")


TOKEN_FILE_ENV = "OPENLINE_TOKEN_FILE"  # noqa: S105 - a variable's name


def token_file() -> Path | None:
    """The file OPENLINE_TOKEN_FILE names, or None when it is not set. Set but empty is
    refused: a script whose variable came out empty must not act as the administrator."""
    named = os.environ.get(TOKEN_FILE_ENV)
    if named is None:
        return None
    if not named.strip():
        raise InvalidInput(f"{TOKEN_FILE_ENV} is set but empty: name your token file, or unset it")
    return Path(named)


# On every answer of a station since this CLI's version (docs/api.md), naming it. The API's
# `problems.STATION_HEADER`: the CLI does not import the server for one name.
STATION_HEADER = "OpenLine-Station"
# What an OpenLine station's /healthz has said since the first version; the CLI tells a
# station older than the header from another server by them.
_HEALTHZ_FIELDS = ("status", "station", "version")

TIMEOUT_ENV = "OPENLINE_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0


class StationNoAnswer(OpenLineError):
    """The request went out and no answer came back: the station stopped or overloaded
    mid-request, or the connection cut. Not `station_not_running`: the station may have
    done what was asked (a call placed, which rings once the station resumes). Its code,
    `station_no_answer`, is the CLI's own (docs/cli.md, "Errors"), never sent over HTTP."""

    code = Code.STATION_NO_ANSWER


def timeout_s() -> float:
    """Seconds to wait for the station's answer: OPENLINE_TIMEOUT, else 30. A value that is
    not a positive number is refused rather than read as "no limit" or "give up at once"."""
    named = os.environ.get(TIMEOUT_ENV)
    if named is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(named)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInput(f"{TIMEOUT_ENV} must be a positive number of seconds, got {named!r}")
    return seconds


class StationClient:
    """Acts as whoever holds its token: the user whose file OPENLINE_TOKEN_FILE names
    (`openline user token add`), else the home's `api-token`, the administrator's."""

    def __init__(self, home: Path, *, timeout: float | None = None) -> None:
        timeout = timeout_s() if timeout is None else timeout
        self.timeout = timeout
        self.settings = load(home)
        self.base = self.settings.url
        self.token_file = token_file()
        if self.token_file is None:
            token = read_token(home)
        else:
            try:
                token = read_token_file(self.token_file)
            except UnsafePermissions as exc:
                raise UnsafePermissions(f"{TOKEN_FILE_ENV}: {exc.detail}") from None
            except OpenLineError as exc:
                raise InvalidInput(f"{TOKEN_FILE_ENV}: {exc.detail}") from None
        self._client = httpx.Client(
            base_url=self.base,
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
        )

    def request(
        self, method: str, path: str, *, expect: type[list[Any] | dict[str, Any]] | None = None, **kwargs: Any
    ) -> Any:
        """The station's answer to `method path`, parsed; `expect` (list or dict), when the
        caller says, is what a success must be. A problem document is raised as `ApiError`;
        anything that is not an OpenLine station's answer as `station_not_running`."""
        try:
            resp = self._client.request(method, "/api/v1" + path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):  # nothing was sent
            raise OpenLineError(
                f"station {self.settings.name!r} is not running at {self.base}; start it with "
                f"`openline serve --home {self.settings.home}`",
                code=Code.STATION_NOT_RUNNING,
            ) from None
        except httpx.TransportError as exc:  # sent, or partly: it may have been carried out
            raise self._no_answer(method, exc) from None
        except httpx.HTTPError as exc:
            raise OpenLineError(f"talking to {self.base}: {exc}", code=Code.STATION_NOT_RUNNING) from None
        self._check_station(resp)
        if resp.status_code == 204:
            return None
        try:
            data = resp.json()
        except ValueError:
            raise self._not_openline(resp) from None
        if resp.status_code >= 400:
            if not isinstance(data, dict):
                raise self._not_openline(resp)
            # Without a code: FastAPI's own 404 for a path an older station does not have.
            detail = str(data.get("detail", ""))
            if resp.status_code == 401 and self.token_file is not None:
                detail += (
                    f" (the token in {self.token_file}, named by {TOKEN_FILE_ENV}: revoked, its user "
                    "disabled, or another station's)"
                )
            raise ApiError(resp.status_code, str(data.get("code", "error")), detail)
        if expect is not None and not isinstance(data, expect):
            said = (
                f"station {self.settings.name!r} answered {method} {path} with a JSON {_json_kind(data)}, "
                f"where this command reads a JSON {'array' if expect is list else 'object'}"
            )
            if older := self.older_station():
                raise OpenLineError(f"{said}: {older}", code=Code.STATION_TOO_OLD)
            raise OpenLineError(said)
        return data

    def _check_station(self, resp: httpx.Response) -> None:
        """Refuse an answer that is not from this home's station: one without the header, unless
        an OpenLine station older than the header answers at the URL; one naming another station."""
        named = resp.headers.get(STATION_HEADER)
        if named is None:
            if self._healthz is None:
                raise self._not_openline(resp)
        elif named != self.settings.name:
            raise OpenLineError(
                f"station {named!r} answers at {self.base}, not {self.settings.name!r}: is the url in "
                f"{self.settings.home / 'settings.toml'} (or OPENLINE_URL) right?",
                code=Code.STATION_NOT_RUNNING,
            )

    @cached_property
    def _healthz(self) -> dict[str, Any] | None:
        """The station's /healthz, read once, if it is an OpenLine station's naming this home's
        station: JSON with OpenLine's own fields. None for anything else (any server's 404,
        JSON of its own)."""
        try:
            said = self._client.get("/healthz").json()
        except (httpx.HTTPError, ValueError):
            return None
        if not (isinstance(said, dict) and all(isinstance(said.get(f), str) for f in _HEALTHZ_FIELDS)):
            return None
        return said if said["status"] == "ok" and said["station"] == self.settings.name else None

    def _not_openline(self, resp: httpx.Response) -> OpenLineError:
        """Something else answers at the station's URL (another server, a proxy's 502 page):
        one line naming it, not its page."""
        kind = resp.headers.get("content-type", "no content type").split(";")[0].strip()
        return OpenLineError(
            f"not an OpenLine station at {self.base} (HTTP {resp.status_code}, {kind}): is the url in "
            f"{self.settings.home / 'settings.toml'} right, and is station {self.settings.name!r} running "
            "behind it?",
            code=Code.STATION_NOT_RUNNING,
        )

    def _no_answer(self, method: str, exc: httpx.TransportError) -> StationNoAnswer:
        if isinstance(exc, httpx.TimeoutException):
            what = f"did not answer within {self.timeout:g} s ({TIMEOUT_ENV} sets how long to wait)"
        else:
            what = f"did not answer ({exc or type(exc).__name__})"
        said = f"station {self.settings.name!r} at {self.base} {what}"
        if method == "GET":
            return StationNoAnswer(f"{said}; try again")
        return StationNoAnswer(
            f"{said}: the request was sent and may have been carried out; check (`openline calls`, "
            "`openline notices`, `openline show CALL`) before you try again"
        )

    def older_station(self) -> str | None:
        """If the station runs an older OpenLine than this CLI (its code not restarted
        since an upgrade, say), what to tell the user; else None. Asked only once an
        answer lacked something this CLI reads: one request more, on that path alone."""
        from openline.adapters.migrate import head  # alembic: only on this path

        healthz = self._healthz
        if healthz is None:  # not an OpenLine station's: nothing to say of its age
            return None
        theirs = healthz.get("schema")
        ours = head()
        if ours is None or (isinstance(theirs, str) and theirs >= ours):
            return None
        named = f"schema {theirs}" if isinstance(theirs, str) else "its /healthz names no schema"
        return (
            f"station {self.settings.name!r} runs an older OpenLine ({named}) than this command (schema "
            f"{ours}): restart it (`openline serve --home {self.settings.home}`) so that it runs the version "
            "installed"
        )

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        expect: type[list[Any] | dict[str, Any]] | None = None,
    ) -> Any:
        """GET `path`; query parameters whose value is None are left out (an option not given).
        `expect=list` for a listing, `dict` for one object: an answer of another shape is refused."""
        given = {k: v for k, v in (params or {}).items() if v is not None}
        return self.request("GET", path, params=given, expect=expect)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {})

    def put(self, path: str, json: Any) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._client.close()


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
