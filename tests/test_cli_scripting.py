"""The real CLI as scripts use it (cron jobs, dashboards): a station that stops answering,
something else at its URL, output to a closed or full file or a closed pipe, usage
mistakes read in a log, and listings that say when they were cut."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness import OPENLINE, StationProcess, running_pair, wait_for

pytestmark = pytest.mark.e2e


def run(
    station: StationProcess, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`openline ARGS` for `station`'s home, with `kwargs` for subprocess.run (stdout=...)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [*OPENLINE, *args],
        env={**station.env(), **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


def one_error_line(r: subprocess.CompletedProcess[str], code: str) -> str:
    """The one line a failed command printed on standard error, with its code."""
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error ({code}): "), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StationProcess, StationProcess]]:
    """stuttgart and moscow with a line between them and one call from stuttgart."""
    with running_pair(tmp_path_factory.mktemp("pair")) as (a, b):
        a.cli("call", b.name, "--subject", "Convoy at checkpoint 4")
        yield a, b


def test_a_station_that_stops_answering_is_no_answer_and_the_call_it_was_sent_is_placed(
    tmp_path: Path,
) -> None:
    with running_pair(tmp_path) as (a, b):
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)  # slow as a station can be: it takes the request, answers nothing
        try:
            r = run(a, "call", b.name, "--subject", "Sent while stopped", env={"OPENLINE_TIMEOUT": "1.5"})
            calls = run(a, "calls", env={"OPENLINE_TIMEOUT": "1"})
        finally:
            a.proc.send_signal(signal.SIGCONT)
        line = one_error_line(r, "station_no_answer")
        assert "did not answer within 1.5 s (OPENLINE_TIMEOUT" in line
        assert "the request was sent and may have been carried out" in line
        assert "openline calls" in line
        # A listing changes nothing: it only says to try again.
        assert one_error_line(calls, "station_no_answer").endswith("; try again")
        # Once it resumes, the call it took rings: the error did not say it was not made.
        wait_for(
            lambda: [c["subject"] for c in a.get_json("/calls")] == ["Sent while stopped"],
            what="the call placed",
        )


@pytest.mark.parametrize("value", ["0", "-5", "abc", "nan", "inf", ""])
def test_openline_timeout_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    line = one_error_line(run(s, "lines", env={"OPENLINE_TIMEOUT": value}), "invalid_input")
    assert f"OPENLINE_TIMEOUT must be a positive number of seconds, got {value!r}" in line


def test_a_station_that_is_not_running_is_still_station_not_running(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    line = one_error_line(run(s, "call", "moscow", "--subject", "x"), "station_not_running")
    assert "is not running at" in line


class _NotOpenLine(BaseHTTPRequestHandler):
    """Another web server, or a proxy whose station is down: an HTML page for every request
    (or `page`, in `content_type`, with `headers`)."""

    status = 404
    page = b"<!DOCTYPE HTML>\n<html>\n<head><title>Not here</title></head>\n<body>nope</body>\n</html>\n"
    content_type = "text/html; charset=utf-8"
    headers_sent: tuple[tuple[str, str], ...] = ()

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.page)))
        for name, value in self.headers_sent:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.page)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status", [200, 404, 502])
def test_another_server_at_the_stations_url_is_one_line_naming_it(tmp_path: Path, status: int) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    handler = type("Handler", (_NotOpenLine,), {"status": status})
    server = HTTPServer(("127.0.0.1", s.port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for args in (("calls",), ("calls", "--json"), ("call", "moscow", "--subject", "x")):
            line = one_error_line(run(s, *args), "station_not_running")
            assert f"not an OpenLine station at {s.url} (HTTP {status}, text/html)" in line
            assert "<" not in line
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(port: int, **handler: Any) -> Iterator[None]:
    """A `_NotOpenLine` server, with `handler`'s attributes, on `port` while in the block."""
    server = HTTPServer(("127.0.0.1", port), type("Handler", (_NotOpenLine,), handler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


LISTINGS = [
    ("calls",),
    ("calls", "--json"),
    ("notices",),
    ("alerts",),
    ("lines",),
    ("audit",),
    ("notifications",),
    ("notifications", "--json"),
    ("call", "moscow", "--subject", "x"),
]


@pytest.mark.parametrize(
    ("status", "page"), [(200, b'{"hello": 1}'), (200, b"[1, 2, 3]"), (404, b'{"detail": "Not Found"}')]
)
def test_another_server_answering_json_is_not_taken_for_the_station(
    tmp_path: Path, status: int, page: bytes
) -> None:
    """JSON of its own was printed as the station's answer under --json (exit 0), or ended in
    a traceback; any FastAPI app's 404 was `station_too_old`, "restart it"."""
    s = StationProcess.create(tmp_path, "stuttgart")
    with serving(s.port, status=status, page=page, content_type="application/json"):
        for args in LISTINGS:
            r = run(s, *args)
            line = one_error_line(r, "station_not_running")
            assert f"not an OpenLine station at {s.url} (HTTP {status}, application/json)" in line
            assert r.stdout == ""


def test_another_openline_station_at_the_url_is_named(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    with serving(s.port, status=200, page=b"[]", content_type="application/json",
                 headers_sent=(("OpenLine-Station", "moscow"),)):  # fmt: skip
        line = one_error_line(run(s, "calls", "--json"), "station_not_running")
    assert f"station 'moscow' answers at {s.url}, not 'stuttgart'" in line


def test_an_answer_of_another_shape_than_the_command_reads_is_one_error(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    with serving(s.port, status=200, page=b'{"hello": 1}', content_type="application/json",
                 headers_sent=(("OpenLine-Station", "stuttgart"),)):  # fmt: skip
        r = run(s, "notifications", "--json")
    line = one_error_line(r, "internal")
    assert "answered GET /notifications with a JSON object, where this command reads a JSON array" in line
    assert r.stdout == ""


@pytest.mark.parametrize("args", [("version",), ("alerts", "--open"), ("alerts", "--open", "--json")])
def test_output_to_a_full_disk_or_a_closed_stdout_is_one_error_never_success(
    running: StationProcess, args: tuple[str, ...]
) -> None:
    with open("/dev/full", "w") as full:
        line = one_error_line(run(running, *args, stdout=full), "cannot_write")
    assert line == "error (cannot_write): cannot write the output: No space left on device"
    closed = run(running, *args, stdout=None, preexec_fn=lambda: os.close(1))
    assert one_error_line(closed, "cannot_write").endswith("standard output is closed")


@pytest.mark.parametrize("as_json", [False, True])
def test_a_reader_that_stops_reading_is_not_an_error(running: StationProcess, as_json: bool) -> None:
    """`openline calls | head -1` under `set -o pipefail`: quietly, exit 0, table or JSON."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has had enough before anything is written
    try:
        r = run(running, "lines", *(["--json"] if as_json else []), stdout=write_end)
    finally:
        os.close(write_end)
    assert (r.returncode, r.stderr) == (0, "")


def test_messages_into_a_file_are_not_wrapped(tmp_path: Path) -> None:
    home = tmp_path / ("a-station-home-with-a-name-long-enough-to-pass-eighty-columns-" + "x" * 20)
    for columns in (None, "40"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_") and k != "COLUMNS"}
        if columns:
            env["COLUMNS"] = columns
        r = subprocess.run(
            [*OPENLINE, "init", "--home", str(home), "--name", "stuttgart", "--url", "http://127.0.0.1:9"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert f"  API token: {home / 'api-token'} (mode 0600; the CLI uses it)\n" in r.stdout
        home = home.with_name(home.name + "2")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["calls", "--bogus"], "Error: No such option: --bogus"),
        (["alerts", "--before", "abc"], "Error: Invalid value for '--before'"),
        (["calls", "--limit", "5000"], "Error: Invalid value for '--limit'"),
        (["notifications", "--limit", "0"], "Error: Invalid value for '--limit'"),
        (["notices", "--limit", "5000"], "Error: Invalid value for '--limit'"),
        (["notifications", "--alert", "0"], "Error: Invalid value for '--alert'"),
        (["notifications", "--alert", "-1"], "Error: Invalid value for '--alert'"),
        (["line"], "Error: Missing command."),
        (["user"], "Error: Missing command."),
    ],
)
def test_usage_mistakes_are_plain_lines_exit_2(tmp_path: Path, args: list[str], error: str) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")  # not running: nothing is sent
    r = run(s, *args)
    assert r.returncode == 2, r.stderr
    assert any(line.startswith(error) for line in r.stderr.splitlines()), r.stderr
    assert not set("╭╰│─") & set(r.stderr), r.stderr
    assert "query." not in r.stderr
    missing = run(s, "calls", env={"OPENLINE_HOME": ""})
    assert missing.returncode == 2
    assert "Error: Missing option '--home'" in missing.stderr
    assert "Traceback" not in missing.stderr + r.stderr


def test_json_listings_cut_at_the_limit_say_so_on_stderr(pair: tuple[StationProcess, StationProcess]) -> None:
    a, _ = pair
    cut = run(a, "calls", "--json", "--limit", "1")
    assert cut.returncode == 0, cut.stderr
    assert len(json.loads(cut.stdout)) == 1  # standard output stays JSON
    placed = json.loads(cut.stdout)[0]["placed_at"]
    assert cut.stderr.strip() == (
        f"1 are listed, newest first; there may be more (--until {placed} lists the next 1, or a filter)."
    )
    # The option it names is taken, and lists the calls placed before.
    older = run(a, "calls", "--json", "--limit", "1", "--until", placed)
    assert older.returncode == 0, older.stderr
    assert all(c["placed_at"] < placed for c in json.loads(older.stdout))
    whole = run(a, "calls", "--json", "--limit", "2")
    assert (whole.returncode, whole.stderr) == (0, "")
    pages = run(a, "notifications", "--json", "--limit", "1")
    first = json.loads(pages.stdout)
    if first:  # a call that rang paged someone
        assert f"--before {first[0]['id']} lists the next 1" in pages.stderr


def test_an_empty_listing_says_so(running: StationProcess) -> None:
    """`notifications` printed a table of headers only, where the other listings say "No …"."""
    r = run(running, "notifications")
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "No notifications.", "")
    assert json.loads(run(running, "notifications", "--json").stdout) == []


def test_notifications_of_a_call_or_alert_that_does_not_exist_are_refused(
    pair: tuple[StationProcess, StationProcess],
) -> None:
    a, _ = pair
    call_id = a.get_json("/calls")[0]["id"]
    assert run(a, "notifications", "--call", call_id, "--json").returncode == 0
    missing = "01a2a2a2-0000-7000-8000-000000000000"
    line = one_error_line(run(a, "notifications", "--call", missing, "--json"), "not_found")
    assert f"no call with id {missing!r}" in line
    line = one_error_line(run(a, "notifications", "--alert", "999999"), "not_found")
    assert "no alert 999999" in line
