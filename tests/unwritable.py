"""Places the operating system will not let a command write to, for the refusals of
`openline init` and `openline backup`: under a file, in a directory without write
permission, on a read-only file system. Each is a directory and a command prefix to run
the command with: tests run as root here, who may write anywhere permissions forbid, and
a read-only file system is mounted for the command alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

KINDS = ["under_a_file", "no_permission", "read_only"]
REASONS = {
    "under_a_file": "Not a directory",
    "no_permission": "Permission denied",
    "read_only": "Read-only file system",
}


def unwritable(kind: str, root: Path) -> tuple[list[str], Path]:
    """(command prefix, directory) such that writing in the directory fails with `kind`'s
    reason when the command runs under the prefix. Skips the test where the machine
    cannot make it so."""
    if kind == "under_a_file":
        (root / "a-file").write_text("not a directory")
        return [], root / "a-file"
    directory = root / kind.replace("_", "-")
    directory.mkdir()
    if kind == "no_permission":
        directory.chmod(0o500)
        # Root writes through permissions by its capabilities: run without those two.
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    else:
        mount = 'mount -t tmpfs -o ro none "$0" && exec "$@"'
        prefix = ["unshare", "-m" if os.geteuid() == 0 else "-rm", "sh", "-c", mount, str(directory)]
    if prefix and shutil.which(prefix[0]) is None:
        pytest.skip(f"{prefix[0]} is not installed")
    probe = subprocess.run([*prefix, "touch", str(directory / "probe")], capture_output=True, text=True)
    if probe.returncode == 0 or REASONS[kind] not in probe.stderr:
        (directory / "probe").unlink(missing_ok=True)
        pytest.skip(f"cannot make {directory} refuse writes here: {probe.stderr.strip()}")
    return prefix, directory
