"""Telegram updates → channel-neutral ``IncomingMessage``.

Only what the engine needs crosses this line: the pseudonymous key (never the Telegram id), the
text, which kind of attachment (never its content; its file id only for a counsellor to open it on
a ticket), the pressed button's payload, a command name and the client's language. Everything the
bot cannot sensibly answer — group chats, other bots, service messages, edits, updates without a
sender — is dropped here, so the engine never has to guess what an odd update means.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Chat, Message, Update

from bot.engine import AttachmentKind, IncomingMessage
from handoff import MediaRef
from storage import clean_text

from ._geo import country_at

__all__ = ["COMMANDS", "MAX_TEXT_CHARS", "Incoming", "incoming_from_update"]

CHANNEL = "telegram"
#: commands the engine understands; any other "/word" is passed on as ordinary text
COMMANDS = frozenset({"start", "menu", "language", "profile", "human", "delete", "help"})
#: Telegram sends at most 4096; anything longer is not from Telegram and is cut (the engine says "too long")
MAX_TEXT_CHARS = 8192
_MAX_CALLBACK_BYTES = 64
#: Telegram's command syntax: up to 32 letters, digits and underscores, optionally addressed to a bot
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]+)?(?:\s|$)")

#: (attribute of Message, attachment kind), checked in order: an animation also carries a document
_ATTACHMENTS: tuple[tuple[str, AttachmentKind], ...] = (
    ("voice", "voice"), ("audio", "voice"), ("video_note", "video"), ("animation", "video"),
    ("video", "video"), ("photo", "photo"), ("sticker", "sticker"), ("document", "file"),
    ("venue", "location"), ("location", "location"), ("contact", "other"), ("poll", "other"),
    ("dice", "other"), ("game", "other"), ("story", "other"), ("invoice", "other"),
    ("paid_media", "other"), ("checklist", "other"),
)


@dataclass(frozen=True)
class Incoming:
    """A message for the engine and the chat to answer in (``address``, a raw id kept out of logs)."""

    message: IncomingMessage
    address: str


def _attachment(message: Message) -> AttachmentKind | None:
    for attribute, kind in _ATTACHMENTS:
        if getattr(message, attribute, None):
            return kind
    return None


def _command(text: str) -> tuple[str | None, str]:
    """``("start", "")`` for ``/start@HamrohBot payload``; ``(None, text)`` when it is not ours."""
    match = _COMMAND.match(text)
    if match and match.group(1).lower() in COMMANDS:
        return match.group(1).lower(), ""
    return None, text


def _valid_callback(data: object) -> bool:
    return isinstance(data, str) and 0 < len(data.encode("utf-8", "surrogatepass")) <= _MAX_CALLBACK_BYTES \
        and data.isprintable()


def incoming_from_update(update: Update, user_key: Callable[[int], str]) -> Incoming | None:
    """The engine's view of ``update``, or ``None`` when there is nothing to answer.

    ``message_id`` is the update id for messages and the callback query's id for button presses:
    both are what a redelivery repeats, which is what the engine's idempotency keys on.
    """
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        user = query.from_user
        if chat is None or chat.type != Chat.PRIVATE or user is None or user.is_bot:
            return None
        if not _valid_callback(query.data):
            return None
        message = IncomingMessage(channel=CHANNEL, user_key=user_key(user.id), message_id=f"cb:{query.id}",
                                  callback=query.data, client_lang=user.language_code or None)
        return Incoming(message, str(chat.id))

    msg = update.message
    if msg is None:  # edits, channel posts, member updates...: not a conversation turn
        return None
    sender = msg.from_user
    if sender is None or sender.is_bot or msg.chat.type != Chat.PRIVATE:
        return None
    text = msg.text
    command: str | None = None
    attachment: AttachmentKind | None = None
    note: str | None = None
    ref: MediaRef | None = None
    country: str | None = None
    if text is not None:
        command, text = _command(text)
    else:
        attachment = _attachment(msg)
        if attachment is None:  # a service message (pinned, auto-delete timer...): nothing said
            return None
        # a caption is read as text ("is this contract legal?" under a photo is a question)
        text = msg.caption
        note = _note(msg, attachment)
        ref = _media_ref(msg)
        where = msg.location or (msg.venue.location if msg.venue else None)
        if where is not None:
            country = country_at(where.latitude, where.longitude)
    if text is not None:
        # polling reaches here without the webhook's cleaning: make the text storable (replace, never drop)
        text = clean_text(text[:MAX_TEXT_CHARS]) or None
    message = IncomingMessage(channel=CHANNEL, user_key=user_key(sender.id), message_id=str(update.update_id),
                              text=None if command else text, attachment=attachment, command=command,
                              client_lang=sender.language_code or None, location_country=country,
                              attachment_note=note, attachment_ref=ref)
    return Incoming(message, str(msg.chat.id))


#: Telegram's file size limit for bots fetching a file (getFile); larger files cannot be opened
_BOT_DOWNLOAD_LIMIT = 20 * 1024 * 1024


def _media_ref(msg: Message) -> MediaRef | None:
    """The file a counsellor may open later: the voice note, the largest photo size, the document.

    Stickers, locations and the like carry nothing a counsellor needs to open. A file over the
    Bot API's download limit is not referenced: the console shows the line without a player.
    """
    photo = msg.photo[-1] if msg.photo else None  # sizes come smallest first
    for media, mime in ((msg.voice, None), (msg.audio, None), (msg.video_note, "video/mp4"), (msg.video, None),
                        (photo, "image/jpeg"), (msg.document, None)):
        if media is None:
            continue
        size = getattr(media, "file_size", None)
        if size is not None and size > _BOT_DOWNLOAD_LIMIT:
            return None
        return MediaRef(media.file_id, getattr(media, "mime_type", None) or mime, _seconds(media))
    return None


def _seconds(media: object) -> int | None:
    duration = getattr(media, "duration", None)
    if not duration:
        return None
    return int(duration if isinstance(duration, int) else duration.total_seconds())


def _note(msg: Message, kind: AttachmentKind) -> str:
    """What a counsellor reads of an attachment: its kind and length, never its content or file id."""
    seconds = next((s for s in map(_seconds, (msg.voice, msg.audio, msg.video, msg.video_note)) if s), None)
    return f"[{kind}, {seconds} s]" if seconds else f"[{kind}]"
