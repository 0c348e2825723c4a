"""The widget's files and the channel's small building blocks.

Why test files by reading them: the budget (a few tens of KB on 2G), "no external requests" and
"never innerHTML" are promises to MRCs that a careless edit would break silently; the labels must
exist, complete, in all fourteen languages, with right-to-left exactly where the script needs it.
"""

from __future__ import annotations

import json
import re

import pytest

import languages
from bot.channels._web_bundle import bundle_widget
from bot.channels._web_frames import parse_client_frame, safe_url
from bot.channels._web_hub import DeliveryLedger
from bot.channels._web_limits import BucketSpec, RateLimiter
from bot.channels._web_session import SessionSigner, resolve_user_key_function, scoped_message_id
from bot.channels.web import WEB_DIR
from bot.engine import Outgoing
from bot.privacy import user_key
from knowledge_base import LANGUAGES

pytestmark = pytest.mark.unit

RTL = {"ar", "ur", "ckb", "ps", "prs"}


def _code(path: str) -> str:
    return re.sub(r"/\*.*?\*/", "", (WEB_DIR / path).read_text(encoding="utf-8"), flags=re.S)


def test_widget_fits_the_budget_for_slow_networks() -> None:
    size = (WEB_DIR / "hamroh-chat.js").stat().st_size + (WEB_DIR / "hamroh-chat.css").stat().st_size
    assert size <= 40 * 1024, f"widget is {size} bytes; the budget is 40 KB unminified"


def test_widget_renders_text_never_html_and_fetches_nothing_elsewhere() -> None:
    js, css = _code("hamroh-chat.js"), _code("hamroh-chat.css")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert not re.search(r"https?://", js), "the widget must only talk to its own server (BASE)"
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_the_language_list_is_the_one_the_registry_generates() -> None:
    """The widget's languages.json is generated (``hamroh web languages``), never edited by hand."""
    checked_in = (WEB_DIR / "i18n/languages.json").read_text(encoding="utf-8")
    assert checked_in == languages.widget_json(), "run 'hamroh web languages' and commit the file"


def test_the_widget_script_is_the_one_built_from_its_modules() -> None:
    """hamroh-chat.js is generated from bot/web/src (``hamroh web bundle``), never edited by hand."""
    checked_in = (WEB_DIR / "hamroh-chat.js").read_text(encoding="utf-8")
    assert checked_in == bundle_widget(WEB_DIR / "src"), "run 'hamroh web bundle' and commit the file"
    outside = [line for line in checked_in.splitlines() if line and not line.startswith((" ", "/*"))]
    assert outside == ["(function () {", "})();"], "the modules go inside one function: nothing global"


def test_the_widget_takes_direction_and_aliases_from_the_language_list() -> None:
    js = _code("hamroh-chat.js")
    for copy in ("ar: 1", '"prs"', '"ckb"', "rtl: "):  # no second list of codes, RTL languages or aliases
        assert copy not in js, copy
    assert ".dir" in js and ".aliases" in js


def test_labels_exist_for_every_language_with_the_same_keys() -> None:
    index = json.loads((WEB_DIR / "i18n/languages.json").read_text(encoding="utf-8"))
    assert list(index) == list(LANGUAGES)
    assert {code for code, meta in index.items() if meta["dir"] == "rtl"} == RTL
    assert index["prs"]["aliases"] == ["fa"] and index["ckb"]["aliases"] == ["ku"]
    english = json.loads((WEB_DIR / "i18n/en.json").read_text(encoding="utf-8"))
    for code in LANGUAGES:
        labels = json.loads((WEB_DIR / f"i18n/{code}.json").read_text(encoding="utf-8"))
        assert labels.keys() == english.keys(), code
        assert all(isinstance(v, str) and v.strip() for v in labels.values()), code
        if code != "en":
            untranslated = [k for k, v in labels.items() if v == english[k] and k not in ("title", "bot")]
            assert not untranslated, (code, untranslated)


def test_only_web_links_become_links() -> None:
    assert safe_url("https://www.gov.uz/ru") == "https://www.gov.uz/ru"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<b>", "//evil.example",
                "https://x.example/\"><img src=x>", "ftp://files.example", "", None):
        assert safe_url(bad) is None, bad


def test_session_tokens_cannot_be_forged_or_guessed() -> None:
    signer = SessionSigner.from_secret("s" * 32)
    sid, token = signer.issue()
    assert signer.verify(token) == sid and len(sid) >= 43
    assert signer.verify(sid) is None and signer.verify(token + "x") is None
    assert signer.verify("a" * 43 + "." + token.split(".")[1]) is None
    assert SessionSigner.from_secret("t" * 32).verify(token) is None
    assert signer.issue()[0] != sid


def test_user_keys_match_the_rest_of_the_application() -> None:
    key = resolve_user_key_function("k" * 32)
    assert key("session-1") == user_key("web", "session-1", "k" * 32)
    assert scoped_message_id(key("a"), "msg-0001") != scoped_message_id(key("b"), "msg-0001")
    with pytest.raises(ValueError):
        resolve_user_key_function("")


def test_token_bucket_refills_and_refuses_without_consuming() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    spec = BucketSpec(rate=1.0, burst=2)
    assert [limiter.take([("s", "a", spec)]) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.take([("s", "a", spec)]) == pytest.approx(1.0)
    now[0] = 1.0
    assert limiter.take([("s", "a", spec)]) == 0.0
    assert limiter.take([("s", "b", spec)]) == 0.0  # another key has its own bucket
    tight = BucketSpec(rate=0.0, burst=1)
    assert limiter.take([("s", "c", spec), ("ip", "x", tight)]) == 0.0
    assert limiter.take([("s", "c", spec), ("ip", "x", tight)]) > 0
    now[0] = 10.0
    assert limiter.take([("s", "c", spec)]) == 0.0 and limiter.take([("s", "c", spec)]) == 0.0


def test_the_limiter_forgets_the_least_recent_key_which_only_makes_it_lenient() -> None:
    limiter = RateLimiter(max_keys=2, clock=lambda: 0.0)
    once = BucketSpec(rate=0.0, burst=1)
    assert limiter.take([("s", "a", once)]) == 0.0 and limiter.take([("s", "a", once)]) > 0
    limiter.take([("s", "b", once)])
    limiter.take([("s", "c", once)])  # a third key: "a", used least recently, is forgotten
    assert limiter.take([("s", "a", once)]) == 0.0
    assert limiter.take([("s", "c", once)]) > 0  # the recent ones keep their state


def test_a_delivered_reply_is_acknowledged_only_by_its_own_user_and_the_ledger_is_bounded() -> None:
    ledger = DeliveryLedger(size=2)
    ledger.note([Outgoing(1, "alice", "web", None, "a"), Outgoing(2, "bob", "web", None, "b")])
    assert ledger.claim("bob", [1]) == [] and ledger.claim("alice", [1, 1]) == [1]
    assert ledger.claim("alice", [1]) == []  # claimed once
    ledger.note([Outgoing(3, "alice", "web", None, "c"), Outgoing(4, "alice", "web", None, "d")])
    assert ledger.claim("bob", [2]) == []  # the oldest delivery was forgotten: it is simply sent again
    assert ledger.claim("alice", [3, 4]) == [3, 4]


def test_frames_accept_known_languages_only() -> None:
    frame = parse_client_frame({"type": "command", "id": "abcdefgh", "command": "start", "lang": "ckb"},
                               max_text_chars=10, languages=set(LANGUAGES))
    assert frame.lang == "ckb"
    frame = parse_client_frame({"type": "command", "id": "abcdefgh", "command": "start", "lang": "xx"},
                               max_text_chars=10, languages=set(LANGUAGES))
    assert frame.lang is None
