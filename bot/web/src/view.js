/*
 * View: the page. Builds the launcher and panel, writes the labels in the chosen language and
 * direction, renders replies (sources, dates, buttons, tap-to-call numbers) and the person's own
 * messages. Every text from the server or the user goes in with textContent, never as HTML.
 * What the person does (send, press, choose a language, open) goes to main.js: queue, begin.
 */
var MAX_CHARS = 2000;
var MAX_MESSAGES = 200;
var ui = {};
var inline = null;

function el(tag, cls, text) {
  var node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = String(text);
  return node;
}
function L(key) { return S.labels[key] || ""; }
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
function fmtDate(iso, lang) {
  try {
    var d = new Date(iso + "T00:00:00Z");
    if (isNaN(d.getTime())) return iso;
    var mine = navigator.language || "";  // en-GB writes "14 March", en-US "March 14"
    if (mine.toLowerCase().split("-")[0] === lang) lang = mine;
    return d.toLocaleDateString(lang, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
  } catch (e) { return iso; }
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

// the person's message is no longer "sending": delivered (the mark goes) or failed (it stays, empty)
function markSent(bubble, failed) {
  bubble.className = bubble.className.replace(" hamroh-sending", failed ? " hamroh-failed" : "");
  var state = bubble.querySelector(".hamroh-state");
  if (state && !failed) bubble.removeChild(state);
  else if (state) state.textContent = "";
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

// everything but ``keep`` (the "deleted" confirmation) leaves the log
function clearLog(keep) {
  Array.prototype.slice.call(ui.log.childNodes).forEach(function (node) {
    if (node !== keep) ui.log.removeChild(node);
  });
}
