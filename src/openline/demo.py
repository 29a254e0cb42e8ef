"""`openline demo`: two real stations on loopback, a line between them, a call ringing,
and two notices in conflict.

Everything goes through the same doors an operator uses: `init_home`, `openline serve`
subprocesses, and the local HTTP API with each home's token. Nothing is faked.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import httpx
from rich.console import Console
from rich.markup import escape

from openline.adapters.home import read_token
from openline.errors import Code, Conflict, OpenLineError
from openline.services.setup import ADMIN_NAME, init_home
from openline.settings import SETTINGS_FILE, load

CALLER, CALLEE = "stuttgart", "moscow"
SUBJECT = "Convoy of 12 trucks at checkpoint 4, 14:00Z"
# The demo's notices: moscow's protected site, and stuttgart's exercise area over it.
SITE_TEXT = "Field hospital (demo)"
SITE_CENTRE = {"lat": 48.70, "lng": 9.00}
EXERCISE_TEXT = "Live-fire exercise area BRAVO (demo)"
ACTIVE_NOTICE = ("sent", "delivered", "acknowledged")
ANSWER_DEADLINE_S = 900  # long enough to try the commands; then the call is missed
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class _Stop(Exception):
    """A signal asked the demo to stop."""


@dataclass
class _Station:
    name: str
    home: Path
    url: str
    password: str | None  # None when an earlier demo created the home
    proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> Path:
        return self.home.parent / f"{self.name}.log"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call this station's local API as its administrator, like the CLI does."""
        auth = {"Authorization": f"Bearer {read_token(self.home)}"}
        url = f"{self.url}/api/v1{path}"
        try:
            resp = httpx.request(method, url, headers=auth, timeout=30, trust_env=False, **kwargs)
        except httpx.HTTPError as exc:
            raise OpenLineError(f"{method} {url}: {exc}", code=Code.STATION_NOT_RUNNING) from None
        if resp.status_code >= 400:
            detail = resp.json().get("detail") if "json" in resp.headers.get("content-type", "") else None
            raise OpenLineError(f"{self.name} refused {method} {path} ({resp.status_code}): {detail}")
        return resp.json()


def _prepare(root: Path, name: str) -> _Station:
    home = root / name
    if (home / SETTINGS_FILE).exists():
        return _Station(name, home, load(home).url, None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    result = init_home(home, name, f"http://127.0.0.1:{port}")
    return _Station(name, home, f"http://127.0.0.1:{port}", result.admin_password)


def _start(st: _Station) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(("127.0.0.1", st.port))
        except OSError as exc:
            raise Conflict(
                f"{st.name} needs port {st.port} on 127.0.0.1 ({st.home} is set up for it), but it is in "
                f"use: {exc.strerror}. Stop whatever holds it, or run the demo with another --workdir."
            ) from None
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    env["OPENLINE_HOME"] = str(st.home)
    with open(st.log, "ab") as log:
        # Its own session: Ctrl-C reaches the demo only, which then stops each station in turn.
        cmd = [sys.executable, "-m", "openline", "serve"]
        st.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if (code := st.proc.poll()) is not None:
            _failed(st, f"exited while starting (status {code})")
        try:
            if httpx.get(st.url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    _failed(st, f"did not answer {st.url}/healthz within {START_TIMEOUT_S:.0f}s")


def _failed(st: _Station, what: str) -> NoReturn:
    err.print(f"--- last lines of {st.log} ---", style="dim")
    err.print("\n".join(st.log.read_text(errors="replace").splitlines()[-25:]), markup=False)
    raise OpenLineError(f"station {st.name} {what}; its log is {st.log}", code=Code.STATION_NOT_RUNNING)


def _wait(pending: Callable[[], str | None], what: str) -> None:
    """Poll until `pending` returns None; it returns what is still missing otherwise."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while (missing := pending()) is not None:
        if time.monotonic() > deadline:
            raise OpenLineError(f"timed out after {START_TIMEOUT_S:.0f}s waiting for {what}: {missing}")
        time.sleep(0.1)


def _line(st: _Station, peer: str) -> dict[str, Any] | None:
    return next((x for x in st.request("GET", "/lines") if x["peer"] == peer), None)


def _line_pending(st: _Station, peer: str) -> str | None:
    line = _line(st, peer)
    if line is None or line["state"] != "active":
        return f"it is {line['state']} ({line['last_error']})" if line else "there is no line"
    return None


def _ring_pending(st: _Station, call_id: str) -> str | None:
    ringing = [x["id"] for x in st.request("GET", "/calls", params={"state": "ringing"})]
    return None if call_id in ringing else "not ringing yet"


def _connect_and_call(a: _Station, b: _Station) -> str:
    cards = {st.name: st.request("GET", "/station")["card"] for st in (a, b)}
    for st, peer in ((a, b), (b, a)):
        if _line(st, peer.name) is None:  # an earlier demo in this workdir may have added it
            body = {"card": cards[peer.name], "answer_deadline_s": ANSWER_DEADLINE_S}
            st.request("POST", "/lines", json=body)
    for st, peer in ((a, b), (b, a)):
        _wait(partial(_line_pending, st, peer.name), f"the line {st.name} → {peer.name} to become active")
    body = {"peer": b.name, "subject": SUBJECT, "priority": "flash"}
    call_id = str(a.request("POST", "/calls", json=body)["id"])
    _wait(partial(_ring_pending, b, call_id), f"call {call_id} to ring at {b.name}")
    return call_id


def _volume(outline: dict[str, Any], start: datetime, end: datetime | None, top_m: int) -> dict[str, Any]:
    """One ASTM F3548 Volume4D: `outline` from 0 to `top_m` metres, from `start` to `end`."""

    def when(t: datetime) -> dict[str, str]:
        return {"value": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "format": "RFC3339"}

    volume = {
        **outline,
        "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
        "altitude_upper": {"value": top_m, "reference": "W84", "units": "M"},
    }
    return {"volume": volume, "time_start": when(start), **({"time_end": when(end)} if end else {})}


def _earlier(st: _Station, text: str) -> str | None:
    """The notice an earlier demo in this workdir sent, if it is still active."""
    for n in st.request("GET", "/notices"):
        if n["direction"] == "out" and n.get("text") == text and n["state"] in ACTIVE_NOTICE:
            return str(n["id"])
    return None


def _announce(a: _Station, b: _Station) -> tuple[str, str]:
    """`b` notifies a protected site; `a` announces an exercise over it, which conflicts.
    Returns their notice ids once `b` has the exercise, with the conflict."""
    now = datetime.now(UTC).replace(microsecond=0)
    hospital = {"outline_circle": {"center": SITE_CENTRE, "radius": {"value": 300, "units": "M"}}}
    site = {"category": "protected_site", "text": SITE_TEXT, "extents": [_volume(hospital, now, None, 2000)]}
    lat, lng = SITE_CENTRE["lat"], SITE_CENTRE["lng"]
    square = [(lat - 0.01, lng), (lat - 0.01, lng + 0.02), (lat + 0.01, lng + 0.02), (lat + 0.01, lng)]
    area = {"outline_polygon": {"vertices": [{"lat": y, "lng": x} for y, x in square]}}
    window = (now + timedelta(hours=1), now + timedelta(hours=4))
    exercise = {"category": "exercise", "text": EXERCISE_TEXT, "extents": [_volume(area, *window, 3000)]}
    site_id = _earlier(b, SITE_TEXT) or str(
        b.request("POST", "/notices", json={"peer": a.name, "notice": site})["id"]
    )
    exercise_id = _earlier(a, EXERCISE_TEXT) or str(
        a.request("POST", "/notices", json={"peer": b.name, "notice": exercise})["id"]
    )

    def conflict_pending() -> str | None:
        seen = [n for n in b.request("GET", "/notices") if n["id"] == exercise_id]
        return None if seen and seen[0]["conflicts"] else "not delivered with its conflict yet"

    _wait(conflict_pending, f"the exercise notice to reach {b.name}")
    return site_id, exercise_id


def _openline() -> str:
    """How to run this same `openline` from the user's shell."""
    beside = Path(sys.executable).parent / "openline"
    if shutil.which("openline") == str(beside):
        return "openline"
    if beside.exists():
        return shlex.quote(os.path.relpath(beside) if beside.is_relative_to(Path.cwd()) else str(beside))
    return f"{shlex.quote(sys.executable)} -m openline"


def _print_ready(root: Path, a: _Station, b: _Station, call_id: str, notices: tuple[str, str]) -> None:
    out.print(f"\n[bold green]OpenLine demo running[/] in {escape(str(root))}\n")
    for st in (a, b):
        assert st.proc is not None
        login = (
            f"one-time password [bold]{escape(st.password)}[/]" if st.password else "password shown at init"
        )
        out.print(f"  [bold]{st.name:<10}[/] {st.url}  (pid {st.proc.pid})  home {escape(str(st.home))}")
        out.print(f"  {'':<10} administrator {ADMIN_NAME}, {login}; log {escape(str(st.log))}")
    ring = f"a call rings {ANSWER_DEADLINE_S // 60} minutes, then it is missed"
    out.print(f"\n  Line {a.name} ⇄ {b.name}: [bold]active[/] ({ring})")
    out.print(f"  Call {call_id} from {a.name} is ringing at {b.name}: [bold red]flash[/] {escape(SUBJECT)}")
    site_id, exercise_id = notices
    out.print(
        f"  Notice {site_id}: {b.name} protects a site, {escape(SITE_TEXT)}; notice {exercise_id}: "
        f"{a.name}'s {escape(EXERCISE_TEXT)} overlaps it: [bold red]a conflict[/], alerted on both watch "
        f"floors, and {b.name} must acknowledge the exercise. The map: {b.url}/notices"
    )
    ol = {st.name: f"OPENLINE_HOME={shlex.quote(str(st.home))} {_openline()}" for st in (a, b)}
    sa, sb, c = ol[a.name], ol[b.name], call_id
    out.print(
        f"\n[bold]Open the console:[/] {b.url}/ and log in as {ADMIN_NAME} with the password shown "
        f"above for {b.name} (you choose your own next): the call is ringing on the watch board. "
        f"Log in to {a.url}/ the same way to see it from {a.name}'s side."
    )
    out.print("\n[bold]Or try, in another terminal:[/]")
    for line in (
        f"# {b.name}'s watch floor sees the call, picks it up and answers",
        f"{sb} calls", f"{sb} pickup {c}", f"{sb} say {c} 'Moscow here. Go ahead.'",
        f"# {a.name} talks, then closes the call",
        f"{sa} say {c} 'Twelve trucks, route north, 14:00Z.'",
        f"{sa} close {c} --summary 'Convoy notified and acknowledged'",
        f"# the notices: {b.name} acknowledges {a.name}'s exercise, whose conflict both see",
        f"{sb} notices", f"{sb} notice ack {exercise_id}",
        "# a year later, on either side: which notices covered the hospital, and a proof of one",
        f"{sb} notices --at {SITE_CENTRE['lat']},{SITE_CENTRE['lng']}",
        f"{sb} prove {exercise_id} --out notice-proof.json", f"{_openline()} verify notice-proof.json",
        "# either side: the call with its messages, receipts and event log; the line",
        f"{sa} show {c}", f"{sb} lines",
        "# the evidence: a proof of this call and a bundle of the whole ledger, checked offline",
        f"{sa} prove {c} --out call-proof.json", f"{_openline()} verify call-proof.json",
        f"{sa} ledger export --out stuttgart-evidence", f"{_openline()} verify stuttgart-evidence",
        f"{sa} report",
        "# each station's HTTP API (OpenAPI 3.1)",
        f"curl -s {a.url}/openapi.json",
    ):  # fmt: skip
        out.print(f"  {line}", markup=False, style="dim" if line.startswith("#") else "cyan")
    out.print("\n[bold]Press Ctrl-C to stop both stations.[/]")


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    for sig in _SIGNALS:  # a second Ctrl-C must not cut the shutdown short
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _stop(st: _Station) -> None:
    if st.proc is None:
        return
    if (code := st.proc.poll()) is None:
        st.proc.send_signal(signal.SIGTERM)
        try:
            code = st.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            st.proc.kill()
            st.proc.wait()
            out.print(f"  {st.name} did not stop within {STOP_TIMEOUT_S:.0f}s of SIGTERM: killed")
            return
    out.print(f"  {st.name} stopped (exit status {code})")


def run_demo(workdir: Path | None) -> None:
    """Run the demo until SIGINT, SIGTERM or SIGHUP, then stop both stations."""
    temporary = workdir is None
    root = workdir.expanduser().absolute() if workdir else Path(tempfile.mkdtemp(prefix="openline-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    stations = [_prepare(root, CALLER), _prepare(root, CALLEE)]
    previous = {sig: signal.signal(sig, _raise_stop) for sig in _SIGNALS}
    clean = False
    try:
        for st in stations:
            _start(st)
        call_id = _connect_and_call(stations[0], stations[1])
        _print_ready(root, stations[0], stations[1], call_id, _announce(stations[0], stations[1]))
        while True:
            for st in stations:
                if st.proc is not None and (code := st.proc.poll()) is not None:
                    _failed(st, f"exited unexpectedly (status {code})")
            time.sleep(0.5)
    except _Stop as stop:
        out.print(f"\n{stop} received: stopping both stations")
        clean = True
    finally:
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for st in stations:
            _stop(st)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if temporary and clean:
        shutil.rmtree(root, ignore_errors=True)
        out.print(f"Removed {escape(str(root))} (use --workdir DIR to keep the stations)")
