"""Turning a channel-neutral ``Reply`` into Telegram messages (HTML parse mode).

Why HTML and not MarkdownV2: escaping for HTML is three characters (``& < >``) and
``html.escape`` gets it right; MarkdownV2 has eighteen reserved characters and one missed escape
makes Telegram reject the whole message with "can't parse entities". Curated answers are long, so
they are cut into several messages; each cut happens between escaped pieces (paragraph, then line,
then word), so an entity such as ``&amp;`` is never split, and the buttons go on the last part,
under the text they refer to.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.engine import Reply

__all__ = ["TELEGRAM_TEXT_LIMIT", "TelegramMessage", "render_reply", "split_html", "telegram_length"]

log = logging.getLogger("bot.channels.telegram")

#: Telegram's limit for one message's text, in UTF-16 code units after entity parsing
TELEGRAM_TEXT_LIMIT = 4096
#: Telegram's limit for ``callback_data``
CALLBACK_DATA_LIMIT = 64
#: what a message that has only buttons shows (Telegram rejects an empty text)
_ONLY_BUTTONS_TEXT = "…"
_SEPARATORS = ("\n\n", "\n", " ")

FooterTranslator = Callable[[str, str], str]


@dataclass(frozen=True)
class TelegramMessage:
    """One ``sendMessage``: HTML text and, on the last part of a reply, its inline keyboard."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units): an emoji counts two, not one.

    Measuring the escaped HTML rather than the visible text over-counts entities (``&amp;`` is 5,
    shown as 1); that errs on the safe side and keeps the check independent of the parser.
    """
    return len(text.encode("utf-16-le")) // 2


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _hard_split(text: str, limit: int) -> list[str]:
    """Last resort for a "word" longer than a message: cut between characters, never in an entity."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        piece = _escape(char)
        n = 2 if ord(char) > 0xFFFF else len(piece)  # telegram_length of one escaped character
        if current and size + n > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += n
    if current:
        chunks.append("".join(current))
    return chunks


def _split_level(text: str, level: int, limit: int) -> list[str]:
    escaped = _escape(text)
    if telegram_length(escaped) <= limit:
        return [escaped]
    if level == len(_SEPARATORS):
        return _hard_split(text, limit)
    sep = _SEPARATORS[level]
    sep_len = telegram_length(sep)
    chunks: list[str] = []
    current: str | None = None
    for piece in text.split(sep):
        for i, sub in enumerate(_split_level(piece, level + 1, limit)):
            if current is None:
                current = sub
            elif i == 0 and telegram_length(current) + sep_len + telegram_length(sub) <= limit:
                current = current + sep + sub
            else:
                chunks.append(current)
                current = sub
    if current is not None:
        chunks.append(current)
    return chunks


def split_html(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Escape plain ``text`` into parts of at most ``limit``, cut at the coarsest boundary that fits.

    Paragraphs stay whole when they can, then lines, then words; whitespace at the cuts is dropped
    (Telegram would trim it anyway) and empty parts are not returned.
    """
    if limit < 8:
        raise ValueError("limit must leave room for at least one escaped character")
    parts = (chunk.strip() for chunk in _split_level(text, 0, limit))
    return [part for part in parts if part]


def _link(title: str, url: str) -> str:
    if title and url.startswith(("https://", "http://")):
        return f'<a href="{html.escape(url, quote=True)}">{_escape(title)}</a>'
    return _escape(title or url)


def _footer_html(reply: Reply, translate: FooterTranslator | None) -> str | None:
    """Every source once, as a link titled in the reader's language, then the review date as the
    reader writes dates. The engine keeps them out of the text so no channel shows them twice."""
    if reply.sources:
        lines = [_link(title, url) for title, url in reply.sources]
        label = _escape(translate(reply.lang, "sources_label")) if translate is not None else ""
        head = [label] if label else []
        tail = [_escape(reply.reviewed_label)] if reply.reviewed_label else []
        return "\n".join([*head, *lines, *tail])
    if reply.source_title is None and reply.reviewed_on is None:
        return None
    if reply.source_title and reply.source_title in reply.text:
        return None
    if translate is None:
        return None
    title = reply.source_title or ""
    url = reply.source_url or ""
    source = _link(title, url)
    date = reply.reviewed_label or (reply.reviewed_on.isoformat() if reply.reviewed_on else "")
    template = translate(reply.lang, "answer_footer")
    try:
        return _escape(template).format(source=source, date=_escape(date))
    except (KeyError, IndexError, ValueError):  # a translation with broken placeholders
        return _escape(f"{title} {url} {date}".strip())


def _keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    for row in reply.buttons:
        buttons: list[InlineKeyboardButton] = []
        for button in row:
            size = len(button.payload.encode("utf-8"))
            if not button.label or not 1 <= size <= CALLBACK_DATA_LIMIT:
                # Telegram would reject the whole message; better a missing button than no answer
                log.warning("dropping a button whose payload is %d bytes (kind=%s)", size, reply.kind)
                continue
            buttons.append(InlineKeyboardButton(text=button.label, callback_data=button.payload))
        if buttons:
            rows.append(buttons)
    return InlineKeyboardMarkup(rows) if rows else None


def render_reply(reply: Reply, *, limit: int = TELEGRAM_TEXT_LIMIT,
                 translate: FooterTranslator | None = None) -> list[TelegramMessage]:
    """The messages that show ``reply`` on Telegram, in order; buttons on the last one.

    ``translate(lang, key)`` gives the footer template (``bot.i18n``); without it no footer is added.
    """
    parts = split_html(reply.text, limit)
    footer = _footer_html(reply, translate)
    if footer:
        if telegram_length(footer) > limit:  # only a broken source title could do this
            log.warning("dropping a footer longer than one message (kind=%s)", reply.kind)
        elif parts and telegram_length(parts[-1]) + 2 + telegram_length(footer) <= limit:
            parts[-1] = f"{parts[-1]}\n\n{footer}"
        else:
            parts.append(footer)
    keyboard = _keyboard(reply)
    if not parts:
        if keyboard is None:
            return []
        parts = [_ONLY_BUTTONS_TEXT]
    messages = [TelegramMessage(part) for part in parts[:-1]]
    messages.append(TelegramMessage(parts[-1], keyboard))
    return messages
