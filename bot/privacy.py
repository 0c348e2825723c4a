"""Pseudonymous user keys and the application's own secrets.

Why a keyed hash: the database, logs and counsellor console must not hold raw Telegram ids or web
session ids. A keyed HMAC gives each person a stable key without a way back to the id for anyone
who lacks the key (an unkeyed hash of a phone-number-sized id space is trivially reversible).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

__all__ = ["local_secret", "user_key"]


def user_key(channel: str, raw_id: str | int, secret: str) -> str:
    """A stable pseudonymous key for one person on one channel (32 hex characters)."""
    if not secret:
        raise ValueError("the user-key secret is empty: set HAMROH_USER_KEY_SECRET")
    digest = hmac.new(secret.encode(), f"{channel}:{raw_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def local_secret(path: Path, env_value: str | None) -> str:
    """The environment's secret, else one generated once and kept in ``path`` (mode 0600).

    A laptop install must work with one command; production sets the environment variable, so
    several replicas share one value.
    """
    if env_value:
        return env_value
    if not path.exists():
        # written whole under a temporary name, then linked into place: several server workers
        # starting at once all end up reading the one complete secret, never a half-written file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_text().strip()
