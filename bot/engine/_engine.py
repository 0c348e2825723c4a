"""The conversation engine: one message in, stored once, understood, answered or handed over.

Why one channel-neutral engine: Telegram and the web chat must behave identically (consent before
storage, crisis handling, idempotency, quiet while a counsellor has the conversation). Channels
only translate transport; every decision lives here, inside one database transaction per update,
the caller-owns-the-session rule applied at this edge.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import (
    Author,
    ConsoleSettings,
    OutboundMessage,
    Reason,
    TranscriptLine,
    active_ticket_id,
    append_user_message,
    delete_user_data,
    open_ticket,
)
from knowledge_base import KnowledgeBase, Profile, QueryError, SearchResult
from nlu import LanguageHint, Understanding
from storage import autocommit

from ..i18n import Translator
from ..tables import BotUser, ConversationMessage, OutboxItem
from ._port import Outgoing
from ._types import Button, IncomingMessage, Reply, ReplyKind

__all__ = [
    "ConversationEngine", "EngineOptions", "UnderstandingPort", "answer_reply", "crisis_text", "language_buttons",
]

log = logging.getLogger("hamroh.engine")

#: native names for the language picker
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "ru": "Русский", "uz": "Oʻzbekcha", "ky": "Кыргызча", "tg": "Тоҷикӣ", "kk": "Қазақша",
    "bn": "বাংলা", "ur": "اردو", "ar": "العربية", "ckb": "کوردی", "si": "සිංහල", "ta": "தமிழ்",
    "ps": "پښتو", "prs": "دری",
}
_BABEL_LOCALE = {"prs": "fa_AF", "ckb": "ckb", "tg": "tg", "ky": "ky", "ps": "ps", "uz": "uz"}
_STAGE_FROM_NLU = {"planning": "pre-departure", "abroad": "abroad", "returned": "return"}
MAX_TEXT_CHARS = 4000
TRANSCRIPT_LINES = 20


class UnderstandingPort(Protocol):
    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding: ...


@dataclass(frozen=True)
class EmergencyContact:
    label: str
    phone: str | None
    url: str | None


@dataclass(frozen=True)
class EngineOptions:
    """What the engine needs from ``config.yml``, already validated."""

    languages: tuple[str, ...]
    default_language: str = "en"
    emergency: Mapping[str, Sequence[EmergencyContact]] = field(default_factory=dict)
    #: MRC ids by the migrant's origin country, and the default MRC for everyone else
    mrc_by_country: Mapping[str, str] = field(default_factory=dict)
    mrc_by_language: Mapping[str, str] = field(default_factory=dict)
    default_mrc: str = ""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def language_buttons(languages: Sequence[str]) -> tuple[tuple[Button, ...], ...]:
    buttons = [Button(LANGUAGE_NAMES.get(code, code), f"lang:{code}") for code in languages]
    return tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))


def _country_name(code: str, lang: str) -> str:
    try:
        from babel import Locale

        locale = Locale.parse(_BABEL_LOCALE.get(lang, lang))
        return str(locale.territories.get(code, code))
    except Exception:  # unknown locale data: the code is still meaningful
        return code


@dataclass(frozen=True)
class _UserView:
    lang: str
    current_lang: str | None
    origin: str | None
    destination: str | None
    stage: str | None


@dataclass(frozen=True)
class _Analysis:
    understanding: Understanding
    lang: str
    origin: str | None
    destination: str | None
    stage: str | None
    result: SearchResult | None


class _SeenIds:
    """Update ids seen before consent; nothing about the person is stored, only a bounded set."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, key: str) -> bool:
        if key in self._ids:
            return False
        self._ids[key] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class ConversationEngine:
    """Implements :class:`bot.engine.ConversationPort` and handoff's ``OutboundPort``."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], kb: Callable[[], KnowledgeBase | None],
                 understander: UnderstandingPort, translator: Translator, options: EngineOptions,
                 console: ConsoleSettings, clock: Callable[[], dt.datetime] = utcnow,
                 on_crisis: Callable[[], Any] | None = None) -> None:
        self._sessions = sessions
        self._kb = kb
        self._nlu = understander
        self._t = translator
        self._opt = options
        self._console = console
        self._clock = clock
        self._on_crisis = on_crisis
        self._seen = _SeenIds()

    # ------------------------------------------------------------------ ConversationPort
    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        # 1. a short look, one statement outside any transaction: who is this, and is the update a
        #    redelivery?
        async with self._sessions() as session:
            await autocommit(session)
            row = (await session.execute(
                select(BotUser.lang, BotUser.current_lang, BotUser.origin, BotUser.destination, BotUser.stage,
                       self._seen_clause(message).label("seen")).where(BotUser.user_key == message.user_key))).first()
            if row is not None and row.seen:
                return await self._unsent_for(session, message.channel, message.message_id)
        if row is None:
            async with self._sessions() as session:
                return await self._before_consent(session, message, address)
        view = _UserView(row.lang, row.current_lang, row.origin, row.destination, row.stage)
        # 2. understanding and search run outside any transaction: on SQLite a transaction holds the
        #    database's write lock, and nobody else should wait for the model
        analysis = None
        if self._is_text(message):
            analysis = await asyncio.to_thread(self._analyse, view, (message.text or "").strip())
        # 3. one short write transaction: the message, the state change and the replies, flushed
        #    together at the end (one round trip per table, not per object)
        async with self._sessions() as session:
            try:
                return await self._record(session, message, address, analysis)
            except IntegrityError:
                # the unique key on (channel, message id, direction) is the redelivery check: a
                # concurrent copy of this update committed first. Anything else is a real error.
                await session.rollback()
        async with self._sessions() as session:
            await autocommit(session)
            if not (await session.execute(select(self._seen_clause(message)))).scalar():
                raise RuntimeError("the update could not be stored (integrity error)")
            return await self._unsent_for(session, message.channel, message.message_id)

    async def _record(self, session: AsyncSession, message: IncomingMessage, address: str | None,
                      analysis: _Analysis | None) -> list[Outgoing]:
        user = await session.get(BotUser, message.user_key)
        if user is None:  # erased in between
            return []
        now = self._clock()
        # stored at once, before any decision: the redelivery check (its unique key) and the
        # transcript a ticket opened below starts from
        await _insert_messages(session, [dict(
            user_key=user.user_key, channel=message.channel, channel_message_id=message.message_id, direction="in",
            kind=self._in_kind(message), text=message.text, lang=user.current_lang, created_at=now)])
        user.last_seen_at = now
        if address and user.address != address:
            user.address = address
        replies, erased = await self._dispatch(session, user, message, analysis)
        if erased:
            await session.commit()
            return [Outgoing(None, message.user_key, message.channel, address, r) for r in replies]
        ids = await self._store_replies(session, user, message.channel, message.message_id, replies, now)
        await session.commit()
        return [Outgoing(i, user.user_key, message.channel, user.address, reply)
                for i, reply in zip(ids, replies, strict=True)]

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        ids = [i for i in outbox_ids if i is not None]
        if not ids:
            return
        async with self._sessions() as session:  # one UPDATE is the whole unit of work
            await autocommit(session)
            await session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids), OutboxItem.sent_at.is_(None))
                                  .values(sent_at=self._clock()).execution_options(synchronize_session=False))

    async def pending(self, channel: str, *, limit: int = 100,
                      user_keys: Collection[str] | None = None) -> list[Outgoing]:
        where = [OutboxItem.channel == channel]
        if user_keys is not None:
            # replies that web visitors never acknowledged (they closed the tab) pile up until the
            # retention purge; without this filter they would fill ``limit`` and hide the reply a
            # connected person is waiting for
            if not user_keys:
                return []
            where.append(OutboxItem.user_key.in_(list(user_keys)))
        async with self._sessions() as session:
            await autocommit(session)
            return await _unsent(session, *where, order_by=OutboxItem.id, limit=limit)

    async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                            exclude: Sequence[int] = ()) -> list[Outgoing]:
        """Unsent replies for ``channel`` that no other delivery loop holds, now leased to this one.

        Why a lease and not a lock: the sending happens outside any transaction (Telegram may take
        seconds), and a replica that dies mid-send must not hold its rows forever; an expired lease
        makes the row deliverable again, so a crash costs at most one duplicate, never a loss.
        """
        now = self._clock()
        free = or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until < now)
        async with self._sessions() as session:
            query = (select(OutboxItem.id).where(OutboxItem.channel == channel, OutboxItem.sent_at.is_(None), free)
                     .order_by(OutboxItem.id).limit(limit).with_for_update(skip_locked=True))
            if exclude:
                query = query.where(OutboxItem.id.not_in(list(exclude)))
            candidates = list((await session.execute(query)).scalars())
            if not candidates:
                await session.rollback()
                return []
            # the same condition again: on SQLite (no SKIP LOCKED) two claimers may pick the same ids,
            # and only the first UPDATE still finds them free
            claimed = set((await session.execute(
                update(OutboxItem).where(OutboxItem.id.in_(candidates), free)
                .values(lease_until=now + dt.timedelta(seconds=lease_seconds))
                .returning(OutboxItem.id).execution_options(synchronize_session=False))).scalars())
            await session.commit()
        return [out for out in await self._outgoing(channel, sorted(claimed)) if out.id in claimed]

    async def _outgoing(self, channel: str, ids: Sequence[int]) -> list[Outgoing]:
        if not ids:
            return []
        async with self._sessions() as session:
            await autocommit(session)
            return await _unsent(session, OutboxItem.channel == channel, OutboxItem.id.in_(list(ids)),
                                 order_by=OutboxItem.id)

    # ------------------------------------------------------------------ OutboundPort (console replies)
    async def send(self, user_key: str, message: OutboundMessage) -> None:
        """Queue a counsellor's reply for the user's channel; the channel's delivery loop sends it."""
        async with self._sessions() as session:
            user = await session.get(BotUser, user_key)
            if user is None:
                raise LookupError("the user has erased their data or never consented")
            lang = message.lang or user.current_lang or user.lang
            text = f"{self._t(lang, 'counsellor_prefix', name=message.counsellor_name)}\n{message.text}"
            reply = Reply("counsellor", text, lang)
            now = self._clock()
            ref = f"counsellor:{message.ticket_id}:{now.timestamp():.6f}"
            await self._store_replies(session, user, user.channel, ref, [reply], now)
            await session.commit()

    async def erase(self, user_key: str) -> None:
        async with self._sessions() as session:
            await self._erase(session, user_key)
            await session.commit()

    async def purge_older_than(self, cutoff: dt.datetime) -> int:
        """Retention: delete conversation messages and sent replies older than ``cutoff``."""
        async with self._sessions() as session:
            result: Any = await session.execute(delete(ConversationMessage).where(
                ConversationMessage.created_at < cutoff))
            n = result.rowcount or 0
            await session.execute(delete(OutboxItem).where(OutboxItem.created_at < cutoff,
                                                           OutboxItem.sent_at.is_not(None)))
            await session.commit()
            return int(n)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _is_text(message: IncomingMessage) -> bool:
        text = (message.text or "").strip()
        return bool(text) and len(text) <= MAX_TEXT_CHARS and not (
            message.command or message.callback or message.attachment)

    @staticmethod
    def _seen_clause(message: IncomingMessage) -> Any:
        """True when this update was stored before (a redelivery)."""
        return select(ConversationMessage.id).where(
            ConversationMessage.channel == message.channel,
            ConversationMessage.channel_message_id == message.message_id,
            ConversationMessage.direction == "in").exists()

    def _analyse(self, view: _UserView, text: str) -> _Analysis:
        u = self._nlu.understand(text, LanguageHint(chosen=view.lang, current=view.current_lang))
        lang = u.lang if (u.lang_confident and u.lang in self._opt.languages) else (view.current_lang or view.lang)
        e = u.entities
        origin = e.origin or view.origin
        destination = e.destination or view.destination
        stage = _STAGE_FROM_NLU.get(e.stage, view.stage) if e.stage else view.stage
        result = None
        kb = self._kb()
        if u.act == "question" and kb is not None:
            profile = Profile(origin=origin, destination=destination,
                              stage=stage if stage in ("pre-departure", "abroad", "return") else None)
            try:
                result = kb.search(text, lang, profile)
            except QueryError:
                result = None
        return _Analysis(u, lang, origin, destination, stage, result)

    @staticmethod
    def _in_kind(message: IncomingMessage) -> str:
        if message.command:
            return f"command:{message.command}"[:24]
        if message.callback:
            return "button"
        if message.attachment:
            return f"attachment:{message.attachment}"[:24]
        return "text"

    def _client_lang(self, message: IncomingMessage) -> str:
        code = (message.client_lang or "").split("-")[0].lower()
        code = {"fa": "prs", "ku": "ckb"}.get(code, code)
        return code if code in self._opt.languages else self._opt.default_language

    async def _before_consent(self, session: AsyncSession, message: IncomingMessage,
                              address: str | None) -> list[Outgoing]:
        """Nothing is stored until the person picks a language under the consent notice."""
        if not self._seen.add(f"{message.channel}:{message.message_id}"):
            return []
        if message.callback and message.callback.startswith("lang:"):
            lang = message.callback.split(":", 1)[1]
            if lang in self._opt.languages:
                now = self._clock()
                user = BotUser(user_key=message.user_key, channel=message.channel, address=address, lang=lang,
                               current_lang=lang, consent_at=now, last_seen_at=now)
                session.add(user)
                session.add(ConversationMessage(user_key=message.user_key, channel=message.channel,
                                                channel_message_id=message.message_id, direction="in",
                                                kind="consent", text=None, lang=lang, created_at=now))
                replies = [Reply("welcome", f"{self._t(lang, 'language_set')}\n\n{self._t(lang, 'welcome')}", lang)]
                try:
                    ids = await self._store_replies(session, user, message.channel, message.message_id, replies, now)
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return []
                return [Outgoing(ids[0], message.user_key, message.channel, address, replies[0])]
        lang = self._client_lang(message)
        key = "consent" if not message.callback else "consent_first"
        text = self._t(lang, key) if key == "consent" else f"{self._t(lang, key)}\n\n{self._t(lang, 'consent')}"
        reply = Reply("consent", text, lang, buttons=language_buttons(self._opt.languages))
        return [Outgoing(None, message.user_key, message.channel, address, reply)]

    async def _store_replies(self, session: AsyncSession, user: BotUser, channel: str, ref: str,
                             replies: Sequence[Reply], now: dt.datetime) -> list[int]:
        """Queue ``replies`` in the outbox and the conversation; the outbox ids, in order.

        Plain inserts, not ORM objects: this runs for every message, and two multi-row statements
        cost a fraction of the unit of work's flush. The user's pending changes are flushed first,
        so a new user's row exists before rows that refer to it.
        """
        if not replies:
            return []
        await session.flush()
        outbox = _table(OutboxItem)
        result = await session.execute(
            insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True),
            [dict(user_key=user.user_key, channel=channel, in_reply_to=ref, seq=seq, payload=_payload(reply),
                  created_at=now) for seq, reply in enumerate(replies)])
        ids = list(result.scalars())
        await _insert_messages(session, [dict(
            user_key=user.user_key, channel=channel, channel_message_id=f"{ref}#{seq}", direction="out",
            kind=reply.kind, text=reply.text, lang=reply.lang, created_at=now) for seq, reply in enumerate(replies)])
        return ids

    async def _unsent_for(self, session: AsyncSession, channel: str, ref: str) -> list[Outgoing]:
        return await _unsent(session, OutboxItem.channel == channel, OutboxItem.in_reply_to == ref,
                             order_by=OutboxItem.seq)

    async def _erase(self, session: AsyncSession, user_key: str) -> None:
        await delete_user_data(session=session, user_key=user_key)
        await session.execute(delete(OutboxItem).where(OutboxItem.user_key == user_key))
        await session.execute(delete(ConversationMessage).where(ConversationMessage.user_key == user_key))
        await session.execute(delete(BotUser).where(BotUser.user_key == user_key))

    def _lang(self, user: BotUser) -> str:
        return user.current_lang or user.lang

    async def _dispatch(self, session: AsyncSession, user: BotUser, message: IncomingMessage,
                        analysis: _Analysis | None) -> tuple[list[Reply], bool]:
        lang = self._lang(user)
        t = self._t
        if message.command:
            return await self._command(session, user, message.command, lang), False
        if message.callback:
            return await self._callback(session, user, message.callback, lang)
        if message.attachment:
            if message.attachment == "sticker":
                return [Reply("attachment", t(lang, "sticker"), lang)], False
            key = "voice" if message.attachment == "voice" else "file"
            return [Reply("attachment", t(lang, key), lang,
                          buttons=((Button(t(lang, "talk_to_counsellor"), "human:att"),),))], False
        text = (message.text or "").strip()
        if not text:
            return [Reply("help", t(lang, "help"), lang)], False
        if len(text) > MAX_TEXT_CHARS or analysis is None:
            return [Reply("error", t(lang, "too_long"), lang)], False
        return await self._text(session, user, text, message.message_id, analysis), False

    async def _command(self, session: AsyncSession, user: BotUser, command: str, lang: str) -> list[Reply]:
        t = self._t
        if command == "language":
            return [Reply("language", t(lang, "choose_language"), lang,
                          buttons=language_buttons(self._opt.languages))]
        if command == "human":
            return [await self._open(session, user, Reason.USER_ASKED, lang, None)]
        if command == "delete":
            return [Reply("delete_confirm", t(lang, "delete_confirm"), lang,
                          buttons=((Button(t(lang, "delete_yes"), "delete:yes"), Button(t(lang, "no"), "delete:no")),))]
        if command == "start":
            return [Reply("welcome", t(lang, "welcome"), lang)]
        return [Reply("help", t(lang, "help"), lang)]

    async def _callback(self, session: AsyncSession, user: BotUser, data: str,
                        lang: str) -> tuple[list[Reply], bool]:
        t = self._t
        head, _, rest = data.partition(":")
        if head == "lang" and rest in self._opt.languages:
            user.lang = user.current_lang = rest
            return [Reply("language", t(rest, "language_set"), rest)], False
        if head == "delete":
            if rest == "yes":
                await self._erase(session, user.user_key)
                return [Reply("deleted", t(lang, "deleted"), lang)], True
            return [Reply("delete_cancelled", t(lang, "delete_cancelled"), lang)], False
        if head == "fb":
            verdict, _, entry_id = rest.partition(":")
            if verdict == "down":
                return [Reply("feedback", t(lang, "feedback_sorry"), lang, entry_id=entry_id or None,
                              buttons=((Button(t(lang, "talk_to_counsellor"), f"human:neg:{entry_id}"[:64]),),))], False
            return [Reply("feedback", t(lang, "feedback_thanks"), lang)], False
        if head == "human":
            reason = {"neg": Reason.NEGATIVE_FEEDBACK, "att": Reason.UNREADABLE_ATTACHMENT,
                      "noans": Reason.NO_ANSWER}.get(rest.split(":")[0], Reason.USER_ASKED)
            question = user.last_question if reason in (Reason.NO_ANSWER, Reason.NEGATIVE_FEEDBACK) else None
            return [await self._open(session, user, reason, lang, None, question=question)], False
        if head == "entry":
            kb = self._kb()
            entry = kb.get(rest) if kb else None
            if entry is not None and kb is not None:
                user.last_answer_entry = entry.id
                return [self._answer_reply(kb, entry.id, lang)], False
        return [Reply("help", t(lang, "help"), lang)], False

    async def _text(self, session: AsyncSession, user: BotUser, text: str, message_id: str,
                    analysis: _Analysis) -> list[Reply]:
        u, lang = analysis.understanding, analysis.lang
        user.current_lang = lang
        user.origin, user.destination, user.stage = analysis.origin, analysis.destination, analysis.stage
        ticket_id = await active_ticket_id(session=session, user_key=user.user_key)
        if u.act == "crisis":
            return [await self._open(session, user, Reason.CRISIS, lang, u.crisis_kind, question=text)]
        if ticket_id is not None:
            await append_user_message(session=session, ticket_id=ticket_id, text=text, client_key=message_id)
            if user.notified_ticket_id != ticket_id:
                user.notified_ticket_id = ticket_id
                return [Reply("counsellor_has_it", self._t(lang, "counsellor_has_it"), lang)]
            return []
        if u.act == "ask_human":
            return [await self._open(session, user, Reason.USER_ASKED, lang, None)]
        if u.act in ("greet", "thanks", "goodbye"):
            return [Reply("smalltalk", self._t(lang, u.act), lang)]
        return self._question(user, text, lang, analysis.result)

    def _question(self, user: BotUser, text: str, lang: str, result: SearchResult | None) -> list[Reply]:
        t = self._t
        kb = self._kb()
        user.last_question = text[:1000]
        counsellor = (Button(t(lang, "talk_to_counsellor"), "human:noans"),)
        if kb is None or result is None:
            return [Reply("handoff", t(lang, "no_answer"), lang, buttons=(counsellor,))]
        if result.decision == "answer" and result.answer is not None:
            user.last_answer_entry = result.answer.entry_id
            return [self._answer_reply(kb, result.answer.entry_id, lang)]
        if result.decision == "clarify" and result.candidates:
            rows = tuple((Button(c.title[:60], f"entry:{c.entry_id}"[:64]),) for c in result.candidates[:3])
            return [Reply("clarify", t(lang, "clarify"), lang, buttons=(*rows, counsellor))]
        return [Reply("handoff", t(lang, "no_answer"), lang, buttons=(counsellor,))]

    def _answer_reply(self, kb: KnowledgeBase, entry_id: str, lang: str) -> Reply:
        return answer_reply(kb, self._t, entry_id, lang)

    def _mrc_for(self, user: BotUser) -> str:
        if user.mrc_id:
            return user.mrc_id
        by_country = self._opt.mrc_by_country.get(user.origin or "")
        by_lang = self._opt.mrc_by_language.get(user.current_lang or user.lang)
        return by_country or by_lang or self._opt.default_mrc

    async def _transcript(self, session: AsyncSession, user_key: str) -> list[TranscriptLine]:
        rows = (await session.execute(
            select(ConversationMessage).where(ConversationMessage.user_key == user_key,
                                              ConversationMessage.text.is_not(None))
            .order_by(ConversationMessage.id.desc()).limit(TRANSCRIPT_LINES))).scalars().all()
        return [TranscriptLine(Author.USER if m.direction == "in" else Author.BOT, m.text or "", m.created_at)
                for m in reversed(rows)]

    async def _open(self, session: AsyncSession, user: BotUser, reason: Reason, lang: str,
                    crisis_kind: str | None, *, question: str | None = None) -> Reply:
        await session.flush()
        ticket = await open_ticket(
            session=session, settings=self._console, user_key=user.user_key, mrc_id=self._mrc_for(user),
            reason=reason, lang=lang, transcript=await self._transcript(session, user.user_key),
            profile={"origin": user.origin, "destination": user.destination, "stage": user.stage},
            crisis_kind=crisis_kind, question_text=question, now=self._clock())
        user.notified_ticket_id = ticket.id
        if reason == Reason.CRISIS:
            if self._on_crisis is not None:
                self._on_crisis()
            return Reply("crisis", self._crisis_text(user, lang), lang)
        return Reply("ticket_opened", self._t(lang, "ticket_opened"), lang)

    def _crisis_text(self, user: BotUser, lang: str) -> str:
        return crisis_text(self._t, self._opt.emergency, (user.destination, user.origin), lang)


def answer_reply(kb: KnowledgeBase, t: Translator, entry_id: str, lang: str) -> Reply:
    """A curated answer as the user sees it: title, text, source and review date, in ``lang`` or
    along its fallback chain (saying so). Shared by the engine and the Rasa action API."""
    entry = kb.get(entry_id)
    assert entry is not None
    a = kb.answer_for(entry, lang)
    source = a.sources[0]
    parts = [a.title, a.text.strip()]
    if a.fell_back:
        parts.insert(0, t(lang, "fallback_note", language=LANGUAGE_NAMES.get(a.lang, a.lang)))
    parts.append(t(lang, "answer_footer", source=f"{source.title} ({source.url})",
                   date=a.reviewed_on.isoformat()))
    buttons = ((Button(t(lang, "helpful_yes"), f"fb:up:{a.entry_id}"[:64]),
                Button(t(lang, "helpful_no"), f"fb:down:{a.entry_id}"[:64])),
               (Button(t(lang, "talk_to_counsellor"), "human:ask"),))
    return Reply("answer", "\n\n".join(parts), a.lang, buttons=buttons, source_title=source.title,
                 source_url=source.url, reviewed_on=a.reviewed_on, entry_id=a.entry_id, fell_back=a.fell_back)


def crisis_text(t: Translator, emergency: Mapping[str, Sequence[EmergencyContact]],
                countries: Sequence[str | None], lang: str) -> str:
    """The crisis reply: what to do now, the emergency numbers of the first known country, and
    the embassy route. Shared by the engine and the Rasa action API."""
    parts = [t(lang, "crisis")]
    for country in dict.fromkeys(c for c in countries if c):
        contacts = emergency.get(country)
        if contacts:
            lines = [f"{c.label}: {c.phone or c.url}" for c in contacts]
            parts.append("\n".join([t(lang, "crisis_numbers", country=_country_name(country, lang)), *lines]))
            break
    parts.append(t(lang, "crisis_embassy"))
    return "\n\n".join(parts)


async def _insert_messages(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    await session.execute(insert(_table(ConversationMessage)), list(rows))


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


async def _unsent(session: AsyncSession, *where: Any, order_by: Any, limit: int | None = None) -> list[Outgoing]:
    """Unsent outbox rows matching ``where``, with their user's delivery address."""
    query = (select(OutboxItem, BotUser.address).join(BotUser, BotUser.user_key == OutboxItem.user_key)
             .where(*where, OutboxItem.sent_at.is_(None)).order_by(order_by).limit(limit))
    return [Outgoing(item.id, item.user_key, item.channel, address, _reply_from(item.payload))
            for item, address in (await session.execute(query)).all()]


def _payload(reply: Reply) -> dict[str, Any]:
    data = asdict(reply)
    data["buttons"] = [[{"label": b.label, "payload": b.payload} for b in row] for row in reply.buttons]
    data["reviewed_on"] = reply.reviewed_on.isoformat() if reply.reviewed_on else None
    return data


def _reply_from(payload: Mapping[str, Any]) -> Reply:
    data = dict(payload)
    rows = tuple(tuple(Button(b["label"], b["payload"]) for b in row) for row in data.pop("buttons", []))
    reviewed = data.pop("reviewed_on", None)
    kind: ReplyKind = data.pop("kind")
    return Reply(kind=kind, buttons=rows, reviewed_on=dt.date.fromisoformat(reviewed) if reviewed else None,
                 **data)
