"""Console settings. ``bot`` fills them from config.yml and the environment at start-up.

Validation happens here so a typo in office hours or a time zone fails at start-up with the key
and the reason, not at the first ticket.
"""

from __future__ import annotations

import re
from datetime import date, time
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from storage import parse_rule

__all__ = ["ConsoleSettings", "MrcSettings", "WeeklyHours"]

WeeklyHours = dict[int, list[tuple[time, time]]]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _parse_days(key: str) -> list[int]:
    key = key.strip().lower()
    if "-" in key:
        first, last = (part.strip()[:3] for part in key.split("-", 1))
        if first not in _DAYS or last not in _DAYS:
            raise ValueError(f"office_hours key {key!r}: use day names like 'mon', 'mon-fri', 'sun-thu'")
        start, end = _DAYS.index(first), _DAYS.index(last)
        return [(start + i) % 7 for i in range((end - start) % 7 + 1)]
    if key[:3] not in _DAYS:
        raise ValueError(f"office_hours key {key!r}: use day names like 'mon', 'mon-fri', 'sun-thu'")
    return [_DAYS.index(key[:3])]


def _parse_spans(key: str, value: str) -> list[tuple[time, time]]:
    spans: list[tuple[time, time]] = []
    for part in value.split(","):
        if part.strip().lower() in ("", "closed"):
            continue
        match = _SPAN.match(part)
        if not match:
            raise ValueError(f"office_hours[{key!r}] = {value!r}: write spans like '09:00-13:00, 14:00-18:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 <= 23 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
            raise ValueError(f"office_hours[{key!r}]: {part.strip()!r} is not a time of day")
        start = time(h1, m1)
        end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"office_hours[{key!r}]: {part.strip()!r} ends before it starts")
        spans.append((start, end))
    return sorted(spans)


class MrcSettings(BaseModel):
    """One Migrant Resource Centre: a tenant with its own queue, hours and languages."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=120)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    timezone: str = "UTC"
    languages: tuple[str, ...] = ()
    # e.g. {"mon-fri": "09:00-13:00, 14:00-18:00", "sat": "09:00-13:00"}; empty means always open.
    office_hours: dict[str, str] = Field(default_factory=dict)
    holidays: tuple[date, ...] = ()
    # Due time of a normal ticket, counted in office hours; crisis tickets count wall-clock minutes.
    reply_within_office_hours: float = Field(default=4.0, gt=0, le=24 * 14)
    crisis_reply_within_minutes: int = Field(default=15, gt=0, le=24 * 60)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like 'Asia/Dushanbe'") from exc
        return value

    @field_validator("office_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        _weekly(value)  # raises with the key and the reason
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def weekly_hours(self) -> WeeklyHours:
        return _weekly(self.office_hours)


def _weekly(office_hours: dict[str, str]) -> WeeklyHours:
    weekly: WeeklyHours = {}
    for key, value in office_hours.items():
        spans = _parse_spans(key, value)
        for day in _parse_days(key):
            weekly[day] = sorted([*weekly.get(day, []), *spans])
    return weekly


class ConsoleSettings(BaseModel):
    """Everything the console and the queue need; secrets come from the environment via bot."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    mrcs: tuple[MrcSettings, ...] = Field(min_length=1)
    session_secret: SecretStr
    #: force Secure cookies and HSTS; without it they are on for every HTTPS request (directly or
    #: through a proxy uvicorn trusts for X-Forwarded-Proto), off over plain HTTP (a laptop install)
    cookie_secure: bool = True
    idle_claim_minutes: int = Field(default=30, ge=1, le=24 * 60)
    telegram_group_chat_id: str | None = None
    # Absolute URL of the console for links in Telegram alerts, e.g. https://mrc.example/console
    public_url: str | None = None
    session_idle_minutes: int = Field(default=120, ge=5, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 7)
    poll_seconds: int = Field(default=15, ge=3, le=600)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    #: sign-in attempts per client address, whatever the username ("N per period", see ``limits``)
    login_per_address: str = "30 per 15 minutes"
    #: failed sign-ins per account from browsers that never signed in to it, whatever the address
    login_per_account: str = "20 per 15 minutes"
    min_password_length: int = Field(default=12, ge=8, le=128)
    #: a voice note, photo or file is fetched for a counsellor only this many days after it was sent
    #: (config.yml ``retention.conversations_days``): the privacy notice promises no longer
    media_days: int = Field(default=180, ge=1, le=3650)
    content_gap_days: int = Field(default=90, ge=1, le=3650)
    content_gap_threshold: float = Field(default=0.82, gt=0, lt=1)
    content_gap_max_questions: int = Field(default=1000, ge=10, le=20000)

    @field_validator("login_per_address", "login_per_account")
    @classmethod
    def _rate_rule(cls, value: str) -> str:
        parse_rule(value)
        return value

    @field_validator("session_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("the console session secret must be at least 32 characters (HAMROH_SESSION_SECRET)")
        return value

    @model_validator(mode="after")
    def _unique_mrcs(self) -> ConsoleSettings:
        ids = [mrc.id for mrc in self.mrcs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"MRC ids must be unique; repeated: {', '.join(duplicates)}")
        return self

    def mrc(self, mrc_id: str) -> MrcSettings | None:
        return next((m for m in self.mrcs if m.id == mrc_id), None)

    @property
    def mrc_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.mrcs)
