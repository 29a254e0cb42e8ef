"""Smoke tests for the browser harness: Debian's Chromium starts under Playwright, takes a
screenshot, and runs the vendored htmx shipped inside the package."""

from __future__ import annotations

from importlib.resources import files

from playwright.sync_api import Browser, expect

from tests.browser import artifact_path


def test_chromium_renders_and_screenshots(browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.set_content("<button>Pick up</button>")
        button = page.get_by_role("button", name="Pick up")
        expect(button).to_be_visible()
        shot = artifact_path("smoke.png")
        shot.unlink(missing_ok=True)
        page.screenshot(path=shot)
        assert shot.is_file()
        assert shot.stat().st_size > 0
    finally:
        page.close()


def test_vendored_htmx_loads(browser: Browser) -> None:
    vendor = files("openline.console").joinpath("static", "vendor")
    htmx = vendor.joinpath("htmx.min.js").read_text(encoding="utf-8")
    sse = vendor.joinpath("sse.js").read_text(encoding="utf-8")
    page = browser.new_page()
    try:
        page.set_content("<body></body>")
        page.add_script_tag(content=htmx)
        page.add_script_tag(content=sse)
        version = page.evaluate("window.htmx.version")
        assert isinstance(version, str)
        assert version.startswith("2."), version
    finally:
        page.close()
