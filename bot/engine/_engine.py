"""The conversation engine: one message in, stored once, understood, answered or handed over.

Why one channel-neutral engine: Telegram and the web chat must behave identically (consent before
storage, crisis handling, idempotency). Channels only translate transport. The engine is the
orchestration around three parts that each do one thing: the understanding and search (the model,
run outside any transaction), the dialogue policy (``_policy``: pure decisions, no database), and
the repository (``_repository``: the bot's tables in the caller's session). One database
transaction per update holds the message, the state change, the policy's actions and the replies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handoff import (
    Author,
    ConsoleSettings,
    Notifier,
    OutboundMessage,
    Priority,
    active_ticket_for_user,
    append_user_message,
    close_by_user,
    notify_pending_crises,
    open_ticket,
)
from knowledge_base import KnowledgeBase, Profile, QueryError, SearchResult
from languages import canonical
from nlu import LanguageHint, Understanding
from storage import autocommit, checkpoint_after_erasure

from ..i18n import Translator
from ..tables import BotUser, ConversationMessage
from . import _repository as repo
from ._emergency import EmergencyContact, crisis_text
from ._outbox import Outbox
from ._policy import (
    FOLLOW_UP_WORDS,
    MAX_TEXT_CHARS,
    MENU_GROUPS,
    SWITCH_WORDS,
    AppendToTicket,
    CloseTicket,
    Decision,
    DialoguePolicy,
    EngineOptions,
    OpenTicket,
    TicketView,
    Turn,
    TurnAnalysis,
    country_code,
    language_buttons,
    typed_command,
    words,
)
from ._port import Outgoing
from ._render import answer_reply
from ._state import ConversationState, PendingQuestions
from ._types import IncomingMessage, Reply

__all__ = [
    "MENU_GROUPS", "ConversationEngine", "EmergencyContact", "EngineOptions", "UnderstandingPort", "answer_reply",
    "crisis_text", "language_buttons",
]

log = logging.getLogger("hamroh.engine")

_STAGE_FROM_NLU = {"planning": "pre-departure", "abroad": "abroad", "returned": "return"}
TRANSCRIPT_LINES = 20


class UnderstandingPort(Protocol):
    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding: ...


def _search_profile(origin: str | None, destination: str | None) -> Profile:
    """What filters the search: citizenship and destination, facts an entry is written for. Not the
    stage: "I want to go to Russia, how much is a patent" is said before leaving, and the patent
    entry (written for people abroad) is still the answer; a stage guessed from one message hid it."""
    return Profile(origin=origin, destination=destination)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _View:
    """The person's row as the first short look read it (None fields: not consented yet)."""

    __slots__ = ("current_lang", "destination", "lang", "origin", "stage", "state")

    def __init__(self, lang: str, current_lang: str | None = None, origin: str | None = None,
                 destination: str | None = None, stage: str | None = None,
                 state: ConversationState | None = None) -> None:
        self.lang, self.current_lang, self.origin = lang, current_lang, origin
        self.destination, self.stage = destination, stage
        self.state = state or ConversationState()


class ConversationEngine:
    """Implements :class:`bot.engine.ChatPort` and handoff's ``OutboundPort``."""

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
        self.policy = DialoguePolicy(translator=translator, options=options, console=console)
        self.outbox = Outbox(sessions=sessions, clock=clock)
        self._alerts: set[asyncio.Task[Any]] = set()
        # update ids seen before consent: nothing about the person is stored, only a bounded set
        self._seen: LRUCache[str, bool] = LRUCache(maxsize=10_000)
        self._pending = PendingQuestions()

    @property
    def console(self) -> ConsoleSettings:
        """The MRCs and queue settings this engine opens tickets with."""
        return self._console

    # ------------------------------------------------------------------ ConversationPort
    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        message = typed_command(message)
        # 1. a short look, one statement outside any transaction: who is this, and is the update a
        #    redelivery?
        async with self._sessions() as session:
            await autocommit(session)
            row = await repo.look_up(session=session, message=message)
            if row is not None and row.seen:
                return await repo.unsent_for(session=session, channel=message.channel, ref=message.message_id)
        if row is None:
            view = _View(self._client_lang(message))
        else:
            view = _View(row.lang, row.current_lang, row.origin, row.destination, row.stage,
                         ConversationState.load(row.state))
        # 2. understanding and search run outside any transaction: on SQLite a transaction holds the
        #    database's write lock, and nobody else should wait for the model. Before consent the
        #    text is understood too: a crisis is handled whatever the state (DESIGN.md, principle 2)
        analysis, rerun = await self._prepare(message, view, first=row is None)
        if row is None:
            async with self._sessions() as session:
                return await self._before_consent(session, message, address, analysis)
        # 3. one short write transaction: the message, the state change, the actions and the
        #    replies, flushed together at the end (one round trip per table, not per object)
        async with self._sessions() as session:
            try:
                return await self._record(session, message, address, analysis, rerun)
            except IntegrityError:
                # the unique key on (channel, message id, direction) is the redelivery check: a
                # concurrent copy of this update committed first. Anything else is a real error.
                await session.rollback()
        async with self._sessions() as session:
            await autocommit(session)
            if not (await session.execute(select(repo.seen_clause(message)))).scalar():
                raise RuntimeError("the update could not be stored (integrity error)")
            return await repo.unsent_for(session=session, channel=message.channel, ref=message.message_id)

    async def _prepare(self, message: IncomingMessage, view: _View,
                       *, first: bool) -> tuple[TurnAnalysis | None, SearchResult | None]:
        """The model's part of the turn: the understanding and searches the policy will need."""
        text = self._text_of(message)
        if text is not None:
            return await asyncio.to_thread(self._analyse, view, text, first), None
        data = message.callback or ""
        if first and data.startswith(("lang:", "consent:")):
            kept = self._pending.peek(message.user_key)
            if kept is not None:
                lang = data.split(":", 1)[1]
                fresh = _View(lang if lang in self._opt.languages else kept.lang)
                return await asyncio.to_thread(self._analyse, fresh, kept.text, False), None
        question = view.state.waiting_question
        if not first and data.startswith("country:origin:") and question:
            profile = _search_profile(country_code(data.rsplit(":", 1)[1]), view.destination)
            return None, await asyncio.to_thread(self._search, question, view.current_lang or view.lang, profile)
        return None, None

    def _search(self, text: str, lang: str, profile: Profile) -> SearchResult | None:
        kb = self._kb()
        if kb is None:
            return None
        try:
            return kb.search(text, lang, profile)
        except QueryError:
            return None

    async def _record(self, session: AsyncSession, message: IncomingMessage, address: str | None,
                      analysis: TurnAnalysis | None, rerun: SearchResult | None) -> list[Outgoing]:
        user = await session.get(BotUser, message.user_key)
        if user is None:  # erased in between
            return []
        now = self._clock()
        # stored at once, before any decision: the redelivery check (its unique key) and the
        # transcript a ticket opened below starts from
        await repo.insert_messages(session=session, rows=[dict(
            user_key=user.user_key, channel=message.channel, channel_message_id=message.message_id, direction="in",
            kind=self._in_kind(message), text=self._stored_text(message), lang=user.current_lang, created_at=now)])
        user.last_seen_at = now
        if address and user.address != address:
            user.address = address
        state = ConversationState.load(user.state)
        turn = Turn(message, user, state, now, analysis, await self._ticket_view(session, user), rerun)
        decision = self.policy.decide(turn, self._kb())
        if decision.erases:
            await repo.erase_person(session=session, user_key=user.user_key)
            await session.commit()
            if isinstance(session.bind, AsyncEngine):
                # SQLite keeps old copies of erased rows in its write-ahead log until a checkpoint
                await checkpoint_after_erasure(session.bind)
            return [Outgoing(None, message.user_key, message.channel, address, r) for r in decision.replies]
        ticket_id = await self._carry_out(session, user, turn, decision)
        user.state = state.dump()
        return await self._commit_replies(session, user, message.channel, message.message_id, decision, now,
                                          ticket_id)

    async def _commit_replies(self, session: AsyncSession, user: BotUser, channel: str, ref: str,
                              decision: Decision, now: dt.datetime, ticket_id: int | None) -> list[Outgoing]:
        """Mirror, store and commit the replies; then the crisis alert, if the turn opened a crisis."""
        if ticket_id is not None:
            await self._mirror_to_ticket(session, ticket_id, decision.replies, now)
        ids = await repo.store_replies(session=session, user_key=user.user_key, channel=channel, ref=ref,
                                       replies=decision.replies, now=now)
        await session.commit()
        if decision.opens_crisis:
            self._alert()
        return [Outgoing(i, user.user_key, channel, user.address, reply)
                for i, reply in zip(ids, decision.replies, strict=True)]

    async def _ticket_view(self, session: AsyncSession, user: BotUser) -> TicketView | None:
        """The person's open ticket. Only the engine opens tickets for a bot user, and it records
        each in ``notified_ticket_id``: someone who never had one (most people) costs no query."""
        if user.notified_ticket_id is None:
            return None
        ticket = await active_ticket_for_user(session=session, user_key=user.user_key)
        if ticket is None:
            return None
        return TicketView(int(ticket.id), ticket.priority == int(Priority.CRISIS), ticket.crisis_kind)

    async def _carry_out(self, session: AsyncSession, user: BotUser, turn: Turn, decision: Decision) -> int | None:
        """The policy's actions, in order, in this transaction; the person's open ticket after them
        (the one the turn started with, one it opened, or none once closed), for the mirror."""
        now = turn.now
        open_id = turn.ticket.id if turn.ticket is not None else None
        for action in decision.actions:
            if isinstance(action, OpenTicket):
                await session.flush()
                ticket = await open_ticket(
                    session=session, settings=self._console, user_key=user.user_key, mrc_id=action.mrc_id,
                    reason=action.reason, lang=action.lang,
                    transcript=await repo.transcript(session=session, user_key=user.user_key,
                                                     limit=TRANSCRIPT_LINES),
                    profile={"origin": user.origin, "destination": user.destination, "stage": user.stage},
                    crisis_kind=action.crisis_kind, question_text=action.question, now=now)
                user.notified_ticket_id = open_id = int(ticket.id)
                for reply in decision.replies:
                    if reply.extra.get("ticket") == "open":
                        reply.extra["ticket_id"] = str(ticket.id)
            elif isinstance(action, AppendToTicket):
                ticket_id = turn.ticket.id if turn.ticket is not None else None
                if ticket_id is not None:
                    await append_user_message(session=session, ticket_id=ticket_id, text=action.text,
                                              attachment_kind=action.attachment_kind, attachment=action.attachment,
                                              client_key=action.client_key)
            elif isinstance(action, CloseTicket):
                await close_by_user(session=session, user_key=user.user_key, reason=action.reason, now=now)
                open_id = None
        return open_id

    @staticmethod
    async def _mirror_to_ticket(session: AsyncSession, ticket_id: int, replies: Sequence[Reply],
                                now: dt.datetime) -> None:
        """The counsellor sees both sides: what the bot told the person while a ticket is open
        (the crisis reply included) goes into the ticket's transcript."""
        for reply in replies:
            if reply.kind in ("counsellor", "consent"):
                continue
            await append_user_message(session=session, ticket_id=ticket_id, text=reply.text, author=Author.BOT,
                                      now=now)

    # ------------------------------------------------------------------ OutboxPort (delegated)
    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        await self.outbox.mark_sent(outbox_ids)

    async def pending(self, channel: str, *, limit: int = 100,
                      user_keys: Collection[str] | None = None) -> list[Outgoing]:
        return await self.outbox.pending(channel, limit=limit, user_keys=user_keys)

    async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                            exclude: Sequence[int] = ()) -> list[Outgoing]:
        return await self.outbox.claim_pending(channel, limit=limit, lease_seconds=lease_seconds, exclude=exclude)

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
                text = f"{self._t(lang, 'counsellor_prefix', name=message.counsellor_name)}\\n{message.text}"
                reply = Reply("counsellor", text, lang)
            now = self._clock()
            ref = f"counsellor:{message.ticket_id}:{kind}:{now.timestamp():.6f}"
            await repo.store_replies(session=session, user_key=user.user_key, channel=user.channel, ref=ref,
                                     replies=[reply], now=now)
            await session.commit()

    async def history(self, user_key: str, *, limit: int = 40) -> list[tuple[str, Reply | str]]:
        """The person's own conversation, oldest first: ("in", text) and ("out", Reply).

        Why: a reload of the web chat on a cheap phone must not wipe what the person was told (a
        deadline, a number to call). Only for their own key; nothing before consent was stored.
        """
        async with self._sessions() as session:
            await autocommit(session)
            return await repo.history(session=session, user_key=user_key, limit=limit)

    async def erase(self, user_key: str) -> None:
        async with self._sessions() as session:
            await repo.erase_person(session=session, user_key=user_key)
            await session.commit()

    async def purge_older_than(self, cutoff: dt.datetime) -> int:
        """Retention: delete conversation messages and sent replies older than ``cutoff``."""
        async with self._sessions() as session:
            n = await repo.purge_messages(session=session, cutoff=cutoff)
            await session.commit()
            return n

    # ------------------------------------------------------------------ crisis alerts
    def _alert(self) -> None:
        """Counsellors hear of a crisis at once: the Telegram group alert goes out right after the
        ticket is committed, in the background so the person's reply does not wait for Telegram."""
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

    def _analyse(self, view: _View, text: str, first: bool) -> TurnAnalysis:
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
            other = detected if detected and detected != lang and words(text) >= SWITCH_WORDS else None
        e = u.entities
        origin = e.origin or view.origin
        destination = e.destination or view.destination
        stage = _STAGE_FROM_NLU.get(e.stage, view.stage) if e.stage else view.stage
        result = follow_up = None
        if u.act == "question":
            profile = _search_profile(origin, destination)
            # Uzbek written in Cyrillic is searched in Latin letters by the knowledge base itself
            result = self._search(text, lang, profile)
            previous = view.state.waiting_question or view.state.last_question
            new_slot = (e.origin and e.origin != view.origin) or (e.destination and e.destination != view.destination)
            if previous and new_slot and words(text) <= FOLLOW_UP_WORDS:
                follow_up = self._search(previous, lang, profile)
        return TurnAnalysis(u, lang, origin, destination, stage, result, follow_up, other)

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
        code = canonical(message.client_lang)  # "fa-IR" is Dari, "ku" Sorani, "ru-RU" Russian
        return code if code is not None and code in self._opt.languages else self._opt.default_language

    # ------------------------------------------------------------------ before consent
    async def _before_consent(self, session: AsyncSession, message: IncomingMessage,
                              address: str | None, analysis: TurnAnalysis | None) -> list[Outgoing]:
        """Nothing is stored until the person agrees, except a crisis: that is handled at once."""
        seen_key = f"{message.channel}:{message.message_id}"
        if seen_key in self._seen:
            return []
        self._seen[seen_key] = True
        data = message.callback or ""
        head, _, lang = data.partition(":")
        reply: Reply
        if head in ("lang", "consent") and lang in self._opt.languages:
            return await self._consent(session, message, address, lang, analysis)
        if head == "decline":
            self._pending.pop(message.user_key)
            reply = self.policy.declined(self._client_lang(message))
            return [Outgoing(None, message.user_key, message.channel, address, reply)]
        if analysis is not None and analysis.understanding.act == "crisis":
            return await self._crisis_before_consent(session, message, address, analysis)
        lang = analysis.lang if analysis is not None else self._client_lang(message)
        if analysis is not None and analysis.understanding.act == "question":
            self._pending.put(message.user_key, (message.text or "").strip(), lang)
        reply = self.policy.consent_reply(lang, first=not message.callback)
        return [Outgoing(None, message.user_key, message.channel, address, reply)]

    async def _consent(self, session: AsyncSession, message: IncomingMessage, address: str | None, lang: str,
                       analysis: TurnAnalysis | None) -> list[Outgoing]:
        now = self._clock()
        user = BotUser(user_key=message.user_key, channel=message.channel, address=address, lang=lang,
                       current_lang=lang, consent_at=now, last_seen_at=now, state=ConversationState().dump())
        session.add(user)
        session.add(ConversationMessage(user_key=message.user_key, channel=message.channel,
                                        channel_message_id=message.message_id, direction="in",
                                        kind="consent", text=None, lang=lang, created_at=now))
        decision = Decision([self.policy.welcome(lang)])
        ticket_id: int | None = None
        kept = self._pending.pop(message.user_key)
        if kept is not None and analysis is not None:
            # the question sent before consent is answered now, never dropped
            state = ConversationState()
            ref = f"{message.message_id}#kept"
            session.add(ConversationMessage(user_key=message.user_key, channel=message.channel,
                                            channel_message_id=ref, direction="in",
                                            kind="text", text=kept.text, lang=lang, created_at=now))
            await session.flush()
            turn = Turn(message, user, state, now, analysis)
            answered = self.policy.answer_kept_question(turn, self._kb(), kept.text, ref)
            ticket_id = await self._carry_out(session, user, turn, answered)
            decision.replies += answered.replies
            decision.actions += answered.actions
            user.state = state.dump()
        try:
            return await self._commit_replies(session, user, message.channel, message.message_id, decision, now,
                                              ticket_id)
        except IntegrityError:
            await session.rollback()
            return []

    async def _crisis_before_consent(self, session: AsyncSession, message: IncomingMessage, address: str | None,
                                     analysis: TurnAnalysis) -> list[Outgoing]:
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
        await repo.insert_messages(session=session, rows=[dict(
            user_key=user.user_key, channel=message.channel, channel_message_id=message.message_id, direction="in",
            kind="text", text=message.text, lang=lang, created_at=now)])
        turn = Turn(message, user, state, now, analysis)
        decision = self.policy.crisis_first(turn, (message.text or "").strip())
        ticket_id = await self._carry_out(session, user, turn, decision)
        user.state = state.dump()
        try:
            return await self._commit_replies(session, user, message.channel, message.message_id, decision, now,
                                              ticket_id)
        except IntegrityError:
            await session.rollback()
            return []
