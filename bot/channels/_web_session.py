"""Anonymous web-chat sessions: a random id the server signs, and the pseudonymous key derived from it.

Why signed: a client could otherwise pick its own session id ("1", or someone else's guess) and
rate limits per session would mean nothing. The signature only proves that this server issued the
id; it carries no data, so nothing about the person lives in the token. Why a keyed hash for the
user key: the database and the counsellor console must never hold the raw session id
(DESIGN.md, principle 4), and whoever holds the token must not be able to find the conversation
without the server's secret either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "COOKIE_NAME",
    "TOKEN_HEADER",
    "SessionSigner",
    "cookie_header",
    "origin_allowed",
    "resolve_user_key_function",
    "same_origin",
    "scoped_message_id",
]

COOKIE_NAME = "hamroh_web"
TOKEN_HEADER = "x-hamroh-session"
_SIG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SessionSigner:
    """Issues and verifies ``<random id>.<signature>`` tokens."""

    secret: bytes

    @classmethod
    def from_secret(cls, secret: str) -> SessionSigner:
        # domain separation: the same configured secret also keys user keys, never the same HMAC input
        return cls(hmac.new(secret.encode(), b"hamroh:web-session-signing", hashlib.sha256).digest())

    def _sign(self, sid: str) -> str:
        return _b64(hmac.new(self.secret, sid.encode("ascii"), hashlib.sha256).digest()[:_SIG_BYTES])

    def issue(self) -> tuple[str, str]:
        """A new ``(session id, token)``; 256 random bits, so ids cannot be guessed."""
        sid = _b64(secrets.token_bytes(32))
        return sid, f"{sid}.{self._sign(sid)}"

    def verify(self, token: str | None) -> str | None:
        """The session id inside ``token`` if this server issued it, else ``None``."""
        if not token or len(token) > 128:
            return None
        sid, dot, sig = token.partition(".")
        if not dot or not sid.isascii() or not sig:
            return None
        return sid if hmac.compare_digest(self._sign(sid), sig) else None


def resolve_user_key_function(secret: str) -> Callable[[str], str]:
    """``bot.privacy.user_key`` bound to the web channel, so keys match the rest of the application."""
    if not secret:
        raise ValueError("the user-key secret is empty: set HAMROH_USER_KEY_SECRET")
    try:
        from bot.privacy import user_key
    except ImportError:  # pragma: no cover - bot.privacy ships with the application

        def user_key(channel: str, raw_id: str | int, secret: str) -> str:
            digest = hmac.new(secret.encode(), f"{channel}:{raw_id}".encode(), hashlib.sha256)
            return digest.hexdigest()[:32]

    def key(session_id: str) -> str:
        return str(user_key("web", session_id, secret))

    return key


def scoped_message_id(user_key: str, client_id: str) -> str:
    """The engine's idempotency key for a client-generated message id.

    The engine deduplicates on ``(channel, message id)`` across all users, so a client id alone
    would let one browser collide with (and silence) another's message. Scoping by the user key
    keeps resends idempotent for the sender only; hashing keeps the stored id opaque.
    """
    return "w:" + hashlib.sha256(f"{user_key}\x00{client_id}".encode()).hexdigest()[:40]


def cookie_header(token: str, *, secure: bool, max_age: int, path: str = "/") -> str:
    """``Set-Cookie`` value: HttpOnly so page scripts (and XSS) cannot read it; Lax against CSRF."""
    parts = [f"{COOKIE_NAME}={token}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def same_origin(origin: str | None, host: str | None) -> bool:
    """No ``Origin`` header (non-browser client, same-origin GET) or one naming this host."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """Same origin, or an MRC website the operator allowed (``*``: any website may embed the chat)."""
    if same_origin(origin, host):
        return True
    return "*" in allowed or (origin or "").rstrip("/").lower() in allowed
