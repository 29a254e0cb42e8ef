"""Whose address a login is counted and recorded under, through a real `openline serve`:
the connection's, unless `trusted_proxies` names the proxy whose X-Forwarded-For is
believed (docs/operations.md, "Listening address"). uvicorn believed the header from
127.0.0.1 by default: any local process, or a proxy passing the client's own header on,
could choose the address the login limit counted and the audit trail recorded."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.harness import StationProcess, add_user, start_all, stop_all

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(("proxies", "recorded"), [(None, "ip:127.0.0.1"), ('["127.0.0.1"]', "ip:10.9.9.9")])
def test_a_forwarded_address_is_believed_only_from_a_trusted_proxy(
    tmp_path: Path, proxies: str | None, recorded: str
) -> None:
    station = StationProcess.create(tmp_path, "moscow")
    if proxies is not None:
        station.extra_env = {"OPENLINE_TRUSTED_PROXIES": proxies}
    start_all(station)
    try:
        add_user(station, "boris", "watch_officer", PASSWORD)
        r = httpx.post(
            station.url + "/login",
            data={"username": "boris", "password": "wrong"},
            headers={"X-Forwarded-For": "10.9.9.9"},
        )
        assert r.status_code == 401, r.text
        failed = [e for e in station.get_json("/audit") if e["action"] == "login.failed"]
        assert [(e["actor"], e["target"]) for e in failed] == [(recorded, "boris")]
    finally:
        stop_all(station)


def test_a_proxy_that_is_not_an_address_is_refused_at_start(tmp_path: Path) -> None:
    station = StationProcess.create(tmp_path, "moscow")
    station.extra_env = {"OPENLINE_TRUSTED_PROXIES": '["proxy.example"]'}
    r = station.cli("serve", check=False)
    assert r.returncode != 0
    assert (
        "a proxy is an IP address or network such as 127.0.0.1 or 10.0.0.0/8, got 'proxy.example'" in r.stderr
    )
