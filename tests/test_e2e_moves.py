"""Stations that move: real `openline serve` processes restarted on other ports, with the
new `url` in their settings, as an operator moving a station to another machine does.

The peer follows a moved station by itself once the new address answers a handshake
signed by the pinned key (services/moves.py); stations that both moved while apart know
only each other's old addresses, and one `openline line update` with the other's new card
brings the line back on both sides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.harness import StationProcess, running_pair, start_all, stop_all, wait_for
from tests.ports import free_port

pytestmark = pytest.mark.e2e


def move(station: StationProcess) -> str:
    """Give the (stopped) station a new port in its settings, as an operator would."""
    settings = station.home / "settings.toml"
    station.port = free_port()
    url = f"http://127.0.0.1:{station.port}"
    text, n = re.subn(r'^url = ".*"$', f'url = "{url}"', settings.read_text(), flags=re.M)
    assert n == 1
    settings.write_text(text)
    return url


def call(station: StationProcess, peer: str, subject: str) -> str:
    return str(station.cli_json("call", peer, "--subject", subject)["id"])


def state(station: StationProcess, call_id: str) -> Any:
    return station.call_state(call_id)


def peer_url(station: StationProcess, peer: str) -> str:
    return str(next(x["peer_url"] for x in station.cli_json("lines") if x["peer"] == peer))


def test_a_station_restarted_at_a_new_address_is_followed_by_its_peer(tmp_path: Path) -> None:
    with running_pair(tmp_path) as (a, b):
        b.stop()
        waiting = call(a, "moscow", "Sent while moscow was moving")
        new_url = move(b)
        b.start()
        # Nobody told stuttgart: moscow's handshake at start did, and stuttgart checked
        # the new address before sending there.
        wait_for(
            lambda: state(b, waiting) == "ringing", timeout=30, what="the waiting call to ring at moscow"
        )
        assert peer_url(a, "moscow") == new_url
        audit = a.cli_json("audit")
        assert any(e["action"] == "line.card" and new_url in e["target"] for e in audit), audit
        fresh = call(a, "moscow", "After the move")
        wait_for(lambda: state(b, fresh) == "ringing", what="a new call to ring at moscow")
        assert '"event": "a peer moved"' in a.log_path.read_text()


def test_two_stations_that_both_moved_are_rejoined_by_one_operator(tmp_path: Path) -> None:
    with running_pair(tmp_path) as (a, b):
        stop_all(a, b)
        move(a)
        b_url = move(b)
        start_all(a, b)  # each announces itself at the other's old address, in vain
        waiting = call(b, "stuttgart", "Sent before anyone noticed")
        wait_for(
            lambda: any(x["last_error"] for x in b.get_json("/lines")),
            what="moscow failing to reach stuttgart",
        )
        # stuttgart's operator gets moscow's new card out of band, and pins it.
        new_card = tmp_path / "moscow-new.card"
        new_card.write_text(b.cli("card").stdout)
        done = a.cli("line", "update", str(new_card))
        assert f"moscow is now reached at {b_url}" in " ".join(done.stdout.split())
        # stuttgart now reaches moscow, announces itself there, and moscow follows it.
        wait_for(
            lambda: state(a, waiting) == "ringing", timeout=60, what="moscow's call to ring at stuttgart"
        )
        assert peer_url(b, "stuttgart") == a.url
        # The same card again, and a card that is not JSON: clear errors, nothing changed.
        again = a.cli("line", "update", str(new_card), check=False)
        assert again.returncode == 1
        assert "error (conflict): station 'moscow' is pinned with this very card" in " ".join(
            again.stderr.split()
        )
        junk = tmp_path / "junk.card"
        junk.write_text("[1, 2")
        bad = a.cli("line", "update", str(junk), check=False)
        assert bad.returncode == 1
        assert "error (bad_card):" in bad.stderr
        assert peer_url(a, "moscow") == b_url
