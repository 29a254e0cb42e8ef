"""The ports the end-to-end tests give their stations (tests/ports.py): outside the
kernel's ephemeral range, where no outgoing connection can take one between a test
choosing it and its server binding it, and never the same one twice."""

from __future__ import annotations

import socket

import pytest

from tests import ports


def test_ports_come_from_outside_the_ephemeral_range_and_are_never_handed_out_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, high = 32_768, 60_999  # Linux's default, whatever this machine's is
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (low, high))
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == 50
    assert all(not low <= p <= high and ports._FLOOR <= p <= ports._LAST for p in given)
    for port in given[:5]:  # nothing listens there, and a server can take it
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_each_xdist_worker_has_a_slice_of_its_own() -> None:
    slices = [ports._slice(32_768, 60_999, worker) for worker in range(ports._SLICES)]
    assert all(s is not None and len(s) >= ports._MIN_SLICE for s in slices)
    seen: set[int] = set()
    for s in slices:
        assert s is not None
        assert s.stop <= 32_768 or s.start > 60_999
        assert seen.isdisjoint(s)
        seen.update(s)
    assert ports._slice(32_768, 60_999, ports._SLICES) == slices[0]  # more workers share


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    taken, free = ports.free_port(), ports.free_port()
    monkeypatch.setattr(ports, "_slice", lambda low, high, worker: [taken, free])
    monkeypatch.setattr(ports, "_given", set())
    with socket.socket() as held:
        held.bind(("127.0.0.1", taken))
        held.listen()
        assert ports.free_port() == free
        with pytest.raises(RuntimeError, match="no free loopback port"):
            ports.free_port()  # one is in use, the other handed out already


def test_a_machine_whose_ephemeral_range_covers_everything_lets_the_kernel_choose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ports._slice(1_024, 65_535, 0) is None
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (1_024, 65_535))
    given = {ports.free_port() for _ in range(20)}
    assert len(given) == 20


def test_a_port_browsers_refuse_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium refuses pages on 10080 (net::ERR_UNSAFE_PORT): a console test whose station
    drew it failed before its page loaded."""
    free = ports.free_port()
    monkeypatch.setattr(ports, "_slice", lambda low, high, worker: [10_080, free])
    monkeypatch.setattr(ports, "_given", set())
    monkeypatch.setattr(ports, "_bindable", lambda port: True)
    assert {ports.free_port()} == {free}
    with pytest.raises(RuntimeError, match="no free loopback port"):
        ports.free_port()
