"""Making untrusted text storable: lone surrogates and NUL characters replaced, never dropped.

Why here: both databases refuse such text at the last moment (PostgreSQL rejects NUL in ``text``;
a lone surrogate cannot be encoded to UTF-8 by either driver), so a message holding one failed
deep inside a transaction: a 500 or 503, a traceback quoting the text, and a Telegram update
retried five times and then lost. Every edge (web chat, Telegram, the console, the API) passes
what people typed through :func:`clean_text` first; replacing with U+FFFD keeps the message.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REPLACEMENT", "clean_json", "clean_text"]

REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """``value`` with each NUL and each unpaired surrogate replaced by U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # a pair split in two code points joins again; a lone half becomes U+FFFD
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def clean_json(value: Any) -> Any:
    """Every string (keys included) of decoded JSON, cleaned; numbers and the rest unchanged."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value
