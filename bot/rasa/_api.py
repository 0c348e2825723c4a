"""HTTP API for the Rasa action server (``nlu/rasa/actions``): curated answers and tickets.

Why an API of its own and not ``/api/ask`` alone: a Rasa assistant needs what Hamroh's channels get
— the answer rendered in the user's language with source and review date (the gettext catalogs
live here), clarify buttons in Rasa's payload form, and a ticket in the counsellor queue with the
transcript. Rasa (Python 3.10, old pins) cannot import Hamroh, so it asks over HTTP.

Both endpoints require ``Authorization: Bearer <token>`` (``HAMROH_ACTIONS_TOKEN``, else a token
kept in ``data/actions_token``): opening tickets must not be open to anyone on the network. Rasa's
sender id is turned into a pseudonymous user key with the same keyed hash as other channels.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import Author, Reason, TranscriptLine, open_ticket
from knowledge_base import KnowledgeBase, QueryError
from nlu import CRISIS_KINDS, LanguageHint

from ..console import console_settings
from ..engine import ConversationState, DialoguePolicy, Person, Reply, answer_reply, crisis_text
from ..i18n import Translator
from ..options import engine_options
from ..privacy import local_secret, user_key
from ..settings import Settings

__all__ = ["actions_token", "rasa_router"]

log = logging.getLogger("hamroh.rasa.api")

CHANNEL = "rasa"
MAX_TEXT = 4000


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender_id: str = Field(min_length=1, max_length=200)
    text: str = Field("", max_length=MAX_TEXT)
    intent: str | None = Field(None, max_length=100)
    lang: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    entry_id: str | None = Field(None, max_length=200)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Literal["user", "bot"]
    text: str = Field(max_length=MAX_TEXT)


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    destination: str | None = Field(None, pattern=r"^[A-Z]{2}$")


class HandoffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender_id: str = Field(min_length=1, max_length=200)
    reason: Literal["user_asked", "crisis", "no_answer"] = "user_asked"
    crisis_kind: str | None = Field(None, max_length=40)
    text: str = Field("", max_length=MAX_TEXT)
    lang: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    profile: ProfileIn | None = None
    transcript: list[LineIn] = Field(default_factory=list, max_length=50)


class ButtonOut(BaseModel):
    title: str
    payload: str


class MessageOut(BaseModel):
    text: str
    buttons: list[ButtonOut] = []


class ActionOut(BaseModel):
    kind: str
    lang: str
    messages: list[MessageOut]
    entry_id: str | None = None
    ticket_id: int | None = None


def actions_token(settings: Settings) -> str:
    env = settings.actions_token.get_secret_value() if settings.actions_token else None
    return local_secret(settings.path(Path("data/actions_token")), env)


def _rasa_payload(payload: str) -> str | None:
    """Hamroh's button payloads in Rasa's ``/intent{entities}`` form; feedback has no Rasa route."""
    head, _, rest = payload.partition(":")
    if head == "entry":
        return "/choose_entry" + json.dumps({"hamroh_entry": rest}, separators=(",", ":"))
    if head == "human":
        return "/ask_human"
    return None


def _message(reply: Reply) -> MessageOut:
    buttons = []
    for row in reply.buttons:
        for b in row:
            payload = _rasa_payload(b.payload)
            if payload is not None:
                buttons.append(ButtonOut(title=b.label, payload=payload))
    text = reply.text
    if reply.sources:
        # Rasa's channels show plain text: the sources and the review date go under the answer
        lines = [f"{title} ({url})" for title, url in reply.sources]
        text = "\n\n".join([text, "\n".join([*lines, reply.reviewed_label or ""]).strip()])
    return MessageOut(text=text, buttons=buttons)


class _LanguageOf:
    """Picks the reply language: the text's when it is clear, else the conversation's."""

    def __init__(self, identify: Callable[[str, LanguageHint | None], object], settings: Settings) -> None:
        self._identify = identify
        self._settings = settings

    def __call__(self, text: str, current: str | None) -> str:
        known = current if current in self._settings.languages else None
        if text and not text.startswith("/"):
            decision = self._identify(text, LanguageHint(current=known))
            lang = getattr(decision, "lang", None)
            if getattr(decision, "confident", False) and lang in self._settings.languages:
                return str(lang)
        return known or self._settings.default_language


def rasa_router(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                kb: Callable[[], KnowledgeBase | None],
                identify_language: Callable[[str, LanguageHint | None], object]) -> APIRouter:
    """``identify_language``: ``nlu.Understander.language`` (rules only, no embedding)."""
    t = Translator(settings.fallback_chains)
    options = engine_options(settings)
    console = console_settings(settings)
    policy = DialoguePolicy(translator=t, options=options, console=console)
    language_of = _LanguageOf(identify_language, settings)

    @functools.cache
    def secrets() -> tuple[bytes, str]:
        """(bearer token, user-key secret), read or created on first use, not when the app is built."""
        key = settings.user_key_secret.get_secret_value() if settings.user_key_secret else None
        return actions_token(settings).encode(), local_secret(settings.path(Path("data/user_key_secret")), key)

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secrets()[0]):
            raise HTTPException(status_code=401, detail="a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})

    def current_kb() -> KnowledgeBase:
        current = kb()
        if current is None:
            raise HTTPException(status_code=503, detail="the knowledge base is still loading")
        return current

    router = APIRouter(prefix="/api/rasa", dependencies=[Depends(authorised)])

    @router.post("/answer", response_model=ActionOut)
    async def answer(body: AnswerIn) -> ActionOut:
        base = current_kb()
        text = body.text.strip()
        lang = language_of(text, body.lang)
        if body.entry_id and base.get(body.entry_id) is not None:
            reply = answer_reply(base, t, body.entry_id, lang)
            return ActionOut(kind="answer", lang=lang, entry_id=reply.entry_id, messages=[_message(reply)])
        if body.intent in ("greet", "thanks", "goodbye"):
            return ActionOut(kind="smalltalk", lang=lang, messages=[MessageOut(text=t(lang, body.intent))])
        counsellor = ButtonOut(title=t(lang, "talk_to_counsellor"), payload="/ask_human")
        if not text:
            return ActionOut(kind="help", lang=lang, messages=[MessageOut(text=t(lang, "help"))])
        try:
            result = await asyncio.to_thread(base.search, text, lang)
        except QueryError:
            result = None
        # the same decision as Telegram and the web chat: the engine's dialogue policy (no
        # citizenship question: Rasa's own stories hold that conversation)
        reply = policy.search_replies(base, Person(lang), ConversationState(), text, lang, result, ask=False)[0]
        if reply.kind == "answer":
            return ActionOut(kind="answer", lang=lang, entry_id=reply.entry_id, messages=[_message(reply)])
        if reply.kind == "clarify":
            message = _message(reply)
            message.buttons.append(counsellor)
            return ActionOut(kind="clarify", lang=lang, messages=[message])
        return ActionOut(kind="handoff", lang=lang,
                         messages=[MessageOut(text=t(lang, "no_answer"), buttons=[counsellor])])

    @router.post("/handoff", response_model=ActionOut)
    async def handoff(body: HandoffIn) -> ActionOut:
        lang = language_of(body.text.strip(), body.lang)
        reason = Reason(body.reason)
        kind = body.crisis_kind if body.crisis_kind in CRISIS_KINDS else None
        profile = body.profile or ProfileIn()
        key = user_key(CHANNEL, body.sender_id, secrets()[1])
        mrc = policy.mrc_for(profile.origin, lang)
        lines = [TranscriptLine(Author(line.author), line.text) for line in body.transcript if line.text.strip()]
        async with sessions() as session:
            ticket = await open_ticket(
                session=session, settings=console, user_key=key, mrc_id=mrc, reason=reason, lang=lang,
                profile={"origin": profile.origin, "destination": profile.destination, "channel": CHANNEL},
                transcript=lines, crisis_kind=kind,
                question_text=body.text if reason is not Reason.USER_ASKED and body.text else None)
            ticket_id = int(ticket.id)
            await session.commit()
        log.info("rasa: opened ticket %d (%s)", ticket_id, reason.value)
        if reason is Reason.CRISIS:
            text = crisis_text(t, options.emergency, profile.destination or profile.origin, lang, kind=kind)
            return ActionOut(kind="crisis", lang=lang, ticket_id=ticket_id, messages=[MessageOut(text=text)])
        return ActionOut(kind="ticket_opened", lang=lang, ticket_id=ticket_id,
                         messages=[MessageOut(text=t(lang, "ticket_opened"))])

    return router
