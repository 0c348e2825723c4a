"""The ticket lifecycle as the bot and counsellors experience it, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from handoff import (
    AlreadyClaimed,
    AuditAction,
    Author,
    InvalidState,
    NotAllowed,
    Priority,
    QueueFilter,
    Reason,
    Role,
    Status,
    TicketNotFound,
    TranscriptLine,
    active_ticket_for_user,
    add_note,
    append_user_message,
    claim,
    claim_next,
    delete_user_data,
    export_transcript,
    list_audit,
    list_queue,
    open_ticket,
    release_idle_claims,
    reply,
    resolve,
    transfer,
    view_ticket,
)
from handoff.tables import AuditEntry, Ticket, TicketMessage, TicketNote, TicketTransfer
from tests.handoff.handoff_support import RecordingOutbound, make_account

pytestmark = pytest.mark.integration


async def _open(sessions, settings, user="u1", mrc="tj", reason=Reason.USER_ASKED, **kw):
    async with sessions() as db, db.begin():
        return await open_ticket(
            session=db,
            settings=settings,
            user_key=user,
            mrc_id=mrc,
            reason=reason,
            lang=kw.pop("lang", "tg"),
            profile=kw.pop("profile", {"origin": "TJ", "destination": "RU", "stage": "abroad"}),
            **kw,
        )


async def test_full_lifecycle_reply_reaches_user_once(sessions, settings):
    outbound = RecordingOutbound()
    dilnoza = await make_account(sessions, "dilnoza", display_name="Dilnoza")
    ticket = await _open(
        sessions,
        settings,
        transcript=[TranscriptLine(Author.USER, "Salom, men Rossiyadaman"), TranscriptLine(Author.BOT, "…")],
        first_message="Мне нужна помощь с регистрацией",
        question_text="регистрация в москве",
    )
    assert ticket.status == Status.OPEN
    async with sessions() as db, db.begin():
        assert (await active_ticket_for_user(session=db, user_key="u1")).id == ticket.id
        await claim(session=db, ticket_id=ticket.id, actor=dilnoza)
    async with sessions() as db, db.begin():
        result = await reply(
            session=db,
            ticket_id=ticket.id,
            actor=dilnoza,
            text="Салом! Регистрацияро дар 15 рӯз анҷом диҳед.",
            outbound=outbound,
            client_key="form-1",
        )
    assert result.delivered and not result.duplicate
    assert len(outbound.sent) == 1
    user_key, message = outbound.sent[0]
    assert user_key == "u1"
    assert message.counsellor_name == "Dilnoza" and message.ticket_id == ticket.id and message.lang == "tg"

    # The same form submitted again (slow link, double click) sends nothing more.
    async with sessions() as db, db.begin():
        again = await reply(
            session=db, ticket_id=ticket.id, actor=dilnoza, text="Салом!", outbound=outbound, client_key="form-1"
        )
    assert again.duplicate and len(outbound.sent) == 1

    async with sessions() as db, db.begin():
        await add_note(session=db, ticket_id=ticket.id, actor=dilnoza, text="Called the embassy")
        await resolve(session=db, ticket_id=ticket.id, actor=dilnoza, topic="ru-registration")
    async with sessions() as db, db.begin():
        assert await active_ticket_for_user(session=db, user_key="u1") is None
        detail = await view_ticket(session=db, ticket_id=ticket.id, actor=dilnoza)
    assert [m.author for m in detail.messages] == ["user", "bot", "user", "counsellor"]
    assert detail.ticket.first_reply_at is not None and detail.ticket.resolved_at is not None
    assert [n.text for n in detail.notes] == ["Called the embassy"]


async def test_reply_failure_is_recorded_and_not_lost(sessions, settings):
    outbound = RecordingOutbound()
    outbound.fail_next = 1
    a = await make_account(sessions, "aziz")
    ticket = await _open(sessions, settings)
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=a)
        result = await reply(session=db, ticket_id=ticket.id, actor=a, text="Hello", outbound=outbound)
    assert not result.delivered and "unreachable" in (result.error or "")
    assert result.message.delivery_status == "failed"
    assert outbound.sent == []


async def test_one_active_ticket_per_user_and_crisis_escalates(sessions, settings):
    first = await _open(sessions, settings, reason=Reason.NO_ANSWER, question_text="visa?")
    assert first.priority == Priority.NORMAL
    second = await _open(sessions, settings, reason=Reason.CRISIS, crisis_kind="detained", first_message="help")
    assert second.id == first.id
    async with sessions() as db:
        ticket = await db.get(Ticket, first.id)
        assert ticket.priority == Priority.CRISIS and ticket.crisis_kind == "detained"
        assert ticket.due_at <= datetime.now(UTC) + timedelta(minutes=15)
        count = await db.scalar(select(func.count()).select_from(Ticket).where(Ticket.user_key == "u1"))
    assert count == 1


async def test_crisis_tickets_lead_the_queue(sessions, settings):
    counsellor = await make_account(sessions, "c1")
    now = datetime.now(UTC)
    old = await _open(sessions, settings, user="old", now=now - timedelta(hours=3))
    crisis = await _open(sessions, settings, user="crisis", reason=Reason.CRISIS, now=now)
    other_mrc = await _open(sessions, settings, user="bd-user", mrc="bd", reason=Reason.CRISIS, lang="bn")
    async with sessions() as db, db.begin():
        queue = await list_queue(session=db, actor=counsellor, filters=QueueFilter())
        assert [t.id for t in queue] == [crisis.id, old.id]  # never another MRC's ticket
        only_old = await list_queue(session=db, actor=counsellor, filters=QueueFilter(min_age_minutes=60))
        assert [t.id for t in only_old] == [old.id]
        first = await claim_next(session=db, actor=counsellor)
    assert first is not None and first.id == crisis.id
    assert other_mrc.id not in [t.id for t in queue]


async def test_second_claimer_is_told_who_has_it(sessions, settings):
    a = await make_account(sessions, "a1", display_name="Anvar")
    b = await make_account(sessions, "b1")
    ticket = await _open(sessions, settings)
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=a)
    async with sessions() as db, db.begin():
        with pytest.raises(AlreadyClaimed, match="Anvar"):
            await claim(session=db, ticket_id=ticket.id, actor=b)
        with pytest.raises(NotAllowed):
            await reply(session=db, ticket_id=ticket.id, actor=b, text="hi", outbound=RecordingOutbound())


async def test_other_mrc_and_admin_cannot_reach_ticket(sessions, settings):
    bd = await make_account(sessions, "bd1", mrc_id="bd")
    admin = await make_account(sessions, "root", role=Role.ADMIN, mrc_id=None)
    ticket = await _open(sessions, settings)
    for who in (bd, admin):
        async with sessions() as db, db.begin():
            with pytest.raises(TicketNotFound):
                await view_ticket(session=db, ticket_id=ticket.id, actor=who)
            with pytest.raises(TicketNotFound):
                await claim(session=db, ticket_id=ticket.id, actor=who)
            with pytest.raises(TicketNotFound):
                await add_note(session=db, ticket_id=ticket.id, actor=who, text="x")


async def test_idle_claim_returns_to_queue(sessions, settings):
    a = await make_account(sessions, "idle")
    ticket = await _open(sessions, settings)
    long_ago = datetime.now(UTC) - timedelta(minutes=45)
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=a, now=long_ago)
    async with sessions() as db, db.begin():
        released = await release_idle_claims(session=db, older_than=timedelta(minutes=30))
    assert released == [ticket.id]
    async with sessions() as db:
        t = await db.get(Ticket, ticket.id)
        assert t.status == Status.OPEN and t.claimed_by_id is None
    # Activity keeps a claim alive.
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=a, now=long_ago)
        await add_note(session=db, ticket_id=ticket.id, actor=a, text="still on it")
    async with sessions() as db, db.begin():
        assert await release_idle_claims(session=db, older_than=timedelta(minutes=30)) == []


async def test_transfer_refers_bangladeshi_worker_to_iraq(sessions, settings):
    bd = await make_account(sessions, "rahim", mrc_id="bd", display_name="Rahim")
    iq = await make_account(sessions, "layla", mrc_id="iq")
    ticket = await _open(
        sessions,
        settings,
        user="worker",
        mrc="bd",
        lang="bn",
        first_message="আমি ইরাকে কাজ করি, বেতন পাই না",
        profile={"origin": "BD", "destination": "IQ", "stage": "abroad"},
    )
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=bd)
        with pytest.raises(InvalidState, match="note"):
            await transfer(session=db, settings=settings, ticket_id=ticket.id, actor=bd, to_mrc_id="iq", note=" ")
    async with sessions() as db, db.begin():
        new = await transfer(
            session=db, settings=settings, ticket_id=ticket.id, actor=bd, to_mrc_id="iq", note="Unpaid wages in Erbil"
        )
    async with sessions() as db, db.begin():
        assert (await active_ticket_for_user(session=db, user_key="worker")).id == new.id
        detail = await view_ticket(session=db, ticket_id=new.id, actor=iq)
        old = await db.get(Ticket, ticket.id)
        with pytest.raises(TicketNotFound):
            await view_ticket(session=db, ticket_id=new.id, actor=bd)
    assert old.status == Status.TRANSFERRED
    assert detail.ticket.mrc_id == "iq" and detail.ticket.lang == "bn" and detail.ticket.status == Status.OPEN
    assert [m.text for m in detail.messages] == ["আমি ইরাকে কাজ করি, বেতন পাই না"]
    assert any("Unpaid wages in Erbil" in n.text for n in detail.notes)
    assert detail.transfers[0].from_mrc_id == "bd"


async def test_user_messages_join_the_ticket_idempotently(sessions, settings):
    ticket = await _open(sessions, settings)
    for _ in range(2):  # a redelivered update
        async with sessions() as db, db.begin():
            await append_user_message(session=db, ticket_id=ticket.id, text="are you there?", client_key="tg:77")
    async with sessions() as db:
        n = await db.scalar(select(func.count()).where(TicketMessage.ticket_id == ticket.id))
    assert n == 1


async def test_delete_user_data_erases_every_row(sessions, settings):
    bd = await make_account(sessions, "del-bd", mrc_id="bd")
    ticket = await _open(sessions, settings, user="gone", mrc="bd", lang="bn", first_message="secret story")
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=bd)
        await add_note(session=db, ticket_id=ticket.id, actor=bd, text="about the user")
        await reply(session=db, ticket_id=ticket.id, actor=bd, text="hi", outbound=RecordingOutbound())
        await transfer(session=db, settings=settings, ticket_id=ticket.id, actor=bd, to_mrc_id="iq", note="n")
    await _open(sessions, settings, user="stays")
    async with sessions() as db, db.begin():
        assert await delete_user_data(session=db, user_key="gone") == 2
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Ticket).where(Ticket.user_key == "gone")) == 0
        for table in (TicketNote, TicketTransfer):
            assert await db.scalar(select(func.count()).select_from(table)) == 0
        # the open (transferred-to) ticket stays as a closed shell the counsellor can see: "deleted
        # by the person", detached from them, with nothing they or anyone wrote about them
        shell = (await db.scalars(select(Ticket).where(Ticket.user_key.like("deleted:%")))).one()
        assert shell.status == "resolved" and shell.question_text is None and shell.profile == {}
        lines = (await db.scalars(select(TicketMessage.text))).all()
        assert lines == ["Deleted by the person"]
        assert await db.scalar(select(func.count()).select_from(Ticket)) == 2
        audit_text = " ".join((await db.scalars(select(AuditEntry.detail))).all())
    assert "gone" not in audit_text and "secret" not in audit_text


async def test_every_view_reply_note_transfer_export_is_audited(sessions, settings):
    a = await make_account(sessions, "auditee", mrc_id="bd")
    ticket = await _open(sessions, settings, mrc="bd", lang="bn")
    async with sessions() as db, db.begin():
        await view_ticket(session=db, ticket_id=ticket.id, actor=a)
        await claim(session=db, ticket_id=ticket.id, actor=a)
        await reply(session=db, ticket_id=ticket.id, actor=a, text="hello", outbound=RecordingOutbound())
        await add_note(session=db, ticket_id=ticket.id, actor=a, text="note")
        await export_transcript(session=db, ticket_id=ticket.id, actor=a)
        await transfer(session=db, settings=settings, ticket_id=ticket.id, actor=a, to_mrc_id="iq", note="n")
    async with sessions() as db:
        entries = await list_audit(session=db, mrc_ids=["bd"], ticket_id=ticket.id)
    actions = {e.action for e in entries}
    expected = {AuditAction.VIEW, AuditAction.CLAIM, AuditAction.REPLY, AuditAction.NOTE, AuditAction.EXPORT}
    assert expected | {AuditAction.TRANSFER} <= actions
    assert all(e.actor_username == "auditee" and e.at is not None for e in entries)


async def test_audit_log_cannot_be_rewritten(sessions, settings):
    a = await make_account(sessions, "writer", mrc_id="bd")
    ticket = await _open(sessions, settings, mrc="bd", lang="bn")
    async with sessions() as db, db.begin():
        await view_ticket(session=db, ticket_id=ticket.id, actor=a)
    for statement in ("UPDATE handoff_audit SET actor_username = 'someone'", "DELETE FROM handoff_audit"):
        async with sessions() as db:
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.begin():
                    await db.execute(text(statement))
    async with sessions() as db:
        assert await db.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.actor_username == "writer")
        )


async def test_reply_requires_text_within_limit(sessions, settings):
    a = await make_account(sessions, "limits")
    ticket = await _open(sessions, settings)
    async with sessions() as db, db.begin():
        await claim(session=db, ticket_id=ticket.id, actor=a)
        with pytest.raises(InvalidState, match="empty"):
            await reply(session=db, ticket_id=ticket.id, actor=a, text="   ", outbound=RecordingOutbound())
        with pytest.raises(InvalidState, match="limit"):
            await reply(session=db, ticket_id=ticket.id, actor=a, text="x" * 5000, outbound=RecordingOutbound())
