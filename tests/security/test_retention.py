"""Finding 4: one purge removes everything about people past each period; a dry run only counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.retention import purge
from bot.settings import RetentionConfig
from bot.tables import BotUser, ConversationMessage, OutboxItem
from handoff import AuditAction, audit, open_ticket
from handoff.tables import AuditEntry, LoginThrottle, Ticket, TicketMessage
from storage import RateLimitCounter

pytestmark = pytest.mark.integration

NOW = dt.datetime(2027, 6, 1, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=400)
RECENT = NOW - dt.timedelta(days=2)
PERIODS = RetentionConfig(conversations_days=180, tickets_days=180, users_days=180, outbox_days=30,
                          login_records_days=30)


async def _person(db: Any, key: str, when: dt.datetime, settings: Any, *, ticket: bool, resolved: bool) -> None:
    db.add(BotUser(user_key=key, channel="telegram", address="123", lang="ru", consent_at=when, last_seen_at=when,
                   last_question="my passport was taken"))
    await db.flush()
    for i in range(3):
        db.add(ConversationMessage(user_key=key, channel="telegram", channel_message_id=f"{key}-{i}", direction="in",
                                   kind="text", text="my passport was taken", created_at=when))
    db.add(OutboxItem(user_key=key, channel="telegram", in_reply_to=f"{key}-0", seq=0, payload={"text": "x"},
                      created_at=when, sent_at=None))  # never sent: the old purge kept these forever
    if ticket:
        t = await open_ticket(session=db, settings=settings, user_key=key, mrc_id="tj", reason="user_asked",
                              lang="ru", first_message="my passport was taken", now=when)
        if resolved:
            t.status, t.resolved_at = "resolved", when


async def _counts(sessions: Any) -> dict[str, int]:
    async with sessions() as db:
        out = {}
        for name, model in (("users", BotUser), ("messages", ConversationMessage), ("outbox", OutboxItem),
                            ("tickets", Ticket), ("lines", TicketMessage), ("throttles", LoginThrottle),
                            ("counters", RateLimitCounter)):
            out[name] = int(await db.scalar(select(func.count()).select_from(model)) or 0)
        out["failed_logins"] = int(await db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == AuditAction.LOGIN_FAILED.value)) or 0)
        return out


async def test_everything_about_people_past_the_period_is_purged(sessions, console_cfg) -> None:
    async with sessions() as db, db.begin():
        await _person(db, "old-resolved", OLD, console_cfg, ticket=True, resolved=True)
        await _person(db, "old-open", OLD, console_cfg, ticket=True, resolved=False)  # a ticket nobody touched
        await _person(db, "old-no-ticket", OLD, console_cfg, ticket=False, resolved=False)
        await _person(db, "recent", RECENT, console_cfg, ticket=True, resolved=False)
        db.add(LoginThrottle(key="k-old", failures=3, window_started_at=OLD, blocked_until=None))
        db.add(LoginThrottle(key="k-new", failures=1, window_started_at=RECENT, blocked_until=None))
        db.add(RateLimitCounter(key="c-old", count=3, expires_at=OLD))
        await audit(db, None, AuditAction.LOGIN_FAILED, detail="username amina karimova", username="amina karimova",
                    at=OLD)
        await audit(db, None, AuditAction.LOGIN_FAILED, detail="username someone", username="someone", at=RECENT)
        await audit(db, None, AuditAction.VIEW, ticket_id=1, at=OLD)  # staff actions stay (append-only)

    before = await _counts(sessions)
    preview = await purge(sessions, PERIODS, now=NOW, dry_run=True)
    assert await _counts(sessions) == before, "a dry run changes nothing"
    assert preview.dry_run and preview.users == 3 and preview.tickets == 2 and preview.failed_login_audit == 1
    assert preview.conversation_messages == 9 and preview.outbox == 3 and preview.login_throttles == 1

    done = await purge(sessions, PERIODS, now=NOW)
    assert done.as_dict() | {"dry_run": True} == preview.as_dict()  # the dry run told the truth
    after = await _counts(sessions)
    assert after == {"users": 1, "messages": 3, "outbox": 1, "tickets": 1, "lines": 1, "throttles": 1,
                     "counters": 0, "failed_logins": 1}
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == AuditAction.VIEW.value)) == 1
        left = (await db.scalars(select(BotUser.user_key))).all()
    assert left == ["recent"]


async def test_a_person_waiting_for_a_counsellor_keeps_their_row(sessions, console_cfg) -> None:
    # seen long ago, but a ticket is still open and recent: the counsellor's reply needs the address
    async with sessions() as db, db.begin():
        await _person(db, "waiting", OLD, console_cfg, ticket=False, resolved=False)
        await open_ticket(session=db, settings=console_cfg, user_key="waiting", mrc_id="tj", reason="user_asked",
                          lang="ru", first_message="help", now=RECENT)
    await purge(sessions, PERIODS, now=NOW)
    async with sessions() as db:
        assert await db.get(BotUser, "waiting") is not None
        assert await db.scalar(select(func.count()).select_from(Ticket)) == 1
