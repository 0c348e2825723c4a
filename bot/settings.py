"""One validated settings object for the whole application, from ``config.yml`` plus environment.

Why: an MRC's IT person edits ``config.yml`` by hand. A typo must stop start-up with the file, the
key and the reason, not surface later as a wrong answer. Environment variables (``HAMROH_...``,
nested with ``__``) override the file so containers can be configured without editing it; secrets
come only from the environment and are never written back or logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from knowledge_base import LANGUAGES, IndexConfig, ModelConfig, SearchConfig

__all__ = [
    "Contact", "MrcConfig", "NluConfig", "RasaConfig", "ServerConfig", "Settings", "SettingsError", "TelegramConfig",
    "load_settings",
]

_HOURS_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SettingsError(ValueError):
    """config.yml or the environment is invalid; the message names the key and the fix."""


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    phone: str | None = None
    url: str | None = None
    #: where the number comes from (an official page); contacts without a source are not shipped
    source: str


class MrcConfig(BaseModel):
    """One Migrant Resource Centre: a tenant with its own queue, hours and contacts."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: str = "UTC"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    office_hours: dict[str, str] = Field(default_factory=dict)

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in _DAYS:
                raise ValueError(f"'{day}' is not a day; use one of {', '.join(_DAYS)}")
            if not _HOURS_RE.match(span):
                raise ValueError(f"'{span}' for {day} must look like 09:00-17:00")
        return value


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


class Settings(BaseSettings):
    """Everything the application needs; built once at start-up and passed down."""

    model_config = SettingsConfigDict(env_prefix="HAMROH_", env_nested_delimiter="__", extra="forbid")

    root: Path = Path(".")
    languages: list[str] = Field(default_factory=lambda: list(LANGUAGES))
    default_language: str = "en"
    fallback_chains: dict[str, list[str]] = Field(default_factory=dict)
    content_dir: Path = Path("knowledge_base/content")
    database_url: str = "sqlite+aiosqlite:///data/hamroh.db"
    #: PostgreSQL connections kept open per server process (storage.create_engine says why 15)
    database_pool_size: int = Field(15, ge=1, le=200)
    model: ModelConfig = ModelConfig()
    index: IndexConfig = IndexConfig()
    search: SearchConfig = SearchConfig()
    server: ServerConfig = ServerConfig()
    telegram: TelegramConfig = TelegramConfig()
    nlu: NluConfig = NluConfig()
    #: conversations older than this are purged by the retention job (hamroh purge / daily in serve)
    retention_days: int = Field(180, ge=1, le=3650)
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
