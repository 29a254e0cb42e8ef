"""The notices page in a real Chromium: how long the browser is busy with `--sites` sites.

Two real `openline serve` processes on 127.0.0.1 (SQLite); stuttgart notifies moscow of
`--sites` protected sites (circles of 0.2 to 5 km, open-ended, all waiting for moscow's
acknowledgement, so every row has its Acknowledge and Reject… buttons), and a watch
officer opens moscow's notices page in Chromium (Playwright, `/usr/bin/chromium` when
Playwright's own is missing). Figures, from the browser's long tasks (main-thread work
over 50 ms, the time the page cannot answer a tap): opening the page, until the map has
drawn every site and the first live refresh is done; a live refresh, when one more site
arrives; a step of the time slider.

Baseline, same run, same station: the same page with each row's Reject… field in place
inside its closed <details>, as the page was until 2026-11-29 (the HTML rewritten on its
way to the browser: `<template data-on-open>` taken off).

Prints figures, asserts nothing. Run from the repository root:
`.venv/bin/python bench/notices_map.py [--sites N]`.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, Route, sync_playwright  # noqa: E402
from tests.harness import StationProcess, running_pair, wait_for  # noqa: E402

PASSWORD = "a long passphrase here"  # noqa: S105 - a throwaway benchmark user
ROUNDS = 3
LONG_TASKS = """
window.__long = [];
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { window.__long.push(e.duration); });
}).observe({ type: "longtask", buffered: true });
"""
TEMPLATE = re.compile(r"<template data-on-open>(.*?)</template>", re.S)
LIVE_PAGES = re.compile(r".*/notices(/live)?$")


def rfc3339(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def site(lat: float, lng: float, radius_m: float, start: datetime) -> dict[str, Any]:
    volume = {
        "outline_circle": {"center": {"lat": lat, "lng": lng}, "radius": {"value": radius_m, "units": "M"}},
        "altitude_lower": {"value": -500, "reference": "W84", "units": "M"},
        "altitude_upper": {"value": 20000, "reference": "W84", "units": "M"},
    }
    return {
        "category": "protected_site",
        "text": f"Clinic at {lat:.3f}, {lng:.3f}",
        "extents": [{"volume": volume, "time_start": {"value": rfc3339(start), "format": "RFC3339"}}],
    }


def busy(page: Page) -> tuple[float, float]:
    """The long tasks since the last call: their total and the longest, in ms."""
    tasks: list[float] = page.evaluate("() => { const t = window.__long; window.__long = []; return t; }")
    return sum(tasks), max(tasks, default=0.0)


def drawn(page: Page, count: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('[data-notice-map]')?.getAttribute('data-visible') === '{count}'",
        timeout=120_000,
    )


def as_before(route: Route) -> None:
    """The notices page as it was: each Reject… field in place in its closed <details>."""
    answer = route.fetch()
    route.fulfill(response=answer, body=TEMPLATE.sub(r"\1", answer.text()))


def measure(
    page: Page, a: StationProcess, b: StationProcess, count: int, start: datetime
) -> dict[str, float]:
    page.goto(b.url + "/notices")
    drawn(page, count)
    page.wait_for_timeout(4000)  # the refresh the live stream asks for once it connects, and after
    opening = busy(page)
    loads = int(page.get_attribute("[data-notice-map]", "data-loads") or 0)
    with a.api() as api:
        r = api.post("/notices", json={"peer": b.name, "notice": site(31.0, 31.0, 300, start)})
        r.raise_for_status()
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-notice-map]').getAttribute('data-loads')) > {loads}",
        timeout=60_000,
    )
    page.wait_for_timeout(4000)  # Chromium looks at a page's new forms a while after they come
    refresh = busy(page)
    steps: list[float] = page.evaluate(
        """async () => {
          const slider = document.querySelector('[data-notice-time]'), out = [];
          for (let i = 0; i < 10; i++) {
            const t = performance.now();
            slider.value = String(i % 2 ? 60 : 120);
            slider.dispatchEvent(new Event('input'));
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            out.push(performance.now() - t);
          }
          return out;
        }"""
    )
    # Withdrawn again, so that the next round opens the same page.
    with a.api() as api:
        api.post(f"/notices/{r.json()['id']}/withdraw").raise_for_status()
    wait_for(lambda: b.cli_json("notice", "show", r.json()["id"])["state"] == "withdrawn", what="withdrawn")
    return {
        "open": opening[0],
        "open_max": opening[1],
        "refresh": refresh[0],
        "refresh_max": refresh[1],
        "slider": statistics.median(steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=300)
    args = parser.parse_args()
    rnd = random.Random(7)
    start = datetime.now(UTC)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_pair(Path(tmp), officers={"moscow": "boris"}, password=PASSWORD) as (a, b),
    ):
        with a.api() as api:
            for _ in range(args.sites):
                doc = site(30 + rnd.uniform(0, 3), 30 + rnd.uniform(0, 3), rnd.uniform(200, 5000), start)
                api.post("/notices", json={"peer": b.name, "notice": doc}).raise_for_status()
        wait_for(
            lambda: len(b.cli_json("notices", "--limit", "1000")) >= args.sites,
            timeout=300,
            what="every site",
        )
        with sync_playwright() as p:
            chromium = Path("/usr/bin/chromium")
            launch = {"executable_path": str(chromium)} if chromium.exists() else {}
            browser = p.chromium.launch(**launch)  # type: ignore[arg-type]
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.add_init_script(LONG_TASKS)
            page.goto(b.url + "/login")
            page.fill("input[name=username]", "boris")
            page.fill("input[name=password]", PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(b.url + "/")
            rows: dict[str, list[dict[str, float]]] = {"now": [], "before": []}
            for _ in range(ROUNDS):  # alternating, so that both see the machine alike
                rows["now"].append(measure(page, a, b, args.sites, start))
                page.route(LIVE_PAGES, as_before)
                rows["before"].append(measure(page, a, b, args.sites, start))
                page.unroute(LIVE_PAGES)
            browser.close()

    def med(which: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[which])

    print(f"moscow: {args.sites:,} protected sites waiting for acknowledgement; medians of {ROUNDS} rounds")
    for label, key in (("opening the page", "open"), ("a live refresh", "refresh")):
        now, before = med("now", key), med("before", key)
        print(
            f"{label}: main thread busy {now:.0f} ms (longest task {med('now', key + '_max'):.0f} ms) | "
            f"baseline, same run, the fields in place: {before:.0f} ms "
            f"(longest {med('before', key + '_max'):.0f} ms; {before / max(now, 1):.1f}x)"
        )
    print(f"a step of the time slider, nothing changing: {med('now', 'slider'):.0f} ms to the next frame")


if __name__ == "__main__":
    main()
