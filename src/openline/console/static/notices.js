// OpenLine console: the notices map. Leaflet (vendored) with no tile layer: the Natural
// Earth country outlines shipped in the package, the volumes of the active notices, and a
// time slider that shows the volumes active at the chosen time. Data comes from the page's
// JSON block (#notice-data), which is never executed, so the CSP needs no exception.
(function () {
  "use strict";

  var ACTIVE = { sent: true, delivered: true, acknowledged: true };
  var PROTECTED = { protected_site: true, protected_movement: true };
  var FEET = 0.3048;
  var COLOURS = { activity: "#64b5f6", protected: "#34c759", conflict: "#ff3b30" };

  var el = document.querySelector("[data-notice-map]");
  var source = document.getElementById("notice-data");
  if (!el || !source || !window.L) return;
  var data = JSON.parse(source.textContent);
  var now = Date.parse(data.now);

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
      L.geoJSON(countries, {
        interactive: false,
        style: { className: "country", color: "#5b6b7c", weight: 1, fillColor: "#26313d", fillOpacity: 1 },
      }).addTo(map).bringToBack();
      el.setAttribute("data-countries", String(countries.features.length));
    })
    .catch(function (err) { console.warn(err.message); });

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

  function describe(notice, n, extent, conflict) {
    var box = document.createElement("div");
    var lines = [
      notice.category + " · " + (notice.direction === "out" ? "ours to " : "from ") + notice.peer +
        " · " + notice.state,
      "volume " + n + ": " + extent.time_start.value + " – " + (extent.time_end ? extent.time_end.value : "open"),
      metres(extent.volume.altitude_lower) + " – " + metres(extent.volume.altitude_upper) + " m",
    ];
    if (conflict) lines.push("IN CONFLICT");
    if (notice.text) lines.push(notice.text);
    lines.forEach(function (text) {
      var p = document.createElement("div");
      p.textContent = text;  // peer text is never parsed as HTML
      box.appendChild(p);
    });
    return box;
  }

  var active = {};
  data.notices.forEach(function (notice) { if (ACTIVE[notice.state]) active[notice.id] = true; });

  var volumes = [];
  data.notices.forEach(function (notice) {
    if (!active[notice.id]) return;
    notice.extents.forEach(function (extent, i) {
      var n = i + 1;
      var conflict = notice.conflicts.some(function (c) {
        return c.volume === n && active[c.other_notice];
      });
      var kind = conflict ? "conflict" : PROTECTED[notice.category] ? "protected" : "activity";
      var style = {
        className: "notice-volume notice-" + kind,
        color: COLOURS[kind],
        weight: conflict ? 3 : 2,
        fillOpacity: 0.25,
        dashArray: kind === "protected" ? "6 4" : null,
      };
      var v = extent.volume, layer, bounds;
      if (v.outline_circle) {
        style.radius = metres(v.outline_circle.radius);
        var centre = L.latLng(v.outline_circle.center.lat, v.outline_circle.center.lng);
        layer = L.circle(centre, style);
        bounds = centre.toBounds(2 * style.radius);  // a circle's own bounds need a map
      } else {
        layer = L.polygon(unwrap(v.outline_polygon.vertices), style);
        bounds = layer.getBounds();
      }
      layer.bindTooltip(describe(notice, n, extent, conflict), { sticky: true });
      volumes.push({
        layer: layer,
        bounds: bounds,
        start: Date.parse(extent.time_start.value),
        end: extent.time_end ? Date.parse(extent.time_end.value) : Infinity,
      });
    });
  });

  var shown = L.featureGroup().addTo(map);
  var slider = document.querySelector("[data-notice-time]");
  var label = document.querySelector("[data-notice-time-label]");
  var anyTime = document.querySelector("[data-notice-any-time]");

  function update() {
    var at = now + Number(slider.value) * 60000;
    var all = anyTime && anyTime.checked;
    slider.disabled = all;
    label.textContent = all ? "all times" : new Date(at).toISOString().slice(0, 16).replace("T", " ") + "Z";
    shown.clearLayers();
    var count = 0;
    volumes.forEach(function (v) {
      if (all || (v.start <= at && at <= v.end)) {
        shown.addLayer(v.layer);
        count += 1;
      }
    });
    el.setAttribute("data-visible", String(count));
  }

  slider.addEventListener("input", update);
  if (anyTime) anyTime.addEventListener("change", update);
  update();

  if (volumes.length) {
    var bounds = L.latLngBounds([]);
    volumes.forEach(function (v) { bounds.extend(v.bounds); });
    map.fitBounds(bounds, { padding: [30, 30], maxZoom: 9 });  // a country border or two stays in view
  }
})();
