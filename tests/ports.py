"""Loopback ports for servers a test starts later: a station whose URL is written into its
home before `openline serve` binds it, and binds it again after a kill or a restart.

`bind(("127.0.0.1", 0))` hands out a port from the kernel's ephemeral range, which is also
where every outgoing connection on the machine gets its own port. Between a test choosing
a port and its server binding it (or binding it again after a restart), a client of this
or another process (a second pytest-xdist worker, say) could be given that very port and
the server would fail with "address in use". So ports come from outside that range, from
a slice of their own for each xdist worker, and none is handed out twice in one run.
"""

from __future__ import annotations

import os
import random
import socket

_FLOOR = 10_000  # below: well-known services a test machine may run
_LAST = 65_535
_SLICES = 16  # xdist workers gw0..gw15 get disjoint slices; more share them round-robin
_MIN_SLICE = 200
_given: set[int] = set()
# Ports that browsers refuse to load pages from (Chromium's and Firefox's restricted
# ports, net::ERR_UNSAFE_PORT); of those above _FLOOR, only 10080. A console test on
# such a port failed before its page loaded.
_BROWSERS_REFUSE = frozenset({10_080})


def _ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    try:
        with open(path) as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default
    return low, high


def _worker() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # set in each xdist worker
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _slice(low: int, high: int, worker: int) -> range | None:
    """This worker's share of the widest stretch of ports outside [low, high], or None when
    that stretch is too narrow to share out."""
    below = range(_FLOOR, max(_FLOOR, low))
    above = range(min(_LAST + 1, high + 1), _LAST + 1)
    widest = max(below, above, key=len)
    size = len(widest) // _SLICES
    if size < _MIN_SLICE:
        return None
    start = widest.start + (worker % _SLICES) * size
    return range(start, start + size)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:  # in use, or in TIME_WAIT from an earlier run
            return False
    return True


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range, that this process
    has not handed out before."""
    ports = _slice(*_ephemeral_range(), _worker())
    for _ in range(1_000):
        # When the ephemeral range covers nearly everything, the kernel chooses.
        port = _kernel_port() if ports is None else random.choice(ports)
        if port not in _given and port not in _BROWSERS_REFUSE and (ports is None or _bindable(port)):
            _given.add(port)
            return port
    raise RuntimeError(f"no free loopback port in {ports or 'the ephemeral range'}")
