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
import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handoff import (
    Author,
    ConsoleSettings,
    Notifier,
    OutboundMessage,
    Priority,
    Reason,
    TranscriptLine,
    active_ticket_for_user,
    append_user_message,
    close_by_user,
    delete_user_data,
    next_opening,
    notify_pending_crises,
    open_ticket,
)
from knowledge_base import KnowledgeBase, Profile, QueryError, SearchResult
from nlu import LanguageHint, Understanding
from storage import autocommit, checkpoint_after_erasure

from ..i18n import MESSAGES, Translator
from ..tables import BotUser, ConversationMessage, OutboxItem
from ._emergency import EmergencyContact, country_buttons, country_name, crisis_text
from ._port import Outgoing
from ._render import LANGUAGE_NAMES, answer_reply, babel_locale, details_reply, short_title, to_script
from ._state import ConversationState, PendingQuestions
from ._translit import uz_cyrillic_to_latin
from ._types import Button, IncomingMessage, Reply, ReplyKind

__all__ = [
    "ConversationEngine", "EmergencyContact", "EngineOptions", "UnderstandingPort", "answer_reply", "crisis_text",
    "language_buttons",
]

log = logging.getLogger("hamroh.engine")

_STAGE_FROM_NLU = {"planning": "pre-departure", "abroad": "abroad", "returned": "return"}
MAX_TEXT_CHARS = 4000
TRANSCRIPT_LINES = 20


class UnderstandingPort(Protocol):
    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding: ...


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
    #: the languages each MRC's counsellors read: a ticket goes where someone can read it
    mrc_languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: topic groups of the menu: group key -> topic ids
    menu_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


#: the menu's topic groups (labels in bot.i18n: group_<key>)
MENU_GROUPS: dict[str, tuple[str, ...]] = {
    "documents": ("ru-registration", "ru-patent", "ru-entry-stay-rules", "ru-medical-fingerprinting",
                  "ru-language-exam", "ru-entry-ban-check", "eaeu-workers", "kz-work-rules", "ru-irregular-status",
                  "bd-emigration-clearance", "pk-protector-registration", "lk-slbfe-registration"),
    "before": ("fake-job-offers", "agency-license-check", "recruitment-fees", "contract-essentials",
               "documents-checklist", "pre-departure-orientation", "eu-legal-pathways", "eps-korea",
               "uk-seasonal-work", "malaysia-work", "study-abroad", "irregular-migration-risks"),
    "rights": ("wage-complaints", "passport-retention", "gulf-work-rights", "gulf-residence-exit", "change-employer",
               "health-insurance-abroad", "iraq-foreign-workers", "women-migrants-safety", "social-security-pensions"),
    "safety": ("emergency-abroad", "trafficking-signs", "scam-compounds", "detention-deportation-rights",
               "death-abroad", "afghans-neighbours"),
    "money": ("remittances-safe", "financial-planning", "family-left-behind", "family-reunification",
              "ru-children-school"),
    "return": ("reintegration-services", "returnee-business", "skills-recognition", "return-savings-customs",
               "diaspora-programmes", "mrc-services"),
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def language_buttons(languages: Sequence[str]) -> tuple[tuple[Button, ...], ...]:
    buttons = [Button(LANGUAGE_NAMES.get(code, code), f"lang:{code}") for code in languages]
    return tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))


@dataclass(frozen=True)
class _UserView:
    lang: str
    current_lang: str | None
    origin: str | None
    destination: str | None
    stage: str | None
    state: ConversationState = field(default_factory=ConversationState)


@dataclass(frozen=True)
class _Analysis:
    understanding: Understanding
    lang: str
    origin: str | None
    destination: str | None
    stage: str | None
    result: SearchResult | None
    #: the search of the previous question with the new profile slot ("and for Tajiks?")
    follow_up: SearchResult | None = None
    #: the language the message is written in, when it differs from the conversation's
    other_lang: str | None = None


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


#: a message this short (in words) that names a country continues the previous question
_FOLLOW_UP_WORDS = 7
#: names of the languages as people ask for them ("по-русски", "English please", "o'zbekcha"); the
#: names of nationalities ("uzbek", "tajik") are left out: "men uzbek" is a citizenship, not a request
_LANGUAGE_REQUESTS: dict[str, tuple[str, ...]] = {
    "en": ("english", "английский", "по-английски", "inglizcha", "ingliz tilida", "انگلیسی", "ইংরেজি", "انگریزی"),
    "ru": ("русский", "по-русски", "на русском", "russian", "ruscha", "rus tilida", "orus tilinde", "орусча",
           "русӣ", "po russki", "po-russki", "na russkom", "рус тилинде", "rus tilinde"),
    "uz": ("o'zbekcha", "ozbekcha", "o'zbek tilida", "ўзбекча", "узбекский", "по-узбекски", "uzbek tilida"),
    "ky": ("кыргызча", "киргизский", "по-киргизски", "kyrgyzcha"),
    "tg": ("тоҷикӣ", "точики", "таджикский", "по-таджикски", "tojikcha", "тоҷикча", "забони тоҷикӣ"),
    "kk": ("қазақша", "казахский", "по-казахски", "kazakhsha", "казакча"),
    "bn": ("বাংলা", "bangla", "bengali", "banglay", "বাংলায়"),
    "ur": ("اردو", "urdu", "urdu mein"),
    "ar": ("العربية", "عربي", "بالعربي", "arabic"),
    "ckb": ("کوردی", "kurdish", "sorani", "بە کوردی"),
    "si": ("සිංහල", "sinhala", "sinhalen", "සිංහලෙන්"),
    "ta": ("தமிழ்", "tamil", "தமிழில்"),
    "ps": ("پښتو", "pashto", "په پښتو"),
    "prs": ("دری", "dari", "فارسی", "به دری"),
}
_FILLER = frozenset({"please", "pls", "plz", "пожалуйста", "пж", "in", "на", "говори", "пиши", "speak", "write",
                     "iltimos", "lütfen", "tilida", "language", "язык", "языке"})


def _asked_language(text: str, languages: Collection[str]) -> str | None:
    """The language a short message asks for by name ("English please", "по-русски"), or None."""
    folded = re.sub(r"[!?.,;:¿¡؟،]+", " ", text.lower()).strip()
    words = folded.split()
    if not words or len(words) > 4:
        return None
    for code, names in _LANGUAGE_REQUESTS.items():
        if code not in languages:
            continue
        for name in names:
            if folded == name or (name in folded and all(w in _FILLER or w in name.split() for w in words)):
                return code
    return None


#: the crisis kinds counsellors and the evaluation sets name (nlu is finer: abuse and threats are violence)
_CRISIS_KIND = {"sexual_abuse": "violence", "threatened": "violence"}
#: commands a person may type in any channel ("/delete" in the web chat works as on Telegram)
_COMMANDS = frozenset({"start", "menu", "language", "profile", "human", "delete", "help"})
#: the understanding's confidence when a rule (not only the embedder) found a request for a person
_SURE_ASK_HUMAN = 0.9
#: a message needs this many words to count towards switching the conversation's language
_SWITCH_WORDS = 4


def _words(text: str) -> int:
    return len([w for w in text.split() if any(ch.isalpha() for ch in w)])


class ConversationEngine:
    """Implements :class:`bot.engine.ConversationPort` and handoff's ``OutboundPort``."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], kb: Callable[[], KnowledgeBase | None],
                 understander: UnderstandingPort, translator: Translator, options: EngineOptions,
                 console: ConsoleSettings, clock: Callable[[], dt.datetime] = utcnow,
                 notifier: Notifier | None = None) -> None:
        self._sessions = sessions
        self._kb = kb
        self._nlu = understander
        self._t = translator
        self._opt = options
        self._console = console
        self._clock = clock
        self._notifier = notifier
        self._alerts: set[asyncio.Task[Any]] = set()
        self._crisis_opened = False
        self._seen = _SeenIds()
        self._pending = PendingQuestions()

    @property
    def console(self) -> ConsoleSettings:
        """The MRCs and queue settings this engine opens tickets with."""
        return self._console

    # ------------------------------------------------------------------ ConversationPort
    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        message = _typed_command(message)
        # 1. a short look, one statement outside any transaction: who is this, and is the update a
        #    redelivery?
        async with self._sessions() as session:
            await autocommit(session)
            row = (await session.execute(
                select(BotUser.lang, BotUser.current_lang, BotUser.origin, BotUser.destination, BotUser.stage,
                       BotUser.state, self._seen_clause(message).label("seen"))
                .where(BotUser.user_key == message.user_key))).first()
            if row is not None and row.seen:
                return await self._unsent_for(session, message.channel, message.message_id)
        if row is None:
            view = _UserView(self._client_lang(message), None, None, None, None)
        else:
            view = _UserView(row.lang, row.current_lang, row.origin, row.destination, row.stage,
                             ConversationState.load(row.state))
        # 2. understanding and search run outside any transaction: on SQLite a transaction holds the
        #    database's write lock, and nobody else should wait for the model. Before consent the
        #    text is understood too: a crisis is handled whatever the state (DESIGN.md, principle 2)
        analysis = None
        text = self._text_of(message)
        if text is not None:
            analysis = await asyncio.to_thread(self._analyse, view, text, row is None)
        elif row is None and message.callback and message.callback.startswith(("lang:", "consent:")):
            kept = self._pending.peek(message.user_key)
            if kept is not None:
                lang = message.callback.split(":", 1)[1]
                fresh = _UserView(lang if lang in self._opt.languages else kept.lang, None, None, None, None)
                analysis = await asyncio.to_thread(self._analyse, fresh, kept.text, False)
        if row is None:
            async with self._sessions() as session:
                return await self._before_consent(session, message, address, analysis)
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
            kind=self._in_kind(message), text=self._stored_text(message), lang=user.current_lang, created_at=now)])
        user.last_seen_at = now
        if address and user.address != address:
            user.address = address
        state = ConversationState.load(user.state)
        replies, erased = await self._dispatch(session, user, state, message, analysis)
        if erased:
            await session.commit()
            if isinstance(session.bind, AsyncEngine):
                # SQLite keeps old copies of erased rows in its write-ahead log until a checkpoint
                await checkpoint_after_erasure(session.bind)
            return [Outgoing(None, message.user_key, message.channel, address, r) for r in replies]
        user.state = state.dump()
        await self._mirror_to_ticket(session, user, replies, now)
        ids = await self._store_replies(session, user, message.channel, message.message_id, replies, now)
        await session.commit()
        self._alert_if_crisis()
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
        """Queue a counsellor's reply, or news of the person's request, for the user's channel."""
        async with self._sessions() as session:
            user = await session.get(BotUser, user_key)
            if user is None:
                raise LookupError("the user has erased their data or never consented")
            lang = message.lang or user.current_lang or user.lang
            kind = getattr(message, "kind", "reply")
            if kind == "resolved":
                reply = Reply("status", self._t(lang, "status_resolved"), lang, extra={"ticket": "closed"})
            elif kind == "returned":
                reply = Reply("status", self._t(lang, "status_returned"), lang, extra={"ticket": "closed"})
            elif kind == "transferred":
                reply = Reply("status", self._t(lang, "status_transferred", mrc=message.text), lang)
            else:
                text = f"{self._t(lang, 'counsellor_prefix', name=message.counsellor_name)}\n{message.text}"
                reply = Reply("counsellor", text, lang)
            now = self._clock()
            ref = f"counsellor:{message.ticket_id}:{kind}:{now.timestamp():.6f}"
            await self._store_replies(session, user, user.channel, ref, [reply], now)
            await session.commit()

    async def history(self, user_key: str, *, limit: int = 40) -> list[tuple[str, Reply | str]]:
        """The person's own conversation, oldest first: ("in", text) and ("out", Reply).

        Why: a reload of the web chat on a cheap phone must not wipe what the person was told (a
        deadline, a number to call). Only for their own key; nothing before consent was stored.
        """
        async with self._sessions() as session:
            await autocommit(session)
            said = (await session.execute(
                select(ConversationMessage.id, ConversationMessage.text, ConversationMessage.created_at)
                .where(ConversationMessage.user_key == user_key, ConversationMessage.direction == "in",
                       ConversationMessage.kind == "text", ConversationMessage.text.is_not(None))
                .order_by(ConversationMessage.id.desc()).limit(limit))).all()
            told = (await session.execute(
                select(OutboxItem.id, OutboxItem.payload, OutboxItem.created_at)
                .where(OutboxItem.user_key == user_key)
                .order_by(OutboxItem.id.desc()).limit(limit))).all()
        lines: list[tuple[dt.datetime, int, str, Reply | str]] = [
            (row.created_at, 0, "in", row.text or "") for row in said]
        lines += [(row.created_at, 1, "out", _reply_from(row.payload)) for row in told]
        lines.sort(key=lambda line: (line[0], line[1]))
        return [(direction, item) for _, _, direction, item in lines[-limit:]]

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

    # ------------------------------------------------------------------ crisis alerts
    def _alert_if_crisis(self) -> None:
        """Counsellors hear of a crisis at once: the Telegram group alert goes out right after the
        ticket is committed, in the background so the person's reply does not wait for Telegram."""
        if not self._crisis_opened:
            return
        self._crisis_opened = False
        if self._notifier is None:
            return
        task = asyncio.create_task(self.send_crisis_alerts())
        self._alerts.add(task)
        task.add_done_callback(self._alerts.discard)

    async def send_crisis_alerts(self) -> list[int]:
        """Announce every crisis ticket not announced yet (also the lifespan's safety-net sweep)."""
        if self._notifier is None:
            return []
        try:
            async with self._sessions() as session:
                sent = await notify_pending_crises(session=session, settings=self._console, notifier=self._notifier,
                                                   now=self._clock())
                await session.commit()
                return sent
        except Exception as exc:  # never let an alert failure reach the person's conversation
            log.warning("crisis alert sweep failed: %s", type(exc).__name__)
            return []

    # ------------------------------------------------------------------ understanding (no database)
    @staticmethod
    def _text_of(message: IncomingMessage) -> str | None:
        """The words to understand: a text, or a photo's caption; never a command or a button."""
        text = (message.text or "").strip()
        if not text or len(text) > MAX_TEXT_CHARS or message.command or message.callback:
            return None
        return text

    @staticmethod
    def _seen_clause(message: IncomingMessage) -> Any:
        """True when this update was stored before (a redelivery)."""
        return select(ConversationMessage.id).where(
            ConversationMessage.channel == message.channel,
            ConversationMessage.channel_message_id == message.message_id,
            ConversationMessage.direction == "in").exists()

    def _analyse(self, view: _UserView, text: str, first: bool) -> _Analysis:
        chosen = None if first else view.lang
        u = self._nlu.understand(text, LanguageHint(chosen=chosen, current=view.current_lang))
        detected = u.lang if (u.lang_confident and u.lang in self._opt.languages) else None
        if first:
            # the first message's language beats the phone's locale (Telegram's language_code)
            lang = detected or view.lang
            other = None
        else:
            # the chosen language stays: short lines, numbers and loanwords never switch it
            lang = view.current_lang or view.lang
            other = detected if detected and detected != lang and _words(text) >= _SWITCH_WORDS else None
        e = u.entities
        origin = e.origin or view.origin
        destination = e.destination or view.destination
        stage = _STAGE_FROM_NLU.get(e.stage, view.stage) if e.stage else view.stage
        result = follow_up = None
        kb = self._kb()
        if u.act == "question" and kb is not None:
            profile = Profile(origin=origin, destination=destination,
                              stage=stage if stage in ("pre-departure", "abroad", "return") else None)
            query = text
            if lang == "uz" and u.script == "Cyrl":
                query = uz_cyrillic_to_latin(text)  # the content is written in Latin letters
            try:
                result = kb.search(query, lang, profile)
            except QueryError:
                result = None
            previous = view.state.waiting_question or view.state.last_question
            new_slot = (e.origin and e.origin != view.origin) or (e.destination and e.destination != view.destination)
            if previous and new_slot and _words(text) <= _FOLLOW_UP_WORDS:
                try:
                    follow_up = kb.search(previous, lang, profile)
                except QueryError:
                    follow_up = None
        return _Analysis(u, lang, origin, destination, stage, result, follow_up, other)

    @staticmethod
    def _in_kind(message: IncomingMessage) -> str:
        if message.command:
            return f"command:{message.command}"[:24]
        if message.callback:
            return "button"
        if message.attachment:
            return f"attachment:{message.attachment}"[:24]
        return "text"

    @staticmethod
    def _stored_text(message: IncomingMessage) -> str | None:
        if message.attachment and message.attachment_note:
            caption = (message.text or "").strip()
            return f"{message.attachment_note} {caption}".strip()
        return message.text

    def _client_lang(self, message: IncomingMessage) -> str:
        code = (message.client_lang or "").split("-")[0].lower()
        code = {"fa": "prs", "ku": "ckb"}.get(code, code)
        return code if code in self._opt.languages else self._opt.default_language

    # ------------------------------------------------------------------ before consent
    def _consent_reply(self, lang: str, *, first: bool = True) -> Reply:
        t = self._t
        text = f"{t(lang, 'consent')}\n\n{t(lang, 'consent_vital')}\n\n{t(lang, 'consent_media')}"
        if not first:
            text = f"{t(lang, 'consent_first')}\n\n{text}"
        rows = ((Button(t(lang, "consent_agree"), f"consent:{lang}"), Button(t(lang, "consent_decline"), "decline")),
                *language_buttons(self._opt.languages))
        return Reply("consent", text, lang, buttons=rows)

    async def _before_consent(self, session: AsyncSession, message: IncomingMessage,
                              address: str | None, analysis: _Analysis | None) -> list[Outgoing]:
        """Nothing is stored until the person agrees, except a crisis: that is handled at once."""
        if not self._seen.add(f"{message.channel}:{message.message_id}"):
            return []
        data = message.callback or ""
        head, _, lang = data.partition(":")
        if head in ("lang", "consent") and lang in self._opt.languages:
            return await self._consent(session, message, address, lang, analysis)
        if head == "decline":
            self._pending.pop(message.user_key)
            reply = Reply("declined", self._t(self._client_lang(message), "declined"), self._client_lang(message))
            return [Outgoing(None, message.user_key, message.channel, address, reply)]
        if analysis is not None and analysis.understanding.act == "crisis":
            return await self._crisis_before_consent(session, message, address, analysis)
        lang = analysis.lang if analysis is not None else self._client_lang(message)
        if analysis is not None and analysis.understanding.act == "question":
            self._pending.put(message.user_key, (message.text or "").strip(), lang)
        reply = self._consent_reply(lang, first=not message.callback)
        return [Outgoing(None, message.user_key, message.channel, address, reply)]

    async def _consent(self, session: AsyncSession, message: IncomingMessage, address: str | None, lang: str,
                       analysis: _Analysis | None) -> list[Outgoing]:
        now = self._clock()
        user = BotUser(user_key=message.user_key, channel=message.channel, address=address, lang=lang,
                       current_lang=lang, consent_at=now, last_seen_at=now, state=ConversationState().dump())
        session.add(user)
        session.add(ConversationMessage(user_key=message.user_key, channel=message.channel,
                                        channel_message_id=message.message_id, direction="in",
                                        kind="consent", text=None, lang=lang, created_at=now))
        replies = [Reply("welcome", f"{self._t(lang, 'language_set')}\n\n{self._t(lang, 'welcome')}", lang,
                         buttons=((Button(self._t(lang, "menu_button"), "menu"),),))]
        kept = self._pending.pop(message.user_key)
        if kept is not None and analysis is not None:
            # the question sent before consent is answered now, never dropped
            state = ConversationState()
            session.add(ConversationMessage(user_key=message.user_key, channel=message.channel,
                                            channel_message_id=f"{message.message_id}#kept", direction="in",
                                            kind="text", text=kept.text, lang=lang, created_at=now))
            await session.flush()
            replies += await self._text(session, user, state, kept.text, f"{message.message_id}#kept", analysis)
            user.state = state.dump()
        try:
            ids = await self._store_replies(session, user, message.channel, message.message_id, replies, now)
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return []
        return [Outgoing(i, message.user_key, message.channel, address, r) for i, r in zip(ids, replies, strict=True)]

    async def _crisis_before_consent(self, session: AsyncSession, message: IncomingMessage, address: str | None,
                                     analysis: _Analysis) -> list[Outgoing]:
        """A person in danger before agreeing: the crisis reply, a crisis ticket, then the consent.

        Storing this one message and the ticket needs no prior consent (a vital interest, as the
        privacy notice says); the rest of the conversation waits for it.
        """
        now = self._clock()
        lang = analysis.lang
        state = ConversationState()
        user = BotUser(user_key=message.user_key, channel=message.channel, address=address, lang=lang,
                       current_lang=lang, origin=analysis.origin, destination=analysis.destination,
                       stage=analysis.stage, consent_at=None, last_seen_at=now)
        session.add(user)
        await session.flush()
        await _insert_messages(session, [dict(
            user_key=user.user_key, channel=message.channel, channel_message_id=message.message_id, direction="in",
            kind="text", text=message.text, lang=lang, created_at=now)])
        text = (message.text or "").strip()
        crisis = await self._crisis(session, user, state, lang, analysis, text, message.message_id)
        # the notice first and the crisis reply last: the number to call is what stays on screen
        replies = [self._consent_reply(lang), *crisis]
        user.state = state.dump()
        await self._mirror_to_ticket(session, user, replies, now)
        try:
            ids = await self._store_replies(session, user, message.channel, message.message_id, replies, now)
            await session.commit()
        except IntegrityError:
            await session.rollback()
            self._crisis_opened = False
            return []
        self._alert_if_crisis()
        return [Outgoing(i, message.user_key, message.channel, address, r) for i, r in zip(ids, replies, strict=True)]

    # ------------------------------------------------------------------ storage helpers
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

    async def _mirror_to_ticket(self, session: AsyncSession, user: BotUser, replies: Sequence[Reply],
                                now: dt.datetime) -> None:
        """The counsellor sees both sides: what the bot told the person while a ticket is open
        (the crisis reply included) goes into the ticket's transcript."""
        if not replies:
            return
        ticket = await self._active_ticket(session, user)
        if ticket is None:
            return
        for reply in replies:
            if reply.kind in ("counsellor", "consent"):
                continue
            await append_user_message(session=session, ticket_id=ticket.id, text=reply.text, author=Author.BOT,
                                      now=now)

    @staticmethod
    async def _active_ticket(session: AsyncSession, user: BotUser) -> Any:
        """The person's open ticket. Only the engine opens tickets for a bot user, and it records
        each in ``notified_ticket_id``: someone who never had one (most people) costs no query."""
        if user.notified_ticket_id is None:
            return None
        return await active_ticket_for_user(session=session, user_key=user.user_key)

    async def _unsent_for(self, session: AsyncSession, channel: str, ref: str) -> list[Outgoing]:
        return await _unsent(session, OutboxItem.channel == channel, OutboxItem.in_reply_to == ref,
                             order_by=OutboxItem.seq)

    async def _erase(self, session: AsyncSession, user_key: str) -> None:
        await delete_user_data(session=session, user_key=user_key)
        await session.execute(delete(OutboxItem).where(OutboxItem.user_key == user_key))
        await session.execute(delete(ConversationMessage).where(ConversationMessage.user_key == user_key))
        await session.execute(delete(BotUser).where(BotUser.user_key == user_key))

    # ------------------------------------------------------------------ the dialogue policy
    def _lang(self, user: BotUser) -> str:
        return user.current_lang or user.lang

    async def _dispatch(self, session: AsyncSession, user: BotUser, state: ConversationState,
                        message: IncomingMessage, analysis: _Analysis | None) -> tuple[list[Reply], bool]:
        lang = self._lang(user)
        t = self._t
        if message.command:
            return await self._command(session, user, state, message.command, lang), False
        if message.callback:
            return await self._callback(session, user, state, message.callback, lang, message.message_id)
        if message.attachment:
            return await self._attachment(session, user, state, message, lang, analysis), False
        if user.consent_at is None:
            return await self._unconsented(session, user, state, message, lang, analysis), False
        text = (message.text or "").strip()
        if not text:
            return [self._menu(lang)], False
        if len(text) > MAX_TEXT_CHARS or analysis is None:
            return [Reply("error", t(lang, "too_long"), lang)], False
        return await self._text(session, user, state, text, message.message_id, analysis), False

    async def _unconsented(self, session: AsyncSession, user: BotUser, state: ConversationState,
                           message: IncomingMessage, lang: str, analysis: _Analysis | None) -> list[Reply]:
        """A person whose crisis was handled before they agreed: everything they write goes to the
        crisis ticket (never silence), and the consent is asked again for the rest."""
        text = (message.text or "").strip()
        if analysis is not None and analysis.understanding.act == "crisis":
            replies = await self._crisis(session, user, state, lang, analysis, text, message.message_id)
        else:
            ticket = await active_ticket_for_user(session=session, user_key=user.user_key)
            if ticket is not None and text:
                await append_user_message(session=session, ticket_id=ticket.id, text=text,
                                          client_key=message.message_id)
            replies = [Reply("counsellor_has_it", self._t(lang, "crisis_received"), lang)]
        return [self._consent_reply(lang), *replies]

    async def _command(self, session: AsyncSession, user: BotUser, state: ConversationState, command: str,
                       lang: str) -> list[Reply]:
        t = self._t
        if command == "language":
            return [Reply("language", t(lang, "choose_language"), lang,
                          buttons=language_buttons(self._opt.languages))]
        if command == "human":
            return await self._open(session, user, state, Reason.USER_ASKED, lang, None)
        if command == "delete":
            text = t(lang, "delete_confirm")
            if await active_ticket_for_user(session=session, user_key=user.user_key) is not None:
                # the privacy notice's rule, said where it applies: the request closes, its words go
                text = f"{text}\n\n{t(lang, 'delete_open_ticket')}"
            return [Reply("delete_confirm", text, lang,
                          buttons=((Button(t(lang, "delete_yes"), "delete:yes"), Button(t(lang, "no"), "delete:no")),))]
        if command == "profile":
            return [self._ask_origin(lang, state, None, force=True)]
        if command in ("start", "menu", "help"):
            return [self._menu(lang)]
        return [self._menu(lang)]

    def _menu(self, lang: str) -> Reply:
        t = self._t
        groups = self._opt.menu_groups or MENU_GROUPS
        buttons = [Button(t(lang, f"group_{key}"), f"menu:{key}") for key in groups if f"group_{key}" in _MESSAGE_KEYS]
        rows = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
        rows.append((Button(t(lang, "talk_to_counsellor"), "human:menu"),))
        return Reply("menu", t(lang, "menu"), lang, buttons=tuple(rows))

    def _menu_group(self, user: BotUser, state: ConversationState, key: str, lang: str) -> Reply:
        kb = self._kb()
        topics = (self._opt.menu_groups or MENU_GROUPS).get(key, ())
        rows: list[tuple[Button, ...]] = []
        if kb is not None:
            profile = Profile(origin=user.origin, destination=user.destination)
            for entry in kb.entries:
                if entry.topic in topics and entry.status == "published" and _fits(entry, profile):
                    a = kb.answer_for(entry, lang)
                    tr = entry.translations.get(a.lang)
                    label = to_script(short_title(a.title, tr.short_title if tr else None), a.lang, state.script)
                    rows.append((Button(label, f"entry:{entry.id}"[:64]),))
        rows.sort(key=lambda row: topics.index(kb.get(row[0].payload[6:]).topic)  # type: ignore[union-attr]
                  if kb is not None and kb.get(row[0].payload[6:]) is not None else 99)
        rows = rows[:8]
        rows.append((Button(self._t(lang, "menu_button"), "menu"),))
        return Reply("menu", self._t(lang, "menu_group"), lang, buttons=tuple(rows))

    async def _callback(self, session: AsyncSession, user: BotUser, state: ConversationState, data: str,
                        lang: str, message_id: str) -> tuple[list[Reply], bool]:
        t = self._t
        head, _, rest = data.partition(":")
        if head in ("lang", "consent") and rest in self._opt.languages:
            return [self._choose_language(user, state, rest)], False
        if head == "decline":
            return [Reply("declined", t(lang, "declined"), lang)], False
        if head == "delete":
            if rest == "yes":
                await self._erase(session, user.user_key)
                return [Reply("deleted", t(lang, "deleted"), lang)], True
            return [Reply("delete_cancelled", t(lang, "delete_cancelled"), lang)], False
        if head == "country":
            return await self._country(session, user, state, rest, lang), False
        if head == "menu":
            return [self._menu_group(user, state, rest, lang) if rest else self._menu(lang)], False
        if head == "back":
            ticket = await close_by_user(session=session, user_key=user.user_key, reason="returned",
                                         now=self._clock())
            user.notified_ticket_id = None
            key = "status_returned"
            extra = {"ticket": "closed"} if ticket is not None else {}
            return [Reply("status", t(lang, key), lang, extra=extra,
                          buttons=((Button(t(lang, "menu_button"), "menu"),),))], False
        if head == "more":
            kb = self._kb()
            if kb is not None and kb.get(rest) is not None:
                return [details_reply(kb, t, rest, lang, script=state.script if lang == "uz" else None)], False
        if head == "fb":
            return [self._feedback(rest, lang)], False
        if head == "human":
            reason = {"neg": Reason.NEGATIVE_FEEDBACK, "att": Reason.UNREADABLE_ATTACHMENT,
                      "noans": Reason.NO_ANSWER}.get(rest.split(":")[0], Reason.USER_ASKED)
            question = user.last_question if reason in (Reason.NO_ANSWER, Reason.NEGATIVE_FEEDBACK) else None
            return await self._open(session, user, state, reason, lang, None, question=question), False
        if head == "entry":
            kb = self._kb()
            entry = kb.get(rest) if kb else None
            if entry is not None and kb is not None:
                return [self._answer(kb, user, state, entry.id, lang)], False
        return [self._menu(lang)], False

    def _choose_language(self, user: BotUser, state: ConversationState, lang: str) -> Reply:
        """A language button: the conversation's language from now on (and the consent, if pending)."""
        t = self._t
        changed = user.lang != lang or user.current_lang != lang
        user.lang = user.current_lang = lang
        state.other_lang, state.other_count = None, 0
        if user.consent_at is None:
            user.consent_at = self._clock()
            return Reply("welcome", f"{t(lang, 'language_set')}\n\n{t(lang, 'welcome')}", lang)
        return Reply("language", t(lang, "language_set") if changed else t(lang, "welcome"), lang)

    def _feedback(self, data: str, lang: str) -> Reply:
        t = self._t
        verdict, _, entry_id = data.partition(":")
        if verdict == "down":
            return Reply("feedback", t(lang, "feedback_sorry"), lang, entry_id=entry_id or None,
                         buttons=((Button(t(lang, "talk_to_counsellor"), f"human:neg:{entry_id}"[:64]),),))
        return Reply("feedback", t(lang, "feedback_thanks"), lang)

    async def _country(self, session: AsyncSession, user: BotUser, state: ConversationState, data: str,
                       lang: str) -> list[Reply]:
        """A country button: where the person is now (crisis numbers) or their citizenship."""
        slot, _, code = data.rpartition(":")
        code = code if len(code) == 2 and code.isalpha() and code.isupper() and code != "ZZ" else ""
        waiting, question = state.waiting, state.waiting_question
        state.waiting = state.waiting_question = None
        if slot == "origin":
            user.origin = code or None
            if "origin" not in state.asked:
                state.asked.append("origin")
            if question:
                return await self._rerun(session, user, state, question, lang)
            return [Reply("profile", self._t(lang, "profile_set", country=country_name(code, lang) if code else "—"),
                          lang)]
        state.location = code or None
        if code and not user.destination and code not in ("UZ", "TJ", "KG", "BD", "PK", "LK", "AF", "NP"):
            user.destination = code
        if waiting == "crisis_location" or slot == "crisis":
            kind = await self._crisis_kind(session, user)
            return [Reply("crisis", crisis_text(self._t, self._opt.emergency, code or None, lang, kind=kind), lang,
                          extra={"crisis": _CRISIS_KIND.get(kind or "", kind or "")})]
        return [Reply("location", self._t(lang, "location_set", country=country_name(code, lang) if code else "—"),
                      lang)]

    async def _crisis_kind(self, session: AsyncSession, user: BotUser) -> str | None:
        ticket = await active_ticket_for_user(session=session, user_key=user.user_key)
        return ticket.crisis_kind if ticket is not None else None

    async def _rerun(self, session: AsyncSession, user: BotUser, state: ConversationState, question: str,
                     lang: str) -> list[Reply]:
        """Answer the question the bot asked about, now that the profile has the missing slot."""
        kb = self._kb()
        if kb is None:
            return [self._no_answer(state, lang)]
        profile = Profile(origin=user.origin, destination=user.destination,
                          stage=user.stage if user.stage in ("pre-departure", "abroad", "return") else None)
        try:
            result = await asyncio.to_thread(kb.search, question, lang, profile)
        except QueryError:
            return [self._no_answer(state, lang)]
        return self._question(user, state, question, lang, result, ask=False)

    async def _attachment(self, session: AsyncSession, user: BotUser, state: ConversationState,
                          message: IncomingMessage, lang: str, analysis: _Analysis | None) -> list[Reply]:
        t = self._t
        if message.attachment == "location":
            code = message.location_country
            if code:
                state.location = code
                if code not in ("UZ", "TJ", "KG", "BD", "PK", "LK", "AF", "NP"):
                    user.destination = code
            if state.waiting == "crisis_location" and code:
                state.waiting = None
                kind = await self._crisis_kind(session, user)
                return [Reply("crisis", crisis_text(t, self._opt.emergency, code, lang, kind=kind), lang)]
            return [Reply("location", t(lang, "location_set", country=country_name(code, lang) if code else "—"),
                          lang)]
        if message.attachment == "sticker":
            return [Reply("attachment", t(lang, "sticker"), lang)]
        replies: list[Reply] = []
        # a caption is read as text: a photo of a contract with "is this legal?" is a question
        if analysis is not None and user.consent_at is not None:
            replies = await self._text(session, user, state, (message.text or "").strip(), message.message_id,
                                       analysis)
        ticket = await active_ticket_for_user(session=session, user_key=user.user_key)
        kind_key = {"voice": "media_voice", "photo": "media_photo"}.get(message.attachment or "", "media_file")
        if ticket is not None:
            note = message.attachment_note or f"[{message.attachment}]"
            await append_user_message(session=session, ticket_id=ticket.id, text=note,
                                      attachment_kind=message.attachment, attachment=message.attachment_ref,
                                      client_key=f"{message.message_id}#media")
            replies.append(Reply("counsellor_has_it", t(lang, "media_to_counsellor", kind=t(lang, kind_key)), lang))
            return replies
        key = "voice_offer" if message.attachment == "voice" else "file_offer"
        if not replies:
            replies.append(Reply("offer_human", t(lang, key), lang,
                                 buttons=((Button(t(lang, "talk_to_counsellor"), "human:att"),),)))
        return replies

    async def _text(self, session: AsyncSession, user: BotUser, state: ConversationState, text: str,
                    message_id: str, analysis: _Analysis) -> list[Reply]:
        u, lang = analysis.understanding, analysis.lang
        user.current_lang = lang
        if u.script in ("Latn", "Cyrl") and (u.lang == "uz" or lang == "uz") and _words(text) >= 2:
            state.script = u.script
        user.origin, user.destination, user.stage = analysis.origin, analysis.destination, analysis.stage
        if u.entities.destination and analysis.stage in (None, "abroad"):
            state.location = u.entities.destination
        ticket = await self._active_ticket(session, user)
        if u.act == "crisis":
            return await self._crisis(session, user, state, lang, analysis, text, message_id)
        replies: list[Reply] = []
        if ticket is not None:
            await append_user_message(session=session, ticket_id=ticket.id, text=text, client_key=message_id)
            if ticket.priority == int(Priority.CRISIS) or u.act == "ask_human":
                # after a crisis reply, "помогите" or "help" is never small talk: the counsellor has it
                key = "crisis_received" if ticket.priority == int(Priority.CRISIS) else "counsellor_has_it"
                replies.append(Reply("counsellor_has_it", self._t(lang, key), lang))
                if u.act != "question":
                    return replies
        asked = _asked_language(text, self._opt.languages) if u.act not in ("crisis",) else None
        if asked is not None:
            # "English please", "по-русски": an explicit choice, kept until the person chooses again
            return [*replies, self._choose_language(user, state, asked)]
        if u.act == "ask_human" and u.confidence < _SURE_ASK_HUMAN:
            # only the embedder thinks so ("telefon tavsiya qiling" looks like "give me a person"):
            # offer a counsellor with a button instead of putting the person in the queue
            return [*replies, Reply("offer_human", self._t(lang, "no_answer"), lang,
                                    buttons=((Button(self._t(lang, "talk_to_counsellor"), "human:ask"),),
                                             (Button(self._t(lang, "menu_button"), "menu"),)))]
        if u.act == "ask_human":
            return await self._open(session, user, state, Reason.USER_ASKED, lang, None)
        if u.act == "menu":
            return [*replies, self._menu(lang)]
        if u.act in ("greet", "thanks", "goodbye"):
            return [*replies, Reply("smalltalk", self._t(lang, u.act), lang)]
        if analysis.other_lang:
            replies.extend(self._maybe_offer_switch(state, analysis.other_lang, lang))
        else:
            state.other_lang, state.other_count = None, 0
        result = analysis.result
        follow = analysis.follow_up
        follow_entry = None
        if follow is not None:
            follow_entry = _for_profile(follow, user.origin) or (
                follow.answer.entry_id if follow.decision == "answer" and follow.answer is not None else None)
        own_entry = None
        if result is not None:
            own_entry = _for_profile(result, user.origin) or (
                result.answer.entry_id if result.decision == "answer" and result.answer is not None else None)
        own_confident = result is not None and result.decision == "answer" and result.answer is not None
        same_topic = own_confident and follow is not None and follow.hits and result is not None and \
            result.answer is not None and follow.hits[0].entry.topic == result.answer.topic
        if follow is not None and follow_entry is not None and follow_entry != own_entry and (
                not own_confident or same_topic):
            # "and for Tajik citizens?": the previous question again, with the new profile slot
            question = state.waiting_question or state.last_question or text
            state.waiting = state.waiting_question = None
            return [*replies, *self._question(user, state, question, lang, analysis.follow_up, ask=False)]
        state.waiting = state.waiting_question = None
        return [*replies, *self._question(user, state, text, lang, result)]

    def _maybe_offer_switch(self, state: ConversationState, other: str, lang: str) -> list[Reply]:
        """Two or more substantial messages in another language: offer it with one button."""
        if state.other_lang == other:
            state.other_count += 1
        else:
            state.other_lang, state.other_count = other, 1
        if state.other_count < 2:
            return []
        name = LANGUAGE_NAMES.get(other, other)
        return [Reply("language", self._t(other, "lang_switch_offer", language=name), other,
                      buttons=((Button(name, f"lang:{other}"), Button(LANGUAGE_NAMES.get(lang, lang),
                                                                        f"lang:{lang}")),))]

    def _question(self, user: BotUser, state: ConversationState, text: str, lang: str,
                  result: SearchResult | None, *, ask: bool = True) -> list[Reply]:
        t = self._t
        kb = self._kb()
        user.last_question = text[:1000]
        state.last_question = text[:1000]
        if kb is None or result is None:
            return [self._no_answer(state, lang)]
        if ask and self._needs_origin(kb, user, state, result):
            return [self._ask_origin(lang, state, text)]
        script = state.script if lang == "uz" else None
        chosen = _for_profile(result, user.origin)
        if chosen is not None:
            state.misses = 0
            return [self._answer(kb, user, state, chosen, lang)]
        if result.decision == "answer" and result.answer is not None:
            state.misses = 0
            return [self._answer(kb, user, state, result.answer.entry_id, lang)]
        if result.decision == "clarify" and result.candidates:
            state.misses = 0
            rows = []
            for c in result.candidates[:3]:
                entry = kb.get(c.entry_id)
                tr = entry.translations.get(c.lang) if entry is not None else None
                label = to_script(short_title(c.title, tr.short_title if tr else None), c.lang, script)
                rows.append((Button(label, f"entry:{c.entry_id}"[:64]),))
            rows.append((Button(t(lang, "menu_button"), "menu"),))
            return [Reply("clarify", to_script(t(lang, "clarify"), lang, script), lang, buttons=tuple(rows),
                          extra={"topics": " ".join(c.topic for c in result.candidates[:3])})]
        return [self._no_answer(state, lang)]

    def _no_answer(self, state: ConversationState, lang: str) -> Reply:
        """No verified answer: say so and offer the menu; a counsellor only after two misses in a row
        (offering one on every miss would flood the queue with weather questions)."""
        t = self._t
        state.misses += 1
        if state.misses >= 2:
            return Reply("offer_human", f"{t(lang, 'no_answer_menu')}\n\n{t(lang, 'offer_human')}", lang,
                         extra={"no_answer": "true"},
                         buttons=((Button(t(lang, "talk_to_counsellor"), "human:noans"),),
                                  (Button(t(lang, "menu_button"), "menu"),)))
        return Reply("no_answer", t(lang, "no_answer_menu"), lang, buttons=((Button(t(lang, "menu_button"), "menu"),),))

    def _needs_origin(self, kb: KnowledgeBase, user: BotUser, state: ConversationState,
                      result: SearchResult) -> bool:
        """Ask the person's citizenship once, and only when the best answers differ by it."""
        if user.origin or "origin" in state.asked or not result.hits or result.decision == "handoff":
            return False
        # the topics the search is considering: a topic whose entries differ by citizenship
        for topic in result.ranked_topics()[:2]:
            same_topic = [h.entry for h in result.hits[:6] if h.entry.topic == topic]
            origins = {tuple(sorted(e.origin)) for e in same_topic}
            if len(same_topic) >= 2 and len(origins) >= 2 and any(origins):
                return True
        return False

    def _ask_origin(self, lang: str, state: ConversationState, question: str | None, *, force: bool = False) -> Reply:
        state.waiting = "origin"
        state.waiting_question = question
        if "origin" not in state.asked:
            state.asked.append("origin")
        first = ("UZ", "TJ", "KG", "KZ", "BD", "PK", "LK", "AF", "IQ")
        buttons = [Button(country_name(c, lang), f"country:origin:{c}") for c in first]
        rows = [tuple(buttons[i:i + 3]) for i in range(0, len(buttons), 3)]
        rows.append((Button(self._t(lang, "country_other"), "country:origin:ZZ"),))
        return Reply("ask", self._t(lang, "ask_citizenship"), lang, buttons=tuple(rows), extra={"slot": "origin"})

    def _answer(self, kb: KnowledgeBase, user: BotUser, state: ConversationState, entry_id: str, lang: str) -> Reply:
        user.last_answer_entry = entry_id
        state.last_entry = entry_id
        entry = kb.get(entry_id)
        state.last_topic = entry.topic if entry is not None else None
        return answer_reply(kb, self._t, entry_id, lang, script=state.script if lang == "uz" else None)

    def _mrc_for(self, user: BotUser, lang: str) -> str:
        """An MRC whose counsellors read the person's language: their country's if it does, else the
        first that does, else the per-language fallback, else the default."""
        if user.mrc_id:
            return user.mrc_id
        readers = [mrc for mrc, langs in self._opt.mrc_languages.items() if lang in langs]
        home = self._opt.mrc_by_country.get(user.origin or "")
        if home and (home in readers or not readers):
            return home
        if readers:
            return readers[0]
        return self._opt.mrc_by_language.get(lang) or home or self._opt.default_mrc

    async def _transcript(self, session: AsyncSession, user_key: str) -> list[TranscriptLine]:
        rows = (await session.execute(
            select(ConversationMessage).where(ConversationMessage.user_key == user_key,
                                              ConversationMessage.text.is_not(None))
            .order_by(ConversationMessage.id.desc()).limit(TRANSCRIPT_LINES))).scalars().all()
        return [TranscriptLine(Author.USER if m.direction == "in" else Author.BOT, m.text or "", m.created_at)
                for m in reversed(rows)]

    async def _open_ticket(self, session: AsyncSession, user: BotUser, reason: Reason, lang: str,
                           crisis_kind: str | None, question: str | None) -> int:
        await session.flush()
        ticket = await open_ticket(
            session=session, settings=self._console, user_key=user.user_key, mrc_id=self._mrc_for(user, lang),
            reason=reason, lang=lang, transcript=await self._transcript(session, user.user_key),
            profile={"origin": user.origin, "destination": user.destination, "stage": user.stage},
            crisis_kind=crisis_kind, question_text=question, now=self._clock())
        user.notified_ticket_id = ticket.id
        return int(ticket.id)

    async def _open(self, session: AsyncSession, user: BotUser, state: ConversationState, reason: Reason,
                    lang: str, crisis_kind: str | None, *, question: str | None = None) -> list[Reply]:
        """A ticket for a counsellor, and a reply that keeps its promise: open now, or when."""
        t = self._t
        ticket_id = await self._open_ticket(session, user, reason, lang, crisis_kind, question)
        ticket = await active_ticket_for_user(session=session, user_key=user.user_key)
        mrc = self._console.mrc(ticket.mrc_id) if ticket is not None else None
        now = self._clock()
        extra = {"ticket": "open", "ticket_id": str(ticket_id)}
        if mrc is not None and next_opening(now, mrc) > now + dt.timedelta(minutes=1):
            opens = next_opening(now, mrc).astimezone(mrc.zone)
            text = t(lang, "ticket_closed_now", when=_format_when(opens, lang), zone=mrc.name)
            extra["after_hours"] = "true"
        else:
            text = t(lang, "ticket_open_now")
        text = f"{text}\n\n{t(lang, 'ticket_meanwhile')}"
        return [Reply("ticket_opened", text, lang, extra=extra,
                      buttons=((Button(t(lang, "back_to_bot"), "back"),), (Button(t(lang, "menu_button"), "menu"),)))]

    async def _crisis(self, session: AsyncSession, user: BotUser, state: ConversationState, lang: str,
                      analysis: _Analysis, text: str, message_id: str) -> list[Reply]:
        """The crisis reply at once, a crisis-priority ticket, the alert; ask where the person is
        when no country is known, with buttons in the same reply."""
        kind = analysis.understanding.crisis_kind
        if analysis.understanding.entities.destination:
            state.location = analysis.understanding.entities.destination
        await self._open_ticket(session, user, Reason.CRISIS, lang, kind, text)
        self._crisis_opened = True  # the alert goes out once the ticket is committed
        country = state.location or user.destination
        if country is None and user.origin and user.stage in ("pre-departure", None) and user.destination is None:
            country = None  # the person's home country is a guess, not where they are: ask
        extra = {"crisis": _CRISIS_KIND.get(kind or "", kind or ""), "ticket": "open", "ticket_priority": "crisis"}
        if country:
            return [Reply("crisis", crisis_text(self._t, self._opt.emergency, country, lang, kind=kind), lang,
                          extra=extra)]
        state.waiting = "crisis_location"
        body = crisis_text(self._t, self._opt.emergency, None, lang, kind=kind)
        ask = self._t(lang, "crisis_ask_country")
        buttons = country_buttons(lang, "country:crisis", first=(), other_label=self._t(lang, "country_other"))
        return [Reply("crisis", f"{body}\n\n{ask}", lang, buttons=buttons, extra=extra)]


_MESSAGE_KEYS: frozenset[str] = frozenset(MESSAGES)


def _typed_command(message: IncomingMessage) -> IncomingMessage:
    """"/delete" typed as text is the command, in the web chat as on Telegram (whose channel parses it)."""
    text = (message.text or "").strip()
    if message.command or message.callback or not text.startswith("/"):
        return message
    word = text[1:].split("@", 1)[0].strip().lower()
    return replace(message, text=None, command=word) if word in _COMMANDS else message


def _for_profile(result: SearchResult, origin: str | None) -> str | None:
    """The entry written for the person's citizenship, when the search is torn between it and others.

    An entry for everyone (``origin: []``) and one for Tajik citizens both match a Tajik person;
    the specific one is the answer. Only among what the search would answer or offer as choices
    (never to override "no answer"), and only when exactly one of them is written for that country.
    """
    if not origin or not result.hits or result.decision not in ("answer", "clarify"):
        return None
    if result.decision == "answer":
        topic = result.hits[0].entry.topic
        pool = [h.entry for h in result.hits[:5] if h.entry.topic == topic]
    else:
        ids = {c.entry_id for c in result.candidates}
        pool = [h.entry for h in result.hits[:5] if h.entry.id in ids]
    specific = [e.id for e in pool if origin in e.origin]
    return specific[0] if len(specific) == 1 else None


def _fits(entry: Any, profile: Profile) -> bool:
    if profile.origin and entry.origin and profile.origin not in entry.origin:
        return False
    return not (profile.destination and entry.destination and profile.destination not in entry.destination)


def _format_when(moment: dt.datetime, lang: str) -> str:
    """"Tuesday, 8 December, 09:00" in the reader's language (CLDR), in the MRC's time zone."""
    from babel.dates import format_datetime

    for loc in (babel_locale(lang), "en"):
        try:
            return str(format_datetime(moment, "EEEE, d MMMM, HH:mm", tzinfo=moment.tzinfo, locale=loc))
        except Exception:  # a locale Babel lacks: try English
            continue
    return moment.strftime("%A %d %B %H:%M")


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
    data["sources"] = tuple(tuple(pair) for pair in data.pop("sources", None) or ())
    kind: ReplyKind = data.pop("kind")
    return Reply(kind=kind, buttons=rows, reviewed_on=dt.date.fromisoformat(reviewed) if reviewed else None,
                 **data)
