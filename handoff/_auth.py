"""Sign-in, sessions and login throttling for the console.

Sessions live in the database (a hash of the cookie token), so logout and disabling an account
end them on the server, and several app processes behind a load balancer agree.

Throttling cannot lock others out. Failed attempts are counted per (username, client address);
a browser that has signed in successfully before carries a signed *device cookie* and is counted
in its own bucket. Someone guessing a colleague's password, even from the same office address,
slows only their own attempts, never the colleague's sign-in from their usual browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff._accounts import find_account, hash_password, needs_rehash, verify_password
from handoff._audit import audit
from handoff._enums import AuditAction
from handoff._errors import HandoffError, LoginThrottled
from handoff._policy import Actor
from handoff._settings import ConsoleSettings
from handoff.tables import ConsoleSession, Counsellor, LoginThrottle
from storage import utcnow

__all__ = [
    "LoginFailed",
    "SignedIn",
    "authenticate",
    "create_session",
    "device_cookie_value",
    "device_id_from_cookie",
    "end_session",
    "load_session",
    "login_csrf_token",
    "token_hash",
    "verify_login_csrf",
]

_BASE_BLOCK = timedelta(seconds=30)
_MAX_BLOCK = timedelta(minutes=15)
_LAST_SEEN_EVERY = timedelta(seconds=60)


class LoginFailed(HandoffError):
    """Wrong username or password, or a disabled account (one message for all, on purpose)."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    actor: Actor
    session: ConsoleSession


def _key(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- login CSRF and device cookies --------------------------------------------------------------


def login_csrf_token(secret: str, nonce: str) -> str:
    """The login form's token: bound to a nonce cookie by HMAC (double submit, unforgeable)."""
    return _key(secret, "login-csrf", nonce)


def verify_login_csrf(secret: str, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(login_csrf_token(secret, nonce), token)


def device_cookie_value(secret: str, username: str) -> str:
    device = secrets.token_urlsafe(16)
    return f"{device}.{_key(secret, 'device', username, device)}"


def device_id_from_cookie(secret: str, username: str, cookie: str | None) -> str | None:
    """The device id if the cookie was issued to this username by this server, else None."""
    if not cookie or "." not in cookie:
        return None
    device, signature = cookie.rsplit(".", 1)
    if hmac.compare_digest(_key(secret, "device", username, device), signature):
        return device
    return None


# --- authentication -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the username does not exist, so timing does not reveal accounts."""
    return hash_password(secrets.token_urlsafe(16))


async def authenticate(
    *,
    session: AsyncSession,
    settings: ConsoleSettings,
    username: str,
    password: str,
    client_address: str,
    device_cookie: str | None = None,
    now: datetime | None = None,
) -> Counsellor:
    """Check a sign-in. Raises :class:`LoginThrottled` or :class:`LoginFailed`.

    A failure is recorded in ``session`` before raising: the caller must still commit, or the
    throttle never counts (catch the exception inside the transaction).
    """
    now = now or utcnow()
    secret = settings.session_secret.get_secret_value()
    name = username.strip().lower()[:64]
    device = device_id_from_cookie(secret, name, device_cookie)
    bucket = _key(secret, "device", device) if device else _key(secret, "login", name, client_address)
    throttle = await session.get(LoginThrottle, bucket)
    if throttle is not None and throttle.blocked_until is not None and throttle.blocked_until > now:
        raise LoginThrottled(int((throttle.blocked_until - now).total_seconds()) + 1)

    counsellor = await find_account(session=session, username=name)
    stored = counsellor.password_hash if counsellor is not None else _dummy_hash()
    # argon2 is deliberately slow; keep the event loop free while it runs.
    ok = await anyio.to_thread.run_sync(verify_password, stored, password)
    if ok and counsellor is not None and counsellor.disabled_at is None:
        if throttle is not None:
            await session.delete(throttle)
        if needs_rehash(counsellor.password_hash):
            counsellor.password_hash = hash_password(password)
        return counsellor

    window = timedelta(minutes=settings.login_window_minutes)
    if throttle is None:
        throttle = LoginThrottle(key=bucket, failures=0, window_started_at=now)
        session.add(throttle)
    elif throttle.window_started_at + window < now:
        throttle.failures = 0
        throttle.window_started_at = now
        throttle.blocked_until = None
    throttle.failures += 1
    excess = throttle.failures - settings.login_max_failures
    if excess >= 0:
        throttle.blocked_until = now + min(_BASE_BLOCK * (2**excess), _MAX_BLOCK)
    await audit(
        session,
        None,
        AuditAction.LOGIN_FAILED,
        mrc_id=counsellor.mrc_id if counsellor else None,
        detail=f"username {name[:40]}",
        username=name or "unknown",
    )
    await session.flush()
    raise LoginFailed("wrong username or password, or the account is disabled")


# --- sessions -----------------------------------------------------------------------------------


async def create_session(
    *, session: AsyncSession, settings: ConsoleSettings, counsellor: Counsellor, now: datetime | None = None
) -> str:
    """Start a console session; returns the cookie token (only its hash is stored)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            counsellor_id=counsellor.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_max_hours),
        )
    )
    # Sessions that ran out are dropped here rather than by a background job.
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    await audit(session, Actor.of(counsellor), AuditAction.LOGIN, mrc_id=counsellor.mrc_id)
    await session.flush()
    return token


async def load_session(
    *, session: AsyncSession, settings: ConsoleSettings, token: str | None, now: datetime | None = None
) -> SignedIn | None:
    """The signed-in account for a cookie token, or None (expired, idle, logged out, disabled)."""
    if not token:
        return None
    now = now or utcnow()
    row: ConsoleSession | None = await session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == token_hash(token))
    )
    if row is None:
        return None
    idle_limit = row.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if row.expires_at <= now or idle_limit <= now or row.counsellor.disabled_at is not None:
        await session.delete(row)
        await session.flush()
        return None
    if now - row.last_seen_at >= _LAST_SEEN_EVERY:
        row.last_seen_at = now
    return SignedIn(actor=Actor.of(row.counsellor), session=row)


async def end_session(*, session: AsyncSession, token: str | None, actor: Actor | None = None) -> None:
    """Log out: the session row is deleted, so the cookie is worthless even if copied."""
    if not token:
        return
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash(token)))
    if actor is not None:
        await audit(session, actor, AuditAction.LOGOUT, mrc_id=actor.mrc_id)
