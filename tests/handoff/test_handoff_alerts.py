"""Crisis alerts reach the counsellors' Telegram group once, without user text."""

from __future__ import annotations

import pytest

from handoff import Reason, notify_pending_crises, open_ticket

pytestmark = pytest.mark.integration


class RecordingNotifier:
    def __init__(self, fail: int = 0) -> None:
        self.messages: list[tuple[str, str]] = []
        self.fail = fail

    async def send_group_message(self, chat_id: str, text: str) -> None:
        if self.fail:
            self.fail -= 1
            raise TimeoutError("telegram timed out")
        self.messages.append((chat_id, text))


async def _crisis(sessions, settings, user: str) -> int:
    async with sessions() as db, db.begin():
        ticket = await open_ticket(
            session=db,
            settings=settings,
            user_key=user,
            mrc_id="tj",
            reason=Reason.CRISIS,
            lang="tg",
            crisis_kind="detained",
            first_message="I am locked in a room at Sadovaya 5",
        )
        await open_ticket(
            session=db, settings=settings, user_key=user + "-calm", mrc_id="tj", reason=Reason.NO_ANSWER, lang="tg"
        )
        return ticket.id


async def test_each_crisis_is_announced_once_without_user_text(sessions, settings):
    settings = settings.model_copy(
        update={"telegram_group_chat_id": "-100123", "public_url": "https://mrc.example/console"}
    )
    notifier = RecordingNotifier()
    ticket_id = await _crisis(sessions, settings, "u1")
    for _ in range(2):
        async with sessions() as db, db.begin():
            await notify_pending_crises(session=db, settings=settings, notifier=notifier)
    assert len(notifier.messages) == 1
    chat, text = notifier.messages[0]
    assert chat == "-100123" and f"#{ticket_id}" in text and "MRC Tajikistan" in text
    assert f"https://mrc.example/console/tickets/{ticket_id}" in text
    assert "Sadovaya" not in text and "locked in a room" not in text


async def test_failed_alert_is_retried_and_no_group_means_no_alert(sessions, settings):
    await _crisis(sessions, settings, "u2")
    silent = RecordingNotifier()
    async with sessions() as db, db.begin():
        assert await notify_pending_crises(session=db, settings=settings, notifier=silent) == []
    settings = settings.model_copy(update={"telegram_group_chat_id": "-1"})
    flaky = RecordingNotifier(fail=1)
    async with sessions() as db, db.begin():
        assert await notify_pending_crises(session=db, settings=settings, notifier=flaky) == []
    async with sessions() as db, db.begin():
        assert len(await notify_pending_crises(session=db, settings=settings, notifier=flaky)) == 1
    assert len(flaky.messages) == 1
