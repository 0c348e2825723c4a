/*
 * State: where the server is, and what the widget remembers between frames: the session token,
 * the language, the frames not yet answered (resent with the same ids after a dropped connection),
 * the reply ids already shown and the acknowledgements still to send. Nothing here touches the page.
 */
var script = document.currentScript || (function () {
  var all = document.querySelectorAll("script[src*='hamroh-chat.js']");
  return all[all.length - 1];
})();
var BASE = ((script && script.getAttribute("data-hamroh-url")) ||
  (script ? script.src.replace(/\/static\/web\/hamroh-chat\.js([?#].*)?$/, "") : "")).replace(/\/+$/, "");
var TOKEN_MODE = false;
try { TOKEN_MODE = new URL(BASE, location.href).origin !== location.origin; } catch (e) { /* same origin */ }

var S = {
  lang: "en", labels: {}, langs: null, outbox: [], bubbles: {}, seen: {}, acks: [], started: false,
  begun: false, consented: false, locked: true, token: load("token"), refocus: false
};

function load(key) {
  try { return window.localStorage.getItem("hamroh." + key); } catch (e) { return null; }
}
function store(key, value) {
  try {
    if (value == null) window.localStorage.removeItem("hamroh." + key);
    else window.localStorage.setItem("hamroh." + key, value);
  } catch (e) { /* private mode: the session lasts as long as the page */ }
}
// direction, names and aliases come from i18n/languages.json, generated from the server's registry
function dirOf(code) { return S.langs && S.langs[code] && S.langs[code].dir === "rtl" ? "rtl" : "ltr"; }
function newId() {
  var bytes = new Uint8Array(12), c = window.crypto || window.msCrypto, out = "";
  if (c && c.getRandomValues) c.getRandomValues(bytes);
  else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  for (var j = 0; j < bytes.length; j++) out += ("0" + bytes[j].toString(16)).slice(-2);
  return out;
}
function setToken(token) {
  if (!TOKEN_MODE || typeof token !== "string") return;
  S.token = token;
  store("token", token);
}

// a frame gets its id here and waits in the outbox until the server has answered it
function enqueue(frame) {
  frame.id = newId();
  frame.lang = S.lang;
  S.outbox.push(frame);
  return frame;
}
function unqueue(id) {
  for (var i = 0; i < S.outbox.length; i++) {
    if (S.outbox[i].id === id) return S.outbox.splice(i, 1)[0];
  }
  return null;
}
// a reply sent again (its acknowledgement was lost) is shown once
function firstSight(id) {
  if (S.seen[id]) return false;
  S.seen[id] = 1;
  return true;
}
function takeAcks() { return S.acks.splice(0, 200); }
function returnAcks(ids) { S.acks = ids.concat(S.acks); }

// after "delete my data": nothing of the conversation stays on this device either
function clearState() {
  S.outbox = [];
  S.bubbles = {};
  S.seen = {};
  S.acks = [];
  S.token = null;
  S.started = false;
  S.consented = false;
  store("token", null);
  store("lang", null);
}
