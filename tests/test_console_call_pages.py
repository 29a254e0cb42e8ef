"""A call's page in a real Chromium against real stations: the officer who loses a pick-up
race is told who won, on the call's own page (a reload posts nothing); each Pick up
button is named by its call; and the page of a call whose line goes down says so, with
the tab's title, until the line is back. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Request, expect

from tests.browser import artifact_path
from tests.harness import add_user, running_pair, wait_for
from tests.test_console_browser import LIVE_MS, PASSWORD, log_in

pytestmark = pytest.mark.e2e


def test_the_officer_who_loses_a_pick_up_race_is_told_who_won(tmp_path: Path, browser: Browser) -> None:
    with running_pair(tmp_path, officers={"moscow": "boris"}, password=PASSWORD) as (a, b):
        add_user(b, "olga", "watch_officer", PASSWORD)
        flash = a.cli_json("call", "moscow", "--subject", "Convoy of 12 trucks", "--priority", "flash")["id"]
        routine = a.cli_json("call", "moscow", "--subject", "Weekly link test", "--priority", "routine")["id"]
        wait_for(
            lambda: sum(c["state"] == "ringing" for c in b.get_json("/calls")) == 2,
            timeout=20,
            what="both calls ringing at moscow",
        )
        boris_ctx, olga_ctx = (browser.new_context(viewport={"width": 1366, "height": 768}) for _ in "bo")
        boris, olga = boris_ctx.new_page(), olga_ctx.new_page()
        try:
            # Olga's board does not hear that boris picked it up: both press within the
            # same moment, and hers is the one that comes second.
            olga.route("**/events", lambda route: route.abort())
            log_in(boris, b, "boris")
            log_in(olga, b, "olga")

            # Each button says which call it picks up, as a screen reader reads it.
            for call_id, what in (
                (flash, "FLASH Convoy of 12 trucks"),
                (routine, "ROUTINE Weekly link test"),
            ):
                named = re.compile(rf"^Pick up call from stuttgart {what} ringing for \d+ (s|min)")
                button = olga.get_by_role("button", name=named)
                expect(button).to_have_count(1)
                expect(button).to_have_attribute("id", f"pickup-{call_id}")
                expect(button).to_have_text("Pick up call from stuttgart")  # what is seen is unchanged

            boris.locator(f"#pickup-{flash}").click()
            expect(boris).to_have_url(b.url + f"/calls/{flash}")
            expect(boris.locator("[data-state]")).to_have_text("picked_up")
            olga.locator(f"#pickup-{flash}").click()

            expect(olga).to_have_url(b.url + f"/calls/{flash}?refused=pickup")
            said = olga.locator("[data-overtaken]")
            first = r"^Someone else picked this call up first: moscow:boris at \d\d:\d\d:\d\dZ\. "
            expect(said).to_have_text(re.compile(first + r"Nothing changed\.$"))
            expect(olga.locator("[data-state]")).to_have_text("picked_up")
            olga.screenshot(path=artifact_path("console-pick-up-race-lost.png"), full_page=True)
            posts: list[Request] = []
            olga.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
            answer = olga.reload()
            assert answer is not None
            assert answer.status == 200
            assert posts == []  # a reload asks for the page again; it posts nothing
            expect(said).to_contain_text("moscow:boris")
            [picked] = [c for c in b.cli_json("calls") if c["id"] == flash]
            assert picked["picked_up_by"] == "moscow:boris"
        finally:
            boris_ctx.close()
            olga_ctx.close()


def test_a_call_page_says_when_its_line_is_down_and_when_it_is_back(tmp_path: Path, browser: Browser) -> None:
    """The officer on a picked-up call read only "… not yet receipted" while the board's
    title said LINE DOWN: their page must say it, live, and stop once the line is back
    (before anyone acknowledges the alert)."""
    with running_pair(
        tmp_path,
        officers={"stuttgart": "anna"},
        password=PASSWORD,
        stuttgart_env={"OPENLINE_LINE_DOWN_AFTER_S": "5"},
    ) as (a, b):
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        anna = ctx.new_page()
        try:
            log_in(anna, a, "anna")
            call_id = a.cli_json("call", "moscow", "--subject", "Convoy of 12 trucks", "--priority", "flash")[
                "id"
            ]
            wait_for(
                lambda: any(c["id"] == call_id and c["state"] == "ringing" for c in b.get_json("/calls")),
                timeout=20,
                what="the call ringing at moscow",
            )
            b.cli("pickup", call_id)
            anna.goto(a.url + f"/calls/{call_id}")
            expect(anna.locator("[data-state]")).to_have_text("picked_up", timeout=LIVE_MS + 5000)
            warning = anna.locator("[data-line-down]")
            expect(warning).to_have_count(0)
            expect(anna).to_have_title(re.compile(r"^Call with moscow"))

            b.stop()
            anna.fill("textarea[name=text]", "Moscow, are you still there?")
            anna.get_by_role("button", name="Send").click()
            expect(anna.get_by_text("… not yet receipted")).to_be_visible()
            # Raised within 5 s + the auditor's 5 s, and shown live: no reload.
            expect(warning).to_contain_text("The line to moscow is down", timeout=20_000)
            expect(warning).to_contain_text("what is said here is not reaching moscow")
            expect(warning).to_contain_text("use your fallback procedure to reach moscow")
            expect(anna).to_have_title(re.compile(r"^LINE DOWN · Call with moscow"))
            anna.screenshot(path=artifact_path("console-call-line-down.png"), full_page=True)

            b.start()
            expect(anna.get_by_text("✓ receipted")).to_be_visible(timeout=60_000)
            expect(warning).to_have_count(0, timeout=5000)
            expect(anna).to_have_title(re.compile(r"^Call with moscow"))
            down = [x for x in a.cli_json("alerts", "--open") if x["kind"] == "line_down"]
            assert len(down) == 1  # not yet acknowledged
        finally:
            ctx.close()
