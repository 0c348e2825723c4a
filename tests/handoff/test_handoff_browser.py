"""The console in real headless Chromium: the whole of a counsellor's crisis case.

Log in, see the crisis ticket on top, claim it, insert a curated answer, reply, write a note,
resolve; the reply reaches the outbound port exactly once. A new crisis ticket raises the live
alert without a reload. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from bot.net import free_port
from handoff import Author, Reason, Status, TranscriptLine, create_console_app, open_ticket
from handoff.tables import AuditEntry, Ticket, TicketMessage, TicketNote
from storage import create_engine, session_factory
from storage.scratch import copy_sqlite
from tests.handoff.handoff_support import PASSWORD, FakeAnswers, RecordingOutbound, make_account, make_settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")



class ServerThread:
    """uvicorn on its own thread and loop; the console mounted at /console as bot does."""

    def __init__(self, db_url: str, settings, outbound, answers, media=None) -> None:
        self.port = free_port()
        engine = create_engine(db_url)

        @asynccontextmanager
        async def lifespan(_app: FastAPI):
            yield
            await engine.dispose()  # in the server's own loop, where the connections live

        parent = FastAPI(lifespan=lifespan)
        parent.mount("/console", create_console_app(settings, session_factory(engine), outbound, answers,
                                                    media=media))
        config = uvicorn.Config(parent, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console-server", daemon=True)

    async def __aenter__(self) -> str:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return f"http://127.0.0.1:{self.port}"
            await asyncio.sleep(0.05)
        raise RuntimeError("console server did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 10)


async def test_counsellor_handles_a_crisis_ticket_end_to_end(sqlite_template_db, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = copy_sqlite(sqlite_template_db, tmp_path / "browser.db")
    settings = make_settings(poll_seconds=3)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    await make_account(sessions, "dilnoza", display_name="Dilnoza")
    now = datetime.now(UTC)
    async with sessions() as db, db.begin():
        for i in range(3):
            await open_ticket(
                session=db,
                settings=settings,
                user_key=f"waiting-{i}",
                mrc_id="tj",
                reason=Reason.NO_ANSWER,
                lang="tg",
                question_text="кор дар Маскав",
                now=now - timedelta(hours=2 + i),
            )
        crisis = await open_ticket(
            session=db,
            settings=settings,
            user_key="in-danger",
            mrc_id="tj",
            reason=Reason.CRISIS,
            crisis_kind="documents taken",
            lang="ru",
            profile={"origin": "TJ", "destination": "RU"},
            transcript=[TranscriptLine(Author.USER, "работодатель забрал паспорт и не выпускает")],
        )
    outbound = RecordingOutbound()
    answers = FakeAnswers()

    async with ServerThread(db_url, settings, outbound, answers) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            await page.goto(f"{base}/console/login")
            await page.fill("input[name=username]", "dilnoza")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/console/")

            first = page.locator("#queue-rows tr").first
            assert await first.get_attribute("data-ticket") == str(crisis.id)
            assert "crisis" in (await first.get_attribute("class") or "")
            await page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)

            await first.locator("a").click()
            await page.wait_for_url(f"**/tickets/{crisis.id}")
            assert "documents taken" in await page.inner_text("#why")
            await page.click("#claim")
            await page.wait_for_selector("#reply-text")

            await page.fill("#answer-q", "паспорт")
            await page.press("#answer-q", "Enter")
            await page.click("[data-insert='ru-registration-tj']")
            inserted = await page.input_value("#reply-text")
            assert "Встаньте на миграционный учёт" in inserted and "Source: МВД России" in inserted
            await page.fill("#reply-text", inserted + "\n\nПозвоните нам: мы поможем вернуть паспорт.")
            await page.screenshot(path=str(ARTIFACTS / "console-reply.png"), full_page=True)
            await page.click("#send-reply")
            await page.wait_for_selector("text=Reply sent.")

            await page.fill("#note-text", "Called the embassy hotline; follow up tomorrow.")
            await page.click("#add-note")
            await page.wait_for_selector("text=Note saved.")

            await page.click("#resolve")
            await page.wait_for_selector("text=Resolved. The bot answers this user again.")
            await page.screenshot(path=str(ARTIFACTS / "console-resolved.png"), full_page=True)

            # A new crisis arrives while the counsellor is on the queue: the alert shows live.
            await page.goto(f"{base}/console/")
            await asyncio.sleep(0.8)  # first poll establishes what has been seen
            async with sessions() as db, db.begin():
                second = await open_ticket(
                    session=db,
                    settings=settings,
                    user_key="second",
                    mrc_id="tj",
                    reason=Reason.CRISIS,
                    crisis_kind="medical",
                    lang="uz",
                )
            await page.wait_for_selector("#alert:not([hidden])", timeout=10_000)
            assert f"#{second.id}" in await page.inner_text("#alert")
            await page.wait_for_selector(f"#queue-rows tr[data-ticket='{second.id}']", timeout=10_000)
            await page.screenshot(path=str(ARTIFACTS / "console-crisis-alert.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()

    # the counsellor's reply, then the news that the request was resolved
    assert [m.kind for _, m in outbound.sent] == ["reply", "resolved"]
    user_key, message = outbound.sent[0]
    assert user_key == "in-danger" and message.counsellor_name == "Dilnoza" and message.ticket_id == crisis.id
    assert "Встаньте на миграционный учёт" in message.text and "вернуть паспорт" in message.text
    async with sessions() as db:
        ticket = await db.get(Ticket, crisis.id)
        notes = (await db.scalars(select(TicketNote.text))).all()
        reply = await db.scalar(select(TicketMessage).where(TicketMessage.author == "counsellor"))
    await engine.dispose()
    assert ticket.status == Status.RESOLVED
    assert notes == ["Called the embassy hotline; follow up tomorrow."]
    assert reply.curated_entry_id == "ru-registration-tj" and reply.delivery_status == "sent"


async def test_the_console_updates_live_and_rings_for_a_new_crisis(sqlite_template_db, tmp_path):
    """No reload and no 15-second poll: a person's new message (a voice note included) appears on
    the open ticket, and a new crisis rings (sound and notification hook) within seconds. The voice
    note plays: the audio element fetches it through the console, which gets it from the (fake)
    Bot API with getFile; the page never holds the bot token."""
    from bench.fake_telegram import TOKEN, FakeBotApi
    from bot.channels.telegram import TelegramMediaSource
    from handoff import MediaRef, append_user_message

    bot_api = FakeBotApi()
    bot_api.start()
    bot_api.add_file("voice-live", _wav(seconds=1.0), path="voice/file_1.wav")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = copy_sqlite(sqlite_template_db, tmp_path / "live.db")
    settings = make_settings(poll_seconds=600)  # the page's own poll cannot be what updates it
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    await make_account(sessions, "aziz", display_name="Aziz")
    async with sessions() as db, db.begin():
        waiting = await open_ticket(session=db, settings=settings, user_key="waiting", mrc_id="tj",
                                    reason=Reason.USER_ASKED, lang="ru",
                                    transcript=[TranscriptLine(Author.USER, "нужен консультант")])
    media = TelegramMediaSource(TOKEN, base_url=bot_api.base_url)
    async with ServerThread(db_url, settings, RecordingOutbound(), FakeAnswers(), media) as base, \
            playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{base}/console/login")
            await page.fill("input[name=username]", "aziz")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/console/")
            await page.goto(f"{base}/console/tickets/{waiting.id}")
            await page.wait_for_selector("ol.transcript")
            await asyncio.sleep(1.5)  # the stream's first event says what is already there
            async with sessions() as db, db.begin():
                await append_user_message(session=db, ticket_id=waiting.id, text="у меня садится телефон")
                await append_user_message(session=db, ticket_id=waiting.id, text="[voice, 1 s]",
                                          attachment_kind="voice", attachment=MediaRef("voice-live", "audio/wav", 1))
            await page.wait_for_selector("ol.transcript >> text=у меня садится телефон", timeout=8_000)
            await page.wait_for_selector("ol.transcript >> text=[voice, 1 s]", timeout=8_000)
            await page.wait_for_selector("ol.transcript audio[controls]", timeout=8_000)
            assert bot_api.calls_to("getFile") == []  # preload="none": fetched only when played
            # press play, as the counsellor does: Chromium fetches and decodes the whole voice note
            await page.evaluate("() => { const a = document.querySelector('ol.transcript audio');"
                                " a.muted = true; return a.play().then(() => true, () => false); }")
            for _ in range(80):
                state = await page.evaluate("() => { const a = document.querySelector('ol.transcript audio');"
                                            " return [a.readyState, a.duration, a.error && a.error.code]; }")
                if state[0] >= 2:
                    break
                await asyncio.sleep(0.1)
            assert state[0] >= 2 and abs(state[1] - 1.0) < 0.1 and state[2] is None, state
            assert [c["params"]["file_id"] for c in bot_api.calls_to("getFile")][:1] == ["voice-live"]
            assert TOKEN not in await page.content()
            await page.screenshot(path=str(ARTIFACTS / "console-live-ticket.png"), full_page=True)

            async with sessions() as db, db.begin():
                crisis = await open_ticket(session=db, settings=settings, user_key="danger", mrc_id="tj",
                                           reason=Reason.CRISIS, crisis_kind="violence", lang="uz")
            for _ in range(80):  # the page's CSP forbids wait_for_function's eval: ask the page directly
                if await page.evaluate("() => window.hamrohAlerts || 0") >= 1:
                    break
                await asyncio.sleep(0.1)
            assert await page.evaluate("() => window.hamrohAlerts || 0") >= 1
            await page.goto(f"{base}/console/")
            await page.wait_for_selector(f"#queue-rows tr[data-ticket='{crisis.id}']", timeout=8_000)
            assert errors == []
        finally:
            await browser.close()
            bot_api.stop()
    async with sessions() as db:
        played = (await db.scalars(select(AuditEntry.actor_username).where(AuditEntry.action == "view_media"))).all()
    assert played and set(played) == {"aziz"}  # every fetch of the voice note is audited
    await engine.dispose()


def _wav(seconds: float) -> bytes:
    """A short silent WAV: a real file Chromium decodes, standing in for Telegram's Ogg voice note."""
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * int(8000 * seconds))
    return out.getvalue()
