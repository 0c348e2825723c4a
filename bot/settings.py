"""One validated settings object for the whole application, from ``config.yml`` plus environment.

Why: an MRC's IT person edits ``config.yml`` by hand. A typo must stop start-up with the file, the
key and the reason, not surface later as a wrong answer. Environment variables (``HAMROH_...``,
nested with ``__``) override the file so containers can be configured without editing it; secrets
come only from the environment and are never written back or logged.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from handoff import MrcSettings
from knowledge_base import LANGUAGES, IndexConfig, ModelConfig, SearchConfig
from storage import parse_rule

__all__ = [
    "ConsoleConfig", "Contact", "MrcConfig", "NluConfig", "RasaConfig", "RateLimitsConfig", "RetentionConfig",
    "ServerConfig", "Settings", "SettingsError", "TelegramConfig", "WebConfig", "load_settings",
]


class SettingsError(ValueError):
    """config.yml or the environment is invalid; the message names the key and the fix."""


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    phone: str | None = None
    url: str | None = None
    #: what the number is for; ``mental_health`` lines come first for a person who wants to die
    kind: Literal["emergency", "police", "ambulance", "mental_health", "hotline"] = "emergency"
    #: where the number comes from (an official page); contacts without a source are not shipped
    source: str


class MrcConfig(BaseModel):
    """One Migrant Resource Centre: a tenant with its own queue, hours and contacts.

    Validated by the console's own schema (:class:`handoff.MrcSettings`), so what config.yml
    accepts is exactly what the queue understands: ``"mon-fri"``, several spans a day, holidays.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: str = "UTC"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    #: e.g. {"mon-fri": "09:00-13:00, 14:00-18:00", "sat": "09:00-13:00"}; empty means always open
    office_hours: dict[str, str] = Field(default_factory=dict)
    holidays: list[dt.date] = Field(default_factory=list)
    reply_within_office_hours: float = Field(4.0, gt=0, le=24 * 14)
    crisis_reply_within_minutes: int = Field(15, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _console_schema(self) -> MrcConfig:
        try:
            self.console()
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{key}: {first['msg'].removeprefix('Value error, ')}") from None
        return self

    def console(self) -> MrcSettings:
        """The same MRC as the console's settings (one schema, passed down)."""
        return MrcSettings(id=self.id, name=self.name, country=self.country, timezone=self.timezone,
                           languages=tuple(self.languages), office_hours=dict(self.office_hours),
                           holidays=tuple(self.holidays), reply_within_office_hours=self.reply_within_office_hours,
                           crisis_reply_within_minutes=self.crisis_reply_within_minutes)


class ConsoleConfig(BaseModel):
    """The counsellor console (``/console``)."""

    model_config = ConfigDict(extra="forbid")

    #: the console's public address, e.g. https://mrc.example.org/console: links in Telegram alerts,
    #: the origin check behind a proxy; an https address also turns on Secure cookies and HSTS
    public_url: str | None = Field(None, pattern=r"^https?://[^/\s]+(/\S*)?$")
    #: force Secure cookies and HSTS even when a request arrives over plain HTTP. Without it they are
    #: on whenever the request is HTTPS (directly, or X-Forwarded-Proto from a proxy uvicorn trusts)
    cookie_secure: bool = False
    poll_seconds: int = Field(15, ge=3, le=600)
    idle_claim_minutes: int = Field(30, ge=1, le=24 * 60)
    session_idle_minutes: int = Field(120, ge=5, le=24 * 60)
    session_max_hours: int = Field(12, ge=1, le=24 * 7)
    #: Telegram group that receives crisis alerts (a chat id, e.g. -1001234567890)
    telegram_group_chat_id: str | None = Field(None, pattern=r"^-?\d{1,20}$")


class WebConfig(BaseModel):
    """The web chat at ``/`` and its embeddable widget."""

    model_config = ConfigDict(extra="forbid")

    #: MRC websites that may embed the widget (``https://mrc.example.org``); ``"*"`` allows any site
    #: (a warning at start-up); empty: the chat's own pages only
    allowed_origins: list[str] = Field(default_factory=list)
    #: Host header values the server answers to (``bot.mrc.example.org``); empty: any (a warning when
    #: the server listens beyond loopback). The page's CSP and the widget's address are built from it
    trusted_hosts: list[str] = Field(default_factory=list)
    #: force the Secure flag on the chat cookie (it is set anyway on HTTPS requests)
    cookie_secure: bool = False

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"{origin!r}: write an origin like https://mrc.example.org (no path), or \"*\"")
        return value


class RetentionConfig(BaseModel):
    """How long each kind of personal data is kept (the privacy notice promises these periods).

    ``hamroh db purge`` applies them (``--dry-run`` counts only); ``hamroh serve`` runs it daily.
    """

    model_config = ConfigDict(extra="forbid")

    #: bot conversation messages (what people wrote and what the bot answered)
    conversations_days: int = Field(180, ge=1, le=3650)
    #: tickets and their transcripts and notes, counted from their last activity
    tickets_days: int = Field(180, ge=1, le=3650)
    #: a person's row (language, profile, last question, Telegram chat) after they were last seen
    users_days: int = Field(180, ge=1, le=3650)
    #: replies in the outbox, sent or not (an unsent reply this old will never be wanted)
    outbox_days: int = Field(30, ge=1, le=3650)
    #: sign-in throttles and audit rows of failed sign-ins (they hold whatever was typed as a username)
    login_records_days: int = Field(30, ge=1, le=3650)


class RateLimitsConfig(BaseModel):
    """Limits on every expensive door, as ``"N per period"``; 429 with ``Retry-After`` past them."""

    model_config = ConfigDict(extra="forbid")

    #: where counters live: ``auto`` (the database on PostgreSQL, memory on SQLite), ``memory``
    #: (one process), ``database`` or ``redis://host:6379/0``. Workers and replicas agree only on a
    #: shared one
    storage: str = Field("auto", pattern=r"^(auto|memory|database|rediss?://\S+)$")
    #: POST /api/ask per client address (each question costs an embedding and a search)
    ask: str = "60 per minute"
    #: console sign-in attempts per client address, whatever the username (argon2 is costly)
    login_per_address: str = "30 per 15 minutes"
    #: failed sign-ins per account from browsers that never signed in to it (many addresses, one account)
    login_per_account: str = "20 per 15 minutes"
    #: web chat HTTP requests (session, send, poll) per client address
    web_http: str = "300 per minute"
    #: new web chat WebSockets per client address
    ws_connect: str = "60 per minute"
    #: WebSockets open at once per client address, in each server process
    ws_open_per_address: int = Field(50, ge=1, le=100_000)
    #: addresses the per-address limits leave alone: loopback, where the machine's own benchmarks
    #: and checks run (a proxy on this machine must send X-Forwarded-For, README "Telegram")
    exempt_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])

    @field_validator("ask", "login_per_address", "login_per_account", "web_http", "ws_connect")
    @classmethod
    def _rule(cls, value: str) -> str:
        parse_rule(value)
        return value

    def rules(self) -> dict[str, str]:
        return {"ask": self.ask, "login_address": self.login_per_address, "login_account": self.login_per_account,
                "web_http": self.web_http, "ws_connect": self.ws_connect}

    def storage_for(self, database_url: str) -> str:
        if self.storage != "auto":
            return self.storage
        return "database" if database_url.startswith("postgresql") else "memory"


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    #: server processes sharing the port (one per core is the sweet spot). Each loads its own copy
    #: of the model (about 1.7 GB resident); with more than one, Telegram must use a webhook
    #: (polling allows a single reader) and PostgreSQL is advised (SQLite serialises writers).
    workers: int = Field(1, ge=1, le=32)


class TelegramConfig(BaseModel):
    """Telegram runs only when TELEGRAM_BOT_TOKEN is set; webhook mode when ``webhook_url`` is."""

    model_config = ConfigDict(extra="forbid")

    #: public HTTPS address Telegram posts to, ending in /telegram/webhook; empty = polling
    webhook_url: str | None = None
    #: Bot API server (a local Bot API server, or a test fake); empty = Telegram's
    base_url: str | None = None


class RasaConfig(BaseModel):
    """A running Rasa server asked for dialogue acts (``nlu.backend: rasa``); see README, "Rasa"."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("http://127.0.0.1:5005", pattern=r"^https?://")
    #: per message; past it the built-in understanding answers (and the miss is logged)
    timeout_seconds: float = Field(2.0, gt=0, le=30)
    #: below this intent confidence Rasa's act is not trusted: the message is treated as a question
    #: (searched, and handed to a counsellor when there is no verified answer)
    min_confidence: float = Field(0.5, ge=0, le=1)


class NluConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: "builtin" (rules + embeddings, offline) or "rasa" (a Rasa server; built-in as fallback)
    backend: Literal["builtin", "rasa"] = "builtin"
    rasa: RasaConfig = RasaConfig()


class ContentConfig(BaseModel):
    """The live content edited in the console (README, "Editing content")."""

    model_config = ConfigDict(extra="forbid")

    #: serve the database's published content (imported from ``content_dir`` on first start) and
    #: swap in every publication; off: serve ``content_dir`` as built by ``hamroh kb build``
    live: bool = True
    #: how often each server process reads the content version (one primary-key read)
    poll_seconds: float = Field(1.0, gt=0, le=60)


class Settings(BaseSettings):
    """Everything the application needs; built once at start-up and passed down."""

    model_config = SettingsConfigDict(env_prefix="HAMROH_", env_nested_delimiter="__", extra="forbid")

    root: Path = Path(".")
    languages: list[str] = Field(default_factory=lambda: list(LANGUAGES))
    default_language: str = "en"
    fallback_chains: dict[str, list[str]] = Field(default_factory=dict)
    content_dir: Path = Path("knowledge_base/content")
    content: ContentConfig = ContentConfig()
    database_url: str = "sqlite+aiosqlite:///data/hamroh.db"
    #: PostgreSQL connections kept open per server process (storage.create_engine says why 15)
    database_pool_size: int = Field(15, ge=1, le=200)
    model: ModelConfig = ModelConfig()
    index: IndexConfig = IndexConfig()
    search: SearchConfig = SearchConfig()
    server: ServerConfig = ServerConfig()
    telegram: TelegramConfig = TelegramConfig()
    nlu: NluConfig = NluConfig()
    console: ConsoleConfig = ConsoleConfig()
    web: WebConfig = WebConfig()
    retention: RetentionConfig = RetentionConfig()
    rate_limits: RateLimitsConfig = RateLimitsConfig()
    mrcs: list[MrcConfig] = Field(default_factory=list)
    #: national emergency numbers by ISO country code, each with its official source; where a
    #: country is absent the bot gives the embassy/consulate route instead of a number
    emergency: dict[str, list[Contact]] = Field(default_factory=dict)
    telegram_bot_token: SecretStr | None = Field(None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_webhook_secret: SecretStr | None = Field(None, validation_alias="TELEGRAM_WEBHOOK_SECRET")
    session_secret: SecretStr | None = Field(None, validation_alias="HAMROH_SESSION_SECRET")
    user_key_secret: SecretStr | None = Field(None, validation_alias="HAMROH_USER_KEY_SECRET")
    #: bearer token of the Rasa action server calling /api/rasa/*; else one kept in data/actions_token
    actions_token: SecretStr | None = Field(None, validation_alias="HAMROH_ACTIONS_TOKEN")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides config.yml (passed in as init kwargs)
        return env_settings, init_settings, file_secret_settings

    @model_validator(mode="after")
    def _languages_known(self) -> Settings:
        unknown = [lang for lang in self.languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"languages: unknown code(s) {unknown}; use codes from {', '.join(LANGUAGES)}")
        for lang, chain in self.fallback_chains.items():
            bad = [c for c in [lang, *chain] if c not in LANGUAGES]
            if bad:
                raise ValueError(f"fallback_chains.{lang}: unknown code(s) {bad}")
        if self.default_language not in self.languages:
            raise ValueError(f"default_language '{self.default_language}' is not listed in languages")
        bad_codes = [c for c in self.emergency if not re.match(r"^[A-Z]{2}$", c)]
        if bad_codes:
            raise ValueError(f"emergency: {bad_codes} are not ISO 3166-1 alpha-2 country codes")
        ids = [m.id for m in self.mrcs]
        if len(ids) != len(set(ids)):
            raise ValueError("mrcs: two MRCs share an id")
        return self

    def path(self, p: Path) -> Path:
        """A configured path, relative to the directory that holds config.yml."""
        return p if p.is_absolute() else self.root / p

    @property
    def database_url_resolved(self) -> str:
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix) and not self.database_url.startswith(prefix + "/"):
            return prefix + str(self.path(Path(self.database_url[len(prefix):])))
        return self.database_url


def _format_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source} is invalid:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against config.yml in the repository)"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Read ``config.yml`` (or ``$HAMROH_CONFIG``), apply environment overrides, validate."""
    path = Path(path or os.environ.get("HAMROH_CONFIG", "config.yml"))
    if not path.exists():
        raise SettingsError(f"{path}: configuration file not found (set HAMROH_CONFIG or run from the repository)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: malformed YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: the top level must be a mapping of keys")
    data.setdefault("root", str(path.resolve().parent))
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_format_error(str(path), exc)) from exc
