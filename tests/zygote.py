"""`openline` commands for the tests, each in its own process, forked from one that has
already imported what the commands import.

Every `python -m openline ...` spends about half a second of CPU importing (typer, rich,
pydantic, httpx, cryptography; `serve` also FastAPI, SQLAlchemy, uvicorn, ...) before it
does anything, and the end-to-end tests run hundreds of commands and start hundreds of
stations. Here one process per test worker imports those modules once and waits; each
command is a fork of it, which then runs `python -m openline ARGS` as the interpreter
would (`runpy`), with the command's arguments, environment, working directory, standard
input, output and error, in a process of its own that exits with the command's status.
What the forked process does not repeat is the import itself: tests/test_cli_errors.py,
tests/test_cli_scripting.py and tests/test_demo.py, among others, still start
`python -m openline` from nothing.

For each command the forking process forks a monitor, which forks the command and waits
for it: the command's pid and then its exit status (negative: the signal that ended it,
as `subprocess` says) go back over a Unix socket. The client sends one JSON line (argv,
env, cwd) with three file descriptors: standard input, output and error.
"""

from __future__ import annotations

import io
import json
import locale
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_MAX_REQUEST = 1 << 20
# What the forking process imports: the CLI every command imports, and what the commands
# the tests run most import when they run (the station itself, the conflict engine, set-up).
PRELOADED = (
    "openline.cli.main",
    "openline.serve",
    "openline.core.conflicts",
    "openline.core.formats",
    "openline.services.setup",
)


def _serve(path: str) -> None:
    """The forking process: import, then fork a monitor per connection, until the test
    worker that started it goes (its standard input, a pipe from the worker, ends)."""
    import gc
    import importlib

    for module in PRELOADED:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()  # what is imported stays shared with every fork, not copied by the collector
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the monitors
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while True:
            readable, _, _ = select.select([listener, sys.stdin], [], [])
            if sys.stdin in readable:
                return  # the worker has gone
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _monitor(conn)  # does not return
            conn.close()
    finally:
        listener.close()
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)  # the socket's folder


def _monitor(conn: socket.socket) -> None:
    """Fork the command, say its pid, wait for it, say how it ended, exit."""
    try:
        data, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _command(request, fds)  # does not return
        for fd in fds:
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    finally:
        os._exit(0)


def _command(request: dict[str, Any], fds: list[int]) -> None:
    """In the command's process: become `python -m openline ARGS` and run it."""
    code = 70  # EX_SOFTWARE: what went wrong before the command ran
    try:
        # sys.stdin, sys.stdout and sys.stderr are the forking process's, which never read
        # or wrote through them after "ready": now they are the command's.
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update(request["env"])
        code = _run(list(request["argv"]))
    finally:
        os._exit(code)


def _run(argv: list[str]) -> int:
    import runpy
    import traceback

    sys.argv = ["openline", *argv]  # runpy puts the module's file first, as `-m` does
    try:
        runpy.run_module("openline", run_name="__main__", alter_sys=True)
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)  # as the interpreter does with sys.exit("text")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    return code


class ForkedProcess:
    """A command's process, as much of `subprocess.Popen` as the tests use."""

    def __init__(self, argv: Sequence[str], conn: socket.socket) -> None:
        self.args = ["openline", *argv]
        self._conn = conn
        self._buffer = b""
        self.returncode: int | None = None
        line = self._line(None)
        if line is None:
            conn.close()
            raise RuntimeError(f"`openline {' '.join(argv)}` could not be started")
        self.pid = int(line)

    def _line(self, timeout: float | None) -> bytes | None:
        """The monitor's next line; None when it has closed the connection. Waits at most
        `timeout` seconds (None: as long as it takes), then raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._conn], [], [], left)
            if not readable:
                raise TimeoutError
            chunk = self._conn.recv(64)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                line = self._line(timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
            self.returncode = int(line) if line else -signal.SIGKILL  # the monitor killed
            self._conn.close()
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The forking process of this test worker, started at the first command."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._path = ""

    def _ensure(self) -> str:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                folder = tempfile.mkdtemp(prefix="openline-zygote-")
                self._path = os.path.join(folder, "socket")
                self._proc = subprocess.Popen(
                    [sys.executable, __file__, self._path],
                    stdin=subprocess.PIPE,  # ends when this process does: the zygote goes too
                    stdout=subprocess.PIPE,
                    env={k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")},
                )
                assert self._proc.stdout is not None
                if self._proc.stdout.readline() != b"ready\n":
                    raise RuntimeError("the forking process for `openline` commands did not start")
            return self._path

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(10)
            if self._path:
                shutil.rmtree(os.path.dirname(self._path), ignore_errors=True)
            self._proc = None

    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
        cwd: str | Path | None = None,
    ) -> ForkedProcess:
        """`subprocess.Popen([python, "-m", "openline", *argv], env=env, ...)`, forked;
        standard input, output or error not given are /dev/null."""
        path = self._ensure()
        with open(os.devnull, "r+b") as null:
            fds = [(f or null).fileno() for f in (stdin, stdout, stderr)]
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.connect(path)
                request = {"argv": list(argv), "env": dict(env), "cwd": str(cwd or os.getcwd())}
                socket.send_fds(conn, [json.dumps(request).encode()], fds)
                return ForkedProcess(argv, conn)
            except BaseException:
                conn.close()
                raise

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        input: str | None = None,
        timeout: float = 60,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`subprocess.run([python, "-m", "openline", *argv], env=env, input=input,
        capture_output=True, text=True, timeout=timeout)`, forked instead of started."""
        encoding = locale.getpreferredencoding(False)
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
        ):
            if input is not None:
                stdin.write(input.encode(encoding))
                stdin.seek(0)
            proc = self.spawn(argv, env, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            outputs = []
            for file in (stdout, stderr):
                file.seek(0)
                outputs.append(io.TextIOWrapper(io.BytesIO(file.read()), encoding=encoding).read())
        return subprocess.CompletedProcess(proc.args, code, outputs[0], outputs[1])


ZYGOTE = Zygote()


if __name__ == "__main__":
    sys.path.pop(0)  # this folder (tests/) is not where `openline` comes from
    _serve(sys.argv[1])
