"""HTTP plumbing of the console: security headers, cookies, templates, static files.

Kept apart from the routes so the security-relevant parts can be read in one place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_timedelta
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEVICE_COOKIE",
    "LOGIN_NONCE_COOKIE",
    "SESSION_COOKIE",
    "STATIC_DIR",
    "SecurityHeaders",
    "build_templates",
    "safe_next",
    "static_app",
    "static_versions",
]

SESSION_COOKIE = "hamroh_console"
LOGIN_NONCE_COOKIE = "hamroh_login"
DEVICE_COOKIE = "hamroh_device"

_PACKAGE = Path(__file__).parent

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Adds the console's security headers to every response, pages and errors alike.

    HSTS goes out when ``hsts`` forces it or the request itself is HTTPS (uvicorn sets the scheme
    from ``X-Forwarded-Proto`` when the proxy is in ``FORWARDED_ALLOW_IPS``): a browser must not be
    told to insist on HTTPS by a plain-HTTP laptop install, and must be told by a production one.

    Pages are never cached (they show personal data); static assets set their own long cache
    header, which is kept, because re-downloading CSS on a 2G link costs counsellors time.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on
                # our own form posts, which the origin check must be able to tell from a forgery.
                headers["Referrer-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Cross-Origin-Resource-Policy"] = "same-origin"
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                if self.hsts or scope.get("scheme") == "https":
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _VersionedStaticFiles(StaticFiles):
    """Starlette's static files; a URL with the content's version (``?v=``, from ``static_url()``) never
    changes, so the browser may keep it a year (a new version is a new URL); without, five minutes."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            versioned = b"v=" in scope.get("query_string", b"")
            response.headers["Cache-Control"] = ("public, max-age=31536000, immutable" if versioned
                                                 else "public, max-age=300")
        return response


STATIC_DIR = _PACKAGE / "static"


def static_app() -> ASGIApp:
    """The console's CSS and JS, compressed. Only these: compressing pages that hold the CSRF token
    next to reflected input would let an attacker read the token from the sizes (BREACH)."""
    return GZipMiddleware(_VersionedStaticFiles(directory=STATIC_DIR), minimum_size=500)


def static_versions() -> dict[str, str]:
    """Each static file's content hash, for URLs that change when the file does (``console.css?v=…``)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in sorted(STATIC_DIR.iterdir()) if path.is_file()}


def _span(delta: timedelta) -> str:
    """A span as a counsellor reads it at a glance ("45 min", "2 hr", "3 days"): CLDR's words, one unit."""
    if abs(delta) < timedelta(minutes=1):
        return "<1 min"
    return str(format_timedelta(delta, granularity="minute", threshold=1, format="short", locale="en"))


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    return "" if value is None else _span((now or datetime.now(UTC)) - value)


def _duration(value: timedelta | None) -> str:
    return "—" if value is None else _span(value)


def _local(value: datetime | None, zone: str = "UTC", fmt: str = "%d %b %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def build_templates(globals_: Mapping[str, Any]) -> jinja2.Environment:
    """A Jinja2 environment with autoescaping forced on for every template.

    Strings go through gettext (``_``) so catalogs can translate the console later; until then
    the null translation shows the English source.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_PACKAGE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(globals_)
    env.filters["ago"] = _ago
    env.filters["duration"] = _duration
    env.filters["local"] = _local
    return env


def safe_next(base: str, target: str | None) -> str:
    """Where to go after sign-in: only a path inside the console, never another site."""
    home = f"{base}/"
    if not target or not target.startswith(home) or target.startswith("//") or "\\" in target:
        return home
    return target
