// OpenLine console: the notices map. Leaflet (vendored) with no tile layer: the Natural
// Earth country outlines shipped in the package, the volumes of the active notices, and a
// time slider that shows the volumes active at the chosen time. Data comes from the page's
// JSON block (#notice-data), which is never executed, so the CSP needs no exception.
//
// Live: the history (#notices-live, with the JSON block in it) is re-fetched by htmx when
// the station says notices changed; the map then redraws from the new block, keeping the
// slider, the view and anything drawn. For officers, Leaflet-Geoman (vendored) draws a
// new notice's polygons and circles, which fill the form's notice JSON. A click on the
// map fills the place in the form "Which notices covered a place?".
(function () {
  "use strict";

  var ACTIVE = { sent: true, delivered: true, acknowledged: true };
  var PROTECTED = { protected_site: true, protected_movement: true };
  var FEET = 0.3048;
  var COLOURS = { activity: "#64b5f6", protected: "#34c759", conflict: "#ff3b30", draft: "#ffd60a" };
  // A volume drawn narrower than this (a 300 m hospital is 3 px across where a country
  // border stays in view) also gets a pin of fixed size at its centre, until zoomed in.
  var PIN_BELOW_PX = 10;
  // Web Mercator ends at 85.05 degrees, and Leaflet draws anything beyond on the map's edge:
  // a volume wholly beyond it (a ring round the pole at 88) is drawn as a band this wide
  // along the edge, and a volume mostly beyond it gets its pin there, whatever the zoom
  // (notice_view.beyond_edge).
  var BAND_PX = 10;

  var el = document.querySelector("[data-notice-map]");
  if (!el || !window.L) return;

  var map = L.map(el, { worldCopyJump: true, minZoom: 1, maxZoom: 16 });
  map.attributionControl.addAttribution("Country outlines: Natural Earth");
  map.setView([30, 20], 2);

  fetch("/static/vendor/countries-110m.json", { credentials: "same-origin" })
    .then(function (r) {
      if (!r.ok) throw new Error("country outlines: HTTP " + r.status);
      return r.json();
    })
    .then(function (topology) {
      var countries = topojson.feature(topology, topology.objects.countries);
      countries.features.forEach(acrossTheAntimeridian);
      L.geoJSON(countries, {
        interactive: false,
        pmIgnore: true,  // not for the drawing tools to edit
        style: function (f) {  // each named by its ISO 3166 number, as Natural Earth has it
          var name = "country" + (f.id ? " country-" + f.id : "");
          return { className: name, color: "#5b6b7c", weight: 1, fillColor: "#26313d", fillOpacity: 1 };
        },
      }).addTo(map).bringToBack();
      el.setAttribute("data-countries", String(countries.features.length));
    })
    .catch(function (err) { console.warn(err.message); });

  // Natural Earth's outlines are drawn on a sphere, where Russia's and Fiji's rings run
  // on past 180 degrees as -179. Leaflet draws on a plane: such an edge became a band
  // across the whole world. Each ring is unwrapped as a notice's polygon is (below); a
  // ring round a pole (Antarctica) cannot be, and stays as it is.
  function acrossTheAntimeridian(feature) {
    var g = feature.geometry;
    if (!g) return;
    var polygons = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    polygons.forEach(function (rings) {
      rings.forEach(function (ring, i) {
        var out = [], previous = null;
        ring.forEach(function (p) {
          var lng = p[0];
          if (previous !== null) {
            while (lng - previous > 180) lng -= 360;
            while (lng - previous < -180) lng += 360;
          }
          out.push([lng, p[1]]);
          previous = lng;
        });
        if (Math.abs(out[out.length - 1][0] - out[0][0]) < 1e-6) rings[i] = out;
      });
    });
  }

  // Consecutive vertices are joined the short way round (docs/notices.md), so a polygon
  // that crosses the antimeridian is drawn with longitudes unwrapped past +-180.
  function unwrap(vertices) {
    var out = [], previous = null;
    vertices.forEach(function (v) {
      var lng = v.lng;
      if (previous !== null) {
        while (lng - previous > 180) lng -= 360;
        while (lng - previous < -180) lng += 360;
      }
      out.push([v.lat, lng]);
      previous = lng;
    });
    return out;
  }

  function metres(value) {
    return value.units === "FT" ? value.value * FEET : value.value;
  }

  function describe(notice, n, extent, conflict, beyond) {
    var box = document.createElement("div");
    var lines = [
      notice.category + " · " + (notice.direction === "out" ? "ours to " : "from ") + notice.peer +
        " · " + notice.state,
      "volume " + n + ": " + extent.time_start.value + " – " + (extent.time_end ? extent.time_end.value : "open"),
      metres(extent.volume.altitude_lower) + " – " + metres(extent.volume.altitude_upper) + " m",
    ];
    if (beyond) {
      lines.push((beyond.wholly ? "" : "mostly ") + (beyond.side === "north" ? "north of 85°N" : "south of 85°S") +
        ", beyond the map's edge: shown along it");
    }
    if (conflict) lines.push("IN CONFLICT");
    if (notice.removal_pending) lines.push("removal pending");
    lines.forEach(function (text) {
      var p = document.createElement("div");
      p.textContent = text;
      box.appendChild(p);
    });
    if (notice.text) {  // the peer's text: in its own direction, with its line breaks
      var said = document.createElement("div");
      said.className = "said";
      said.dir = "auto";
      said.textContent = visible(notice.text);  // never parsed as HTML
      box.appendChild(said);
    }
    return box;
  }

  // Peer text as the pages (and the CLI) show it: control characters and the
  // bidirectional embeddings, overrides and isolates spelled out (\u202e), so that what
  // is shown is what was sent (openline.console.pages._shown).
  var SHOWN = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
  function visible(text) {
    return text.replace(/\r\n/g, "\n").replace(SHOWN, function (c) {
      var code = c.charCodeAt(0);
      return code < 0x100 ? "\\x" + ("0" + code.toString(16)).slice(-2) : "\\u" + code.toString(16);
    });
  }

  // A Leaflet layer for a Volume4D outline, the bounds it covers, and where its pin goes.
  // A polygon's edges are geodesics, which Leaflet's straight lines are not, and a circle
  // is measured on the ellipsoid, which L.circle's sphere is not (a 100 km circle at 60
  // degrees, 364 m too wide): `traced` is the outline as the station traced it
  // (notice_view.drawn_rings, drawn_circles: unwrapped already, and run on to the pole for
  // a ring round one); without it, a polygon's vertices as they are, or L.circle.
  function outline(volume, style, traced) {
    var c = volume.outline_circle;
    var centre = c && L.latLng(c.center.lat, c.center.lng);
    if (c && !traced) {
      var radius = metres(c.radius);
      var options = L.extend({}, style, { radius: radius });
      var bounds = centre.toBounds(2 * radius);  // a circle's own bounds need a map
      return { layer: L.circle(centre, options), bounds: bounds, at: centre };
    }
    var layer = L.polygon(traced || unwrap(volume.outline_polygon.vertices), style);
    return { layer: layer, bounds: layer.getBounds(), at: centre || layer.getBounds().getCenter() };
  }

  // Leaflet draws one copy of the world, and a polygon across 180 degrees is unwrapped
  // past it: each volume and its pin go on the copy nearest the view (shifted by whole
  // turns), so that a site at -179.95 shows on the activity over it, drawn up to 180.1,
  // whichever side of the antimeridian the map is looking at.
  function translate(latlngs, degrees) {
    return latlngs.map(function (p) {
      return Array.isArray(p) ? translate(p, degrees) : L.latLng(p.lat, p.lng + degrees);
    });
  }
  function shiftLayer(layer, degrees) {
    if (layer.getRadius) {  // a circle, or a pin
      var c = layer.getLatLng();
      layer.setLatLng([c.lat, c.lng + degrees]);
    } else {
      layer.setLatLngs(translate(layer.getLatLngs(), degrees));
    }
  }
  function shiftTo(v, shift) {
    var by = shift - v.shift;
    if (!by) return;
    shiftLayer(v.layer, by);
    shiftLayer(v.pin, by);
    var sw = v.bounds.getSouthWest(), ne = v.bounds.getNorthEast();
    v.bounds = L.latLngBounds([sw.lat, sw.lng + by], [ne.lat, ne.lng + by]);
    v.shift = shift;
  }
  // Each volume's home: the copy that keeps the volumes closest together, the circle of
  // longitudes cut at the widest gap between them; and the middle of them all, so placed.
  var homeLng = 0;
  function gather() {
    var lngs = volumes.map(function (v) { return L.latLng(0, v.lng).wrap().lng; });
    lngs.sort(function (a, b) { return a - b; });
    var west = lngs[0], gap = lngs[0] + 360 - lngs[lngs.length - 1];
    for (var i = 1; i < lngs.length; i++) {
      if (lngs[i] - lngs[i - 1] > gap) { gap = lngs[i] - lngs[i - 1]; west = lngs[i]; }
    }
    volumes.forEach(function (v) { v.home = -360 * Math.floor((v.lng - west + 1e-9) / 360); });
    homeLng = west + (360 - gap) / 2;
  }
  // When the map is wider than the world, the copy nearest its centre changes half a turn
  // away, in view: a route across it would be drawn in two pieces at the world's two edges.
  // Then the volumes keep their homes and move as one.
  function place() {
    var centre = map.getCenter().lng;
    if (map.getSize().x >= map.getPixelWorldBounds().getSize().x) {
      var turns = 360 * Math.round((centre - homeLng) / 360);
      volumes.forEach(function (v) { shiftTo(v, v.home + turns); });
    } else {
      volumes.forEach(function (v) { shiftTo(v, 360 * Math.round((centre - v.lng) / 360)); });
    }
  }

  var now = Date.now();
  var volumes = [];
  var fitted = false;
  var loaded = null;  // the JSON block's text last drawn
  var shown = L.featureGroup().addTo(map);
  var slider = document.querySelector("[data-notice-time]");
  var label = document.querySelector("[data-notice-time-label]");
  var anyTime = document.querySelector("[data-notice-any-time]");

  function load(data) {
    shown.clearLayers();  // the volumes are made anew
    now = Date.parse(data.now);
    var active = {};
    data.notices.forEach(function (notice) { if (ACTIVE[notice.state]) active[notice.id] = true; });
    volumes = [];
    data.notices.forEach(function (notice) {
      if (!active[notice.id]) return;
      notice.extents.forEach(function (extent, i) {
        var n = i + 1;
        var conflict = notice.conflicts.some(function (c) {
          return c.volume === n && active[c.other_notice];
        });
        var kind = conflict ? "conflict" : PROTECTED[notice.category] ? "protected" : "activity";
        var traced = notice.drawn_outlines && notice.drawn_outlines[i];
        var beyond = notice.beyond_edge && notice.beyond_edge[i];
        var flat = beyond && beyond.wholly;  // a line along the edge: drawn as a band
        var drawn = outline(extent.volume, {
          className: "notice-volume notice-" + kind + (beyond ? " notice-beyond" : ""),
          color: COLOURS[kind],
          weight: flat ? BAND_PX : conflict ? 3 : 2,
          lineCap: flat ? "butt" : "round",
          fillOpacity: 0.25,
          dashArray: kind === "protected" ? "6 4" : null,
          pmIgnore: true,
        }, traced);
        drawn.layer.bindTooltip(describe(notice, n, extent, conflict, beyond), { sticky: true });
        var pin = L.circleMarker(beyond ? L.latLng(beyond.pin[0], beyond.pin[1]) : drawn.at, {
          className: "notice-pin notice-pin-" + kind + (beyond ? " notice-pin-beyond" : ""),
          color: COLOURS[kind],
          radius: 6,
          weight: 2,
          fillOpacity: 0.8,
          pmIgnore: true,
        });
        pin.bindTooltip(describe(notice, n, extent, conflict, beyond), { sticky: true });
        volumes.push({
          layer: drawn.layer,
          pin: pin,
          beyond: !!beyond,
          bounds: drawn.bounds,
          lng: drawn.bounds.getCenter().lng,  // where it is drawn unshifted
          shift: 0,
          start: Date.parse(extent.time_start.value),
          end: extent.time_end ? Date.parse(extent.time_end.value) : Infinity,
        });
      });
    });
    if (volumes.length) gather();
    if (!fitted && volumes.length) {  // later refreshes keep the officer's view
      var bounds = L.latLngBounds([]);
      volumes.forEach(function (v) {
        shiftTo(v, v.home);
        bounds.extend(v.bounds);
      });
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: 9 });  // a country border or two stays in view
      fitted = true;
    }
    place();
    update();
  }

  function update() {
    var at = now + Number(slider.value) * 60000;
    var all = anyTime && anyTime.checked;
    slider.disabled = all;
    label.textContent = all ? "all times" : new Date(at).toISOString().slice(0, 16).replace("T", " ") + "Z";
    // Only what changes is taken off or put on: with hundreds of sites, redrawing every
    // outline at each step of the slider made it lag.
    var pins = [], keep = {}, added = false;
    var visible = volumes.filter(function (v) { return all || (v.start <= at && at <= v.end); });
    visible.forEach(function (v) {
      keep[L.stamp(v.layer)] = true;
      if (v.beyond || tiny(v.bounds)) { pins.push(v.pin); keep[L.stamp(v.pin)] = true; }
    });
    shown.eachLayer(function (layer) { if (!keep[L.stamp(layer)]) shown.removeLayer(layer); });
    visible.forEach(function (v) {
      if (!shown.hasLayer(v.layer)) { shown.addLayer(v.layer); added = true; }
    });
    pins.forEach(function (pin) {  // above every outline: a site inside an activity
      if (!shown.hasLayer(pin)) shown.addLayer(pin);
      else if (added) pin.bringToFront();
    });
    var count = visible.length;
    el.setAttribute("data-visible", String(count));
    el.setAttribute("data-pins", String(pins.length));
  }

  function tiny(bounds) {
    var a = map.latLngToLayerPoint(bounds.getNorthWest());
    var b = map.latLngToLayerPoint(bounds.getSouthEast());
    return Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y)) < PIN_BELOW_PX;
  }

  function reload() {
    var source = document.getElementById("notice-data");
    if (!source || source.textContent === loaded) return;
    loaded = source.textContent;
    load(JSON.parse(loaded));
    el.setAttribute("data-loads", String(Number(el.getAttribute("data-loads") || 0) + 1));
  }

  slider.addEventListener("input", update);
  map.on("zoomend", update);  // pins come and go with the zoom
  map.on("moveend", place);
  if (anyTime) anyTime.addEventListener("change", update);
  reload();

  // Live updates ------------------------------------------------------------------------

  // The history is re-fetched only when notices changed (or the stream has just connected:
  // whatever changed meanwhile), and not while an officer is typing a reason. A change
  // announced while a re-fetch is on its way is fetched after it: console.js then triggers
  // the region itself, with no list of what changed, and that trigger always fetches
  // (skipping it left the page showing the state before the last change).
  var pending = false;
  function isLive(elt) { return !!elt && elt.id === "notices-live"; }
  function busy(live) {  // a reason being written: its form is open, or has the focus
    var focus = document.activeElement;
    if (focus && live.contains(focus) && /^(INPUT|TEXTAREA|SELECT)$/.test(focus.tagName)) return true;
    return live.querySelector("details[open]") !== null;
  }
  document.addEventListener("htmx:confirm", function (ev) {
    var live = ev.target;
    if (!isLive(live)) return;
    var trigger = ev.detail.triggeringEvent;
    var data = trigger && trigger.type === "sse:change" && trigger.detail && trigger.detail.data;
    if (data) {  // announced by the station: skip it unless notices are among what changed
      var changed = null;
      try { changed = JSON.parse(data).changed; } catch (e) { changed = null; }
      if (Array.isArray(changed) && changed.indexOf("notices") < 0 && changed.indexOf("connected") < 0) {
        ev.preventDefault();
        return;
      }
    }
    if (busy(live)) {
      ev.preventDefault();
      pending = true;
    }
  });
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var live = ev.detail.target;
    if (!isLive(live)) return;
    // A refresh already on its way when the officer opened a form is held back too.
    if (ev.detail.shouldSwap && busy(live)) {
      ev.detail.shouldSwap = false;
      pending = true;
    }
  });
  setInterval(function () {
    var live = document.getElementById("notices-live");
    if (pending && live && !busy(live) && window.htmx) {
      pending = false;
      htmx.trigger(live, "refresh");
    }
  }, 1000);
  document.addEventListener("htmx:afterSettle", reload);

  // Which notices covered a place: a click on the map, unless a drawing tool is on, puts
  // the place into the form below the map and marks it.
  var placeForm = document.querySelector("[data-place-form]");
  var placeMark = null;
  if (placeForm) {
    map.on("click", function (ev) {
      if (map.pm && (map.pm.globalDrawModeEnabled() || map.pm.globalEditModeEnabled()
                     || map.pm.globalRemovalModeEnabled())) return;
      var at = ev.latlng.wrap();
      placeForm.querySelector("[name=at]").value = at.lat.toFixed(6) + "," + at.lng.toFixed(6);
      if (placeMark) placeMark.remove();
      placeMark = L.circleMarker(ev.latlng, {  // where it was clicked, on that copy of the world
        className: "place-mark", radius: 6, color: "#ffffff", weight: 2, fillColor: "#ff9f0a", fillOpacity: 1,
        pmIgnore: true, interactive: false,
      }).addTo(map);
      el.setAttribute("data-place-picked", placeForm.querySelector("[name=at]").value);
    });
  }

  // Drawing a notice ----------------------------------------------------------------------

  var form = document.querySelector("[data-notice-form]");
  if (!form || !map.pm) return;
  var json = form.querySelector("[data-notice-json]");
  var counter = form.querySelector("[data-draft-count]");
  var field = function (name) { return form.querySelector("[data-field='" + name + "']"); };
  var drafts = L.featureGroup().addTo(map);
  var written = null;  // the JSON this script last wrote; anything else was pasted
  var DRAFT = { className: "notice-draft", color: COLOURS.draft, weight: 2, fillOpacity: 0.2 };

  map.pm.setGlobalOptions({
    layerGroup: drafts,
    allowSelfIntersection: false,  // the station refuses a self-intersecting polygon anyway
    snappable: false,
    pathOptions: DRAFT,
    templineStyle: { color: COLOURS.draft },
    hintlineStyle: { color: COLOURS.draft, dashArray: [5, 5] },
  });
  map.pm.addControls({
    position: "topleft",
    drawMarker: false,
    drawCircleMarker: false,
    drawPolyline: false,
    drawText: false,
    cutPolygon: false,
    rotateMode: false,
  });
  // Geoman titles each tool's container, not the link a keyboard or a screen reader
  // reaches: each link gets the name its container shows on hover.
  el.querySelectorAll(".leaflet-pm-toolbar .button-container").forEach(function (box) {
    var link = box.querySelector("a");
    if (link && box.title && !link.getAttribute("aria-label")) link.setAttribute("aria-label", box.title);
  });

  function round(x, digits) {
    var f = Math.pow(10, digits);
    return Math.round(x * f) / f;
  }
  function point(latlng) {
    var p = latlng.wrap();  // a shape drawn on a world copy is still on Earth
    return { lat: round(p.lat, 7), lng: round(p.lng, 7) };  // 1 cm
  }
  function number(text) {  // anything else goes to the station as typed, which names it
    var t = String(text).trim();
    return t !== "" && isFinite(Number(t)) ? Number(t) : t;
  }
  // A time as typed: "2026-11-27 06:00" is read as UTC and written as RFC 3339
  // ("2026-11-27T06:00:00Z"); anything else goes as typed, for the station to name.
  var TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}:\d{2})?$/i;
  function utc(text) {
    var t = text.trim(), m = TIME.exec(t);
    if (!m) return t;
    return m[1] + "T" + m[2] + (m[3] || ":00") + (m[4] ? m[4].toUpperCase() : "Z");
  }
  function altitude(name) {
    return { value: number(field(name).value), reference: "W84", units: field("alt_units").value === "ft" ? "FT" : "M" };
  }

  function extent(layer) {
    var volume = {};
    if (layer instanceof L.Circle) {
      volume.outline_circle = {
        center: point(layer.getLatLng()),
        radius: { value: round(layer.getRadius(), 2), units: "M" },
      };
    } else {
      volume.outline_polygon = { vertices: layer.getLatLngs()[0].map(point) };
    }
    var own = ownBands && (layer.ownExtent || ownBands.first);
    if (own) {  // a volume of a notice whose volumes keep their own bands and windows
      volume.altitude_lower = own.volume.altitude_lower;
      volume.altitude_upper = own.volume.altitude_upper;
      var kept = { volume: volume, time_start: own.time_start };
      if (own.time_end) kept.time_end = own.time_end;
      return kept;
    }
    volume.altitude_lower = altitude("alt_lower");
    volume.altitude_upper = altitude("alt_upper");
    var out = { volume: volume, time_start: { value: utc(field("time_start").value), format: "RFC3339" } };
    var end = field("time_end").value.trim();
    if (end) out.time_end = { value: utc(end), format: "RFC3339" };
    return out;
  }

  function drawn() {  // what the drawing tools hold now, in the order drawn
    return drafts.getLayers().filter(function (layer) { return map.hasLayer(layer); });
  }

  function count(shapes) {
    counter.textContent = shapes.length ? shapes.length + " drawn" : "none drawn";
    form.setAttribute("data-drafts", String(shapes.length));
  }

  function compose() {
    var shapes = drawn();
    count(shapes);
    if (!shapes.length) {
      if (ownBands) oneBand();  // no volume left with a band of its own
      if (json.value === written) json.value = "";
      written = null;
      asIs();
      return;
    }
    var doc = { category: field("category").value, text: field("text").value, extents: shapes.map(extent) };
    json.value = written = JSON.stringify(doc, null, 2);
    asIs();
  }

  // A notice in the box that this script did not write (pasted, or one the form cannot
  // show) is sent as it stands, and the page says so: the fields do not change it.
  var asIsNote = form.querySelector("[data-notice-as-is]");
  function asIs() {
    asIsNote.hidden = !json.value.trim() || json.value === written;
  }

  function watch(layer) {
    layer.on("pm:edit pm:dragend", compose);
  }

  map.on("pm:create", function (ev) { watch(ev.layer); compose(); });
  map.on("pm:remove", function (ev) { drafts.removeLayer(ev.layer); compose(); });

  // Pasted coordinates: one point per line, "48.137, 11.575", "48.137 11.575" or
  // "48.137N 11.575E". Read here into a shape like a drawn one (which the station checks
  // as it checks any), or refused with the line that is wrong and nothing added.
  var COORD = /^([+-]?\d+(?:\.\d+)?)\s*°?\s*([NS])?\s*[,;\s]\s*([+-]?\d+(?:\.\d+)?)\s*°?\s*([EW])?$/i;
  function coordinate(raw, n) {
    var m = COORD.exec(raw.trim());
    var where = "line " + n + ": ";
    if (!m) throw new Error(where + "expected a latitude and a longitude, got \u201c" + raw.trim() + "\u201d");
    if ((m[2] && /^[+-]/.test(m[1])) || (m[4] && /^[+-]/.test(m[3]))) {
      throw new Error(where + "a sign or a hemisphere letter, not both");
    }
    var lat = Number(m[1]) * (/s/i.test(m[2] || "") ? -1 : 1);
    var lng = Number(m[3]) * (/w/i.test(m[4] || "") ? -1 : 1);
    if (!(lat >= -90 && lat <= 90)) throw new Error(where + "latitude " + lat + " is outside -90 to 90");
    if (!(lng >= -180 && lng <= 180)) throw new Error(where + "longitude " + lng + " is outside -180 to 180");
    return { lat: lat, lng: lng };
  }
  function pasted(text, radiusText) {
    var points = [];
    text.split(/\r?\n/).forEach(function (raw, i) {
      if (raw.trim()) points.push(coordinate(raw, i + 1));
    });
    var first = points[0], last = points[points.length - 1];
    // A ring closed on its first point (as many tools write one): that point is dropped,
    // and what is left must still make a shape (docs/notices.md).
    if (points.length > 1 && last.lat === first.lat && last.lng === first.lng) points.pop();
    var style = L.extend({ pmIgnore: false }, DRAFT);
    if (points.length === 1) {
      var radius = Number(radiusText);
      if (!radiusText || !(radius > 0)) throw new Error("one point makes a circle: give its radius in metres");
      return outline({ outline_circle: { center: first, radius: { value: radius, units: "M" } } }, style);
    }
    if (radiusText) throw new Error("a radius is for a circle, around one point; these are " + points.length + " points");
    if (points.length >= 3) return outline({ outline_polygon: { vertices: points } }, style);
    throw new Error(points.length
      ? "two points make no shape: three or more make a polygon, one and a radius a circle"
      : "no coordinates: one point per line");
  }
  var coords = form.querySelector("[data-coords]");
  function addPasted() {
    var error = coords.querySelector("[data-coords-error]");
    var made;
    try {
      made = pasted(coords.querySelector("[data-coords-text]").value, coords.querySelector("[data-coords-radius]").value.trim());
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    drafts.addLayer(made.layer);
    watch(made.layer);
    compose();
    map.fitBounds(made.bounds, { padding: [30, 30], maxZoom: 12 });
    fitted = true;
  }
  if (coords) {
    coords.querySelector("[data-coords-add]").addEventListener("click", addPasted);
    coords.querySelector("[data-coords-radius]").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); addPasted(); }  // not the notice's submit
    });
  }
  Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (input) {
    var changed = function () { if (drawn().length) compose(); };
    input.addEventListener("input", changed);
    input.addEventListener("change", changed);
  });

  // A notice already in the form (the station refused it, or it is being amended or
  // edited) comes back onto the map as shapes to edit, and its category and text into the
  // form. When one band and one window fit all its volumes, they go into the form's
  // fields, in feet if the notice says feet or its band is a whole number of feet (the
  // station keeps metres: 2000 ft is 609.6 m). Otherwise each shape keeps its own band and
  // window, and the fields, which cannot say two, are shut until the planner asks for one
  // band and window for all. A notice the form cannot show at all (a route, a category or
  // unit it does not have, not JSON) stays as JSON, sent as it stands, and the page says
  // so. Either way the box is kept as it is until the officer changes a shape, or a field
  // while there are shapes; the box is what is sent.
  var ownNote = form.querySelector("[data-own-bands]");
  var BAND = ["alt_lower", "alt_upper", "alt_units", "time_start", "time_end"];
  var ownBands = null;  // {first: the notice's first extent} while each volume keeps its own

  function wholeFeet(metres) {
    return typeof metres === "number" && Math.round(metres / FEET) * FEET === metres;
  }
  function typedBand(e) {  // the band as the planner typed it: [lower, upper, units]
    var lower = e.volume.altitude_lower, upper = e.volume.altitude_upper;
    if (lower.units === "M" && wholeFeet(lower.value) && wholeFeet(upper.value)
        && !(Number.isInteger(lower.value) && Number.isInteger(upper.value))) {
      return [Math.round(lower.value / FEET), Math.round(upper.value / FEET), "ft"];
    }
    return [lower.value, upper.value, lower.units === "FT" ? "ft" : "m"];
  }
  function fillBand(e) {
    var band = typedBand(e);
    field("alt_lower").value = band[0];
    field("alt_upper").value = band[1];
    field("alt_units").value = band[2];
    field("time_start").value = e.time_start.value;
    field("time_end").value = e.time_end ? e.time_end.value : "";
  }
  function shutBand(shut) {
    BAND.forEach(function (name) {
      var input = field(name);
      if (shut === input.disabled) return;
      input.disabled = shut;
      var text = input.tagName === "INPUT";
      if (shut) {  // what it said is kept for when the fields are opened again
        input.dataset.kept = input.value;
        if (text) {
          input.dataset.placeholder = input.placeholder;
          input.value = "";
          input.placeholder = "each volume its own";
        }
      } else {
        input.value = input.dataset.kept;
        if (text) input.placeholder = input.dataset.placeholder;
      }
    });
    ownNote.hidden = !shut;
  }
  function oneBand() {  // the planner's choice: volume 1's band and window for every volume
    var first = ownBands.first;
    ownBands = null;
    shutBand(false);
    fillBand(first);
    drafts.getLayers().forEach(function (layer) { layer.unbindTooltip(); });
  }
  form.querySelector("[data-one-band]").addEventListener("click", function () {
    if (!ownBands) return;
    oneBand();
    compose();
  });

  function bandText(e, n) {
    var lower = e.volume.altitude_lower, upper = e.volume.altitude_upper;
    return "volume " + n + ": " + metres(lower) + " – " + metres(upper) + " m, " +
      e.time_start.value + " – " + (e.time_end ? e.time_end.value : "open");
  }

  function adopt(text) {
    var doc, layers, uniform;
    try {
      doc = JSON.parse(text);
      var key = function (e) {
        return JSON.stringify([e.volume.altitude_lower, e.volume.altitude_upper, e.time_start, e.time_end || null]);
      };
      var categories = Array.prototype.map.call(field("category").options, function (o) { return o.value; });
      if (doc.routes || categories.indexOf(doc.category) < 0 || typeof doc.text !== "string") return false;
      if (!doc.extents.length) return false;
      var fits = doc.extents.every(function (e) {
        var units = e.volume.altitude_lower.units;
        return (units === "M" || units === "FT") && e.volume.altitude_upper.units === units
          && typeof e.time_start.value === "string";
      });
      if (!fits) return false;
      uniform = doc.extents.every(function (e) { return key(e) === key(doc.extents[0]); });
      layers = doc.extents.map(function (e) { return outline(e.volume, L.extend({ pmIgnore: false }, DRAFT)); });
    } catch (e) {
      return false;  // not JSON, or not a notice the form could have written
    }
    field("category").value = doc.category;
    field("text").value = doc.text;
    if (uniform) {
      ownBands = null;
      shutBand(false);
      fillBand(doc.extents[0]);
    } else {
      ownBands = { first: doc.extents[0] };
      shutBand(true);
      form.querySelector("[data-own-count]").textContent = String(doc.extents.length);
    }
    var bounds = L.latLngBounds([]);
    layers.forEach(function (made, i) {
      if (!uniform) {
        made.layer.ownExtent = doc.extents[i];
        made.layer.bindTooltip(bandText(doc.extents[i], i + 1), { sticky: true });
      }
      drafts.addLayer(made.layer);
      watch(made.layer);
      bounds.extend(made.bounds);
    });
    map.fitBounds(bounds, { padding: [30, 30], maxZoom: 9 });
    fitted = true;
    written = text;
    count(drawn());
    return true;
  }

  // The box edited by hand: the map and the fields follow it, as they do a pasted notice.
  json.addEventListener("input", asIs);
  json.addEventListener("change", function () {
    if (json.value === written) return;
    drafts.clearLayers();
    if (ownBands) {
      ownBands = null;
      shutBand(false);
    }
    if (!adopt(json.value)) {
      written = null;
      count(drawn());
    }
    asIs();
  });
  if (json.value.trim()) adopt(json.value);
  asIs();
})();
