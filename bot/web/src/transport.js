/*
 * Transport: a WebSocket, or plain HTTP (send, and a long-poll for counsellor replies) where a proxy
 * or captive portal breaks WebSockets, behind one small interface:
 *   var net = makeTransport({ frame: f, ready: r, status: s, answered: a });
 *   net.connect(); net.send(frame); net.ack(replyId); net.reconnect()
 * Frames to send wait in S.outbox (state.js) until answered; send(frame) says a new one is there.
 * hooks.frame gets every frame from the server except "ready" and "session" (handled here);
 * hooks.ready runs when frames can flow; hooks.status shows "connecting", "offline" or nothing;
 * hooks.answered(id, failed) runs when an HTTP response settled a frame (over a WebSocket the
 * server says so in a "handled" or "error" frame).
 */

// XMLHttpRequest rather than fetch: it works on the oldest phones and has a real timeout
function http(method, url, body, timeout, auth) {
  return new Promise(function (resolve, reject) {
    var x = new XMLHttpRequest();
    x.open(method, url, true);
    x.timeout = timeout || 30000;
    if (auth && TOKEN_MODE && S.token) x.setRequestHeader("X-Hamroh-Session", S.token);
    if (body != null) x.setRequestHeader("Content-Type", "application/json");
    x.onload = function () {
      var data = null;
      try { data = JSON.parse(x.responseText); } catch (e) { /* not JSON: treated as a failure */ }
      if (x.status === 0 || (x.status >= 500 && !(data && data.frames))) reject(new Error("http " + x.status));
      else resolve({ status: x.status, data: data });
    };
    x.onerror = x.ontimeout = function () { reject(new Error("network")); };
    x.send(body == null ? null : JSON.stringify(body));
  });
}
function getJSON(path) {
  return http("GET", BASE + "/static/web/" + path, null, 20000, false).then(function (r) {
    if (r.status !== 200 || !r.data) throw new Error("labels");
    return r.data;
  });
}

function makeTransport(hooks) {
  var T = { mode: "ws", ws: null, ready: false, wsFails: 0, attempt: 0, pumping: false, polling: false, ackTimer: null };

  function backoff() {
    var ms = Math.min(30000, 1000 * Math.pow(2, T.attempt++));
    return ms / 2 + Math.random() * ms / 2;
  }

  function send(frame) {
    if (T.mode === "http") pump();
    else wsSend(frame);
  }

  function wsSend(obj) {
    if (!T.ready || !T.ws) return false;
    try { T.ws.send(JSON.stringify(obj)); return true; } catch (e) { return false; }
  }

  // acknowledged replies are marked sent on the server; unacknowledged ones come again
  function ack(id) {
    S.acks.push(id);
    if (T.mode === "ws" && !T.ackTimer) {
      T.ackTimer = setTimeout(function () { T.ackTimer = null; flushAcks(); }, 50);
    }
  }

  function flushAcks() {
    if (T.mode === "ws" && T.ready && T.ws && S.acks.length) wsSend({ type: "ack", ids: takeAcks() });
  }

  function receive(f) {
    if (!f || typeof f !== "object") return;
    if (f.type === "ready") {
      T.ready = true;
      T.attempt = 0;
      hooks.status(null);
      flushAcks();
      S.outbox.slice().forEach(send);  // resent with the same ids: answered once
      hooks.ready();
    } else if (f.type === "session") {
      setToken(f.token);
    } else {
      hooks.frame(f);
    }
  }

  function connect() {
    if (T.mode === "http" || !window.WebSocket) { useHttp(); return; }
    hooks.status("connecting");
    var ws;
    try { ws = new WebSocket(BASE.replace(/^http/, "ws") + "/ws/chat"); } catch (e) { useHttp(); return; }
    T.ws = ws;
    var timer = setTimeout(function () { if (!T.ready) ws.close(); }, 15000);
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "hello", token: TOKEN_MODE ? (S.token || "") : null, lang: S.lang }));
    };
    ws.onmessage = function (e) {
      var f = null;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f && f.type === "ready") T.wsFails = 0;
      receive(f);
    };
    ws.onclose = function () {
      clearTimeout(timer);
      if (T.ws !== ws) return;
      var wasReady = T.ready;
      T.ws = null;
      T.ready = false;
      // twice closed before "ready": a proxy or portal that breaks WebSockets; use plain HTTP
      if (!wasReady && ++T.wsFails >= 2) { useHttp(); return; }
      hooks.status("offline");
      setTimeout(connect, backoff());
    };
  }

  // a fresh WebSocket (after "delete my data": the new session); false over HTTP, where every
  // request already carries the current session
  function reconnect() {
    if (T.mode === "http") return false;
    var old = T.ws;
    T.ws = null;
    T.ready = false;
    if (old) { old.onclose = null; old.close(); }
    connect();
    return true;
  }

  function useHttp() {
    T.mode = "http";
    T.ready = true;
    T.attempt = 0;
    hooks.status(null);
    hooks.ready();
    pump();  // polling starts after the first answer: it carries the session (cookie or token)
  }

  function handleHttp(r) {
    if (!r.data) return;
    if (r.data.session) setToken(r.data.session);
    (r.data.frames || []).forEach(receive);
  }

  // one frame at a time, in order; a failed send is retried with the same id
  function pump() {
    if (T.pumping || !S.outbox.length) return;
    T.pumping = true;
    var frame = S.outbox[0];
    var body = {};
    for (var k in frame) if (Object.prototype.hasOwnProperty.call(frame, k)) body[k] = frame[k];
    body.ack = takeAcks();
    http("POST", BASE + "/api/chat/send", body, 30000, true).then(function (r) {
      T.pumping = false;
      T.attempt = 0;
      hooks.status(null);
      handleHttp(r);
      if (S.outbox[0] === frame) hooks.answered(frame.id, r.status >= 400);
      pump();
      poll();
    }, function () {
      T.pumping = false;
      returnAcks(body.ack);
      hooks.status("offline");
      setTimeout(pump, backoff());
    });
  }

  // long-poll: the server holds the request until a counsellor's reply arrives (or 20 s pass)
  function poll() {
    if (T.polling) return;
    T.polling = true;
    var acks = takeAcks();
    var url = BASE + "/api/chat/poll?wait=20" + (acks.length ? "&ack=" + acks.join(",") : "");
    http("GET", url, null, 35000, true).then(function (r) {
      T.polling = false;
      handleHttp(r);
      setTimeout(poll, r.status === 429 ? 5000 : 50);
    }, function () {
      T.polling = false;
      returnAcks(acks);
      hooks.status("offline");
      setTimeout(poll, backoff());
    });
  }

  return { connect: connect, send: send, ack: ack, reconnect: reconnect };
}
