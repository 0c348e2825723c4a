"""The conversation engine end to end below the channels: consent, answers, crisis, hand-off,
idempotent redelivery, counsellor replies and /delete — on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from bot.engine import IncomingMessage
from bot.services import build_engine
from bot.tables import BotUser, ConversationMessage, OutboxItem
from handoff.tables import Ticket
from nlu import Entities, LanguageHint, Understanding
from storage import create_engine, session_factory

pytestmark = pytest.mark.integration


class RuleUnderstander:
    """Deterministic understanding for engine tests (the real one is tested in tests/nlu)."""

    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
        low = text.lower()
        lang = (hint.current or hint.chosen) if hint else "en"
        lang = "ru" if re.search("[а-я]", low) else lang or "en"
        dest = "RU" if ("russia" in low or "росси" in low) else None
        if "beat" in low or "locked" in low:
            return Understanding(lang, "Latn", "crisis", "violence", Entities(destination=dest), 0.99, True)
        if "counsellor" in low:
            return Understanding(lang, "Latn", "ask_human", None, Entities(), 0.9, True)
        if low in {"hello", "hi"}:
            return Understanding(lang, "Latn", "greet", None, Entities(), 0.9, True)
        return Understanding(lang, "Latn", "question", None, Entities(destination=dest), 0.9, True)


@pytest.fixture
async def env(db_url, settings, kb):
    db = create_engine(db_url)
    sessions = session_factory(db)
    local = settings.model_copy(update={"session_secret": SecretStr("s" * 40)})
    engine = build_engine(local, sessions, lambda: kb, RuleUnderstander())
    yield engine, sessions
    await db.dispose()


def msg(i: int | str, user: str = "u1", **kw) -> IncomingMessage:
    return IncomingMessage(channel="telegram", user_key=user, message_id=str(i), **kw)


async def consent(engine, user: str = "u1", lang: str = "en") -> None:
    await engine.handle(msg(f"c-{user}", user, text="hi", client_lang="en"), address="42")
    (out,) = await engine.handle(msg(f"l-{user}", user, callback=f"lang:{lang}"), address="42")
    assert out.reply.kind == "welcome"


async def count(sessions, table) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table)))


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_nothing_is_stored_before_consent(env) -> None:
    engine, sessions = env
    # the phone says English, the person writes Russian: the notice comes in the message's language
    (out,) = await engine.handle(msg(1, text="у меня забрали паспорт", client_lang="en"), address="42")
    assert out.reply.kind == "consent" and out.id is None
    assert out.reply.lang == "ru" and "/delete" in out.reply.text
    payloads = [b.payload for row in out.reply.buttons for b in row]
    assert "consent:ru" in payloads and "decline" in payloads
    assert len([p for p in payloads if p.startswith("lang:")]) == 14
    assert await count(sessions, BotUser) == 0 and await count(sessions, ConversationMessage) == 0
    # agreeing answers the question that was kept (in memory only) before consent: never dropped
    replies = await engine.handle(msg(2, callback="consent:ru"), address="42")
    assert replies[0].reply.lang == "ru" and replies[0].id is not None
    assert replies[-1].reply.kind in {"answer", "clarify", "no_answer", "ask"}
    assert await count(sessions, BotUser) == 1


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_crisis_before_consent_is_answered_at_once_with_a_ticket(env) -> None:
    """A vital interest: the crisis reply with a number, a crisis ticket, then the consent notice;
    what the person writes next goes to the ticket, never into silence."""
    engine, sessions = env
    out = await engine.handle(msg(1, text="my boss beat me, I am in Russia", client_lang="en"), address="42")
    assert [o.reply.kind for o in out] == ["consent", "crisis"]  # the number to call stays on screen
    assert "112" in out[1].reply.text
    async with sessions() as s:
        ticket = (await s.execute(select(Ticket))).scalar_one()
        user = (await s.execute(select(BotUser))).scalar_one()
    assert ticket.priority == 0 and ticket.crisis_kind == "violence" and user.consent_at is None
    again = await engine.handle(msg(2, text="please"), address="42")
    assert again[-1].reply.kind == "counsellor_has_it"
    (welcome,) = await engine.handle(msg(3, callback="consent:en"), address="42")
    assert welcome.reply.kind == "welcome"
    async with sessions() as s:
        assert (await s.execute(select(BotUser.consent_at))).scalar_one() is not None


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_question_gets_a_sourced_answer_once_even_when_redelivered(env) -> None:
    engine, sessions = env
    await consent(engine)
    question = msg(10, text="How do I get the BMET smart card and emigration clearance before leaving Bangladesh?")
    first = await engine.handle(question)
    assert len(first) == 1
    reply = first[0].reply
    assert reply.kind in {"answer", "clarify"}
    if reply.kind == "answer":
        assert reply.source_url and reply.reviewed_on and reply.reviewed_label and reply.sources
        assert reply.reviewed_on.isoformat() not in reply.text  # a date people read, not an ISO one
        assert any(b.payload.startswith("fb:down:") for row in reply.buttons for b in row)
    # the channel crashed before sending: a redelivery returns the same stored reply, nothing new
    again = await engine.handle(question)
    assert [o.id for o in again] == [o.id for o in first]
    await engine.mark_sent([o.id for o in first])
    assert await engine.handle(question) == []
    assert await count(sessions, OutboxItem) == 2  # welcome + this answer


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_crisis_gets_emergency_numbers_and_a_priority_ticket(env) -> None:
    engine, sessions = env
    await consent(engine)
    (out,) = await engine.handle(msg(20, text="my boss beat me, I am in Russia, help"))
    assert out.reply.kind == "crisis" and "112" in out.reply.text
    async with sessions() as s:
        ticket = (await s.execute(select(Ticket))).scalar_one()
    assert ticket.reason == "crisis" and ticket.crisis_kind == "violence"


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_negative_feedback_to_ticket_then_quiet_then_counsellor_reply_delivered(env) -> None:
    engine, sessions = env
    await consent(engine)
    (sorry,) = await engine.handle(msg(30, callback="fb:down:bd-emigration-clearance"))
    assert sorry.reply.kind == "feedback"
    (payload,) = [b.payload for row in sorry.reply.buttons for b in row]
    (opened,) = await engine.handle(msg(31, callback=payload))
    assert opened.reply.kind == "ticket_opened"
    async with sessions() as s:
        assert (await s.execute(select(Ticket.reason))).scalar_one() == "negative_feedback"
    # while a counsellor has it, the bot keeps answering what it can, and the counsellor sees it all
    assert await engine.handle(msg(32, text="hello? anyone?")) != []
    async with sessions() as s:
        lines = (await s.execute(text("SELECT text FROM handoff_ticket_message"))).scalars().all()
    assert "hello? anyone?" in lines
    from handoff import OutboundMessage

    await engine.send("u1", OutboundMessage(text="Hi, I am here to help.", ticket_id=1, counsellor_name="Dilnoza"))
    pending = await engine.pending("telegram")
    counsellor = [p for p in pending if p.reply.kind == "counsellor"]
    assert len(counsellor) == 1 and "Dilnoza" in counsellor[0].reply.text and counsellor[0].address == "42"
    await engine.mark_sent([p.id for p in pending if p.id])
    assert await engine.pending("telegram") == []


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_delete_erases_every_row_about_the_user(env, db_url) -> None:
    engine, sessions = env
    await consent(engine, "u1")
    await consent(engine, "u2")
    await engine.handle(msg(40, "u1", text="I want a counsellor"))
    await engine.handle(msg(41, "u1", text="my boss beat me in Russia"))
    (confirm,) = await engine.handle(msg(42, "u1", command="delete"))
    assert confirm.reply.kind == "delete_confirm"
    (done,) = await engine.handle(msg(43, "u1", callback="delete:yes"))
    assert done.reply.kind == "deleted" and done.id is None
    async with sessions() as s:
        for table in ("bot_users", "bot_messages", "bot_outbox", "handoff_ticket"):
            n = await s.scalar(text(f"SELECT count(*) FROM {table} WHERE user_key = 'u1'"))
            assert n == 0, table
        # the open ticket does not vanish under the counsellor's eyes: it is closed as deleted by the
        # person, detached from them, and keeps nothing they wrote
        shell = (await s.execute(select(Ticket))).scalar_one()
        assert shell.status == "resolved" and shell.user_key.startswith("deleted:") and shell.question_text is None
        authors = set((await s.execute(text("SELECT author FROM handoff_ticket_message"))).scalars())
        assert authors <= {"system"}
        assert await s.scalar(text("SELECT count(*) FROM bot_users WHERE user_key = 'u2'")) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_attachments_get_a_polite_reply_and_a_counsellor_offer(env) -> None:
    engine, _ = env
    await consent(engine, lang="ru")
    (voice,) = await engine.handle(msg(50, attachment="voice"))
    assert voice.reply.kind == "offer_human" and voice.reply.lang == "ru"
    assert any(b.payload == "human:att" for row in voice.reply.buttons for b in row)
    (sticker,) = await engine.handle(msg(51, attachment="sticker"))
    assert not sticker.reply.buttons


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_voice_note_on_a_ticket_keeps_its_handle_for_the_counsellor_until_delete(env) -> None:
    """The counsellor can play it later (the console fetches it by handle); /delete takes the handle."""
    from handoff import MediaRef
    from handoff.tables import TicketMessage

    engine, sessions = env
    await consent(engine, lang="ru")
    await engine.handle(msg(60, text="I want a counsellor"), address="42")
    replies = await engine.handle(msg(61, attachment="voice", attachment_note="[voice, 14 s]",
                                      attachment_ref=MediaRef("AwACAgIAAxk-voice", "audio/ogg", 14)), address="42")
    assert replies[-1].reply.kind == "counsellor_has_it"
    async with sessions() as s:
        line = await s.scalar(select(TicketMessage).where(TicketMessage.attachment_kind == "voice"))
    assert (line.text, line.attachment_file_id, line.attachment_mime, line.attachment_seconds) == (
        "[voice, 14 s]", "AwACAgIAAxk-voice", "audio/ogg", 14)
    await engine.handle(msg(62, command="delete"), address="42")
    await engine.handle(msg(63, callback="delete:yes"), address="42")
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(TicketMessage)
                              .where(TicketMessage.attachment_file_id.is_not(None))) == 0


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_two_replicas_never_claim_the_same_pending_reply(env, db_url, settings, kb) -> None:
    """Several replicas' delivery loops share one outbox: a reply is leased to one of them, and
    becomes deliverable again only when that lease expires (a replica died) or is excluded."""
    import asyncio

    engine, sessions = env
    for user in ("u1", "u2", "u3"):
        await consent(engine, user)
        await engine.handle(msg(f"q-{user}", user, text="How do I get a work patent in Russia?"), address="42")
    waiting = {o.id for o in await engine.pending("telegram")}
    assert len(waiting) >= 6
    other_db = create_engine(db_url)
    other = build_engine(settings.model_copy(update={"session_secret": SecretStr("s" * 40)}),
                         session_factory(other_db), lambda: kb, RuleUnderstander())
    try:
        first, second = await asyncio.gather(engine.claim_pending("telegram"), other.claim_pending("telegram"))
        a, b = {o.id for o in first}, {o.id for o in second}
        assert not a & b and a | b == waiting
        assert await engine.claim_pending("telegram") == [] and await other.claim_pending("telegram") == []
        # a lease that has run out (its replica died mid-send) makes the rows deliverable again
        async with sessions() as s:
            await s.execute(text("UPDATE bot_outbox SET lease_until = NULL"))
            await s.commit()
        some = sorted(waiting)[:2]
        again = await other.claim_pending("telegram", lease_seconds=-1, exclude=some)
        assert {o.id for o in again} == waiting - set(some)
        await engine.mark_sent([o.id for o in again if o.id is not None])
        assert {o.id for o in await engine.claim_pending("telegram")} == set(some)
    finally:
        await other_db.dispose()


async def test_a_connected_visitors_reply_is_not_hidden_by_replies_nobody_acknowledged(env) -> None:
    """Web visitors who close the tab never acknowledge their last replies; those pile up until the
    retention purge. The web chat asks only for the people connected to it, so a counsellor's
    reply still reaches the person waiting for it."""
    engine, _sessions = env
    for n in range(5):
        await consent(engine, f"gone{n}")
        await engine.handle(msg(f"g{n}", user=f"gone{n}", text="hello"))
    await consent(engine, "waiting")
    from handoff import OutboundMessage

    await engine.send("waiting", OutboundMessage(text="I can help with that.", ticket_id=1, counsellor_name="Aziz"))
    everyone = await engine.pending("telegram", limit=3)
    assert all(o.user_key.startswith("gone") for o in everyone)  # the oldest, unacknowledged
    mine = await engine.pending("telegram", limit=3, user_keys=("waiting",))
    assert [o.reply.kind for o in mine] == ["welcome", "counsellor"]
    assert await engine.pending("telegram", user_keys=()) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("lang", "mrc"), [("prs", "islamabad"), ("ta", "colombo"), ("uz", "tashkent"),
                                           ("kk", "bishkek")])
async def test_a_request_goes_to_an_mrc_whose_counsellors_read_the_language(env, lang: str, mrc: str) -> None:
    engine, sessions = env
    await consent(engine, lang=lang)
    await engine.handle(msg(60, text="I want a counsellor"))
    async with sessions() as s:
        assert (await s.execute(select(Ticket.mrc_id))).scalar_one() == mrc
