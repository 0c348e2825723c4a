"""A voice note, photo or file reaches the counsellor: kept by handle, fetched through getFile on demand.

The real python-telegram-bot client turns an update into a message that carries Telegram's file
handle; the console's media route fetches the file from the fake Bot API (getFile, then the file
download) with the bot's token on the server and streams it to a signed-in counsellor of the
ticket's MRC, audited; another MRC, a signed-out browser and a file past the retention period get
nothing, and the browser never sees the token.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.fake_telegram import TOKEN, FakeBotApi, message_update
from bot.channels.telegram import TelegramMediaSource
from handoff import (
    AuditAction,
    MediaRef,
    Reason,
    append_user_message,
    delete_user_data,
    open_ticket,
)
from handoff.tables import AuditEntry, TicketMessage
from storage import create_engine, session_factory, utcnow
from storage.scratch import copy_sqlite
from tests.handoff.handoff_support import Browser, RecordingOutbound, build_console, make_account, make_settings

from .fake_engine import FakeEngine
from .support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:.*attribute `retry_after` will be")]

USER = 740_123_999
VOICE = b"OggS\x00fake-opus-voice-note" * 50


async def test_the_file_handle_crosses_from_telegram_to_the_engine(bot_api: FakeBotApi, engine: FakeEngine,
                                                                   polling_bot: Any) -> None:
    photo = [{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
             {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 960}]
    bot_api.push(message_update(1500, USER, voice={"file_id": "v1", "file_unique_id": "vu", "duration": 14,
                                                   "mime_type": "audio/ogg"}),
                 message_update(1501, USER, photo=photo),
                 message_update(1502, USER, document={"file_id": "d1", "file_unique_id": "du",
                                                      "mime_type": "application/pdf", "file_size": 2048}),
                 message_update(1503, USER, document={"file_id": "big", "file_unique_id": "bu",
                                                      "file_size": 30 * 1024 * 1024}))
    await eventually(lambda: len(engine.messages()) == 4, what="four attachments")
    refs = [m.attachment_ref for m in engine.messages()]
    assert refs[:3] == [MediaRef("v1", "audio/ogg", 14), MediaRef("large", "image/jpeg", None),
                        MediaRef("d1", "application/pdf", None)]
    assert refs[3] is None  # over the Bot API's 20 MB download limit: the line only
    assert engine.messages()[0].attachment_note == "[voice, 14 s]"  # what the counsellor reads: no file id


@pytest.fixture
async def console(bot_api: FakeBotApi, sqlite_template_db: Path, tmp_path: Path) -> Any:
    db = create_engine(copy_sqlite(sqlite_template_db, tmp_path / "media.db"))
    sessions = session_factory(db)
    settings = make_settings(media_days=180)
    app = build_console(sessions, settings, RecordingOutbound(),
                        media=TelegramMediaSource(TOKEN, base_url=bot_api.base_url))
    await make_account(sessions, "dilnoza", mrc_id="tj")
    await make_account(sessions, "rahim", mrc_id="bd")
    async with sessions() as s, s.begin():
        ticket = await open_ticket(session=s, settings=settings, user_key="person", mrc_id="tj",
                                   reason=Reason.USER_ASKED, lang="ru")
        line = await append_user_message(session=s, ticket_id=ticket.id, text="[voice, 14 s]", attachment_kind="voice",
                                         attachment=MediaRef("voice-1", "audio/ogg", 14))
        old = await append_user_message(session=s, ticket_id=ticket.id, text="[photo]", attachment_kind="photo",
                                        attachment=MediaRef("photo-old", None, None),
                                        now=utcnow() - timedelta(days=181))
    bot_api.add_file("voice-1", VOICE, path="voice/file_7.oga")
    bot_api.add_file("photo-old", b"\xff\xd8old-jpeg", path="photos/file_8.jpg")
    yield app, sessions, ticket, line, old
    await db.dispose()


async def test_a_counsellor_plays_a_voice_note_fetched_through_get_file(bot_api: FakeBotApi, console: Any) -> None:
    app, sessions, ticket, line, _ = console
    browser = Browser(app)
    try:
        await browser.login("dilnoza")
        page = await browser.get(f"/console/tickets/{ticket.id}")
        url = f"/console/tickets/{ticket.id}/media/{line.id}"
        assert f'<audio controls preload="none" src="{url}">' in page.text
        assert "voice-1" not in page.text and TOKEN not in page.text  # neither the handle nor the token
        assert bot_api.calls_to("getFile") == []  # nothing fetched until the counsellor presses play

        played = await browser.get(url)
        assert played.status_code == 200 and played.content == VOICE
        assert played.headers["content-type"] == "audio/ogg"
        assert played.headers["cache-control"] == "no-store" and played.headers["content-disposition"].startswith(
            "inline")
        assert TOKEN not in str(played.headers)
        assert [c["params"]["file_id"] for c in bot_api.calls_to("getFile")] == ["voice-1"]
        assert [c["params"]["file_path"] for c in bot_api.calls_to("download")] == ["voice/file_7.oga"]
    finally:
        await browser.aclose()
    async with sessions() as s:
        audited = (await s.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.VIEW_MEDIA))).all()
    assert [(a.actor_username, a.ticket_id, a.mrc_id) for a in audited] == [("dilnoza", ticket.id, "tj")]


async def test_another_mrc_a_signed_out_browser_and_an_old_file_get_nothing(bot_api: FakeBotApi,
                                                                            console: Any) -> None:
    app, sessions, ticket, line, old = console
    url = f"/console/tickets/{ticket.id}/media/{line.id}"
    stranger, anonymous, owner = Browser(app), Browser(app), Browser(app)
    try:
        await stranger.login("rahim")  # MRC Bangladesh: the Tajikistan ticket does not exist for him
        assert (await stranger.get(url)).status_code == 404
        assert (await anonymous.get(url)).status_code == 401
        await owner.login("dilnoza")
        expired = await owner.get(f"/console/tickets/{ticket.id}/media/{old.id}")
        assert expired.status_code == 410 and "retention period" in expired.text
        # a line of another ticket cannot be reached through this one
        assert (await owner.get(f"/console/tickets/{ticket.id + 1}/media/{line.id}")).status_code == 404
    finally:
        for b in (stranger, anonymous, owner):
            await b.aclose()
    assert bot_api.calls_to("getFile") == []
    async with sessions() as s:
        denied = (await s.scalars(select(AuditEntry.actor_username).where(
            AuditEntry.action == AuditAction.VIEW_DENIED))).all()
    assert "rahim" in denied


async def test_a_file_telegram_no_longer_has_and_an_erased_line_are_refused(bot_api: FakeBotApi,
                                                                            console: Any) -> None:
    app, sessions, ticket, line, _ = console
    browser = Browser(app)
    try:
        await browser.login("dilnoza")
        bot_api.files.clear()
        gone = await browser.get(f"/console/tickets/{ticket.id}/media/{line.id}")
        assert gone.status_code == 502 and "invalid file_id" in gone.text and TOKEN not in gone.text
        async with sessions() as s, s.begin():
            await delete_user_data(session=s, user_key="person")  # /delete on the open ticket
        async with sessions() as s:
            assert (await s.scalars(select(TicketMessage.attachment_file_id).where(
                TicketMessage.attachment_file_id.is_not(None)))).all() == []
        assert (await browser.get(f"/console/tickets/{ticket.id}/media/{line.id}")).status_code == 404
    finally:
        await browser.aclose()

