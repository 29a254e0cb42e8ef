"""The console as an officer at 3 a.m. uses it with a screen reader, the keyboard or less
motion, in a real Chromium against two real stations: a call that starts ringing and a
peer's new message are said in a live region that stays in the page; the blinking count
keeps its text readable at every frame and stops blinking for reduced motion; the `p`
shortcut can be turned off; a refused form puts the focus on why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.harness import StationProcess, running_pair
from tests.test_console_browser import LIVE_MS, PASSWORD, log_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StationProcess, StationProcess]]:
    root = tmp_path_factory.mktemp("access")
    with running_pair(root, officers={"stuttgart": "anna", "moscow": "boris"}, password=PASSWORD) as stations:
        yield stations


def _luminance(rgb: tuple[float, ...]) -> float:
    """WCAG 2.2 relative luminance of an sRGB colour (0-255 channels)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in rgb)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """The contrast ratio of two computed CSS colours, `rgb(…)` or opaque `rgba(…)`."""

    def rgb(css: str) -> tuple[float, ...]:
        values = [float(v) for v in re.findall(r"[\d.]+", css)]
        assert len(values) == 3 or values[3] == 1, f"not opaque: {css}"
        return tuple(values[:3])

    high, low = sorted((_luminance(rgb(one)), _luminance(rgb(other))), reverse=True)
    return (high + 0.05) / (low + 0.05)


@contextmanager
def _page(browser: Browser, **options: Any) -> Iterator[Page]:
    """A desktop-sized page in a context of its own, closed after the test."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, **options)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def test_contrast_computes_the_wcag_ratio() -> None:
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    assert contrast("rgb(230, 230, 230)", "rgb(30, 111, 217)") == pytest.approx(3.885, abs=0.01)


# Every text change of the live region, as a screen reader hears it.
HEAR = """() => {
  const region = document.querySelector('[data-announce]');
  window.heard = [];
  window.region = region;
  new MutationObserver(() => { if (region.textContent) window.heard.push(region.textContent); })
    .observe(region, { childList: true, characterData: true, subtree: true });
}"""


def test_a_new_ringing_call_and_a_peers_message_are_announced(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    a, b = pair
    anna_ctx, boris_ctx = (browser.new_context(viewport={"width": 1366, "height": 768}) for _ in "ab")
    anna, boris = anna_ctx.new_page(), boris_ctx.new_page()
    try:
        log_in(boris, b, "boris")
        region = boris.locator("[data-announce]")
        expect(region).to_have_attribute("aria-live", "assertive")
        expect(region).to_have_text("")
        boris.evaluate(HEAR)
        boris.wait_for_timeout(300)  # the board's event stream is connected by now

        call = ("call", "moscow", "--subject", "Convoy at checkpoint 4", "--priority", "flash")
        call_id = a.cli_json(*call)["id"]
        rings = "FLASH call from stuttgart ringing: Convoy at checkpoint 4."
        expect(region).to_have_text(rings, timeout=LIVE_MS + 4000)
        # Said inside the region that was there before: a region put in anew is not read.
        assert boris.evaluate("() => document.querySelector('[data-announce]') === window.region")
        boris.wait_for_timeout(500)  # the board refreshes again as the call goes on: said once
        assert boris.evaluate("() => window.heard") == [rings]

        boris.locator(f"#pickup-{call_id}").click()
        expect(boris.locator("[data-state]")).to_have_text("picked_up")
        boris.evaluate(HEAR)
        log_in(anna, a, "anna")
        anna.goto(a.url + f"/calls/{call_id}")
        expect(anna.locator("[data-state]")).to_have_text("picked_up")
        anna.fill("textarea[name=text]", "Convoy passes at 14:00Z.")
        anna.get_by_role("button", name="Send").click()
        said = "Message from stuttgart: Convoy passes at 14:00Z."
        expect(boris.locator("[data-announce]")).to_have_text(said, timeout=5000)
        expect(anna.get_by_text("✓ receipted")).to_have_count(1, timeout=5000)
        assert boris.evaluate("() => window.heard") == [said]

        # Sending reloads the sender's page: its thread is not read out again, and what
        # the officer wrote is not read back to them.
        anna.evaluate(HEAR)
        boris.fill("textarea[name=text]", "Understood.")
        boris.get_by_role("button", name="Send").click()
        expect(boris.get_by_text("✓ receipted")).to_have_count(2, timeout=5000)
        boris.evaluate(HEAR)
        expect(anna.locator("[data-announce]")).to_have_text("Message from moscow: Understood.", timeout=5000)
        assert anna.evaluate("() => window.heard") == ["Message from moscow: Understood."]
        anna.fill("textarea[name=text]", "Passing now.")
        anna.get_by_role("button", name="Send").click()
        expect(boris.locator(".thread").get_by_text("Passing now.")).to_be_visible(timeout=5000)
        boris.wait_for_timeout(500)
        assert boris.evaluate("() => window.heard") == ["Message from stuttgart: Passing now."]
        expect(boris.locator("[data-announce]")).to_have_text("Message from stuttgart: Passing now.")
    finally:
        anna_ctx.close()
        boris_ctx.close()


def test_the_open_call_s_new_state_is_announced(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The caller waits on the call's page: that the peer picked it up, and later closed
    it, is said to a screen reader as it happens, once each."""
    a, b = pair
    with _page(browser) as anna, _page(browser) as boris:
        call_id = a.cli_json("call", "moscow", "--subject", "Bridge closing at noon")["id"]
        log_in(anna, a, "anna")
        anna.goto(a.url + f"/calls/{call_id}")
        expect(anna.locator("[data-state]")).to_have_text("ringing", timeout=LIVE_MS + 4000)
        anna.evaluate(HEAR)
        anna.wait_for_timeout(300)  # the page's event stream is connected by now
        log_in(boris, b, "boris")
        boris.locator(f"#pickup-{call_id}").click()
        picked = "This call is now picked up by moscow:boris."
        expect(anna.locator("[data-announce]")).to_have_text(picked, timeout=LIVE_MS + 4000)
        b.cli("close", call_id)
        closed = "This call is now closed."
        expect(anna.locator("[data-announce]")).to_have_text(closed, timeout=LIVE_MS + 4000)
        anna.wait_for_timeout(500)
        assert anna.evaluate("() => window.heard") == [picked, closed]


BADGE_FRAMES = """() => {
  const badge = document.getElementById('ringing');
  const [blink] = badge.getAnimations();
  blink.pause();
  const frames = [];
  for (let t = 0; t <= 1000; t += 50) {
    blink.currentTime = t;
    const style = getComputedStyle(badge);
    frames.push([style.color, style.backgroundColor, style.opacity]);
  }
  return frames;
}"""


def _ringing_board(page: Page, station: StationProcess, caller: StationProcess, subject: str) -> str:
    log_in(page, station, "boris")
    call_id = str(caller.cli_json("call", station.name, "--subject", subject)["id"])
    expect(page.locator(f"#pickup-{call_id}")).to_be_visible(timeout=LIVE_MS + 4000)
    expect(page.locator("body.alarm")).to_have_count(1)
    return call_id


def test_the_ringing_count_and_buttons_keep_their_contrast(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    a, b = pair
    with _page(browser) as page:
        _ringing_board(page, b, a, "Contrast at 3 a.m.")
        frames = page.evaluate(BADGE_FRAMES)
        for color, background, opacity in frames:
            assert opacity == "1"
            assert contrast(color, background) >= 4.5, (color, background)
        assert len({background for _, background, _ in frames}) > 2  # it does blink
        call = page.get_by_role("button", name="Call", exact=True)
        style = call.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
        assert contrast(*style) >= 4.5, style


def test_nothing_blinks_or_pulses_for_reduced_motion(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    a, b = pair
    with _page(browser, reduced_motion="reduce") as page:
        call_id = _ringing_board(page, b, a, "Less motion")
        badge = page.locator("#ringing")
        # Each element looked up and measured in one go in the page: a live refresh between
        # a look-up and its measure leaves a detached element, whose styles are empty.
        measured = page.evaluate(
            """selectors => selectors.map(s => {
                const style = getComputedStyle(document.querySelector(s));
                return [style.animationName, style.outlineStyle];
            })""",
            ["#ringing", f"[data-call='{call_id}']"],
        )
        assert measured == [["none", "solid"], ["none", "solid"]]  # no motion, still stands out
        style = badge.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
        assert contrast(*style) >= 4.5, style
        page.emulate_media(reduced_motion="no-preference")
        assert badge.evaluate("e => getComputedStyle(e).animationName") == "blink"


def test_the_p_shortcut_can_be_turned_off(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    a, b = pair
    with _page(browser) as page:
        _ringing_board(page, b, a, "Not by a stray key")
        toggle = page.get_by_role("button", name="Key p")
        expect(toggle).to_have_text("Key p: on")
        expect(toggle).to_have_attribute("aria-pressed", "true")
        toggle.click()
        expect(toggle).to_have_text("Key p: off")
        expect(toggle).to_have_attribute("aria-pressed", "false")
        page.keyboard.press("p")  # from the toggle itself, a non-text control
        page.wait_for_timeout(500)
        expect(page).to_have_url(b.url + "/")

        page.reload()  # kept for the next page
        expect(page.get_by_role("button", name="Key p")).to_have_text("Key p: off")
        page.locator("body").press("p")
        page.wait_for_timeout(500)
        expect(page).to_have_url(b.url + "/")

        page.get_by_role("button", name="Key p").click()
        expect(page.get_by_role("button", name="Key p")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("p")
        expect(page).to_have_url(re.compile(r"/calls/[0-9a-f-]{36}$"))  # the most urgent call ringing
        expect(page.locator("[data-state]")).to_have_text("picked_up")


def test_a_refused_form_puts_the_focus_on_why(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    _a, b = pair
    with _page(browser) as page:
        log_in(page, b, "boris")
        page.fill("input[name=subject]", "x" * 501)  # over the station's limit
        page.get_by_role("button", name="Call", exact=True).click()
        error = page.locator("#form-error")
        expect(error).to_be_visible()
        expect(error).to_be_focused()
        expect(page).to_have_title(re.compile(r"^Error: "))
        subject = page.locator("input[name=subject]")
        expect(subject).to_have_value("x" * 501)
        expect(subject).to_have_attribute("aria-invalid", "true")
        expect(subject).to_have_accessible_description(re.compile(r"subject"))
