"""The ASGI application: health, the question API, and (mounted later) web chat and console.

The knowledge base is opened once in the lifespan and kept on ``app.state``; requests reach it
through a dependency, so tests can build an app around any settings or a prepared knowledge base.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware.trustedhost import TrustedHostMiddleware

from knowledge_base import Embedder, KnowledgeBase, Profile, QueryError
from nlu import Understander
from storage import RateLimiter, clean_text, create_engine, open_pool, session_factory

from .channels.telegram import TelegramGroupNotifier, build_telegram_application, run_telegram, telegram_webhook_route
from .channels.web import create_web_router
from .engine import ConversationEngine
from .logsafe import install_log_redaction
from .privacy import local_secret
from .retention import purge
from .services import build_engine, open_embedder, open_knowledge_base, open_understander
from .settings import Settings

__all__ = ["AskRequest", "AskResponse", "app_from_environment", "create_app", "warn_insecure"]

log = logging.getLogger("hamroh.app")

MAX_QUESTION_CHARS = 4000


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    destination: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    stage: str | None = Field(None, pattern=r"^(pre-departure|abroad|return)$")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    lang: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    profile: ProfileIn | None = None

    @field_validator("question", mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        # a lone surrogate reached the tokenizer and gave a 500 whose traceback quoted the question
        if not isinstance(value, str):
            return value
        cleaned = clean_text(value)
        if not any(ch.isalnum() for ch in cleaned):
            raise ValueError("the question is empty: write it in words")
        return cleaned


class SourceOut(BaseModel):
    title: str
    url: str


class CandidateOut(BaseModel):
    entry_id: str
    topic: str
    title: str
    lang: str


class AskResponse(BaseModel):
    decision: str
    lang: str | None = None
    fell_back: bool = False
    entry_id: str | None = None
    topic: str | None = None
    title: str | None = None
    answer: str | None = None
    sources: list[SourceOut] = []
    reviewed_on: dt.date | None = None
    candidates: list[CandidateOut] = []


def get_kb(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase | None = getattr(request.app.state, "kb", None)
    if kb is None:
        raise HTTPException(status_code=503, detail="the knowledge base is still loading")
    return kb


def _user_key_secret(settings: Settings) -> str:
    """One secret for every channel, so the same person keeps the same pseudonymous key."""
    return local_secret(settings.path(Path("data/user_key_secret")),
                        settings.user_key_secret.get_secret_value() if settings.user_key_secret else None)


def _telegram_application(settings: Settings, engine: ConversationEngine) -> Any:
    if settings.telegram_bot_token is None:
        return None
    key_secret = _user_key_secret(settings)
    return build_telegram_application(settings.telegram_bot_token.get_secret_value(), engine,
                                      key_secret=key_secret, base_url=settings.telegram.base_url)


def _web_router(settings: Settings, engine: ConversationEngine, limiter: RateLimiter) -> APIRouter:
    """The web chat (page at ``/``, widget files, WebSocket, HTTP fallback) on the same user-key secret."""
    key_secret = _user_key_secret(settings)
    session = settings.session_secret.get_secret_value() if settings.session_secret else None
    web = settings.web
    return create_web_router(engine, key_secret=key_secret, session_secret=session, secure_cookies=web.cookie_secure,
                             allowed_origins=tuple(web.allowed_origins), trusted_hosts=tuple(web.trusted_hosts),
                             limiter=limiter, ws_open_per_address=settings.rate_limits.ws_open_per_address)


def _rate_limiter(settings: Settings, sessions: Any) -> RateLimiter:
    """One limiter for every door, on storage every worker and replica shares (``rate_limits.storage``)."""
    limits = settings.rate_limits
    return RateLimiter.from_uri(limits.storage_for(settings.database_url_resolved), limits.rules(),
                                key_secret=_user_key_secret(settings), sessions=sessions,
                                exempt=frozenset(limits.exempt_addresses),
                                per_address=frozenset({"ask", "login_address", "web_http", "ws_connect"}))


def warn_insecure(settings: Settings, logger: logging.Logger = log) -> list[str]:
    """Warnings, naming the key, for a server reachable beyond this machine with unsafe settings."""
    if settings.server.host in ("127.0.0.1", "localhost", "::1"):
        return []
    found = []
    if not settings.console.cookie_secure and not (settings.console.public_url or "").startswith("https://"):
        found.append("console.cookie_secure is off and console.public_url is not https: console cookies are "
                     "Secure only on requests the proxy marks as HTTPS (X-Forwarded-Proto)")
    if "*" in settings.web.allowed_origins:
        found.append('web.allowed_origins is "*": any website may embed the chat; list the MRC websites')
    if not settings.web.trusted_hosts:
        found.append("web.trusted_hosts is empty: any Host header is answered; list the public host names")
    for line in found:
        logger.warning("insecure configuration: %s", line)
    return found


async def _retention_loop(settings: Settings, sessions: Any, db: Any) -> None:
    """Apply the retention periods (``retention`` in config.yml) once a day."""
    while True:
        try:
            report = await purge(sessions, settings.retention, engine=db)
            log.info("retention: purged %s", ", ".join(f"{k} {v}" for k, v in report.as_dict().items()
                                                        if k != "dry_run" and v))
        except Exception as exc:
            log.error("retention purge failed: %s", type(exc).__name__)
        await asyncio.sleep(24 * 3600)


async def _crisis_sweep(engine: ConversationEngine, every: float = 60.0) -> None:
    """The safety net for crisis alerts: one that failed (Telegram down) is retried every minute."""
    while True:
        await asyncio.sleep(every)
        await engine.send_crisis_alerts()


async def _start_live_content(app: FastAPI, settings: Settings, sessions: async_sessionmaker[AsyncSession],
                              embedder: Embedder) -> asyncio.Task[None] | None:
    """First start imports the YAML baseline into the database; then this process serves the
    published content and polls its version (``bot.content.LiveContentWatcher``)."""
    from .content import LiveContentWatcher, seed_if_empty

    def set_kb(new: KnowledgeBase) -> None:
        app.state.kb = new

    watcher = LiveContentWatcher(settings, sessions, lambda: app.state.kb, set_kb,
                                 interval=settings.content.poll_seconds)
    try:
        report = await seed_if_empty(sessions, settings, embedder)
        if report is not None:
            log.info("live content: imported %d entries from %s", len(report.added), settings.content_dir)
        await watcher.refresh()
    except Exception as exc:  # no migrated database yet: serve the YAML baseline, keep trying
        log.warning("live content unavailable at start-up (%s); serving %s until it is", type(exc).__name__,
                    settings.content_dir)
    app.state.content_watcher = watcher
    return asyncio.create_task(watcher.run())


def create_app(settings: Settings, *, kb: KnowledgeBase | None = None, console: bool = False,
               channels: bool = False) -> FastAPI:
    """Build the application; ``kb`` lets tests inject a prepared knowledge base.

    ``console`` mounts the counsellor console at ``/console`` (the database must be migrated:
    ``hamroh db upgrade``). ``channels`` mounts the web chat at ``/`` and starts Telegram when
    its token is set (``hamroh serve``).
    """
    install_log_redaction()
    # an injected knowledge base (tests) is served as given; the server's own follows the live content
    live_content = kb is None and settings.content.live
    embedder = kb.embedder if kb is not None else open_embedder(settings)
    db = create_engine(settings.database_url_resolved, postgres_pool_size=settings.database_pool_size)
    sessions = session_factory(db)
    understander = open_understander(settings, embedder)
    notifier = TelegramGroupNotifier()
    engine = build_engine(settings, sessions, lambda: app.state.kb, understander,
                          notifier=notifier if settings.console.telegram_group_chat_id else None)
    limiter = _rate_limiter(settings, sessions)

    telegram = _telegram_application(settings, engine) if channels else None
    notifier.application = telegram
    console_app: FastAPI | None = None
    if console:
        from .console import build_console

        console_app = build_console(settings, sessions, lambda: app.state.kb, embedder, engine, limiter)

    lifespan = _lifespan(settings, embedder=embedder, understander=understander, db=db, sessions=sessions,
                         engine=engine, telegram=telegram, console_app=console_app, channels=channels,
                         live_content=live_content)

    # no /openapi.json: the API's shape is in the README, and a public schema only helps a prober
    app = FastAPI(title="Hamroh", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    if settings.web.trusted_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*settings.web.trusted_hosts, "127.0.0.1",
                                                                 "localhost"])
    app.state.settings = settings
    app.state.kb = kb
    app.state.engine = engine
    app.state.sessions = sessions
    if telegram is not None and settings.telegram_webhook_secret is not None:
        app.include_router(telegram_webhook_route(telegram, settings.telegram_webhook_secret.get_secret_value()))
    if channels:
        app.include_router(_web_router(settings, engine, limiter))
    if console_app is not None:
        app.mount("/console", console_app)

    from .rasa import rasa_router  # the Rasa action server's API (bearer token; see README, "Rasa")

    app.include_router(rasa_router(settings, sessions, lambda: app.state.kb, understander.language))

    _add_api(app, limiter)
    return app



def _lifespan(settings: Settings, *, embedder: Embedder, understander: Understander, db: AsyncEngine,
              sessions: async_sessionmaker[AsyncSession], engine: ConversationEngine, telegram: Any,
              console_app: FastAPI | None, channels: bool,
              live_content: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up and shut-down: the index (rebuilt if missing), warm-ups, the retention and crisis
    sweeps as tasks the app owns, Telegram; in reverse on the way out."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.kb is None:
            # a missing or stale index is rebuilt before the port opens: say so, it takes minutes
            app.state.kb = await asyncio.to_thread(
                open_knowledge_base, settings, embedder=embedder,
                on_build=lambda what: log.warning("knowledge base: %s (the server starts when it is done; "
                                                  "run 'hamroh kb build' before starting to avoid this)", what))
        await asyncio.to_thread(understander.warm_up)
        try:
            await open_pool(db)
        except Exception as exc:  # the database may come up later; connections then open on demand
            log.warning("database: could not open the connection pool at start-up (%s)", type(exc).__name__)
        watching = await _start_live_content(app, settings, sessions, embedder) if live_content else None
        # the live query engine (ONNX Runtime session, tokenizer) loads on its first query: pay that
        # second at start-up rather than in the first person's reply
        await asyncio.to_thread(embedder.embed_queries, ["warm-up"])
        # what is loaded now (tokenizer, NLU tables, content: ~600k objects) lives as long as the
        # process; out of the collector's sight, a full collection no longer walks it, which here
        # paused every request in flight for up to 0.3 s
        gc.freeze()
        if console_app is not None or channels:
            warn_insecure(settings)
        purging = asyncio.create_task(_retention_loop(settings, sessions, db))
        sweeping = asyncio.create_task(_crisis_sweep(engine))
        async with AsyncExitStack() as stack:
            if console_app is not None:
                # a mounted app gets no lifespan events: run the console's (its background sweeps) here
                await stack.enter_async_context(console_app.router.lifespan_context(console_app))
            if telegram is not None:
                try:
                    secret = settings.telegram_webhook_secret
                    await stack.enter_async_context(run_telegram(
                        telegram, webhook_url=settings.telegram.webhook_url,
                        secret_token=secret.get_secret_value() if secret else None))
                    log.info("telegram started (%s)", "webhook" if settings.telegram.webhook_url else "polling")
                except Exception as exc:  # offline install, bad token: the web chat and console still run
                    log.error("telegram could not start: %s", type(exc).__name__)
            yield
        # wait for the purge task to stop before closing the pool: disposing under a running query
        # left a task that never finished, and the server (or a test client) hung on shutdown
        purging.cancel()
        sweeping.cancel()
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        with contextlib.suppress(asyncio.CancelledError):
            await purging
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        await db.dispose()

    return lifespan


def _add_api(app: FastAPI, limiter: RateLimiter) -> None:
    """The JSON API beside the channels: /health, /api/ask, and error bodies that echo no input."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 echoes each bad input: the question's text back (and a lone surrogate in
        # it made that response itself fail with a 500)
        return JSONResponse({"detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
                                        for e in exc.errors()]}, status_code=422)

    @app.exception_handler(QueryError)
    async def _query_error(_: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    process_token = secrets.token_hex(4)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        current: KnowledgeBase | None = request.app.state.kb
        watcher = getattr(request.app.state, "content_watcher", None)
        return {"status": "ok" if current else "loading",
                "content_version": watcher.version if watcher is not None else None,
                # which server process answered (a random token, not the pid): lets an operator
                # see that every worker took a publication
                "process": process_token,
                "entries": len(current.entries) if current else 0,
                "index": current.manifest.kind if current and current.manifest else None}

    async def ask_limit(request: Request) -> None:
        wait = await limiter.hit("ask", request.client.host if request.client else "unknown")
        if wait:
            raise HTTPException(status_code=429, detail="too many questions; wait and ask again",
                                headers={"Retry-After": str(int(wait))})

    @app.post("/api/ask", response_model=AskResponse, dependencies=[Depends(ask_limit)])
    async def ask(body: AskRequest, kb: Annotated[KnowledgeBase, Depends(get_kb)]) -> AskResponse:
        profile = Profile(**body.profile.model_dump()) if body.profile else None
        result = await asyncio.to_thread(kb.search, body.question, body.lang, profile)
        out = AskResponse(decision=result.decision)
        if result.answer:
            a = result.answer
            out = AskResponse(decision="answer", lang=a.lang, fell_back=a.fell_back, entry_id=a.entry_id,
                              topic=a.topic, title=a.title, answer=a.text,
                              sources=[SourceOut(title=s.title, url=s.url) for s in a.sources],
                              reviewed_on=a.reviewed_on)
        elif result.candidates:
            out.candidates = [CandidateOut(entry_id=c.entry_id, topic=c.topic, title=c.title, lang=c.lang)
                              for c in result.candidates]
        return out


def app_from_environment() -> FastAPI:
    """The full server (web chat, console, Telegram) from ``$HAMROH_CONFIG``: the factory each
    worker process of ``hamroh serve --workers N`` calls, since processes cannot share one app."""
    from .settings import load_settings

    return create_app(load_settings(), console=True, channels=True)
