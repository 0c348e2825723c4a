/* Hamroh console: live queue, crisis alerts and transcripts (server-sent events); curated answers.
   Everything works without this file; it only saves reloads. No inline script (CSP). */
(function () {
  "use strict";
  var body = document.body, base = body.dataset.base || "", every = (+body.dataset.poll || 15) * 1000;
  var banner = document.getElementById("alert");
  var seenKey = "hamroh-crisis-seen", seen = +(sessionStorage.getItem(seenKey) || 0), newest = 0;

  function get(url, json) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: json ? "application/json" : "text/html" } })
      .then(function (r) {
        if (r.status === 401) { location.reload(); return null; }
        return r.ok ? (json ? r.json() : r.text()) : null;
      });
  }

  function poll() {
    if (document.hidden) return;
    get(base + "/alerts", true).then(function (a) {
      if (!a) return;
      newest = a.newest_crisis;
      if (a.crisis > 0 && newest > seen && banner) {
        var link = banner.querySelector("a");
        link.href = base + "/tickets/" + newest;
        link.textContent = "#" + newest;
        banner.hidden = false;
        if (document.title.charAt(0) !== "(") document.title = "(!) " + document.title;
      }
    }).catch(function () {});
    var rows = document.getElementById("queue-rows");
    if (rows) {
      get(base + "/queue/rows" + location.search, false).then(function (html) {
        if (html !== null) rows.innerHTML = html;
      }).catch(function () {});
    }
  }

  // a new crisis: a sound and a browser notification, even when the tab is in the background
  function ring(ticket) {
    window.hamrohAlerts = (window.hamrohAlerts || 0) + 1;  // a hook for tests and for screen readers' logs
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) {
        var ctx = new Ctx(), osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = 880; gain.gain.value = 0.2;
        osc.connect(gain); gain.connect(ctx.destination);
        osc.start(); osc.stop(ctx.currentTime + 0.6);
      }
    } catch (e) { /* no sound device: the banner and the notification remain */ }
    if (window.Notification && Notification.permission === "granted") {
      try { new Notification("Hamroh: crisis ticket #" + ticket, { tag: "hamroh-crisis-" + ticket }); } catch (e) {}
    }
  }
  document.addEventListener("click", function () {
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
  }, { once: true });

  var ticketPage = /\/tickets\/(\d+)$/.exec(location.pathname);
  var refreshWaiting = false;
  function refreshTranscript() {
    var list = document.querySelector("ol.transcript");
    if (!list || !ticketPage) return;
    // a new line must not cut off a voice note the counsellor is listening to: refresh after it
    var playing = Array.prototype.some.call(list.querySelectorAll("audio"), function (a) { return !a.paused; });
    if (playing) {
      if (!refreshWaiting) {
        refreshWaiting = true;
        list.addEventListener("pause", function () { refreshWaiting = false; refreshTranscript(); },
                              { capture: true, once: true });
      }
      return;
    }
    get(location.pathname, false).then(function (html) {
      if (html === null) return;
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("ol.transcript");
      if (fresh) list.innerHTML = fresh.innerHTML;
    }).catch(function () {});
  }

  if (body.dataset.live) {
    if (window.EventSource) {
      // pushed by the server (GET /events): the queue, a crisis and this ticket's transcript
      var url = base + "/events" + (ticketPage ? "?ticket=" + ticketPage[1] : "");
      var events = new EventSource(url, { withCredentials: true });
      events.addEventListener("change", function (e) {
        var d = {};
        try { d = JSON.parse(e.data); } catch (err) { return; }
        poll();
        if (d.new_crisis) ring(d.newest_crisis);
        if (!d.first) refreshTranscript();
      });
      events.onerror = function () { setTimeout(poll, 1000); };
    } else {
      setInterval(poll, every);
    }
    setTimeout(poll, 500);
    document.addEventListener("visibilitychange", poll);
  }
  var seenButton = document.getElementById("alert-seen");
  if (seenButton) seenButton.addEventListener("click", function () {
    seen = newest; sessionStorage.setItem(seenKey, String(seen));
    banner.hidden = true; document.title = document.title.replace(/^\(!\) /, "");
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-insert]") : null;
    if (!button) return;
    var source = document.getElementById("answer-" + button.dataset.insert), box = document.getElementById("reply-text");
    if (!source || !box) return;
    e.preventDefault();
    box.value = box.value.trim() ? box.value.replace(/\s*$/, "\n\n") + source.value : source.value;
    document.getElementById("curated-entry").value = button.dataset.insert;
    box.focus();
  });

  var search = document.getElementById("answer-search");
  if (search) search.addEventListener("submit", function (e) {
    e.preventDefault();
    var query = new URLSearchParams(new FormData(search)).toString();
    get(search.dataset.fragment + "?" + query, false).then(function (html) {
      if (html !== null) document.getElementById("answers").innerHTML = html;
    }).catch(function () { search.submit(); });
  });
})();
