"""The notice form and the map with notices that the form's one band and one window do
not fit, in a real Chromium against two real stations: a notice whose volumes have their
own altitude bands or time windows amended and edited without losing them (or given one
band and window for all, when the planner says so), a band written in feet reopened in
feet; and, near the antimeridian, a protected site drawn on the same copy of the world as
the activity over it, whichever side of 180 degrees the map is looking at, and a route
across 180 degrees drawn in one piece when the map shows the whole world; a long edge
drawn bowed along its geodesic, as the conflict check tests it, and a ring round the pole
drawn too; a large circle drawn as the ellipsoid measures it, not by L.circle (the traced
outlines: test_console_notice_outlines.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from pyproj import Transformer

from openline.core.volumes import FEET
from tests.browser import artifact_path
from tests.harness import StationProcess, running_pair, wait_for
from tests.notice_docs import WGS84, square
from tests.test_console_notices import PASSWORD, Watched, _log_in, _newest, _notices_map

TWO_BANDS = "Two sorties, two bands"
AMENDED = "Two sorties, the second later"
EDITED = "One band for both now"
IN_FEET = "Drawn in feet"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StationProcess, StationProcess]]:
    with running_pair(tmp_path, officers={"moscow": "boris"}, password=PASSWORD) as stations:
        yield stations


def _at(now: datetime, hours: float) -> str:
    return (now + timedelta(hours=hours)).isoformat(timespec="seconds").replace("+00:00", "Z")


def _extent(
    outline: dict[str, Any], band: tuple[float, float], units: str, start: str, end: str
) -> dict[str, Any]:
    return {
        "volume": {
            **outline,
            "altitude_lower": {"value": band[0], "reference": "W84", "units": units},
            "altitude_upper": {"value": band[1], "reference": "W84", "units": units},
        },
        "time_start": {"value": start, "format": "RFC3339"},
        "time_end": {"value": end, "format": "RFC3339"},
    }


CORNERS = [(48.0, 9.0), (48.0, 9.1), (48.1, 9.1), (48.1, 9.0)]
SQUARE = {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in CORNERS]}}
CIRCLE = {"outline_circle": {"center": {"lat": 48.3, "lng": 9.3}, "radius": {"value": 2500, "units": "M"}}}


def _two_bands(now: datetime) -> dict[str, Any]:
    """A polygon 0-1000 m from +1 h and a circle 2000-6000 ft from +2 h: a notice the CLI
    sends, which the form's one band and one window cannot write."""
    return {
        "category": "air_operation",
        "text": TWO_BANDS,
        "extents": [
            _extent(SQUARE, (0, 1000), "M", _at(now, 1), _at(now, 3)),
            _extent(CIRCLE, (2000, 6000), "FT", _at(now, 2), _at(now, 4)),
        ],
    }


def _post(station: StationProcess, doc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    with station.api() as api:
        r = api.post("/notices", json={"peer": "stuttgart", "notice": doc, **extra})
        assert r.status_code == 201, r.text
        return dict(r.json())


def _show(station: StationProcess, notice_id: str) -> dict[str, Any]:
    with station.api() as api:
        return dict(api.get(f"/notices/{notice_id}").json())


def _bands(notice: dict[str, Any]) -> list[tuple[float, float, str, str]]:
    """Each volume's band (metres) and window, as the station holds them."""
    return [
        (
            e["volume"]["altitude_lower"]["value"],
            e["volume"]["altitude_upper"]["value"],
            e["time_start"]["value"],
            e["time_end"]["value"],
        )
        for e in notice["extents"]
    ]


def _outlines(notice: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e["volume"].items() if k.startswith("outline")} for e in notice["extents"]]


BAND_AND_WINDOW = (
    "#notice-alt-lower",
    "#notice-alt-upper",
    "[name=alt_units]",
    "#notice-start",
    "#notice-end",
)


@pytest.mark.e2e
def test_amend_and_edit_keep_each_volumes_own_band_and_window(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The tester's notice: Amend showed an empty text and the form's default band, drew
    nothing, and sent the old text and bands whatever was typed. Now its text and shapes
    come back, each shape keeping its own band and window, and the band and window fields,
    which cannot say two bands, are shut until the planner asks for one band for all."""
    _, b = pair
    now = datetime.now(UTC)
    sent = _post(b, _two_bands(now))
    draft = _post(b, _two_bands(now), draft=True)
    feet = _post(b, {**_two_bands(now), "text": IN_FEET, "extents": [
        _extent(CIRCLE, (0, 2000), "FT", _at(now, 1), _at(now, 3)),
    ]}, draft=True)  # fmt: skip
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    watched = Watched(page, b)
    form = page.locator("[data-notice-form]")
    own = page.locator("[data-own-bands]")
    try:
        _log_in(page, b)
        page.goto(b.url + "/notices")
        page.locator(f"tr[data-notice='{sent['id']}']").get_by_role("link", name="Amend").click()
        expect(page.locator("#notice-text")).to_have_value(TWO_BANDS)
        expect(form).to_have_attribute("data-drafts", "2")
        expect(own).to_be_visible()
        expect(own).to_contain_text("2 volumes have different altitude bands or time windows")
        for selector in BAND_AND_WINDOW:
            expect(page.locator(selector)).to_be_disabled()
        page.locator("#send-notice").screenshot(path=artifact_path("console-notices-own-bands.png"))
        page.fill("#notice-text", AMENDED)
        page.get_by_role("button", name="Send the amended notice").click()
        expect(page).to_have_url(b.url + "/notices")
        amended = _newest(b, AMENDED)
        assert (amended["version"], amended["supersedes"]) == (2, sent["id"])
        assert _bands(amended) == _bands(sent)
        assert _bands(amended)[1][:2] == (2000 * FEET, 6000 * FEET)
        assert _outlines(amended) == _outlines(sent)

        # Edit a draft of the same notice: one band and window for all, when asked for.
        page.goto(b.url + f"/notices?edit={draft['id']}")
        expect(page.locator("#notice-text")).to_have_value(TWO_BANDS)
        expect(form).to_have_attribute("data-drafts", "2")
        page.get_by_role("button", name="One band and window for all").click()
        expect(own).to_be_hidden()
        expect(page.locator("#notice-alt-lower")).to_have_value("0")  # volume 1's
        expect(page.locator("#notice-alt-upper")).to_have_value("1000")
        first = draft["extents"][0]
        expect(page.locator("#notice-start")).to_have_value(first["time_start"]["value"])
        page.fill("#notice-alt-upper", "1500")
        page.fill("#notice-text", EDITED)
        page.get_by_role("button", name="Save the draft").click()
        expect(page).to_have_url(b.url + f"/notices#notice-{draft['id']}")
        edited = _show(b, draft["id"])
        assert (edited["state"], edited["text"]) == ("draft", EDITED)
        assert _bands(edited) == [(0, 1500, first["time_start"]["value"], first["time_end"]["value"])] * 2
        assert _outlines(edited) == _outlines(draft)

        # A band the station holds in metres that is a whole number of feet reopens in feet.
        page.goto(b.url + f"/notices?edit={feet['id']}")
        expect(form).to_have_attribute("data-drafts", "1")
        expect(page.locator("[name=alt_units]")).to_have_value("ft")
        expect(page.locator("#notice-alt-lower")).to_have_value("0")
        expect(page.locator("#notice-alt-upper")).to_have_value("2000")
        expect(own).to_be_hidden()
        page.fill("#notice-text", IN_FEET + ", still")
        page.get_by_role("button", name="Save the draft").click()
        expect(page).to_have_url(b.url + f"/notices#notice-{feet['id']}")
        assert _bands(_show(b, feet["id"])) == _bands(feet)

        # A notice pasted into the box: one the form cannot show is sent as it stands, and
        # the page says so; one it can show comes onto the map as the amended one did.
        as_is = page.locator("[data-notice-as-is]")
        box = page.locator("#notice-json")
        expect(as_is).to_be_hidden()
        in_km = _two_bands(now)
        in_km["extents"][0]["volume"]["altitude_upper"]["units"] = "KM"
        box.fill(json.dumps(in_km))
        box.blur()
        expect(as_is).to_be_visible()
        expect(form).to_have_attribute("data-drafts", "0")
        box.fill(json.dumps(_two_bands(now)))
        box.blur()
        expect(form).to_have_attribute("data-drafts", "2")
        expect(as_is).to_be_hidden()
        expect(own).to_be_visible()
        expect(page.locator("#notice-text")).to_have_value(TWO_BANDS)
    finally:
        ctx.close()
    watched.check()


# The antimeridian --------------------------------------------------------------------------

# Every drawn volume and pin inside the map, and the site's pin on the activity over it.
_TOGETHER = """() => {
  const box = (e) => e.getBoundingClientRect();
  const map = box(document.querySelector('[data-notice-map]'));
  const volumes = [...document.querySelectorAll('path.notice-volume')].map(box);
  const pins = [...document.querySelectorAll('path.notice-pin')].map(box);
  const inside = (r) =>
    r.left >= map.left && r.right <= map.right && r.top >= map.top && r.bottom <= map.bottom;
  const widest = volumes.reduce((w, r) => (r.width > (w ? w.width : -1) ? r : w), null);
  const pin = pins[0];
  const x = pin && (pin.left + pin.right) / 2, y = pin && (pin.top + pin.bottom) / 2;
  return {
    together: volumes.length === 2 && pins.length === 1 && volumes.every(inside) && pins.every(inside)
      && widest.left <= x && x <= widest.right && widest.top <= y && y <= widest.bottom,
    pin: pin ? [x, y] : null,
    volumes: volumes.map((r) => [r.left, r.top, r.right, r.bottom]),
    map: [map.left, map.top, map.right, map.bottom],
  };
}"""


def _together(page: Page, timeout_s: float = 5.0) -> list[float]:
    """Waits until the site and the activity are drawn together; the pin's centre. (The
    page's CSP refuses the eval that `wait_for_function` polls with.)"""
    for _ in range(int(timeout_s / 0.05)):
        seen = page.evaluate(_TOGETHER)
        if seen["together"]:
            return list(seen["pin"])
        page.wait_for_timeout(50)
    raise AssertionError(f"not drawn together: {seen}")


@pytest.mark.e2e
def test_a_site_by_the_antimeridian_is_drawn_with_the_activity_over_it(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """An exercise area across 180 degrees and a 200 m protected site in it at -179.95:
    the polygon was drawn unwrapped past 180 and the site at its literal longitude, a
    world away; a map looking at -180 lost the polygon. Both are drawn on the copy of the
    world the map is looking at, on either side of the antimeridian."""
    _, b = pair
    now = datetime.now(UTC)
    corners = [(-17, 179.9), (-17, -179.9), (-18, -179.9), (-18, 179.9)]
    area = {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in corners]}}
    _post(b, {"category": "exercise", "text": "Exercise over the dateline", "extents": [
        _extent(area, (0, 3000), "M", _at(now, -1), _at(now, 5)),
    ]})  # fmt: skip
    centre = {"lat": -17.5, "lng": -179.95}
    site = {"outline_circle": {"center": centre, "radius": {"value": 200, "units": "M"}}}
    extent = _extent(site, (-500, 20_000), "M", _at(now, -1), _at(now, 5))
    del extent["time_end"]
    _post(b, {"category": "protected_site", "text": "Clinic on the dateline", "extents": [extent]})
    with _notices_map(browser, b, visible=2) as (page, watched):
        expect(page.locator("[data-notice-map]")).to_have_attribute("data-pins", "1")
        x, y = _together(page)  # looking at 180 degrees

        # Drag the view east past 180: Leaflet then looks at the other copy, near -180.
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 300, y, steps=10)
        page.wait_for_timeout(200)  # held still: no inertia after the release
        page.mouse.up()
        moved_x, _ = _together(page)
        assert abs(moved_x - (x - 300)) < 20, (x, moved_x)
        page.locator("path.notice-pin").hover()
        expect(page.locator(".leaflet-tooltip")).to_contain_text("Clinic on the dateline")
    watched.check()


# Each pin's centre on screen and the map's box.
_PINS = """() => ({
  pins: [...document.querySelectorAll('path.notice-pin')].map((e) => {
    const r = e.getBoundingClientRect();
    return [(r.left + r.right) / 2, (r.top + r.bottom) / 2];
  }),
  map: document.querySelector('[data-notice-map]').getBoundingClientRect().toJSON(),
})"""
WORLD_PX_PER_DEGREE = 512 / 360  # at zoom 1, the whole-world view


def _settled_pins(page: Page) -> dict[str, Any]:
    """The pins once the view's moves are done: the same twice running."""
    seen = page.evaluate(_PINS)
    for _ in range(100):
        page.wait_for_timeout(50)
        again = page.evaluate(_PINS)
        if again == seen:
            return dict(seen)
        seen = again
    raise AssertionError(f"the pins kept moving: {seen}")


def _send(station: StationProcess, peer: str, doc: dict[str, Any]) -> str:
    with station.api() as api:
        r = api.post("/notices", json={"peer": peer, "notice": doc})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@pytest.mark.e2e
def test_a_route_across_the_antimeridian_is_drawn_in_one_piece_in_the_whole_world_view(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The tester's route from 178 to -176 degrees, 20 km wide in 16 volumes, sent with
    notices in Europe, and a site on it at -179.95 that conflicts with it. In a view of the
    whole world centred far from 180, each volume was moved to the copy of the world
    nearest the view's centre, which drew 6 of the route's pins at the world's left edge
    and 11 at its right, 508 px apart. They are drawn together, on opening and after."""
    a, b = pair
    now = datetime.now(UTC)
    for lat, lng in [(48.0, 9.0), (48.0, 10.0)]:
        _send(a, "moscow", square(lat, lng, _at(now, -1), _at(now, 5), text="In Europe"))
    route = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[178.0, -17.0], [-178.5, -16.0], [-176.0, -18.5]]},
        "properties": {
            "corridor_m": 20_000,
            "alt_lower_m": 0,
            "alt_upper_m": 3000,
            "time_start": _at(now, -1),
            "time_end": _at(now, 5),
        },
    }
    doc = {"category": "air_operation", "text": "Across the dateline", "extents": [], "routes": [route]}
    flight = _send(a, "moscow", doc)
    with b.api() as api:
        volumes = len(wait_for(lambda: api.get(f"/notices/{flight}").json().get("extents"), what="the route"))
    site = {
        "outline_circle": {"center": {"lat": -16.41, "lng": -179.95}, "radius": {"value": 200, "units": "M"}}
    }
    extent = _extent(site, (-500, 20_000), "M", _at(now, -1), _at(now, 5))
    del extent["time_end"]
    _post(b, {"category": "protected_site", "text": "Clinic on the route", "extents": [extent]})
    with b.api() as api:
        wait_for(lambda: api.get(f"/notices/{flight}").json()["conflicts"], what="the conflict")
    # A map a little wider than the world at zoom 1: it opens on the whole world.
    ctx = browser.new_context(viewport={"width": 600, "height": 900})
    page = ctx.new_page()
    watched = Watched(page, b)

    def apart() -> tuple[float, list[float]]:
        """How far apart the route's and the site's pins are (px), and where Europe's are."""
        seen = _settled_pins(page)
        assert len(seen["pins"]) == volumes + 3, seen
        ys = [y for _, y in seen["pins"]]
        north = (min(ys) + max(ys)) / 2  # Europe's pins are north of it, the Pacific's south
        europe = [x for x, y in seen["pins"] if y < north]
        pacific = [x for x, y in seen["pins"] if y > north]
        assert len(europe) == 2, seen
        return max(pacific) - min(pacific), europe

    try:
        _log_in(page, b)
        page.goto(b.url + "/notices")
        page.locator("[data-notice-any-time]").check()
        the_map = page.locator("[data-notice-map]")
        expect(the_map).to_have_attribute("data-visible", str(volumes + 3))
        expect(the_map).to_have_attribute("data-pins", str(volumes + 3))
        expect(page.get_by_role("button", name="Zoom out")).to_have_class(re.compile(r"\bleaflet-disabled\b"))
        spread, europe = apart()
        assert spread < 40, spread

        # Drag the whole world so that 1 degree east is at the map's centre, the route's
        # far side: the copy nearest the view differs along the route.
        box = page.evaluate(_PINS)["map"]
        centre_x, y = box["left"] + box["width"] / 2, box["top"] + 60
        one_east = sum(europe) / 2 - 8.5 * WORLD_PX_PER_DEGREE
        page.mouse.move(centre_x, y)
        page.mouse.down()
        page.mouse.move(centre_x + (centre_x - one_east), y, steps=10)
        page.wait_for_timeout(200)  # held still: no inertia after the release
        page.mouse.up()
        spread, europe = apart()
        assert abs(sum(europe) / 2 - 8.5 * WORLD_PX_PER_DEGREE - centre_x) < 3, (europe, centre_x)
        assert spread < 40, spread
        # The route's pins overlap at this zoom; the one on top answers the pointer.
        page.mouse.move(*page.evaluate(_PINS)["pins"][0])
        expect(page.locator(".leaflet-tooltip")).to_contain_text("Across the dateline")
    finally:
        ctx.close()
    watched.check()


# Geodesic edges ----------------------------------------------------------------------------

# Each drawn volume's outline as Leaflet wrote it into the SVG: its points, in pixels.
_OUTLINES = """() => [...document.querySelectorAll('path.notice-volume')].map((e) =>
  [...(e.getAttribute('d') || '').matchAll(/(-?[\\d.]+)[ ,](-?[\\d.]+)/g)].map((m) => [+m[1], +m[2]]))"""
MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)  # Leaflet's plane


def _mercator_y(lat: float) -> float:
    return float(MERCATOR.transform(0.0, lat)[1])


@pytest.mark.e2e
def test_a_long_edge_is_drawn_along_its_geodesic_and_a_ring_round_the_pole_draws(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """An exercise area from 70 to 73 degrees north, 10 degrees wide: the conflict check
    tests its edges as geodesics, and the south edge's bows 7.8 km north of the parallel at
    its middle, where Leaflet's straight line drew it. The map draws it bowed, by as many
    pixels as the geodesic's (pyproj's) in Web Mercator. Then a ring round the north pole
    comes in live and is drawn too, without an error (Web Mercator draws it on the map's
    top edge)."""
    _, b = pair
    now = datetime.now(UTC)
    south, north, west, east = 70.0, 73.0, 20.0, 30.0
    corners = [(south, west), (south, east), (north, east), (north, west)]
    area = {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in corners]}}
    _post(b, {"category": "exercise", "text": "Exercise in the Barents Sea", "extents": [
        _extent(area, (0, 3000), "M", _at(now, -1), _at(now, 5)),
    ]})  # fmt: skip
    with _notices_map(browser, b) as (page, watched):
        for _ in range(100):
            (points,) = page.evaluate(_OUTLINES)
            if len(points) > 4:
                break
            page.wait_for_timeout(50)
        assert len(points) > 4, points  # not the four corners joined by straight lines
        xs = [x for x, _ in points]
        left, right = min(xs), max(xs)
        south_west = max(y for x, y in points if x == left)  # y grows southwards
        north_west = min(y for x, y in points if x == left)
        middle = (left + right) / 2
        lower = [(x, y) for x, y in points if y > (south_west + north_west) / 2]
        _, south_middle = min(lower, key=lambda p: abs(p[0] - middle))
        ((_, bowed_to),) = WGS84.npts(west, south, east, south, 1)
        per_y = (south_west - north_west) / (_mercator_y(north) - _mercator_y(south))
        expected = (_mercator_y(bowed_to) - _mercator_y(south)) * per_y
        assert expected > 5, expected  # pixels: the bow shows at the zoom the map opens at
        assert abs((south_west - south_middle) - expected) < 2, (south_west, south_middle, expected)

        around = [(89.5, 0.0), (89.5, 90.0), (89.5, 180.0), (89.5, -90.0)]
        ring = {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in around]}}
        _post(b, {"category": "exercise", "text": "Exercise round the pole", "extents": [
            _extent(ring, (0, 3000), "M", _at(now, -1), _at(now, 5)),
        ]})  # fmt: skip
        expect(page.locator("[data-notice-map]")).to_have_attribute("data-visible", "2")
        expect(page.locator("path.notice-volume")).to_have_count(2)
    watched.check()


# The outline's path data as Leaflet wrote it, and the box it fills on screen.
_PATHS = """() => [...document.querySelectorAll('path.notice-volume')].map((e) =>
  ({d: e.getAttribute('d') || '', box: e.getBoundingClientRect().toJSON()}))"""


@pytest.mark.e2e
def test_a_large_circle_is_drawn_as_the_ellipsoid_measures_it(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """A 100 km exercise circle at 60 degrees north, which L.circle drew on a sphere (364 m
    too wide, 202 m too far north): the map draws the station's trace of it, a polygon and
    no arc, whose north and south extents on screen are the geodesic circle's, level with
    the top and bottom of a narrow area beside it from the circle's south point to its
    north point (pyproj's); and its tooltip still names it."""
    _, b = pair
    now = datetime.now(UTC)
    lat, lng, radius = 60.0, 20.0, 100_000.0
    _, north, _ = WGS84.fwd(lng, lat, 0.0, radius)
    _, south, _ = WGS84.fwd(lng, lat, 180.0, radius)
    circle = {
        "outline_circle": {"center": {"lat": lat, "lng": lng}, "radius": {"value": radius, "units": "M"}}
    }
    corners = [(south, 25.0), (south, 25.05), (north, 25.05), (north, 25.0)]  # edges too short to bow
    beside = {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in corners]}}
    _post(b, {"category": "exercise", "text": "Exercise in a circle", "extents": [
        _extent(circle, (0, 3000), "M", _at(now, -1), _at(now, 5)),
        _extent(beside, (0, 3000), "M", _at(now, -1), _at(now, 5)),
    ]})  # fmt: skip
    with _notices_map(browser, b, visible=2) as (page, watched):
        paths = page.evaluate(_PATHS)
        assert len(paths) == 2, paths
        drawn, area = sorted(paths, key=lambda p: -len(p["d"]))
        assert "a" not in drawn["d"].lower(), drawn["d"][:200]  # L.circle writes arcs (a rx,ry ...)
        assert drawn["box"]["height"] > 300, drawn["box"]  # pixels: the map opens on it
        assert abs(drawn["box"]["top"] - area["box"]["top"]) <= 1.0, (drawn["box"], area["box"])
        assert abs(drawn["box"]["bottom"] - area["box"]["bottom"]) <= 1.0, (drawn["box"], area["box"])

        box = drawn["box"]
        page.mouse.move(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
        # At the centre the circle's pin may show its own tooltip beside the outline's.
        expect(page.locator(".leaflet-tooltip", has_text="Exercise in a circle").first).to_be_visible()
    watched.check()


@pytest.mark.e2e
def test_a_ring_round_the_pole_beyond_the_map_s_edge_has_a_pin_on_the_edge(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """A ring round the north pole at 88 degrees lies wholly beyond Web Mercator's 85.05:
    Leaflet drew it as a line along the map's top edge, with no area and no pin, so an
    officer could neither see it nor hover it. It gets a pin on the edge, in the map's view,
    whose tooltip says what it is and that it lies beyond the edge; its outline is a band."""
    _, b = pair
    now = datetime.now(UTC)
    around = [(88.0, 0.0), (88.0, 90.0), (88.0, 180.0), (88.0, -90.0)]
    ring = {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in around]}}
    _post(b, {"category": "exercise", "text": "Exercise round the pole", "extents": [
        _extent(ring, (0, 3000), "M", _at(now, -1), _at(now, 5)),
    ]})  # fmt: skip
    with _notices_map(browser, b) as (page, watched):
        expect(page.locator("[data-notice-map]")).to_have_attribute("data-pins", "1")
        pin = page.locator("path.notice-pin.notice-pin-beyond")
        expect(pin).to_have_count(1)
        seen = _settled_pins(page)
        ((x, y),) = seen["pins"]
        box = seen["map"]
        assert box["left"] < x < box["right"], seen
        assert box["top"] < y < box["bottom"], seen
        expect(page.locator("path.notice-volume.notice-beyond")).to_have_attribute("stroke-width", "10")
        pin.hover()
        tooltip = page.locator(".leaflet-tooltip")
        expect(tooltip).to_contain_text("Exercise round the pole")
        expect(tooltip).to_contain_text("north of 85°N, beyond the map's edge")
    watched.check()
