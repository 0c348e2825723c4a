"""The Telegram channel: python-telegram-bot (PTB 22) in front of the conversation engine.

One update, end to end: PTB parses it (from ``getUpdates`` in polling mode, or from our own ASGI
route in webhook mode); :func:`incoming_from_update` reduces it to an ``IncomingMessage`` keyed by
a pseudonym; the engine records it and its replies in one transaction and returns them; each reply
is rendered as escaped HTML (:func:`render_reply`), sent under the flood limits, and marked sent.
What is not sent — a crash, a network error, a counsellor's reply typed in the console — stays in
the engine's outbox, and the delivery loop started with the application sends it later.

Why the application is built by a function and not at import: tests and the ASGI app create their
own, with their own engine, token and Bot API address, and nothing leaks between them.

Privacy (DESIGN.md principle 4): logs carry pseudonymous keys (shortened), update ids and exception
types only — never texts, raw user or chat ids, or the token; the libraries' own loggers are
filtered accordingly (see ``_telegram_logging``).
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from enum import Enum
from typing import Any, TypeAlias

from cachetools import LRUCache
from fastapi import APIRouter, Request, Response
from telegram import BotCommand, CallbackQuery, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseRateLimiter, TypeHandler

from bot.engine import ChatPort, Outgoing
from bot.privacy import user_key as make_user_key
from storage import clean_json

from ._telegram_limits import TelegramRateLimiter
from ._telegram_logging import describe_exception, protect_library_logs
from ._telegram_media import TelegramMediaSource
from ._telegram_render import TELEGRAM_TEXT_LIMIT, FooterTranslator, TelegramMessage, render_reply, split_html
from ._telegram_updates import CHANNEL, Incoming, incoming_from_update

__all__ = [
    "ALLOWED_UPDATES",
    "TELEGRAM_TEXT_LIMIT",
    "Incoming",
    "TelegramApp",
    "TelegramChannelError",
    "TelegramMediaSource",
    "TelegramMessage",
    "TelegramRateLimiter",
    "build_telegram_application",
    "deliver_pending",
    "incoming_from_update",
    "render_reply",
    "run_telegram",
    "split_html",
    "start_polling",
    "start_webhook",
    "stop_telegram",
    "telegram_webhook_route",
]

log = logging.getLogger("bot.channels.telegram")

#: PTB's Application is generic in six types (bot, context, user, chat and bot data, job queue); this
#: channel keeps no per-chat data in PTB and needs none of them: one name for "any application"
TelegramApp: TypeAlias = Application[Any, Any, Any, Any, Any, Any]

#: the only updates the bot asks Telegram for: fewer updates, less data about people
ALLOWED_UPDATES: tuple[str, ...] = (Update.MESSAGE, Update.CALLBACK_QUERY)
WEBHOOK_PATH = "/telegram/webhook"
#: Telegram's rule for ``secret_token``
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_RECENT_IDS = 10_000


class TelegramChannelError(Exception):
    """The Telegram channel cannot start; the message says what to fix and never holds the token."""


def _short(user_key: str) -> str:
    """Enough of the pseudonymous key to follow one person through the logs."""
    return user_key[:12]


class _Outcome(Enum):
    SENT = "sent"
    DROPPED = "dropped"  # can never be delivered (blocked, chat gone, rejected): do not retry forever
    RETRY = "retry"  # transient: stays in the outbox for the delivery loop


class _Attempts(LRUCache[int, int]):
    """Failed attempts per update id, the least recent forgotten first (memory stays flat however
    long the bot runs); ``on_forget`` hears of each id dropped that way."""

    def __init__(self, maxsize: int, on_forget: Callable[[int], None]) -> None:
        super().__init__(maxsize)
        self._on_forget = on_forget

    def popitem(self) -> tuple[int, int]:
        key, value = super().popitem()
        self._on_forget(key)
        return key, value


class _ChatLocks:
    """One lock per chat: a person's messages are handled in order while other chats go on in parallel."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, chat: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(chat, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(chat, None)


class _TelegramChannel:
    """State shared by the update handler, the delivery loop and the webhook route of one application."""

    def __init__(self, engine: ChatPort, *, key_secret: str, translate: FooterTranslator | None,
                 delivery_interval: float, delivery_batch: int, deliver_in_background: bool,
                 max_webhook_attempts: int) -> None:
        self.engine = engine
        self._key_secret = key_secret
        self._translate = translate
        self._interval = delivery_interval
        self._batch = delivery_batch
        self._deliver_in_background = deliver_in_background
        self._max_webhook_attempts = max_webhook_attempts
        self._application: TelegramApp | None = None
        self._locks = _ChatLocks()
        self._in_flight: set[int] = set()
        # recently used ids, oldest forgotten first: memory stays flat however long the bot runs
        self._recent: LRUCache[int, None] = LRUCache(_RECENT_IDS)  # sent by this process, maybe not yet marked
        self._progress: dict[int, int] = {}  # outbox id → parts of a long reply already sent
        self._warned: LRUCache[int, None] = LRUCache(_RECENT_IDS)
        self._failed_now: set[int] = set()
        # polling never asks webhook_status: bounded, and a forgotten update is no longer "failed"
        self._attempts = _Attempts(_RECENT_IDS, self._failed_now.discard)
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ wiring
    def bind(self, application: TelegramApp) -> None:
        self._application = application

    @property
    def bot(self) -> Any:
        if self._application is None:
            raise RuntimeError("the Telegram channel is not bound to an application")
        return self._application.bot

    def user_key(self, telegram_user_id: int) -> str:
        return make_user_key(CHANNEL, telegram_user_id, self._key_secret)

    # ------------------------------------------------------------------ incoming
    async def on_update(self, update: object, context: Any) -> None:
        """Answer one update; an engine failure propagates to :meth:`on_error` (webhook → 500)."""
        if not isinstance(update, Update):
            return
        incoming = incoming_from_update(update, self.user_key)
        if incoming is None:
            if update.callback_query is not None:
                await self._answer_callback(update.callback_query)
            return
        # the lock is taken before the first await, so a chat's updates keep the order they came in
        async with self._locks.hold(incoming.address):
            if update.callback_query is not None:
                await self._answer_callback(update.callback_query)
            outgoing = await self.engine.handle(incoming.message, address=incoming.address)
            await self.deliver(outgoing, incoming.address)

    async def on_error(self, update: object, context: Any) -> None:
        """Log the failure without its content, and remember it so the webhook asks for a redelivery."""
        error = getattr(context, "error", None)
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None:
            self._failed_now.add(update_id)
            self._attempts[update_id] = self._attempts.get(update_id, 0) + 1
        what = describe_exception(error) if isinstance(error, BaseException) else "unknown error"
        log.error("handling Telegram update %s failed: %s", update_id, what)

    def webhook_status(self, update_id: int) -> int:
        """200, or 500 so that Telegram redelivers an update the engine could not record (bounded)."""
        if update_id not in self._failed_now:
            self._attempts.pop(update_id, None)
            return 200
        self._failed_now.discard(update_id)
        if self._attempts.get(update_id, 0) < self._max_webhook_attempts:
            return 500
        log.error("giving up on Telegram update %s after %d attempts", update_id, self._attempts.pop(update_id))
        return 200

    async def _answer_callback(self, query: CallbackQuery) -> None:
        """Stop the button's spinner; a failure here (too old, already answered) changes nothing."""
        try:
            await query.answer()
        except TelegramError as exc:
            log.info("could not answer a callback query: %s", type(exc).__name__)

    # ------------------------------------------------------------------ outgoing
    def _claim(self, outbox_id: int | None) -> bool:
        if outbox_id is None:
            return True
        if outbox_id in self._in_flight or outbox_id in self._recent:
            return False
        self._in_flight.add(outbox_id)
        return True

    async def deliver(self, outgoing: Sequence[Outgoing], fallback_address: str | None) -> int:
        """Send replies in order and mark each sent; stop at a transient failure to keep the order."""
        claimed = [out for out in outgoing if self._claim(out.id)]
        sent = 0
        try:
            for out in claimed:
                address = out.address or fallback_address
                if not address:
                    if out.id is not None and out.id not in self._warned:
                        self._warned[out.id] = None
                        log.warning("no Telegram chat known for a reply to user %s", _short(out.user_key))
                    continue
                outcome = await self._send_reply(address, out)
                if outcome is _Outcome.RETRY:
                    break
                if outcome is _Outcome.SENT:
                    sent += 1
                if out.id is not None:
                    self._recent[out.id] = None
                    await self._mark_sent(out.id)
        finally:
            for out in claimed:
                if out.id is not None:
                    self._in_flight.discard(out.id)
        return sent

    async def _mark_sent(self, outbox_id: int) -> None:
        try:
            await self.engine.mark_sent([outbox_id])
        except Exception as exc:  # delivered anyway; _recent keeps this process from sending it twice
            log.error("marking a Telegram reply sent failed: %s", describe_exception(exc))

    async def _send_reply(self, address: str, out: Outgoing) -> _Outcome:
        parts = render_reply(out.reply, translate=self._translate)
        first = self._progress.get(out.id, 0) if out.id is not None else 0
        chat_id: int | str = int(address) if address.lstrip("-").isdigit() else address
        who = _short(out.user_key)
        for index in range(first, len(parts)):
            outcome = await self._send_part(chat_id, parts[index], who, out.reply.kind)
            if outcome is not _Outcome.SENT:
                if out.id is not None:
                    if outcome is _Outcome.RETRY:
                        self._progress[out.id] = index
                    else:
                        self._progress.pop(out.id, None)
                return outcome
        if out.id is not None:
            self._progress.pop(out.id, None)
        return _Outcome.SENT

    async def _send_part(self, chat_id: int | str, part: TelegramMessage, who: str, kind: str) -> _Outcome:
        try:
            await self.bot.send_message(chat_id=chat_id, text=part.text, parse_mode=ParseMode.HTML,
                                        reply_markup=part.keyboard, link_preview_options=_NO_PREVIEW)
            return _Outcome.SENT
        except Forbidden:
            log.info("user %s blocked the bot or left: reply (%s) dropped", who, kind)
            return _Outcome.DROPPED
        except BadRequest as exc:
            log.warning("Telegram rejected a %s reply to user %s (%s): retrying as plain text",
                        kind, who, _bad_request_reason(exc))
        except (RetryAfter, NetworkError) as exc:
            log.warning("sending a %s reply to user %s failed (%s): it stays in the outbox",
                        kind, who, type(exc).__name__)
            return _Outcome.RETRY
        except TelegramError as exc:
            log.error("sending a %s reply to user %s failed (%s): it stays in the outbox",
                      kind, who, type(exc).__name__)
            return _Outcome.RETRY
        try:  # last resort for a rejected HTML message: the same words, no markup
            await self.bot.send_message(chat_id=chat_id, text=html.unescape(part.text),
                                        reply_markup=part.keyboard, link_preview_options=_NO_PREVIEW)
            return _Outcome.SENT
        except BadRequest as exc:
            log.error("Telegram rejected a %s reply to user %s again (%s): dropped",
                      kind, who, _bad_request_reason(exc))
            return _Outcome.DROPPED
        except (RetryAfter, NetworkError):
            return _Outcome.RETRY
        except TelegramError as exc:
            log.error("sending a %s reply to user %s failed (%s): dropped", kind, who, type(exc).__name__)
            return _Outcome.DROPPED

    # ------------------------------------------------------------------ delivery loop
    async def deliver_pending(self) -> int:
        """One pass over the outbox: counsellor replies and leftovers, each chat in order."""
        busy = sorted(self._in_flight)  # being sent by the update handler right now
        pending = await self.engine.claim_pending(CHANNEL, limit=self._batch, exclude=busy)
        by_chat: dict[str, list[Outgoing]] = {}
        for out in pending:
            if out.id is None or out.id in self._in_flight or out.id in self._recent:
                continue
            if not out.address:
                if out.id not in self._warned:
                    self._warned[out.id] = None
                    log.warning("no Telegram chat known for a pending reply to user %s", _short(out.user_key))
                continue
            by_chat.setdefault(out.address, []).append(out)
        gate = asyncio.Semaphore(8)

        async def one_chat(address: str, items: list[Outgoing]) -> int:
            async with gate, self._locks.hold(address):
                return await self.deliver(items, address)

        results = await asyncio.gather(*(one_chat(a, items) for a, items in by_chat.items()))
        return sum(results)

    async def _delivery_loop(self) -> None:
        while True:
            try:
                await self.deliver_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be briefly away; try again next round
                log.warning("Telegram delivery round failed: %s", describe_exception(exc))
            await asyncio.sleep(self._interval)

    def start_delivery(self) -> None:
        if self._deliver_in_background and self._task is None:
            self._task = asyncio.create_task(self._delivery_loop(), name="hamroh-telegram-delivery")

    async def stop_delivery(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


#: Telegram's 400 reasons we name in logs; the description itself may quote the message
_BAD_REQUEST_REASONS = ("can't parse entities", "message is too long", "message text is empty", "chat not found",
                        "button_data_invalid", "reply markup", "user not found", "peer_id_invalid")


def _bad_request_reason(exc: BadRequest) -> str:
    """A fixed label for Telegram's reason, never the description (it can quote what was sent)."""
    description = exc.message.lower()
    return next((reason for reason in _BAD_REQUEST_REASONS if reason in description), "other")


class _ChannelApplication(TelegramApp):
    """An ``Application`` that runs the delivery loop while it runs, however it is started.

    ``post_init`` only fires under ``run_polling``/``run_webhook``; overriding ``start``/``stop``
    also covers our own ASGI server's manual ``initialize``/``start``/``stop``.
    """

    def __init__(self, *, hamroh_channel: _TelegramChannel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hamroh_channel = hamroh_channel

    async def start(self) -> None:
        await super().start()
        self.hamroh_channel.start_delivery()

    async def stop(self) -> None:
        await self.hamroh_channel.stop_delivery()
        await super().stop()


def _channel_of(application: TelegramApp) -> _TelegramChannel:
    channel = getattr(application, "hamroh_channel", None)
    if not isinstance(channel, _TelegramChannel):
        raise TypeError("this application was not made by build_telegram_application()")
    return channel


def _default_translate() -> FooterTranslator:
    from bot.i18n import Translator

    translator = Translator()
    return lambda lang, key: translator(lang, key)


def build_telegram_application(
    token: str,
    engine: ChatPort,
    *,
    key_secret: str,
    base_url: str | None = None,
    rate_limiter: BaseRateLimiter[Any] | None = None,
    translate: FooterTranslator | None = None,
    delivery_interval: float = 2.0,
    delivery_batch: int = 100,
    deliver_in_background: bool = True,
    concurrent_updates: int = 32,
    max_webhook_attempts: int = 5,
) -> TelegramApp:
    """A PTB application that feeds ``engine`` and sends its replies; nothing runs until it is started.

    ``base_url`` points the real HTTP client at another Bot API server (the token is appended, e.g.
    ``http://127.0.0.1:8081/bot``): a local Bot API server, or the fake one in the tests.
    ``deliver_in_background`` runs the outbox delivery loop while the application runs; with several
    replicas behind a load balancer, enable it on one of them only.
    ``concurrent_updates`` lets different chats be answered in parallel; one chat is always answered
    in order.
    """
    if not token:
        raise ValueError("the Telegram bot token is empty: set TELEGRAM_BOT_TOKEN")
    if not key_secret:
        raise ValueError("the user-key secret is empty: set HAMROH_USER_KEY_SECRET")
    if delivery_interval <= 0 or delivery_batch < 1 or concurrent_updates < 1 or max_webhook_attempts < 1:
        raise ValueError("delivery_interval, delivery_batch, concurrent_updates and max_webhook_attempts "
                         "must be positive")
    protect_library_logs(token)
    channel = _TelegramChannel(engine, key_secret=key_secret,
                               translate=translate if translate is not None else _default_translate(),
                               delivery_interval=delivery_interval, delivery_batch=delivery_batch,
                               deliver_in_background=deliver_in_background,
                               max_webhook_attempts=max_webhook_attempts)
    builder = (
        ApplicationBuilder()
        .application_class(_ChannelApplication, kwargs={"hamroh_channel": channel})
        .token(token)
        .rate_limiter(rate_limiter if rate_limiter is not None else TelegramRateLimiter())
        .concurrent_updates(concurrent_updates)
        .job_queue(None)
    )
    if base_url is not None:
        builder = builder.base_url(base_url)
    application: TelegramApp = builder.build()
    channel.bind(application)
    application.add_handler(TypeHandler(Update, channel.on_update))
    application.add_error_handler(channel.on_error)
    return application


async def deliver_pending(application: TelegramApp) -> int:
    """Send what the engine's outbox holds for Telegram now; the number of replies delivered.

    The background loop calls this every ``delivery_interval``; a CLI or a test may call it directly.
    """
    return await _channel_of(application).deliver_pending()


async def _initialize(application: TelegramApp) -> None:
    """``initialize`` (which calls ``getMe``) with PTB's token-quoting error replaced by ours."""
    try:
        await application.initialize()
    except InvalidToken:
        # PTB's message is "The token `<token>` was rejected": it must not reach a log or a traceback
        raise TelegramChannelError("Telegram rejected the bot token: check TELEGRAM_BOT_TOKEN") from None


class TelegramGroupNotifier:
    """handoff's ``Notifier`` through the bot: crisis alerts to the MRC's counsellor group.

    Bound late (``application`` is set once the Telegram application exists, which itself needs the
    engine that needs this notifier); without an application nothing is sent and the console's
    live queue is the only alert.
    """

    def __init__(self) -> None:
        self.application: TelegramApp | None = None

    async def send_group_message(self, chat_id: str, text: str) -> None:
        if self.application is None:
            raise RuntimeError("Telegram is not running")
        await self.application.bot.send_message(chat_id=int(chat_id), text=text,
                                                link_preview_options=LinkPreviewOptions(is_disabled=True))


#: the command menu, in the order Telegram shows it
MENU_COMMANDS: tuple[str, ...] = ("start", "menu", "language", "profile", "human", "delete", "help")


async def set_commands(application: TelegramApp,
                       languages: Sequence[str] | None = None) -> int:
    """Telegram's command menu, once per language (``language_code``), plus a default in English.

    Why per language: the menu is the first thing a new user taps, and a Tajik user who reads no
    English must still find "talk to a counsellor". A failure is logged, never fatal.
    """
    from bot.i18n import Translator
    from knowledge_base import LANGUAGES

    t = Translator()
    done = 0
    codes = {"prs": "fa", "ckb": "ku"}
    for lang in [None, *(languages or LANGUAGES)]:
        commands = [BotCommand(name, t(lang or "en", f"cmd_{name}")[:256]) for name in MENU_COMMANDS]
        try:
            await application.bot.set_my_commands(commands, language_code=codes.get(lang or "", lang))
            done += 1
        except TelegramError as exc:
            log.warning("setMyCommands failed for %s: %s", lang or "default", type(exc).__name__)
    return done


def _polling_error(error: TelegramError) -> None:
    log.warning("polling Telegram failed: %s; retrying", type(error).__name__)


async def start_polling(application: TelegramApp, *,
                        poll_timeout: float = 10.0, drop_pending_updates: bool = False) -> None:
    """``run_polling`` for our own event loop: fetch updates from Telegram until :func:`stop_telegram`.

    Starting polling removes a webhook (Telegram allows only one of the two).
    """
    if application.updater is None:
        raise RuntimeError("this application has no updater; build it with build_telegram_application()")
    await _initialize(application)
    await set_commands(application)
    await application.start()
    await application.updater.start_polling(timeout=timedelta(seconds=poll_timeout),
                                            allowed_updates=list(ALLOWED_UPDATES),
                                            drop_pending_updates=drop_pending_updates,
                                            error_callback=_polling_error)
    log.info("Telegram polling started")


async def start_webhook(application: TelegramApp, *, url: str,
                        secret_token: str, drop_pending_updates: bool = False, max_connections: int = 40) -> None:
    """Start the application and tell Telegram to POST updates to ``url`` with ``secret_token``.

    The updates then arrive through :func:`telegram_webhook_route`, mounted in our ASGI app.
    """
    if not _SECRET_TOKEN.fullmatch(secret_token):
        raise ValueError("the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    await _initialize(application)
    await set_commands(application)
    await application.start()
    await application.bot.set_webhook(url=url, secret_token=secret_token, allowed_updates=list(ALLOWED_UPDATES),
                                      drop_pending_updates=drop_pending_updates, max_connections=max_connections)
    log.info("Telegram webhook set")


async def stop_telegram(application: TelegramApp) -> None:
    """Stop polling, the delivery loop and the application, in that order; safe to call twice.

    A webhook is left in place: with several replicas, the others still receive updates.
    """
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()
    log.info("Telegram stopped")


@asynccontextmanager
async def run_telegram(application: TelegramApp, *,
                       webhook_url: str | None = None, secret_token: str | None = None,
                       poll_timeout: float = 10.0) -> AsyncIterator[TelegramApp]:
    """For an ASGI lifespan: polling, or webhook mode when ``webhook_url`` is given; stopped on exit.

    A failure to start (bad token, Telegram unreachable) propagates after what was started is
    stopped again; the caller decides whether the rest of the server runs without Telegram.
    """
    if webhook_url is not None and secret_token is None:
        raise ValueError("webhook mode needs a secret token: set TELEGRAM_WEBHOOK_SECRET")
    try:
        if webhook_url is not None and secret_token is not None:
            await start_webhook(application, url=webhook_url, secret_token=secret_token)
        else:
            await start_polling(application, poll_timeout=poll_timeout)
    except BaseException:
        await stop_telegram(application)
        raise
    try:
        yield application
    finally:
        await stop_telegram(application)


def telegram_webhook_route(application: TelegramApp, secret_token: str, *,
                           path: str = WEBHOOK_PATH, max_body_bytes: int = 1 << 20) -> APIRouter:
    """``POST /telegram/webhook`` for our FastAPI app: authenticate, parse, handle, then answer.

    The secret header is compared in constant time before the body is read; without it nothing is
    parsed, processed or stored (403). The update is handled — recorded by the engine — before the
    200, because Telegram forgets an update once it has a 200; if the engine fails the route answers
    500 and Telegram redelivers (the engine's idempotency makes that safe), at most
    ``max_webhook_attempts`` times per update.
    """
    if not _SECRET_TOKEN.fullmatch(secret_token):
        raise ValueError("the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    channel = _channel_of(application)
    expected = secret_token.encode("ascii")
    router = APIRouter()

    async def telegram_webhook(request: Request) -> Response:
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode("latin-1")
        if not hmac.compare_digest(given, expected):
            return Response(status_code=403)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return Response(status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return Response(status_code=413)
        try:
            # lone surrogates and NULs replaced, never dropped: storing one failed, and the update
            # was retried five times and lost; nesting too deep for the decoder is malformed (400)
            data = clean_json(json.loads(body))
        except (ValueError, RecursionError):  # ValueError includes bad UTF-8
            return Response(status_code=400)
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return Response(status_code=400)
        try:
            update = Update.de_json(data, application.bot)
        except Exception as exc:  # a shape PTB cannot read; Telegram itself never sends one
            log.warning("unreadable Telegram update %s: %s", update_id, type(exc).__name__)
            return Response(status_code=400)
        try:
            await application.process_update(update)
        except RuntimeError:  # not initialised yet (starting up or shutting down): ask for a redelivery
            return Response(status_code=503)
        return Response(status_code=channel.webhook_status(update_id))

    router.add_api_route(path, telegram_webhook, methods=["POST"], include_in_schema=False)
    return router
