"""Keeping the bot token, user texts and raw Telegram ids out of every log line.

Why a filter and not just levels: python-telegram-bot logs the token-bearing API URL and every
request's parameters (chat id, message text) at DEBUG, the httpx client logs each URL at INFO, and
PTB's error paths log whole updates (``"... for update %s"``) or exceptions whose text can quote the
request. An operator who turns on DEBUG to chase a problem must not turn a privacy promise into a
log file of migrants' messages. So, for these libraries only: below INFO is dropped, the token is
masked wherever it appears, Telegram objects and dicts among the arguments are replaced by
``<redacted>``, and tracebacks are reduced to the exception's type and where it was raised.
"""

from __future__ import annotations

import logging
import traceback

from telegram import TelegramObject

__all__ = ["describe_exception", "protect_library_logs"]

#: loggers of the HTTP client and of python-telegram-bot (PTB names them after its classes)
_LIBRARY_LOGGERS = (
    "httpx", "httpcore", "telegram", "telegram.Bot", "telegram.ext", "telegram.ext.Application",
    "telegram.ext.ExtBot", "telegram.ext.Updater", "telegram.ext.JobQueue", "telegram.ext.AIORateLimiter",
    "telegram.ext.ConversationHandler", "telegram.request.BaseRequest", "telegram.request.HTTPXRequest",
)


def describe_exception(exc: BaseException) -> str:
    """``"ValueError at module.py:12"``: enough to find the bug, nothing a user wrote."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if frames:
        last = frames[-1]
        where = "/".join(last.filename.replace("\\", "/").split("/")[-2:])
        return f"{type(exc).__name__} at {where}:{last.lineno}"
    return type(exc).__name__


class _PrivacyFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__("hamroh-privacy")
        self.secrets: set[str] = set()

    def _mask(self, value: str) -> str:
        for secret in self.secrets:
            if secret and secret in value:
                value = value.replace(secret, "<token>")
        return value

    def _arg(self, value: object) -> object:
        if isinstance(value, TelegramObject | dict | list | tuple | set | bytes):
            return "<redacted>"
        if isinstance(value, BaseException):
            return type(value).__name__
        if value is None or isinstance(value, bool | int | float):
            return value
        return self._mask(str(value))  # str, and objects such as httpx.URL that print the token

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        if isinstance(record.msg, str):
            record.msg = self._mask(record.msg)
        else:
            record.msg = self._mask(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(self._arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        if record.exc_info:
            exc = record.exc_info[1]
            if exc is not None:
                record.msg = f"{record.msg} [{describe_exception(exc)}]"
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True


_FILTER = _PrivacyFilter()


def protect_library_logs(token: str) -> None:
    """Install the filter on the libraries' loggers (idempotent) and mask ``token`` from now on.

    Called when an application is built, not at import: importing a module must not change the
    process's logging.
    """
    _FILTER.secrets.add(token)
    for name in logging.Logger.manager.loggerDict:
        if name == "telegram" or name.startswith("telegram.") or name.startswith(("httpx", "httpcore")):
            _install(logging.getLogger(name))
    for name in _LIBRARY_LOGGERS:
        _install(logging.getLogger(name))
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def _install(logger: logging.Logger) -> None:
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
