"""The web chat in real headless Chromium, as a migrant on a phone would use it.

A whole conversation (consent, language, question, answer with source and date, 👍), a counsellor's
reply arriving without a reload, Arabic laid out right to left, an XSS payload shown as plain text,
the widget embedded on another website where WebSockets are blocked (token session, HTTP
fallback), the "talk to a counsellor" and "delete my data" buttons, a dropped connection, and a
flood refused in the user's own language. The browser is shared by the module; each test gets a
fresh server and fake engine. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from bot.channels.web import BucketSpec, WebLimits, create_web_router
from bot.net import free_port

from .conftest import SECRET
from .fake_engine import SOURCE_URL, FakeConversation

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")



class _Server:
    """uvicorn on its own thread: the web router, plus a page standing in for an MRC website."""

    def __init__(self, engine: FakeConversation, limits: WebLimits | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        app = FastAPI()
        app.include_router(create_web_router(engine, key_secret=SECRET, poll_interval=0.1, limits=limits))
        base = self.base

        @app.get("/mrc-site")
        async def mrc_site() -> HTMLResponse:
            # served as http://localhost:PORT: another origin than the chat's http://127.0.0.1:PORT
            return HTMLResponse(f"<!doctype html><html lang=en><title>MRC</title><h1>Migrant Resource Centre</h1>"
                                f'<script src="{base}/static/web/hamroh-chat.js" data-hamroh-url="{base}" defer>'
                                "</script></html>")

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="web-chat-server", daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("the web chat server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def fake() -> FakeConversation:
    return FakeConversation()


@pytest.fixture
def server(fake: FakeConversation) -> Iterator[_Server]:
    with _Server(fake) as running:
        yield running


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., tuple[Any, list[str]]]]:
    """``open_page(url, locale=...)`` → (page, dialogs seen); contexts are closed afterwards."""
    contexts = []

    def make(url: str, locale: str = "en-GB", viewport: dict[str, int] | None = None) -> tuple[Any, list[str]]:
        context = browser.new_context(locale=locale, viewport=viewport or {"width": 420, "height": 820})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        return page, dialogs

    yield make
    for context in contexts:
        context.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _consent(page: Any, language: str = "English") -> None:
    page.locator(".hamroh-k-consent").wait_for()
    # the person may write before agreeing (a cry for help is answered at once); the notice says why
    assert page.locator("#hamroh-input").is_enabled()
    consent = page.locator(".hamroh-k-consent")
    box = consent.get_by_role("button", name=language).bounding_box()
    assert box is not None
    page.locator(".hamroh-k-consent").get_by_role("button", name=language).click()
    page.locator(".hamroh-k-welcome").wait_for()
    sync_api.expect(page.locator("#hamroh-input")).to_be_enabled()


def _ask(page: Any, text: str) -> Any:
    answers = page.locator(".hamroh-k-answer")
    before = answers.count()
    box = page.locator("#hamroh-input")
    box.fill(text)
    box.press("Enter")
    sync_api.expect(answers).to_have_count(before + 1)
    return answers.last


def test_a_whole_conversation_with_source_date_and_feedback(server: _Server, fake: FakeConversation,
                                                            open_page: Callable[..., Any]) -> None:
    page, dialogs = open_page(server.base + "/")
    log = page.get_by_role("log")
    assert log.get_attribute("aria-live") == "polite"
    page.locator(".hamroh-k-consent").wait_for()
    sync_api.expect(page.locator("#hamroh-input")).to_have_attribute("placeholder",
                                                                    "Choose your language to agree and continue.")
    _consent(page)
    sync_api.expect(page.get_by_label("Your message")).to_be_focused()  # straight back to writing

    answer = _ask(page, "How do I get a work permit?")
    sync_api.expect(page.locator(".hamroh-me .hamroh-text")).to_have_text("How do I get a work permit?")
    link = answer.get_by_role("link")
    assert link.get_attribute("href") == SOURCE_URL
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    sync_api.expect(answer.locator(".hamroh-src")).to_contain_text("Source: Work permit (patent)")
    sync_api.expect(answer.locator("time[datetime='2025-03-14']")).to_have_text("14 March 2025")

    answer.get_by_role("button", name="👍").click()
    page.locator(".hamroh-k-feedback").wait_for()
    assert answer.get_by_role("button", name="👍").get_attribute("aria-pressed") == "true"
    assert answer.get_by_role("button", name="👎").get_attribute("aria-disabled") == "true"
    assert page.locator(".hamroh-sending").count() == 0
    assert _eventually(lambda: fake.unsent() == []), "every reply shown was acknowledged and marked sent"
    assert dialogs == []
    _shot(page, "web-conversation.png")


def test_a_counsellor_reply_arrives_live(server: _Server, fake: FakeConversation,
                                         open_page: Callable[..., Any]) -> None:
    page, _ = open_page(server.base + "/")
    _consent(page)
    user_key = fake.handled[-1].user_key
    outbox_id = fake.inject_counsellor(user_key, "Please bring your passport to the centre on Monday.")
    bubble = page.locator(".hamroh-k-counsellor")
    sync_api.expect(bubble).to_contain_text("Please bring your passport to the centre on Monday.")
    assert _eventually(lambda: outbox_id in fake.marked)
    page.locator("#hamroh-input").focus()  # the reply did not steal focus from the text box
    _shot(page, "web-counsellor-reply.png")


def test_arabic_is_laid_out_right_to_left(server: _Server, fake: FakeConversation,
                                          open_page: Callable[..., Any]) -> None:
    page, _ = open_page(server.base + "/", locale="ar")
    notice = page.locator(".hamroh-k-consent")
    sync_api.expect(notice).to_contain_text("مرحبًا")  # the consent notice already in the browser's language
    _consent(page, "العربية")
    answer = _ask(page, "كيف أحصل على تصريح عمل؟")
    sync_api.expect(answer).to_contain_text("تصريح عمل")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    for selector in (".hamroh-log", ".hamroh-form", ".hamroh-k-answer"):
        direction = page.locator(selector).last.evaluate("e => getComputedStyle(e).direction")
        assert direction == "rtl", selector
    sync_api.expect(page.locator("#hamroh-input")).to_have_attribute("placeholder", "اكتب سؤالك…")
    sync_api.expect(page.locator(".hamroh-send")).to_contain_text("إرسال")
    sync_api.expect(answer.locator(".hamroh-src")).to_contain_text("المصدر")
    # my own message sits on the reading-start side's opposite: the left in Arabic
    mine = page.locator(".hamroh-me").last.bounding_box()
    theirs = answer.bounding_box()
    assert mine is not None and theirs is not None and mine["x"] < theirs["x"]
    _shot(page, "web-arabic-rtl.png")


def test_an_xss_payload_is_shown_as_text(server: _Server, fake: FakeConversation,
                                         open_page: Callable[..., Any]) -> None:
    page, dialogs = open_page(server.base + "/")
    _consent(page)
    answer = _ask(page, XSS)
    sync_api.expect(page.locator(".hamroh-me .hamroh-text").last).to_have_text(XSS)
    sync_api.expect(answer.locator(".hamroh-text")).to_contain_text(XSS)  # the engine's echo, also as text
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0 and dialogs == []
    _shot(page, "web-xss-as-text.png")


def test_embedded_on_another_site_with_websockets_blocked(server: _Server, fake: FakeConversation,
                                                          open_page: Callable[..., Any]) -> None:
    page, dialogs = open_page(f"http://localhost:{server.port}/mrc-site")
    blocked: list[str] = []

    def refuse(ws: Any) -> None:
        blocked.append(ws.url)
        ws.close()

    page.route_web_socket("**/ws/chat", refuse)
    launcher = page.locator(".hamroh-launcher")
    sync_api.expect(launcher).to_have_attribute("aria-expanded", "false")
    assert fake.handled == []  # nothing is contacted until the visitor opens the chat
    launcher.click()
    sync_api.expect(launcher).to_have_attribute("aria-expanded", "true")
    _consent(page)
    answer = _ask(page, "Is my recruitment agency licensed?")
    sync_api.expect(answer.get_by_role("link")).to_have_attribute("href", SOURCE_URL)
    outbox_id = fake.inject_counsellor(fake.handled[-1].user_key, "Yes, it is on the official list.")
    sync_api.expect(page.locator(".hamroh-k-counsellor")).to_contain_text("official list")
    assert _eventually(lambda: outbox_id in fake.marked)
    assert len(blocked) >= 2  # the widget tried WebSockets, then fell back to HTTP
    assert page.evaluate("localStorage.getItem('hamroh.token')")  # a token, not a third-party cookie
    assert not [c for c in page.context.cookies() if c["name"] == "hamroh_web"]
    assert {m.user_key for m in fake.handled} == {fake.handled[0].user_key}
    _shot(page, "web-embedded-http-fallback.png")
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#hamroh-panel")).to_be_hidden()
    sync_api.expect(launcher).to_be_focused()
    assert dialogs == []


def test_counsellor_and_delete_my_data_buttons(server: _Server, fake: FakeConversation,
                                               open_page: Callable[..., Any]) -> None:
    page, dialogs = open_page(server.base + "/")
    _consent(page)
    _ask(page, "Can I change my employer?")
    first_key = fake.handled[-1].user_key
    page.locator(".hamroh-tools").get_by_role("button", name="Talk to a counsellor").click()
    sync_api.expect(page.locator(".hamroh-k-ticket_opened")).to_contain_text("A counsellor will reply to you here.")
    assert fake.handled[-1].command == "human"

    page.get_by_role("button", name="Delete my data").click()
    confirm = page.locator(".hamroh-k-delete_confirm")
    confirm.get_by_role("button", name="Yes, erase everything").click()
    sync_api.expect(page.locator(".hamroh-k-deleted")).to_contain_text("Everything about you has been erased.")
    assert fake.users == {} and fake.unsent() == []
    # nothing of the old conversation stays on the screen, and a fresh anonymous session starts
    # with the consent notice again: nothing is stored until the visitor agrees anew
    sync_api.expect(page.locator(".hamroh-k-consent")).to_have_count(1)
    assert page.locator(".hamroh-me").count() == 0 and page.locator(".hamroh-k-answer").count() == 0
    assert fake.handled[-1].command == "start" and fake.handled[-1].user_key != first_key
    assert dialogs == []
    _shot(page, "web-deleted.png")


def test_a_dropped_connection_reconnects_and_nothing_is_lost(server: _Server, fake: FakeConversation,
                                                              open_page: Callable[..., Any]) -> None:
    sockets: list[Any] = []

    def relay(ws: Any) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    page, _ = open_page("about:blank")
    page.route_web_socket("**/ws/chat", relay)
    page.goto(server.base + "/")
    _consent(page)
    sockets[-1].close()  # the network drops the socket (a phone changing cells)
    sync_api.expect(page.locator(".hamroh-status")).to_have_text("No connection. Trying again…")
    answer = _ask(page, "Where is the nearest centre?")
    sync_api.expect(answer).to_contain_text("Where is the nearest centre?")
    sync_api.expect(page.locator(".hamroh-status")).to_be_hidden()
    assert len(sockets) >= 2
    assert len({m.user_key for m in fake.handled}) == 1  # the same anonymous session after reconnecting
    assert [m.text for m in fake.handled].count("Where is the nearest centre?") == 1


def test_a_flood_is_refused_in_the_users_language(fake: FakeConversation, open_page: Callable[..., Any]) -> None:
    with _Server(fake, WebLimits(session=BucketSpec(rate=0.0, burst=3))) as server:
        page, _ = open_page(server.base + "/", locale="ru-RU")
        _consent(page, "Русский")  # the consent notice and the language button: two of three
        _ask(page, "Как получить патент?")
        box = page.locator("#hamroh-input")
        box.fill("И ещё один вопрос")
        box.press("Enter")
        note = page.locator(".hamroh-note")
        sync_api.expect(note).to_have_text("Вы отправляете сообщения очень быстро. Подождите немного, пожалуйста.")
        assert all(m.text != "И ещё один вопрос" for m in fake.handled)
        _shot(page, "web-rate-limited-ru.png")
