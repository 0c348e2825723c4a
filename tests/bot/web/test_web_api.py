"""The web channel over its two transports (WebSocket and HTTP fallback), against the fake engine.

Each test is something a person on a phone would notice: the consent notice comes first, an answer
shows its source and date, a resend after a dropped connection is not answered twice, a counsellor's
reply arrives without reloading, a flood is refused politely, and nothing private reaches the logs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from bot.channels.web import BucketSpec, WebLimits

from .fake_engine import REVIEWED, SOURCE_URL, FakeConversation

pytestmark = pytest.mark.unit

Frame = dict[str, Any]


def exchange(ws: WebSocketTestSession, frame: Frame) -> list[Frame]:
    """Send one frame; collect what comes back up to its ``handled`` (or ``error``) frame."""
    ws.send_json(frame)
    out = []
    while True:
        got = ws.receive_json()
        out.append(got)
        if got["type"] in ("handled", "error") and got.get("id") == frame.get("id"):
            return out
        assert len(out) < 50, out


def replies(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "reply"]


def hello(ws: WebSocketTestSession, **extra: Any) -> list[Frame]:
    ws.send_json({"type": "hello", "lang": "en", **extra})
    frames = [ws.receive_json()]
    while frames[-1]["type"] != "ready":
        frames.append(ws.receive_json())
    return frames


def consent(ws: WebSocketTestSession, lang: str = "en") -> Frame:
    """Start, read the consent notice, pick a language; return the (acknowledged) welcome."""
    start = exchange(ws, {"type": "command", "id": "start-0001", "command": "start"})
    assert [r["kind"] for r in replies(start)] == ["consent"]
    welcome = replies(exchange(ws, {"type": "button", "id": "lang-0001", "payload": f"lang:{lang}"}))[0]
    ws.send_json({"type": "ack", "ids": [welcome["id"]]})
    return welcome


def cookie_client(client: TestClient) -> TestClient:
    assert client.post("/api/chat/session").status_code == 200
    return client


# ------------------------------------------------------------------ pages and files
def test_page_loads_the_widget_with_the_one_line_embed_and_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert ('<script src="static/web/hamroh-chat.js" data-hamroh-url="http://testserver" defer></script>'
            in page.text)
    assert 'id="hamroh-chat"' in page.text and "__HAMROH_URL__" not in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    demo = client.get("/demo")
    assert ('&lt;script src="http://testserver/static/web/hamroh-chat.js" data-hamroh-url="http://testserver" '
            'defer&gt;&lt;/script&gt;') in demo.text
    assert 'id="hamroh-chat"' not in demo.text  # the floating button, as on an MRC website


def test_static_files_are_compressed_revalidated_and_confined(client: TestClient) -> None:
    js = client.get("/static/web/hamroh-chat.js", headers={"accept-encoding": "gzip"})
    assert js.status_code == 200 and js.headers["content-encoding"] == "gzip"
    assert js.headers["content-type"].startswith("text/javascript")
    assert int(js.headers["content-length"]) < len(js.content) / 2  # gzip more than halves it on the wire
    again = client.get("/static/web/hamroh-chat.js", headers={"if-none-match": js.headers["etag"]})
    assert again.status_code == 304 and not again.content
    for response in (js, again):  # an MRC website's page loads them; browsers must not guess types
        assert response.headers["access-control-allow-origin"] == "*", response.status_code
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "public, max-age=3600"
        assert response.headers["vary"] == "Accept-Encoding"
    labels = client.get("/static/web/i18n/ar.json")
    assert labels.json()["send"] == "إرسال" and labels.headers["access-control-allow-origin"] == "*"
    for path in ("../channels/web.py", "..%2Fchannels%2Fweb.py", "index.html", "nope.js", "i18n/../../app.py",
                 "src/main.js"):  # the widget's sources are built into hamroh-chat.js, not served
        assert client.get(f"/static/web/{path}").status_code == 404, path


# ------------------------------------------------------------------ a conversation over the WebSocket
def test_websocket_conversation_consent_then_answer_with_source_date_and_feedback(
        client: TestClient, fake: FakeConversation) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        assert hello(ws)[-1] == {"type": "ready"}
        start = exchange(ws, {"type": "command", "id": "start-0001", "command": "start", "lang": "ar"})
        notice = replies(start)[0]
        assert notice["kind"] == "consent" and notice["id"] is None and notice["lang"] == "ar"
        payloads = [b["payload"] for row in notice["buttons"] for b in row]
        assert "lang:en" in payloads and "lang:prs" in payloads and len(payloads) == 14
        assert start[-1] == {"type": "handled", "id": "start-0001"}

        welcome = replies(exchange(ws, {"type": "button", "id": "lang-0001", "payload": "lang:en"}))[0]
        assert welcome["kind"] == "welcome" and isinstance(welcome["id"], int)

        frames = exchange(ws, {"type": "message", "id": "q-00000001", "text": "How do I get a work permit?"})
        answer = replies(frames)[0]
        assert answer["kind"] == "answer" and answer["in_reply_to"] == "q-00000001"
        assert answer["source_url"] == SOURCE_URL and answer["source_title"]
        assert answer["reviewed_on"] == REVIEWED.isoformat()
        assert [[b["payload"] for b in row] for row in answer["buttons"]] == [["fb:up:patent", "fb:down:patent"],
                                                                              ["human:ask"]]
        thanks = replies(exchange(ws, {"type": "button", "id": "fb-000001", "payload": "fb:up:patent"}))[0]
        assert thanks["kind"] == "feedback"

        assert fake.unsent()  # nothing is marked sent before the browser says it has it
        ws.send_json({"type": "ack", "ids": [welcome["id"], answer["id"], thanks["id"]]})
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
    assert fake.unsent() == [] and sorted(fake.marked) == sorted([welcome["id"], answer["id"], thanks["id"]])
    keys = {m.user_key for m in fake.handled}
    assert len(keys) == 1 and re.fullmatch(r"[0-9a-f]{32}", keys.pop())
    assert all(m.channel == "web" and m.message_id.startswith("w:") for m in fake.handled)
    assert "q-00000001" not in {m.message_id for m in fake.handled}  # scoped to the sender


def test_resending_a_message_after_a_dropped_connection_is_answered_once(
        client: TestClient, fake: FakeConversation) -> None:
    cookie_client(client)
    question = {"type": "message", "id": "q-resend-01", "text": "patent price?"}
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        consent(ws)
        first = replies(exchange(ws, question))
    assert len(first) == 1  # the connection dies before the phone acknowledges it
    with client.websocket_connect("/ws/chat") as ws:  # same cookie: same person
        hello(ws)
        second = replies(exchange(ws, question))
        assert [f["id"] for f in second] == [first[0]["id"]]  # the stored reply again, not a new answer
        ws.send_json({"type": "ack", "ids": [first[0]["id"]]})
        third = exchange(ws, question)
        assert third == [{"type": "handled", "id": "q-resend-01"}]  # fully delivered: nothing more
    answers = [o for o in fake.unsent() if o.reply.kind == "answer"]
    assert answers == [] and first[0]["id"] in fake.marked
    # the same client id from someone else is their own message, answered for them
    other = TestClient(client.app)
    with other.websocket_connect("/ws/chat") as ws:
        hello(ws)
        consent(ws)
        assert replies(exchange(ws, question))[0]["kind"] == "answer"


def test_counsellor_reply_arrives_live_only_for_its_user(client: TestClient, fake: FakeConversation) -> None:
    other = TestClient(client.app)
    with client.websocket_connect("/ws/chat") as ws, other.websocket_connect("/ws/chat") as ws_b:
        hello(ws)
        consent(ws)
        hello(ws_b)
        consent(ws_b)
        user_key = fake.handled[0].user_key
        outbox_id = fake.inject_counsellor(user_key, "Bring your passport on Monday.")
        frame = ws.receive_json()
        assert frame["type"] == "reply" and frame["kind"] == "counsellor" and frame["id"] == outbox_id
        assert "Bring your passport" in frame["text"]
        # someone else neither receives it nor can acknowledge it away
        ws_b.send_json({"type": "ack", "ids": [outbox_id]})
        time.sleep(0.2)
        ws_b.send_json({"type": "ping"})
        assert ws_b.receive_json() == {"type": "pong"}
        assert outbox_id not in fake.marked
        ws.send_json({"type": "ack", "ids": [outbox_id]})
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
    assert outbox_id in fake.marked


# ------------------------------------------------------------------ limits and bad input
def test_flooding_gets_a_polite_refusal_and_nothing_reaches_the_engine(
        make_client: Any, fake: FakeConversation) -> None:
    client = make_client(limits=WebLimits(session=BucketSpec(rate=0.0, burst=3)))
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        for i in range(3):
            assert exchange(ws, {"type": "command", "id": f"flood-{i:04d}", "command": "help"})[-1]["type"] == "handled"
        refused = exchange(ws, {"type": "message", "id": "flood-9999", "text": "one more"})
        assert refused == [{"type": "error", "code": "rate_limited", "id": "flood-9999", "retry_after": 3600.0}]
    assert len(fake.handled) == 3 and all(m.text != "one more" for m in fake.handled)
    http = client.post("/api/chat/send", json={"type": "message", "id": "flood-http-1", "text": "hi"})
    assert http.status_code == 200  # a new session over HTTP has its own bucket
    for _ in range(3):
        http = client.post("/api/chat/send", json={"type": "message", "id": "flood-http-2", "text": "hi"})
    assert http.status_code == 429 and int(http.headers["retry-after"]) > 0
    assert http.json()["frames"][0]["code"] == "rate_limited"


def test_one_address_cannot_flood_through_many_sessions(make_client: Any, fake: FakeConversation) -> None:
    client = make_client(limits=WebLimits(ip=BucketSpec(rate=0.0, burst=2)))
    codes = []
    for i in range(3):
        fresh = TestClient(client.app)  # a new anonymous session each time, same address
        codes.append(fresh.post("/api/chat/send", json={"type": "command", "id": f"ip-{i:06d}",
                                                        "command": "start"}).status_code)
    assert codes == [200, 200, 429] and len(fake.handled) == 2


def test_message_size_limit(client: TestClient, fake: FakeConversation) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        consent(ws)
        before = len(fake.handled)
        too_long = exchange(ws, {"type": "message", "id": "long-0001", "text": "a" * 2001})
        assert too_long == [{"type": "error", "code": "too_long", "id": "long-0001"}]
        assert len(fake.handled) == before
        ok = replies(exchange(ws, {"type": "message", "id": "long-0002", "text": "я" * 2000}))
        assert ok[0]["kind"] == "answer"
        ws.send_text("x" * 20_000)
        assert ws.receive_json()["code"] == "too_long"
    response = client.post("/api/chat/send", json={"type": "message", "id": "long-0003", "text": "b" * 2001})
    assert response.status_code == 413 and response.json()["frames"][0]["code"] == "too_long"
    huge = client.post("/api/chat/send", content=b"{" + b" " * 40_000 + b"}",
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413


def test_malformed_frames_are_refused_and_the_connection_survives(client: TestClient, fake: FakeConversation) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        for bad in ("not json", "[1,2]", '{"type":"command","id":"bad-00001","command":"rm -rf"}',
                    '{"type":"message","id":"no","text":"short id"}', '{"type":"button","id":"bad-00002"}',
                    '{"type":"message","id":"bad-00003","text":"   "}'):
            ws.send_text(bad)
            assert ws.receive_json()["type"] == "error", bad
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["code"] == "bad_frame"
        assert replies(exchange(ws, {"type": "command", "id": "good-0001", "command": "start"}))[0]["kind"] == "consent"
    assert len(fake.handled) == 1


def test_a_websocket_must_say_hello_first(client: TestClient, fake: FakeConversation) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"type": "message", "id": "early-0001", "text": "hi"})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008 and fake.handled == []


def test_engine_failure_is_an_apology_not_a_dead_chat(client: TestClient, fake: FakeConversation) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        fake.fail_next = True
        assert exchange(ws, {"type": "command", "id": "fail-0001", "command": "start"}) == [
            {"type": "error", "code": "error", "id": "fail-0001"}]
        assert replies(exchange(ws, {"type": "command", "id": "fail-0001", "command": "start"}))[0]["kind"] == "consent"


# ------------------------------------------------------------------ HTTP fallback
def test_http_fallback_conversation_with_acknowledgements(client: TestClient, fake: FakeConversation) -> None:
    def send(frame: Frame) -> list[Frame]:
        response = client.post("/api/chat/send", json=frame)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        return response.json()["frames"]

    start = replies(send({"type": "command", "id": "h-start-01", "command": "start", "lang": "ru"}))
    assert start[0]["kind"] == "consent"
    assert "hamroh_web" in client.cookies  # the session cookie was issued with the first answer
    welcome = replies(send({"type": "button", "id": "h-lang-001", "payload": "lang:en"}))[0]
    answer_frames = send({"type": "message", "id": "h-q-000001", "text": "work permit", "ack": [welcome["id"]]})
    answer = replies(answer_frames)[0]
    assert answer["source_url"] == SOURCE_URL and answer_frames[-1] == {"type": "handled", "id": "h-q-000001"}
    assert welcome["id"] in fake.marked
    again = client.get("/api/chat/poll").json()["frames"]  # unacknowledged: offered again
    assert [f["id"] for f in again] == [answer["id"]]
    assert client.get(f"/api/chat/poll?ack={answer['id']}").json()["frames"] == []
    assert fake.unsent() == []
    duplicate = send({"type": "message", "id": "h-q-000001", "text": "work permit"})
    assert duplicate == [{"type": "handled", "id": "h-q-000001"}]


def test_long_poll_returns_a_counsellor_reply_as_soon_as_it_is_written(
        client: TestClient, fake: FakeConversation) -> None:
    client.post("/api/chat/send", json={"type": "button", "id": "lp-lang-01", "payload": "lang:en"})
    user_key = fake.handled[0].user_key
    welcome_id = fake.unsent()[0].id
    assert client.get(f"/api/chat/poll?ack={welcome_id}").json()["frames"] == []
    result: dict[str, Any] = {}

    def long_poll() -> None:
        result["frames"] = client.get("/api/chat/poll?wait=5").json()["frames"]

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.3)
    outbox_id = fake.inject_counsellor(user_key, "We found an interpreter for you.")
    waiter.join(10)
    assert [f["id"] for f in result["frames"]] == [outbox_id]
    assert result["frames"][0]["kind"] == "counsellor"


def test_embedded_on_an_mrc_website_the_session_is_a_token(make_client: Any, fake: FakeConversation) -> None:
    client = make_client(allowed_origins=("https://mrc.example",))
    site = {"origin": "https://mrc.example"}
    preflight = client.options("/api/chat/send", headers={**site, "access-control-request-method": "POST"})
    assert preflight.status_code == 204 and "x-hamroh-session" in preflight.headers["access-control-allow-headers"]
    first = client.post("/api/chat/send", headers=site,
                        json={"type": "command", "id": "t-start-01", "command": "start"})
    token = first.json()["session"]
    assert first.headers["access-control-allow-origin"] == "https://mrc.example"
    assert "set-cookie" not in first.headers  # third-party cookies: not relied upon, not set
    client.post("/api/chat/send", headers={**site, "x-hamroh-session": token},
                json={"type": "button", "id": "t-lang-001", "payload": "lang:en"})
    assert fake.handled[0].user_key == fake.handled[1].user_key  # the token carried the session
    forged = client.post("/api/chat/send", headers={**site, "x-hamroh-session": token[:-2] + "xx"},
                         json={"type": "command", "id": "t-start-02", "command": "start"})
    assert forged.json()["session"] != token and fake.handled[2].user_key != fake.handled[0].user_key
    evil = {"origin": "https://evil.example"}
    assert client.post("/api/chat/send", headers=evil, json={"type": "command", "id": "t-evil-01",
                                                             "command": "start"}).status_code == 403
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/chat", headers=evil) as ws:
        ws.receive_json()
    with client.websocket_connect("/ws/chat", headers=site) as ws:
        frames = hello(ws, token=token)
        assert frames == [{"type": "ready"}]
        exchange(ws, {"type": "command", "id": "t-start-03", "command": "start"})
    assert fake.handled[-1].user_key == fake.handled[0].user_key
    assert len(fake.handled) == 4


def test_session_cookie_is_httponly_lax_and_secure_when_configured(make_client: Any, fake: FakeConversation) -> None:
    plain = make_client().post("/api/chat/session").headers["set-cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    secure = make_client(secure_cookies=True).post("/api/chat/session").headers["set-cookie"]
    assert "HttpOnly" in secure and "SameSite=Lax" in secure and "Secure" in secure
    over_https = TestClient(make_client().app, base_url="https://testserver").post("/api/chat/session")
    assert "Secure" in over_https.headers["set-cookie"]  # HTTPS (or a trusted proxy's) is detected


def test_a_cookie_is_not_honoured_from_another_website(client: TestClient, fake: FakeConversation) -> None:
    cookie_client(client)
    client.post("/api/chat/send", json={"type": "command", "id": "c-start-01", "command": "start"})
    client.post("/api/chat/send", headers={"origin": "https://other.example"},
                json={"type": "command", "id": "c-start-02", "command": "start"})
    assert fake.handled[0].user_key != fake.handled[1].user_key


def test_delete_my_data_then_a_fresh_session(client: TestClient, fake: FakeConversation) -> None:
    cookie_client(client)
    old_cookie = client.cookies["hamroh_web"]
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        consent(ws)
        confirm = replies(exchange(ws, {"type": "command", "id": "del-00001", "command": "delete"}))[0]
        assert confirm["kind"] == "delete_confirm"
        assert [b["payload"] for b in confirm["buttons"][0]] == ["delete:yes", "delete:no"]
        deleted = replies(exchange(ws, {"type": "button", "id": "del-00002", "payload": "delete:yes"}))[0]
        assert deleted["kind"] == "deleted" and deleted["id"] is None
    assert fake.users == {} and fake.unsent() == []
    client.post("/api/chat/session", json={"reset": True})
    assert client.cookies["hamroh_web"] != old_cookie


def test_logs_hold_no_texts_tokens_or_keys(client: TestClient, fake: FakeConversation,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "my passport number is AB1234567"
    with client.websocket_connect("/ws/chat") as ws:
        hello(ws)
        consent(ws)
        exchange(ws, {"type": "message", "id": "log-00001", "text": secret_text})
        fake.fail_next = True
        exchange(ws, {"type": "message", "id": "log-00002", "text": secret_text})
    response = client.post("/api/chat/send", headers={"origin": "https://mrc.example"},
                           json={"type": "message", "id": "log-00003", "text": secret_text})
    token = response.json()["session"]
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records  # the channel does log (counts and kinds)
    for private in (secret_text, "AB1234567", token, token.split(".")[0], fake.handled[0].user_key):
        assert private not in logged
