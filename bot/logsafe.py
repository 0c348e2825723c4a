"""Keeping client addresses and people's texts out of every log line, whoever logs it.

Why a record factory and not a handler filter: a filter sits on one handler or one logger, and
uvicorn configures its own loggers and handlers (``uvicorn.error`` prints every WebSocket's
client address at INFO, whatever ``access_log`` says), test harnesses add theirs, and an operator
adds more. Every record of every logger is made by the one factory, so redacting there covers
them all, at every level, before any handler sees the record:

* IPv4 and IPv6 addresses in the message and its arguments become ``<address>``;
* a traceback keeps its frames (file, line, function) but loses the exception's message, which
  is where texts leak (a driver error quoting the parameters, a codec error quoting the string);
* texts handed over as ``extra={"text": ...}`` never print, since no format names them;
* frame dumps of the WebSocket protocol (``< TEXT '...'``, logged by uvicorn at DEBUG) keep only
  their kind and size, and the ``websockets`` library's own loggers are held at INFO.

A message text written straight into a log call is a bug this cannot catch; the privacy test of
each channel looks for a marker text in the logs for that reason.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

__all__ = ["install_log_redaction", "redact"]

_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
# at least two groups with a "::" or seven colons; keeps times (12:30:45) and versions out of it
_IPV6 = r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
_ADDRESS = re.compile(f"{_IPV4}|{_IPV6}")
_MARK = "_hamroh_redacting"
#: the WebSocket protocol's frame dumps (uvicorn hands it its ``uvicorn.error`` logger)
_FRAME = re.compile(r"^([<>] (?:TEXT|BINARY|CONT)) .*?( \[\d+ bytes\])?$", re.DOTALL)


def _is_ipv6(candidate: str) -> bool:
    return "::" in candidate or candidate.count(":") == 7


def redact(text: str) -> str:
    """``text`` with every IP address replaced by ``<address>``."""
    return _ADDRESS.sub(lambda m: m.group(0) if ":" in m.group(0) and not _is_ipv6(m.group(0)) else "<address>",
                        text)


def _traceback_without_messages(exc_info: Any) -> str:
    """The traceback's frames and exception types, without any exception's message."""
    _, exc, _ = exc_info
    if exc is None:
        return ""
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[BaseException] = []
    while exc is not None and id(exc) not in seen:  # causes first, as Python prints them
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for item in reversed(chain):
        lines.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(item.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        lines.append(f"{type(item).__module__}.{type(item).__qualname__}: <message withheld>")
    return redact("\n".join(lines))


def _clean(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what can be shown
        message = str(record.msg)
    record.msg = _FRAME.sub(r"\1 <withheld>\2", redact(message))
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = _traceback_without_messages(record.exc_info)
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_log_redaction() -> None:
    """Wrap the process's log-record factory (idempotent). Call when an application is built,
    not at import: importing a module must not change the process's logging."""
    current = logging.getLogRecordFactory()
    if getattr(current, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _clean(record)
        return record

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)
    # the WebSocket library prints every frame (a person's message) at DEBUG: never below INFO
    frames = logging.getLogger("websockets")
    if frames.getEffectiveLevel() < logging.INFO:
        frames.setLevel(logging.INFO)
