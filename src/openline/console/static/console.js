// OpenLine console: clocks, "ringing for" timers, the audible alarm, the pick-up shortcut.
// No framework; htmx (vendored) re-fetches the live parts when the station says so.
(function () {
  "use strict";

  var utc = function (d) { return d.toISOString().slice(11, 19) + "Z"; };
  var local = function (d) { return d.toLocaleTimeString([], { hour12: false }); };
  var span = function (seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    var m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return m + " min " + s + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  };

  function tick() {
    var now = new Date();
    var clock = document.querySelector("[data-clock]");
    if (clock) clock.textContent = utc(now) + " · local " + local(now);
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(t)) el.textContent = "for " + span((now - t) / 1000);
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-until"));
      if (isNaN(t)) return;  // past by a minute or more, it says by how much
      el.textContent = t > now ? "in " + span((t - now) / 1000) : now - t < 60000 ? "due now" : span((now - t) / 1000) + " overdue";
    });
    document.querySelectorAll("time[data-time]").forEach(function (el) {
      if (el.dataset.done) return;
      var t = new Date(el.getAttribute("data-time"));
      if (isNaN(t)) return;
      el.textContent = el.getAttribute("data-time").slice(0, 10) + " " + utc(t) + " (" + local(t) + ")";
      el.dataset.done = "1";
    });
  }

  // The alarm: a two-tone beep every 1.5 s while any call rings here, on every page, until
  // someone acts. Browsers only allow sound after a click, so the "Sound" button switches
  // it on; the choice is kept for the next page (localStorage), where the browser allows
  // the sound again after the click on this one (Chromium carries it across pages of one
  // site), or else says "click to allow" until the next click or key.
  var audio = null, soundOn = false, SOUND_KEY = "openline.sound";
  function ringingCount() {
    // The board's own region counts every call ringing, shown or not; other pages have
    // the header's count.
    var counted = document.querySelector("#board[data-ringing-count]") ||
      document.querySelector("#ringing[data-ringing-count]");
    return counted ? Number(counted.getAttribute("data-ringing-count")) || 0 : 0;
  }
  function beep() {
    if (!soundOn || !audio || !ringingCount()) return;
    [880, 660].forEach(function (freq, i) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + i * 0.25);
      osc.stop(audio.currentTime + i * 0.25 + 0.2);
    });
  }
  function showSound() {
    var button = document.querySelector("[data-sound]");
    if (!button) return;
    var blocked = soundOn && !!audio && audio.state !== "running";
    button.textContent = !soundOn ? "Sound off" : blocked ? "Sound on: click to allow" : "Sound on";
    button.setAttribute("aria-pressed", String(soundOn));
    button.classList.toggle("blocked", blocked);
  }
  function startAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) { audio = new Context(); audio.onstatechange = showSound; }
    if (audio.state !== "running" && audio.resume) audio.resume().then(showSound, showSound);
  }
  function keepSound() {
    try { window.localStorage.setItem(SOUND_KEY, soundOn ? "on" : "off"); } catch (e) { /* private mode */ }
  }
  // A refused form's page says why in an alert at its top (or, on a call's page, what
  // someone else did first): the focus goes there, so that a keyboard or screen reader
  // user lands on it rather than at the top of the page, and the title says so.
  var formError = false;
  function showFormError() {
    var error = document.querySelector("main p.error[role=alert]:not([data-trouble]):not([data-session-ended])");
    if (!error || error.hidden) return;
    formError = true;
    error.setAttribute("tabindex", "-1");
    error.focus();
  }

  function alarmTitle() {
    var n = ringingCount();
    var header = document.getElementById("ringing");
    if (header) {  // on the board, the header follows the board's count
      header.setAttribute("data-ringing-count", String(n));
      header.textContent = n + " ringing";
      header.hidden = !n;
    }
    var down = document.querySelectorAll("[data-line-down]").length;
    document.title = document.title.replace(/^Error: /, "").replace(/^\(\d+\) RINGING · /, "")
      .replace(/^LINE DOWN · /, "");
    if (down) document.title = "LINE DOWN · " + document.title;
    if (n) document.title = "(" + n + ") RINGING · " + document.title;
    if (formError) document.title = "Error: " + document.title;
    document.body.classList.toggle("alarm", n > 0);
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("[data-sound]");
    if (!button) return;
    if (soundOn && audio && audio.state !== "running") { startAudio(); return; }  // allowed now
    soundOn = !soundOn;
    keepSound();
    if (soundOn) startAudio();
    showSound();
  });
  // Any click or key allows the sound kept on from the last page.
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, function () { if (soundOn) startAudio(); }, true);
  });

  // "p" picks up the first ringing call (not while typing). A single key can be pressed
  // by mistake, or by speech input hearing a word, so it can be turned off (WCAG 2.1.4):
  // the header's "Key p" button, kept for the next page as the sound is.
  var shortcutOn = true, SHORTCUT_KEY = "openline.shortcut";
  function showShortcut() {
    var button = document.querySelector("[data-shortcut]");
    if (!button) return;
    button.textContent = shortcutOn ? "Key p: on" : "Key p: off";
    button.setAttribute("aria-pressed", String(shortcutOn));
  }
  document.addEventListener("click", function (ev) {
    if (!(ev.target.closest && ev.target.closest("[data-shortcut]"))) return;
    shortcutOn = !shortcutOn;
    try { window.localStorage.setItem(SHORTCUT_KEY, shortcutOn ? "on" : "off"); } catch (e) { /* private mode */ }
    showShortcut();
  });
  document.addEventListener("keydown", function (ev) {
    if (!shortcutOn || ev.key !== "p" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || ev.target.isContentEditable) return;
    var button = document.querySelector("[data-pickup]");
    if (button) { ev.preventDefault(); button.click(); }
  });

  // htmx sends the CSRF token with its own requests too.
  document.addEventListener("htmx:configRequest", function (ev) {
    var token = document.body.getAttribute("data-csrf");
    if (token) ev.detail.headers["X-CSRF-Token"] = token;
  });
  // Said to screen readers, which announce neither the board's nor a call's swaps: a call
  // that starts ringing, a peer's new message, the open call's new state (picked up by the
  // peer, missed, closed). Said in one region that stays in the page (base.html): a region
  // put in anew is not announced. Only what is new since the page loaded: the title says
  // what rang before.
  var announcing = [], announceTimer = null, knownCalls = null, knownMessages = null, knownCount = 0;
  var knownState = null;
  function announce(text) {
    var region = document.querySelector("[data-announce]");
    if (!region) return;
    announcing.push(text);
    if (announceTimer) return;
    region.textContent = "";  // the same words again are news again
    announceTimer = window.setTimeout(function () {
      region.textContent = announcing.join(" ");
      announcing = [];
      announceTimer = null;
    }, 100);
  }
  function textOf(root, selector) {
    var el = root.querySelector(selector);
    return el ? el.textContent.trim() : "";
  }
  function ids(selector, attribute) {
    var found = {};
    document.querySelectorAll(selector).forEach(function (el) { found[el.getAttribute(attribute)] = el; });
    return found;
  }
  function announceNews(first) {
    var calls = ids("#board [data-ringing][data-call]", "data-call");
    var messages = ids("#call [data-message]", "data-message");
    var count = ringingCount();
    var state = textOf(document, "#call [data-state]") || null;
    if (!first) {
      var board = !!document.getElementById("board");
      Object.keys(calls).forEach(function (id) {
        if (knownCalls[id]) return;
        var card = calls[id], subject = textOf(card, ".subject");
        announce(card.querySelector("[data-rings-again]")
          ? "Call " + textOf(card, ".from") + " rings again: " + subject + "."
          : textOf(card, ".prio") + " call " + textOf(card, ".from") + " ringing: " + subject + ".");
      });
      if (!board && count > knownCount) announce(count === 1 ? "A call is ringing." : count + " calls are ringing.");
      Object.keys(messages).forEach(function (id) {
        var message = messages[id];
        if (knownMessages[id] || !message.classList.contains("theirs")) return;
        announce("Message from " + message.getAttribute("data-from") + ": " + textOf(message, ".text"));
      });
      if (state && knownState && state !== knownState) {
        var by = state === "picked_up" ? textOf(document, "#call [data-by]") : "";
        announce("This call is now " + state.replace(/_/g, " ") + (by ? " by " + by : "") + ".");
      }
    }
    knownState = state;
    knownCalls = calls;
    knownMessages = messages;
    knownCount = count;
  }

  document.addEventListener("htmx:afterSwap", function () { tick(); alarmTitle(); announceNews(false); });

  // A live region (board, call, notices, ledger) re-fetches itself on every announced
  // change. A change that arrives while its request is in flight is queued by htmx on
  // the very element the response then replaces, and so lost: the region would show an
  // old state until the next change. Count the changes each region hears, and fetch once
  // more after a swap if more arrived than its request had seen.
  // Counted while the event is captured, before htmx's own handler on the region starts
  // the request (whose start then records the count it has seen).
  var heard = {}, seen = {};
  document.addEventListener("sse:change", function (ev) {
    var id = ev.target && ev.target.id;
    if (id) heard[id] = (heard[id] || 0) + 1;
  }, true);
  document.addEventListener("htmx:beforeRequest", function (ev) {
    var id = ev.detail.elt && ev.detail.elt.id;
    if (id && heard[id] !== undefined) seen[id] = heard[id];
  });
  // On (re)connecting, every region fetches once, for a change committed between the
  // page's render and the stream's start: the station's first event on every stream is
  // a change, `{"changed": ["connected"]}` (console/live.py). Triggering the regions here
  // as well fetched each of them twice.
  document.addEventListener("htmx:afterSettle", function (ev) {
    var id = ev.target && ev.target.id;
    if (!id || seen[id] === undefined || heard[id] <= seen[id]) return;
    var region = document.getElementById(id);
    if (region) htmx.trigger(region, "sse:change");
  });

  // A live region replaces itself on every change: the control the officer had reached
  // with the keyboard (the Pick up button, Tab by Tab) would be gone, and the next Enter
  // would do nothing. The same control in the new region gets the focus back.
  var refocus = null;
  function focusKey(el) {
    if (!el || el === document.body || !el.tagName) return null;
    var form = el.form || (el.closest && el.closest("form"));
    return [el.tagName, el.id, el.getAttribute("name"), el.getAttribute("href"),
      form ? form.getAttribute("action") : "", (el.textContent || "").trim()].join("|");
  }
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var active = document.activeElement, target = ev.detail.target;
    refocus = active && target && target.contains(active) ? focusKey(active) : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) return;
    var key = refocus;
    refocus = null;
    var same = Array.prototype.find.call(
      document.querySelectorAll("a[href], button, input, select, textarea"),
      function (el) { return focusKey(el) === key; });
    if (same) same.focus({ preventScroll: true });
  });

  // How long the browser's session has left, by the station (seconds), or null when it
  // has ended; rejected when the station does not answer. The page takes up the session's
  // CSRF token too, which is a new one after a login in another tab.
  function askSession() {
    return fetch("/session", { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) return null;
        if (!r.ok) {
          return r.json().catch(function () { return {}; }).then(function (problem) {
            var err = new Error("HTTP " + r.status);
            err.problem = problem || {};
            throw err;
          });
        }
        return r.json().then(function (s) {
          if (s.csrf && s.csrf !== document.body.getAttribute("data-csrf")) {
            document.body.setAttribute("data-csrf", s.csrf);
            document.querySelectorAll("input[name=csrf]").forEach(function (el) { el.value = s.csrf; });
          }
          return s.left_s;
        });
      });
  }
  // Logging out ends the session too: the stream or a refresh may hear that before the
  // logout's own answer arrives, and this page must not then say the session *ended*.
  var loggingOut = false;
  document.addEventListener("submit", function (ev) {
    var action = ev.target && ev.target.getAttribute && ev.target.getAttribute("action");
    if (action === "/logout") loggingOut = true;
  }, true);
  function sessionEnded() {
    if (loggingOut) return;
    sessionEnds = null;
    keepDrafts();
    var here = window.location.pathname + window.location.search;
    window.location.assign("/login?ended=1" + (here === "/" ? "" : "&next=" + encodeURIComponent(here)));
  }

  // A live region's refresh that finds the session ended is sent to the login page by the
  // station (HX-Redirect), before this page's own check may notice: keep what is typed.
  document.addEventListener("htmx:beforeOnLoad", function (ev) {
    var xhr = ev.detail && ev.detail.xhr;
    var to = xhr && xhr.getResponseHeader("HX-Redirect");
    if (to && to.indexOf("/login") === 0) {
      if (loggingOut) { ev.preventDefault(); return; }  // the logout's answer goes there
      keepDrafts();
    }
  });

  // What an officer had typed when the session ended (a 12-hour session, a longer night
  // shift) is kept in this tab and put back into the same page once the same officer has
  // logged in again, within an hour; never into another officer's forms.
  var DRAFTS_KEY = "openline-drafts", DRAFTS_FOR_MS = 60 * 60 * 1000;
  var DRAFT_FIELDS = "form[method=post] textarea[id], form[method=post] input[id]:not([type]), " +
    "form[method=post] input[id][type=text]";
  function keepDrafts() {
    var user = document.body.getAttribute("data-user"), fields = {}, any = false;
    if (!user) return;
    document.querySelectorAll(DRAFT_FIELDS).forEach(function (el) {
      if (el.value) { fields[el.id] = el.value; any = true; }
    });
    if (!any) return;
    var draft = { user: user, path: window.location.pathname, at: Date.now(), fields: fields };
    try { window.sessionStorage.setItem(DRAFTS_KEY, JSON.stringify(draft)); } catch (e) { /* private mode */ }
  }
  function restoreDrafts() {
    var user = document.body.getAttribute("data-user"), draft = null;
    if (!user) return;  // the login page: kept for the page after it
    try { draft = JSON.parse(window.sessionStorage.getItem(DRAFTS_KEY) || "null"); } catch (e) { draft = null; }
    if (!draft) return;
    var stale = draft.user !== user || Date.now() - draft.at > DRAFTS_FOR_MS;
    if (!stale && draft.path !== window.location.pathname) return;  // for that page, when opened
    try { window.sessionStorage.removeItem(DRAFTS_KEY); } catch (e) { /* private mode */ }
    if (stale) return;
    var ids = Object.keys(draft.fields || {});
    // A reason typed under Reject… waits in its template (_notices.html): opened again.
    document.querySelectorAll("template[data-on-open]").forEach(function (t) {
      if (!ids.some(function (id) { return t.content.getElementById(id); })) return;
      var details = t.closest("details");
      t.replaceWith(t.content.cloneNode(true));
      if (details) details.open = true;
    });
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (el && el.matches(DRAFT_FIELDS) && !el.value) {
        el.value = draft.fields[id];
        el.setAttribute("data-restored", "");
      }
    });
  }

  // One event stream per browser. Chromium opens at most six HTTP/1.1 connections to a
  // station and each console tab held one for its stream: with six tabs open nothing else
  // got through (no refresh, no Pick up, no seventh tab), and nothing said so. So the tabs
  // elect one (Web Locks), which holds the stream and passes on each event, its opening
  // and its errors (BroadcastChannel); when that tab closes or goes to another page, the
  // next one takes over. The SSE extension gets an object that behaves as an EventSource
  // (htmx.createEventSource). Where those APIs are missing each tab has its own stream.
  // The stream is retried here, no more than RETRY_MAX_MS apart: after a refused attempt
  // (a proxy's 502 while the station restarts) the extension itself waits twice as long
  // each time, up to a minute. A refused stream may mean the session has ended (the
  // station answers with its login page); the station says whether, and every tab then
  // goes to the login page. So it does when the station ends the stream for that reason
  // (`event: ended`), unless a login in another tab gave the browser a new session.
  var STREAM = "openline.events", EVENTS = ["change", "ended"], RETRY_MAX_MS = 2000;
  var CONNECTED = '{"changed": ["connected"]}';
  function sharedEventSource(url) {
    var source = new EventTarget(), me = Math.random().toString(36).slice(2);
    var channel = null, real = null, leading = false, state = "connecting", retries = 0, timer = null, release = null;
    source.url = url;
    source.withCredentials = true;
    source.readyState = EventSource.CONNECTING;
    source.onopen = source.onerror = source.onmessage = null;

    function receive(msg) {  // as an EventSource would, to the SSE extension
      if (source.readyState === EventSource.CLOSED) return;
      if (msg.type === "ended") { sessionEnded(); return; }
      if (msg.type === "unreachable") { streamRefused(msg.reason); return; }
      var ev;
      if (msg.type === "open" || msg.type === "error") {
        source.readyState = msg.type === "open" ? EventSource.OPEN : EventSource.CONNECTING;
        ev = new Event(msg.type);
        var handler = source["on" + msg.type];
        if (handler) handler.call(source, ev);
      } else {
        ev = new MessageEvent(msg.type, { data: msg.data });
      }
      source.dispatchEvent(ev);
    }
    function tell(msg) {  // every tab, this one included
      if (msg.type === "open" || msg.type === "error") state = msg.type;
      if (channel) channel.postMessage(msg);
      receive(msg);
    }
    function retry() {
      timer = window.setTimeout(connect, Math.min(1000 * Math.pow(2, retries++), RETRY_MAX_MS));
    }
    function askWhy() {  // the stream refused or ended: has the session ended?
      askSession().then(function (left) {
        if (left === null) tell({ type: "ended" });
        else retry();
      }, function (err) {
        // Refused because the station cannot reach its database: say that, not that the
        // station is out of reach (it answered).
        var problem = (err && err.problem) || {};
        if (problem.code === "database_unavailable") tell({ type: "unreachable", reason: problem.reason || "" });
        retry();
      });
    }
    function connect() {
      timer = null;
      if (source.readyState === EventSource.CLOSED) return;
      var es = real = new EventSource(url, { withCredentials: true });
      es.onopen = function () { retries = 0; tell({ type: "open" }); };
      es.onerror = function () {
        tell({ type: "error" });
        if (es.readyState !== EventSource.CLOSED) return;  // the browser retries, a second apart
        real = null;
        askWhy();
      };
      EVENTS.forEach(function (type) {
        es.addEventListener(type, function (ev) {
          if (type !== "ended") { tell({ type: type, data: ev.data }); return; }
          es.close();
          real = null;
          askWhy();
        });
      });
    }
    function lead() {  // holds the lock until this page goes, or the source is closed
      return new Promise(function (resolve) {
        if (source.readyState === EventSource.CLOSED) { resolve(); return; }
        leading = true;
        release = resolve;
        connect();
      });
    }
    source.close = function () {
      source.readyState = EventSource.CLOSED;
      if (timer) window.clearTimeout(timer);
      if (real) real.close();
      if (channel) channel.close();
      if (release) release();
    };

    if (navigator.locks && window.BroadcastChannel) {
      channel = new BroadcastChannel(STREAM);
      channel.onmessage = function (ev) {
        var msg = ev.data || {};
        if (msg.to && msg.to !== me) return;
        if (msg.type !== "hello") { receive(msg); return; }
        // A tab just opened: tell it whether the stream is open and, since it may have
        // missed a change while it loaded, make it fetch once, as a new stream does.
        if (!leading || state === "connecting") return;
        channel.postMessage({ type: state, to: msg.from });
        if (state === "open") channel.postMessage({ type: "change", data: CONNECTED, to: msg.from });
      };
      navigator.locks.request(STREAM, lead);
      channel.postMessage({ type: "hello", from: me });
    } else {
      leading = true;
      connect();
    }
    return source;
  }
  if (window.htmx && window.EventSource) htmx.createEventSource = sharedEventSource;

  // What this page shows may be out of date: the event stream to the station is lost,
  // or a live region's refresh failed (the station down, or unable to reach its
  // database). Say so at the top of the page, with when and why, until it is back: a
  // board that looks calm because it stopped updating is how a call goes unanswered.
  var trouble = {};
  function live(elt) {
    return !!(elt && elt.getAttribute && /sse:change/.test(elt.getAttribute("hx-trigger") || ""));
  }
  function showTrouble() {
    var banner = document.querySelector("[data-trouble]");
    if (!banner) return;
    var why = trouble.stream || trouble.refresh || trouble.database;
    var text = why ? why + " What this page shows may be out of date." : "";
    if (trouble.session) text = (text ? text + " " : "") + trouble.session;
    banner.hidden = !text;
    banner.textContent = text;
  }

  // A session ends 12 hours after its login, however busy the watch. Say so a quarter of
  // an hour before, and at the end go to the login page at once, saying why: a board that
  // has stopped being allowed to update looks as calm as one with nothing to show. Before
  // warning (then once a minute) and before ending the page, ask the station: a login in
  // another tab gave the browser a new session, which this page then goes on with.
  var sessionEnds = null, sessionAsked = 0, asking = false, WARN_S = 15 * 60;
  function sessionCheck() {
    if (sessionEnds === null || asking) return;
    var left = (sessionEnds - Date.now()) / 1000;
    if (left <= WARN_S && (left <= 0 || Date.now() - sessionAsked >= 60 * 1000)) {
      asking = true;
      askSession().then(function (s) {
        if (s === null) sessionEnded();
        else sessionEnds = Date.now() + s * 1000;
      }, function () {
        if (left <= 0) sessionEnded();  // no answer: the page's own figure stands
      }).then(function () { asking = false; sessionAsked = Date.now(); });
      return;
    }
    var was = trouble.session;
    if (left <= 15 * 60) {
      trouble.session = "Your session ends in " + span(left) + ": log out and in again now, or calls " +
        "that ring after that are not shown here until you do.";
    } else {
      delete trouble.session;
    }
    if (was !== trouble.session) showTrouble();
  }
  function since() { return " (since " + utc(new Date()) + ")"; }
  document.addEventListener("htmx:sseError", function () {
    if (!trouble.stream) {
      trouble.streamSince = since();
      trouble.stream = "Not connected to the station" + trouble.streamSince + "; reconnecting.";
    }
    showTrouble();
  });
  document.addEventListener("htmx:sseOpen", function () {
    delete trouble.stream;
    delete trouble.streamSince;
    showTrouble();
  });
  function streamRefused(reason) {  // the station answered: its database is out of reach
    trouble.streamSince = trouble.streamSince || since();
    trouble.stream = "The station cannot reach its database (" + reason + ")" + trouble.streamSince +
      "; it keeps trying.";
    showTrouble();
  }
  // The station cannot use its database (out of reach, or a full disk: it reads but cannot
  // store). Its refreshes may still succeed, so the stream says so, and says when it is
  // back ("connected", as every new stream first does: console/live.py).
  document.addEventListener("htmx:sseMessage", function (ev) {
    var changed = [];
    try { changed = JSON.parse((ev.detail && ev.detail.data) || "{}").changed || []; } catch (e) { return; }
    var was = trouble.database;
    if (changed.indexOf("database_unavailable") >= 0) {
      trouble.database = was || "The station cannot use its database" + since() +
        ": nothing new can be stored, sent or received until it can; it keeps trying.";
    } else if (changed.indexOf("connected") >= 0) {
      delete trouble.database;
    }
    if (was !== trouble.database) showTrouble();
  });
  document.addEventListener("htmx:responseError", function (ev) {
    if (!live(ev.detail.elt)) return;
    var xhr = ev.detail.xhr, problem = {};
    try { problem = JSON.parse(xhr.responseText) || {}; } catch (e) { problem = {}; }
    if (!trouble.refresh) {
      trouble.refresh = problem.code === "database_unavailable"
        ? "The station cannot reach its database (" + problem.reason + ")" + since() + "; it keeps trying."
        : "The station answered HTTP " + xhr.status + (problem.detail ? ": " + problem.detail : "") + since() + ".";
    }
    showTrouble();
  });
  document.addEventListener("htmx:sendError", function (ev) {
    if (!live(ev.detail.elt)) return;
    if (!trouble.refresh) trouble.refresh = "The station did not answer" + since() + ".";
    showTrouble();
  });
  // A refreshed region replaces itself (outerHTML): the new one, in the page, says so.
  document.addEventListener("htmx:afterSettle", function (ev) {
    if (live(ev.target)) { delete trouble.refresh; showTrouble(); }
  });

  // Closing a call with a message typed and not sent: the message goes with the close, so
  // that the station can ask first (_call.html).
  document.addEventListener("submit", function (ev) {
    if (!ev.target.querySelector) return;
    var unsent = ev.target.querySelector("[data-unsent]"), text = document.getElementById("text");
    if (unsent) unsent.value = text ? text.value : "";
    var summary = ev.target.querySelector("[data-summary]"), typed = document.getElementById("summary");
    if (summary && typed) summary.value = typed.value;  // closing without the message
  }, true);

  // A disclosure's fields kept in a <template> until it opens (_notices.html, `on_open`):
  // put in place the first time it does.
  document.addEventListener("toggle", function (ev) {
    var details = ev.target;
    if (!details.open || !details.querySelectorAll) return;
    details.querySelectorAll("template[data-on-open]").forEach(function (t) {
      t.replaceWith(t.content.cloneNode(true));
    });
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    try { soundOn = window.localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { soundOn = false; }
    if (soundOn && document.querySelector("[data-sound]")) startAudio();
    showSound();
    try { shortcutOn = window.localStorage.getItem(SHORTCUT_KEY) !== "off"; } catch (e) { shortcutOn = true; }
    showShortcut();
    showFormError();
    announceNews(true);
    var left = Number(document.body.getAttribute("data-session-left"));
    if (document.body.hasAttribute("data-session-left") && !isNaN(left)) sessionEnds = Date.now() + left * 1000;
    restoreDrafts();
    tick(); alarmTitle(); sessionCheck();
    setInterval(tick, 1000);
    setInterval(sessionCheck, 1000);
    setInterval(beep, 1500);
  });
})();
