/*
 * Main: wires the view to the transport. Frames go out through queue (an id, then the outbox,
 * then the transport); frames in are shown once and acknowledged; "delete my data" starts over.
 */
var net = null;

function queue(frame, bubble) {
  enqueue(frame);
  if (bubble) S.bubbles[frame.id] = bubble;
  net.send(frame);
}

function settle(id, failed) {
  unqueue(id);
  var bubble = S.bubbles[id];
  if (!bubble) return;
  delete S.bubbles[id];
  markSent(bubble, failed);
}

// after a reload the conversation comes back from the server (this visitor's own); a visitor
// with no history (or before consent) gets the start: the consent notice or the menu
function restore() {
  if (ui.log.querySelector(".hamroh-msg")) { queue({ type: "command", command: "start" }); return; }
  http("GET", BASE + "/api/chat/history", null, 15000, true).then(function (r) {
    var frames = (r.data && r.data.frames) || [];
    frames.forEach(function (f) {
      if (f.type === "history" && typeof f.text === "string") {
        var me = userBubble(f.text);
        me.className = me.className.replace(" hamroh-sending", "");
        var state = me.querySelector(".hamroh-state");
        if (state) me.removeChild(state);
      } else if (f.type === "reply") {
        renderReply(f);
      }
    });
    if (!frames.length) queue({ type: "command", command: "start" });
  }, function () { queue({ type: "command", command: "start" }); });
}

function onReady() {
  if (!S.started) {
    S.started = true;
    restore();
  }
}

function onFrame(f) {
  if (f.type === "reply") {
    if (f.id != null) {
      if (firstSight(f.id)) renderReply(f);
      net.ack(f.id);
    } else {
      renderReply(f);
    }
  } else if (f.type === "handled") {
    settle(f.id, false);
  } else if (f.type === "error") {
    onError(f);
  }
}

function onError(f) {
  var frame = f.code === "rate_limited" && f.id != null ? unqueue(f.id) : null;
  if (frame) {
    if (!S.limitNoted) note("rate_limited");
    S.limitNoted = true;
    setTimeout(function () {
      S.limitNoted = false;
      S.outbox.push(frame);
      net.send(frame);
    }, Math.min(60, f.retry_after || 3) * 1000 + 300);
    return;
  }
  if (f.id) settle(f.id, true);
  if (f.code !== "empty") note(f.code === "too_long" || f.code === "rate_limited" ? f.code : "error");
}

// "delete my data" was done: the page and this device forget the conversation, a new session begins
function forget(keep) {
  clearLog(keep);
  clearState();
  http("POST", BASE + "/api/chat/session", { reset: true }, 30000, false).then(function (r) {
    if (r.data && r.data.session) setToken(r.data.session);
  }, function () { /* a new session is issued on the next connection anyway */ }).then(function () {
    S.begun = true;
    if (net.reconnect()) return;
    S.started = true;  // over HTTP the next request carries the new session: start again at once
    queue({ type: "command", command: "start" });
  });
}

function begin() {
  if (S.begun) return;
  S.begun = true;
  S.langsReady.then(net.connect);  // the first frame says the language
}

function start() {
  inline = document.getElementById("hamroh-chat");
  if (!document.querySelector("link[href*='hamroh-chat.css']")) {
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = BASE + "/static/web/hamroh-chat.css";
    document.head.appendChild(css);
  }
  net = makeTransport({ frame: onFrame, ready: onReady, status: setStatus, answered: settle });
  build();
  S.langsReady = getJSON("i18n/languages.json")
    .then(fillLanguages, function () { /* English only; the engine's buttons still work */ })
    .then(function () { setLang(firstLanguage()); });
  if (inline) begin();
  window.HamrohChat = { open: inline ? begin : open, close: inline ? function () {} : close };
}

window.HamrohChat = {};
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
