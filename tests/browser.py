"""A real Chromium for browser tests, driven by Playwright's sync API.

The browser is Debian's `chromium` package (`make test` installs it through `make system-deps`);
Playwright never downloads one. Set OPENLINE_CHROMIUM to use another executable. Import the
fixture is registered in conftest.py. It is per module: Playwright's sync API keeps an event
loop running in the main thread while it is open, which other tests' asyncio must not meet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import APIResponse, Browser, Page, Route, sync_playwright

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> Path:
    return Path(os.environ.get("OPENLINE_CHROMIUM") or DEFAULT_CHROMIUM)


def artifact_path(name: str) -> Path:
    """Where a test leaves a screenshot or other artifact: <repo>/test-artifacts/<name>."""
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class HeldResponse:
    """The first response to a request of `page` matching `pattern`, fetched from the station
    as the request is made (the state as of then) and held back until `release()`, while
    the page goes on; later requests pass."""

    def __init__(self, page: Page, pattern: str) -> None:
        self.page, self.pattern = page, pattern
        self._held: list[tuple[Route, APIResponse]] = []
        page.route(pattern, self._hold_first)

    def _hold_first(self, route: Route) -> None:
        if self._held:
            route.continue_()
            return
        self._held.append((route, route.fetch()))

    def wait(self, what: str, timeout_s: float = 10.0) -> None:
        """Until the request is held. Playwright runs route handlers only while it is called,
        so this waits through it."""
        for _ in range(int(timeout_s / 0.05)):
            if self._held:
                return
            self.page.wait_for_timeout(50)
        raise AssertionError(f"{what} did not start")

    def release(self) -> None:
        route, response = self._held[0]
        route.fulfill(response=response)
        self.page.unroute(self.pattern)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {executable} (set OPENLINE_CHROMIUM to override). "
            "Run `make test`, which installs Debian's chromium package via `make system-deps`, "
            "or `apt-get install -y --no-install-recommends chromium`.",
            pytrace=False,
        )
    # Chromium refuses to start its sandbox as root (as on CI), so drop it there only.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
