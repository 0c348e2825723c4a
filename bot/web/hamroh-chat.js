/*
 * Hamroh web chat widget. One script tag on any MRC website:
 *   <script src="https://HOST/static/web/hamroh-chat.js" data-hamroh-url="https://HOST" defer></script>
 * With an element id="hamroh-chat" on the page the chat fills it; otherwise a button opens it.
 *
 * Why it looks like this: cheap phones and 2G (DESIGN.md, principle 6). Plain ES2015, no
 * framework, no fonts, nothing fetched from anyone but the Hamroh server, and no connection
 * or session until the visitor opens the chat. Every text from the server or the user goes into the page
 * with textContent, never as HTML. Messages carry client-made ids, so a resend after a dropped
 * connection is answered once; replies are acknowledged by id, so a lost one is sent again.
 */
(function () {
  "use strict";
  if (window.HamrohChat) return;

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll("script[src*='hamroh-chat.js']");
    return all[all.length - 1];
  })();
  var BASE = ((script && script.getAttribute("data-hamroh-url")) ||
    (script ? script.src.replace(/\/static\/web\/hamroh-chat\.js([?#].*)?$/, "") : "")).replace(/\/+$/, "");
  var TOKEN_MODE = false;
  try { TOKEN_MODE = new URL(BASE, location.href).origin !== location.origin; } catch (e) { /* same origin */ }
  var MAX_CHARS = 2000;
  var MAX_MESSAGES = 200;

  var S = {
    lang: "en", labels: {}, langs: null, mode: "ws", ws: null, ready: false, wsFails: 0, attempt: 0,
    outbox: [], bubbles: {}, seen: {}, acks: [], started: false, begun: false, consented: false,
    locked: true, token: load("token"), pumping: false, polling: false, refocus: false
  };
  var ui = {};
  var inline = null;

  // ------------------------------------------------------------------ small helpers
  function load(key) {
    try { return window.localStorage.getItem("hamroh." + key); } catch (e) { return null; }
  }
  function store(key, value) {
    try {
      if (value == null) window.localStorage.removeItem("hamroh." + key);
      else window.localStorage.setItem("hamroh." + key, value);
    } catch (e) { /* private mode: the session lasts as long as the page */ }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = String(text);
    return node;
  }
  function L(key) { return S.labels[key] || ""; }
  // direction, names and aliases come from i18n/languages.json, generated from the server's registry
  function dirOf(code) { return S.langs && S.langs[code] && S.langs[code].dir === "rtl" ? "rtl" : "ltr"; }
  function newId() {
    var bytes = new Uint8Array(12), c = window.crypto || window.msCrypto, out = "";
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    for (var j = 0; j < bytes.length; j++) out += ("0" + bytes[j].toString(16)).slice(-2);
    return out;
  }
  // phone numbers in a crisis reply become tap-to-call links (text nodes only: never HTML)
  function telLinks(node, text) {
    var re = /(\+?\d[\d\s-]{0,14}\d|\b\d{2,}\b)/g, last = 0, m;
    while ((m = re.exec(text))) {
      var digits = m[0].replace(/[^\d+]/g, "");
      if (digits.replace("+", "").length < 2 || digits.length > 16) continue;
      node.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = node.appendChild(el("a", "hamroh-tel", m[0]));
      a.href = "tel:" + digits;
      last = m.index + m[0].length;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
  }
  function hostOf(url) {
    try { return new URL(url).hostname.replace(/^www\./, ""); } catch (e) { return url; }
  }
  function safeUrl(url) { return typeof url === "string" && /^https?:\/\/[^\s<>"'`]+$/i.test(url) ? url : null; }
  function backoff() {
    var ms = Math.min(30000, 1000 * Math.pow(2, S.attempt++));
    return ms / 2 + Math.random() * ms / 2;
  }
  function fmtDate(iso, lang) {
    try {
      var d = new Date(iso + "T00:00:00Z");
      if (isNaN(d.getTime())) return iso;
      var mine = navigator.language || "";  // en-GB writes "14 March", en-US "March 14"
      if (mine.toLowerCase().split("-")[0] === lang) lang = mine;
      return d.toLocaleDateString(lang, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
    } catch (e) { return iso; }
  }

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
  function setToken(token) {
    if (!TOKEN_MODE || typeof token !== "string") return;
    S.token = token;
    store("token", token);
  }

  // ------------------------------------------------------------------ building the widget
  function build() {
    var root = el("div", "hamroh " + (inline ? "hamroh-page" : "hamroh-float"));
    ui.root = root;
    if (!inline) {
      var launcher = el("button", "hamroh-launcher");
      launcher.type = "button";
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-controls", "hamroh-panel");
      var icon = el("span", "hamroh-icon", "\uD83D\uDCAC");
      icon.setAttribute("aria-hidden", "true");
      launcher.appendChild(icon);
      ui.launcherLabel = launcher.appendChild(el("span", "hamroh-sr"));
      launcher.onclick = function () { if (ui.panel.hidden) open(); else close(); };
      ui.launcher = root.appendChild(launcher);
    }
    var panel = el("section", "hamroh-panel");
    panel.id = "hamroh-panel";
    panel.setAttribute("aria-labelledby", "hamroh-title");
    if (!inline) panel.hidden = true;
    ui.panel = root.appendChild(panel);

    var head = panel.appendChild(el("header", "hamroh-head"));
    var titles = head.appendChild(el("div", "hamroh-titles"));
    ui.title = titles.appendChild(el(inline ? "h1" : "h2", "hamroh-title", "Hamroh"));
    ui.title.id = "hamroh-title";
    ui.subtitle = titles.appendChild(el("p", "hamroh-sub"));
    ui.langLabel = head.appendChild(el("label", "hamroh-sr"));
    ui.langLabel.htmlFor = "hamroh-lang";
    ui.select = head.appendChild(el("select", "hamroh-lang"));
    ui.select.id = "hamroh-lang";
    ui.select.onchange = function () { chooseLanguage(ui.select.value); };
    if (!inline) {
      ui.close = head.appendChild(el("button", "hamroh-close", "\u00D7"));
      ui.close.type = "button";
      ui.close.onclick = close;
    }

    ui.status = panel.appendChild(el("p", "hamroh-status"));
    ui.status.setAttribute("role", "status");
    ui.log = panel.appendChild(el("div", "hamroh-log"));
    ui.log.setAttribute("role", "log");
    ui.log.setAttribute("aria-live", "polite");
    ui.log.tabIndex = 0;

    var form = panel.appendChild(el("form", "hamroh-form"));
    form.noValidate = true;
    ui.inputLabel = form.appendChild(el("label", "hamroh-sr"));
    ui.inputLabel.htmlFor = "hamroh-input";
    ui.input = form.appendChild(el("textarea", "hamroh-input"));
    ui.input.id = "hamroh-input";
    ui.input.rows = 2;
    ui.input.maxLength = MAX_CHARS;
    ui.input.onkeydown = function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submit();
      }
    };
    ui.send = form.appendChild(el("button", "hamroh-send"));
    ui.send.type = "submit";
    var arrow = ui.send.appendChild(el("span", "hamroh-arrow", "\u27A4"));
    arrow.setAttribute("aria-hidden", "true");
    ui.sendLabel = ui.send.appendChild(el("span", "hamroh-send-label"));
    form.onsubmit = function (e) { e.preventDefault(); submit(); };

    var tools = panel.appendChild(el("div", "hamroh-tools"));
    ui.human = tools.appendChild(el("button", "hamroh-tool"));
    ui.human.type = "button";
    ui.human.onclick = function () { queue({ type: "command", command: "human" }); };
    ui.del = tools.appendChild(el("button", "hamroh-tool hamroh-del"));
    ui.del.type = "button";
    ui.del.onclick = function () { queue({ type: "command", command: "delete" }); };

    panel.addEventListener("keydown", function (e) {
      if (!inline && (e.key === "Escape" || e.key === "Esc")) close();
    });
    lock(true);
    (inline || document.body).appendChild(root);
  }

  function applyLabels() {
    ui.title.textContent = L("title") || "Hamroh";
    ui.subtitle.textContent = L("subtitle");
    ui.langLabel.textContent = L("language");
    ui.log.setAttribute("aria-label", L("conversation"));
    ui.inputLabel.textContent = L("message_label");
    ui.input.placeholder = S.locked ? L("consent_wait") : L("placeholder");
    ui.sendLabel.textContent = L("send");
    ui.human.textContent = L("human");
    ui.del.textContent = L("delete");
    if (ui.launcher) {
      ui.launcherLabel.textContent = L("open");
      ui.close.setAttribute("aria-label", L("close"));
      ui.close.title = L("close");
    }
    if (S.statusKey) ui.status.textContent = L(S.statusKey);
  }

  function setLang(code) {
    if (S.langs && !S.langs[code]) code = "en";
    S.lang = code;
    store("lang", code);
    var dir = dirOf(code);
    ui.root.setAttribute("lang", code);
    ui.root.setAttribute("dir", dir);
    if (inline) {
      document.documentElement.setAttribute("lang", code);
      document.documentElement.setAttribute("dir", dir);
    }
    ui.select.value = code;
    return getJSON("i18n/" + code + ".json").then(function (labels) {
      if (S.lang !== code) return;
      S.labels = labels;
      applyLabels();
    }, function () { /* keep the previous labels; the icons still work */ });
  }

  function fillLanguages(langs) {
    S.langs = langs;
    Object.keys(langs).forEach(function (code) {
      var option = el("option", null, langs[code].name);
      option.value = code;
      option.setAttribute("lang", code);
      ui.select.appendChild(option);
    });
    ui.select.value = S.lang;
  }

  function firstLanguage() {
    var langs = S.langs || { en: {} }, alias = {};
    Object.keys(langs).forEach(function (code) {
      (langs[code].aliases || []).forEach(function (other) { alias[other] = code; });
    });
    var wanted = [load("lang"), script && script.getAttribute("data-hamroh-lang")];
    (navigator.languages || [navigator.language || ""]).forEach(function (tag) {
      var code = String(tag).toLowerCase().split("-")[0];
      wanted.push(alias[code] || code);
    });
    for (var i = 0; i < wanted.length; i++) if (wanted[i] && langs[wanted[i]]) return wanted[i];
    return "en";
  }

  // before consent the person can still write: a cry for help is answered at once, a question is
  // kept and answered after they agree (the server stores nothing else before consent)
  function lock(locked) {
    S.locked = locked;
    ui.input.placeholder = locked ? L("consent_wait") : L("placeholder");
    if (!locked && S.refocus) {
      S.refocus = false;
      ui.input.focus();
    }
  }

  function setStatus(key) {
    S.statusKey = key;
    ui.status.textContent = key ? L(key) : "";
    ui.status.hidden = !key;
  }

  function open() {
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    begin();
    setTimeout(function () { (S.locked ? ui.select : ui.input).focus(); }, 0);
  }

  function close() {
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  // ------------------------------------------------------------------ the conversation log
  function append(node) {
    ui.log.appendChild(node);
    while (ui.log.childNodes.length > MAX_MESSAGES) ui.log.removeChild(ui.log.firstChild);
    // the start of a long answer (or the consent notice) stays in view, not its last line
    ui.log.scrollTop = Math.max(0, node.offsetTop - 8);
  }

  function note(key) {
    var text = L(key) || L("error");
    if (text) append(el("p", "hamroh-note", text));
  }

  function userBubble(text) {
    var msg = el("div", "hamroh-msg hamroh-me hamroh-sending");
    msg.setAttribute("dir", "auto");
    msg.appendChild(el("span", "hamroh-sr", L("you") + ": "));
    msg.appendChild(el("p", "hamroh-text", text));
    msg.appendChild(el("span", "hamroh-state", L("sending")));
    append(msg);
    return msg;
  }

  function renderReply(f) {
    var kind = /^[a-z_]+$/.test(f.kind || "") ? f.kind : "other";
    if (kind === "consent") {
      Array.prototype.slice.call(ui.log.querySelectorAll(".hamroh-k-consent")).forEach(function (old) {
        ui.log.removeChild(old);
      });
      S.consented = false;
      lock(true);
    } else if (kind !== "error" && kind !== "deleted") {
      S.consented = true;
      lock(false);
    }
    if (!f.fell_back && kind !== "counsellor" && f.lang !== S.lang && (!S.langs || S.langs[f.lang])) {
      if (typeof f.lang === "string" && /^[a-z]{2,3}$/.test(f.lang)) setLang(f.lang);
    }
    var msg = el("div", "hamroh-msg hamroh-bot hamroh-k-" + kind);
    if (typeof f.lang === "string" && /^[a-z]{2,3}$/.test(f.lang)) {
      msg.setAttribute("lang", f.lang);
      msg.setAttribute("dir", dirOf(f.lang));
    }
    msg.appendChild(el("span", "hamroh-sr", L(kind === "counsellor" ? "counsellor" : "bot") + ": "));
    var body = msg.appendChild(el("p", "hamroh-text"));
    if (kind === "crisis") telLinks(body, f.text || ""); else body.textContent = f.text || "";
    var sources = Array.isArray(f.sources) && f.sources.length ? f.sources
      : (f.source_title || f.source_url ? [{ title: f.source_title, url: f.source_url }] : []);
    if (sources.length) {
      var list = msg.appendChild(el("p", "hamroh-src", L("source") + ": "));
      sources.forEach(function (s, i) {
        if (!s) return;
        var url = safeUrl(s.url);
        if (i) list.appendChild(document.createTextNode(" · "));
        if (url) {
          var a = list.appendChild(el("a", null, s.title || hostOf(url)));
          a.href = url;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          a.appendChild(el("span", "hamroh-sr", " (" + L("new_tab") + ")"));
        } else if (s.title) {
          list.appendChild(document.createTextNode(s.title));
        }
      });
    }
    if (typeof f.reviewed_label === "string" && f.reviewed_label) {
      var when = msg.appendChild(el("p", "hamroh-date"));
      var t = when.appendChild(el("time", null, f.reviewed_label));
      if (typeof f.reviewed_on === "string") t.setAttribute("datetime", f.reviewed_on);
    } else if (typeof f.reviewed_on === "string" && /^\d{4}-\d{2}-\d{2}$/.test(f.reviewed_on)) {
      var date = msg.appendChild(el("p", "hamroh-date", L("checked") + ": "));
      var time = date.appendChild(el("time", null, fmtDate(f.reviewed_on, f.lang || S.lang)));
      time.setAttribute("datetime", f.reviewed_on);
    }
    if (f.buttons && f.buttons.length) {
      var group = msg.appendChild(el("div", "hamroh-btns"));
      group.setAttribute("role", "group");
      f.buttons.forEach(function (row) {
        var line = group.appendChild(el("div", "hamroh-row"));
        (row || []).forEach(function (b) {
          if (!b || typeof b.payload !== "string") return;
          var btn = line.appendChild(el("button", "hamroh-btn", b.label));
          btn.type = "button";
          btn.onclick = function () { press(group, btn, b.payload); };
        });
      });
      // on a 360x740 phone the notice is longer than the screen: "I agree" and the languages first
      if (kind === "consent") msg.insertBefore(group, body);
    }
    append(msg);
    if (kind === "deleted") forget(msg);
  }

  function press(group, btn, payload) {
    if (group.getAttribute("data-done")) return;
    group.setAttribute("data-done", "1");
    // aria-disabled keeps keyboard focus where it is (disabled buttons drop it to the page)
    Array.prototype.slice.call(group.querySelectorAll("button")).forEach(function (b) {
      b.setAttribute("aria-disabled", "true");
    });
    btn.setAttribute("aria-pressed", "true");
    btn.className += " hamroh-on";
    var code = /^lang:([a-z]{2,3})$/.exec(payload);
    if (code) setLang(code[1]);
    if (S.locked) S.refocus = true;
    else ui.input.focus();
    queue({ type: "button", payload: payload });
  }

  function submit() {
    var text = ui.input.value.replace(/^\s+|\s+$/g, "");
    if (!text) return;
    if (text.length > MAX_CHARS) { note("too_long"); return; }
    ui.input.value = "";
    var frame = { type: "message", text: text };
    queue(frame, userBubble(text));
  }

  function chooseLanguage(code) {
    setLang(code);
    if (!S.begun) return;
    if (S.consented) queue({ type: "button", payload: "lang:" + code });
    else queue({ type: "command", command: "start" });  // the consent notice again, in this language
  }

  // after "delete my data": nothing of the conversation stays on this device either
  function forget(keep) {
    Array.prototype.slice.call(ui.log.childNodes).forEach(function (node) {
      if (node !== keep) ui.log.removeChild(node);
    });
    S.outbox = [];
    S.bubbles = {};
    S.seen = {};
    S.acks = [];
    S.token = null;
    S.started = false;
    S.consented = false;
    store("token", null);
    store("lang", null);
    http("POST", BASE + "/api/chat/session", { reset: true }, 30000, false).then(function (r) {
      if (r.data && r.data.session) setToken(r.data.session);
    }, function () { /* a new session is issued on the next connection anyway */ }).then(reconnect);
  }

  // ------------------------------------------------------------------ frames out
  function queue(frame, bubble) {
    frame.id = newId();
    frame.lang = S.lang;
    S.outbox.push(frame);
    if (bubble) S.bubbles[frame.id] = bubble;
    transmit(frame);
  }

  function transmit(frame) {
    if (S.mode === "http") pump();
    else wsSend(frame);
  }

  function wsSend(obj) {
    if (!S.ready || !S.ws) return false;
    try { S.ws.send(JSON.stringify(obj)); return true; } catch (e) { return false; }
  }

  function settle(id, failed) {
    for (var i = 0; i < S.outbox.length; i++) {
      if (S.outbox[i].id === id) { S.outbox.splice(i, 1); break; }
    }
    var bubble = S.bubbles[id];
    if (!bubble) return;
    delete S.bubbles[id];
    bubble.className = bubble.className.replace(" hamroh-sending", failed ? " hamroh-failed" : "");
    var state = bubble.querySelector(".hamroh-state");
    if (state && !failed) bubble.removeChild(state);
    else if (state) state.textContent = "";
  }

  // acknowledged replies are marked sent on the server; unacknowledged ones come again
  function ack(id) {
    S.acks.push(id);
    if (S.mode === "ws" && !S.ackTimer) {
      S.ackTimer = setTimeout(function () { S.ackTimer = null; flushAcks(); }, 50);
    }
  }

  function flushAcks() {
    if (S.mode === "ws" && S.ready && S.ws && S.acks.length) wsSend({ type: "ack", ids: S.acks.splice(0, 200) });
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

  // ------------------------------------------------------------------ frames in
  function onFrame(f) {
    if (!f || typeof f !== "object") return;
    if (f.type === "ready") {
      S.ready = true;
      S.attempt = 0;
      setStatus(null);
      flushAcks();
      S.outbox.slice().forEach(transmit);  // resent with the same ids: answered once
      if (!S.started) {
        S.started = true;
        restore();
      }
    } else if (f.type === "session") {
      setToken(f.token);
    } else if (f.type === "reply") {
      if (f.id != null) {
        if (!S.seen[f.id]) {
          S.seen[f.id] = 1;
          renderReply(f);
        }
        ack(f.id);
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
    var frame = null;
    for (var i = 0; i < S.outbox.length; i++) if (S.outbox[i].id === f.id) frame = S.outbox[i];
    if (f.code === "rate_limited" && frame) {
      S.outbox.splice(S.outbox.indexOf(frame), 1);
      if (!S.limitNoted) note("rate_limited");
      S.limitNoted = true;
      setTimeout(function () {
        S.limitNoted = false;
        S.outbox.push(frame);
        transmit(frame);
      }, Math.min(60, f.retry_after || 3) * 1000 + 300);
      return;
    }
    if (f.id) settle(f.id, true);
    if (f.code !== "empty") note(f.code === "too_long" || f.code === "rate_limited" ? f.code : "error");
  }

  // ------------------------------------------------------------------ transports
  function begin() {
    if (S.begun) return;
    S.begun = true;
    S.langsReady.then(connect);  // the first frame says the language
  }

  function connect() {
    if (S.mode === "http" || !window.WebSocket) { useHttp(); return; }
    setStatus("connecting");
    var ws;
    try { ws = new WebSocket(BASE.replace(/^http/, "ws") + "/ws/chat"); } catch (e) { useHttp(); return; }
    S.ws = ws;
    var timer = setTimeout(function () { if (!S.ready) ws.close(); }, 15000);
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "hello", token: TOKEN_MODE ? (S.token || "") : null, lang: S.lang }));
    };
    ws.onmessage = function (e) {
      var f = null;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f && f.type === "ready") S.wsFails = 0;
      onFrame(f);
    };
    ws.onclose = function () {
      clearTimeout(timer);
      if (S.ws !== ws) return;
      var wasReady = S.ready;
      S.ws = null;
      S.ready = false;
      // twice closed before "ready": a proxy or portal that breaks WebSockets; use plain HTTP
      if (!wasReady && ++S.wsFails >= 2) { useHttp(); return; }
      setStatus("offline");
      setTimeout(connect, backoff());
    };
  }

  function reconnect() {
    S.begun = true;
    if (S.mode === "http") {
      S.started = true;
      queue({ type: "command", command: "start" });
      return;
    }
    var old = S.ws;
    S.ws = null;
    S.ready = false;
    if (old) { old.onclose = null; old.close(); }
    connect();
  }

  function useHttp() {
    S.mode = "http";
    S.ready = true;
    S.attempt = 0;
    setStatus(null);
    if (!S.started) {
      S.started = true;
      restore();
    }
    pump();  // polling starts after the first answer: it carries the session (cookie or token)
  }

  function takeAcks() { return S.acks.splice(0, 200); }

  function handleHttp(r) {
    if (!r.data) return;
    if (r.data.session) setToken(r.data.session);
    (r.data.frames || []).forEach(onFrame);
  }

  // one frame at a time, in order; a failed send is retried with the same id
  function pump() {
    if (S.pumping || !S.outbox.length) return;
    S.pumping = true;
    var frame = S.outbox[0];
    var body = {};
    for (var k in frame) if (Object.prototype.hasOwnProperty.call(frame, k)) body[k] = frame[k];
    body.ack = takeAcks();
    http("POST", BASE + "/api/chat/send", body, 30000, true).then(function (r) {
      S.pumping = false;
      S.attempt = 0;
      setStatus(null);
      handleHttp(r);
      if (S.outbox[0] === frame) settle(frame.id, r.status >= 400);
      pump();
      poll();
    }, function () {
      S.pumping = false;
      S.acks = body.ack.concat(S.acks);
      setStatus("offline");
      setTimeout(pump, backoff());
    });
  }

  // long-poll: the server holds the request until a counsellor's reply arrives (or 20 s pass)
  function poll() {
    if (S.polling) return;
    S.polling = true;
    var acks = takeAcks();
    var url = BASE + "/api/chat/poll?wait=20" + (acks.length ? "&ack=" + acks.join(",") : "");
    http("GET", url, null, 35000, true).then(function (r) {
      S.polling = false;
      handleHttp(r);
      setTimeout(poll, r.status === 429 ? 5000 : 50);
    }, function () {
      S.polling = false;
      S.acks = acks.concat(S.acks);
      setStatus("offline");
      setTimeout(poll, backoff());
    });
  }

  // ------------------------------------------------------------------ start
  function start() {
    inline = document.getElementById("hamroh-chat");
    if (!document.querySelector("link[href*='hamroh-chat.css']")) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = BASE + "/static/web/hamroh-chat.css";
      document.head.appendChild(css);
    }
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
})();
