"""The walk on Telegram: each language a new Telegram user of the real ``hamroh serve``.

    python -m bench.walk --telegram [--language-code ru] [--json] [--file bench/data/walk.yaml]

What runs: the fake Bot API (``bench.fake_telegram``, the one the Telegram tests use) in this
process, and the real server (``python -m bot.cli serve``: model, index, engine, outbox, the
Telegram channel in polling mode pointed at the fake) in a subprocess, on a temporary SQLite
database migrated first (``bot.cli db upgrade``). Nothing of ``data/hamroh.db`` is opened.

Each conversation of the walk file is one new user in their own private chat, their phone set to
``language_code`` ("ru" by default: phones in the region often are, whatever the person writes). A
message is an update served to ``getUpdates``; a button press (consent, the country the bot asks
for) is a callback query under the bot's message, the same buttons the web walk's visitor presses
(``bench.walk_judge.Person``).

How a message's replies are read back. Telegram carries only text and buttons, not what a reply
*is* (an answer to which entry, a crisis reply, a menu), and the judge needs that. The engine
records each reply in its outbox under the update it answers, in the same transaction as the
message, and marks it sent once Telegram took it; so the replies to an update are complete when its
outbox rows are all marked sent, and each row says its kind and entry. A reply counts only if the
person saw it: a message the fake accepted in that chat must begin with the reply's text (the
others are counted as ``undelivered``). Before consent the engine stores nothing, by design: the
consent notice is then read from the chat itself (its buttons say what it is).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import select

from bench.fake_telegram import FakeBotApi, callback_update, message_update, telegram_html_problem
from bench.walk_judge import Person, walk_people
from bot.net import free_port
from bot.tables import ConversationMessage, OutboxItem

__all__ = ["FIRST_USER_ID", "TelegramServer", "TelegramUser", "running_server", "walk_telegram"]

_ROOT = Path(__file__).resolve().parents[1]
_CHANNEL = "telegram"
#: the walk's people get chat ids from here on, one each
FIRST_USER_ID = 810_000_001
#: before consent nothing is stored: a run of messages without buttons is complete after this quiet
_QUIET_SECONDS = 3.0


class TelegramServer:
    """The fake Bot API and ``hamroh serve`` polling it; :func:`running_server` starts and stops both."""

    def __init__(self, *, reply_timeout: float = 180.0, startup_timeout: float = 600.0) -> None:
        self.fake = FakeBotApi()
        self.workdir = Path(tempfile.mkdtemp(prefix="hamroh-walk-"))
        self.log_path = self.workdir / "server.log"
        self.reply_timeout = reply_timeout
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._db: sqlalchemy.Engine | None = None
        self._update_ids = itertools.count(1)

    def start(self) -> None:
        self.fake.start()
        database = self.workdir / "walk.db"
        env = dict(os.environ, HAMROH_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
                   TELEGRAM_BOT_TOKEN=self.fake.token, HAMROH_TELEGRAM__BASE_URL=self.fake.base_url,
                   HAMROH_USER_KEY_SECRET=secrets.token_hex(16), HAMROH_SESSION_SECRET=secrets.token_hex(16),
                   PYTHONUNBUFFERED="1")
        for name in ("TELEGRAM_WEBHOOK_SECRET", "HAMROH_TELEGRAM__WEBHOOK_URL"):  # polling, not a webhook
            env.pop(name, None)
        with self.log_path.open("ab") as log:
            subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], cwd=_ROOT, env=env, check=True,
                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
                cwd=_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._db = sqlalchemy.create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
        deadline = time.monotonic() + self._startup_timeout
        # PTB removes any webhook right before its first getUpdates: polling has begun
        while not self.fake.calls_to("deleteWebhook"):
            if self._process.poll() is not None:
                raise RuntimeError(f"hamroh serve exited with {self._process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"hamroh serve did not poll within {self._startup_timeout:.0f} s; "
                                   f"see {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._db is not None:
            self._db.dispose()
        self.fake.stop()

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def stored_replies(self, ref: str) -> list[tuple[dict[str, Any], bool]] | None:
        """``(reply, sent)`` for each reply the engine stored for update ``ref``, in order; ``None``
        while (or when) it has stored no message under that id."""
        if self._db is None:
            raise RuntimeError("the server is not running")
        with self._db.connect() as c:
            seen = c.execute(select(ConversationMessage.id).where(
                ConversationMessage.channel == _CHANNEL, ConversationMessage.channel_message_id == ref,
                ConversationMessage.direction == "in").limit(1)).first()
            if seen is None:
                return None
            rows = c.execute(select(OutboxItem.payload, OutboxItem.sent_at).where(
                OutboxItem.channel == _CHANNEL, OutboxItem.in_reply_to == ref).order_by(OutboxItem.seq)).all()
        return [(dict(row.payload), row.sent_at is not None) for row in rows]


@contextlib.contextmanager
def running_server(*, reply_timeout: float = 180.0, startup_timeout: float = 600.0,
                   progress: Callable[[str], None] | None = None) -> Iterator[TelegramServer]:
    """A started :class:`TelegramServer`, stopped afterwards; its directory (database, server log)
    is removed unless something failed."""
    server = TelegramServer(reply_timeout=reply_timeout, startup_timeout=startup_timeout)
    failed = True
    try:
        started = time.monotonic()
        server.start()
        if progress:
            progress(f"hamroh serve polls the fake Bot API ({time.monotonic() - started:.0f} s to start)")
        yield server
        failed = False
    finally:
        server.stop()
        if failed:
            if progress:
                progress(f"server log kept in {server.log_path}")
        else:
            shutil.rmtree(server.workdir, ignore_errors=True)


class TelegramUser(Person):
    """One new Telegram user in a private chat with the bot (the chat id is the user id)."""

    def __init__(self, server: TelegramServer, user_id: int, origin: str | None,
                 language_code: str | None = "ru") -> None:
        super().__init__(origin)
        self.server = server
        self.user_id = user_id
        self.language_code = language_code

    def send(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        update_id = self.server.next_update_id()
        if frame["type"] == "message":
            update = message_update(update_id, self.user_id, frame["text"], language_code=self.language_code)
            ref = str(update_id)  # the engine's message id for a message...
        else:
            query_id = f"walk{update_id}"
            update = callback_update(update_id, self.user_id, frame["payload"], query_id=query_id,
                                     language_code=self.language_code)
            ref = f"cb:{query_id}"  # ...and for a button press
        before = len(self._chat())
        self.server.fake.push(update)
        return self._replies(ref, before)

    def _chat(self) -> list[dict[str, Any]]:
        """Every ``sendMessage`` to this chat, accepted or refused, in order."""
        return [c for c in self.server.fake.calls_to("sendMessage", ok=None)
                if c["params"].get("chat_id") == self.user_id]

    def _replies(self, ref: str, before: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.server.reply_timeout
        count, changed = before, time.monotonic()
        while time.monotonic() < deadline:
            stored = self.server.stored_replies(ref)
            calls = self._chat()[before:]
            if stored is not None and all(sent for _, sent in stored):
                return self._delivered([reply for reply, _ in stored], calls)
            if len(calls) != count:
                count, changed = len(calls), time.monotonic()
            # the engine stores a message before sending its first reply: a reply sent while nothing
            # is stored under the update means nothing will be (before consent)
            complete = bool(calls) and (bool(_keyboard(calls[-1]["params"]))
                                        or time.monotonic() - changed > _QUIET_SECONDS)
            if stored is None and complete and self.server.stored_replies(ref) is None:
                return _unrecorded([c["params"] for c in calls if c["ok"]])
            time.sleep(0.05)
        return []  # nothing within the timeout: judged as nothing

    def _delivered(self, replies: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shown = [" ".join(_visible(c["params"]).split()) for c in calls if c["ok"]]
        delivered = []
        for reply in replies:
            start = " ".join(str(reply.get("text") or "").split())[:24] or "…"
            if any(text.startswith(start) for text in shown):
                delivered.append(reply)
            else:
                self.undelivered += 1
        return delivered


def _keyboard(params: dict[str, Any]) -> list[list[dict[str, str]]]:
    return [[{"label": str(b.get("text", "")), "payload": str(b.get("callback_data", ""))} for b in row]
            for row in (params.get("reply_markup") or {}).get("inline_keyboard", [])]


def _visible(params: dict[str, Any]) -> str:
    text = str(params.get("text") or "")
    if str(params.get("parse_mode", "")).upper() == "HTML":
        return telegram_html_problem(text)[1]
    return text


def _unrecorded(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replies read from the chat alone: parts up to the one carrying buttons make one reply, and
    the buttons say what it is (the consent notice, a language choice)."""
    replies: list[dict[str, Any]] = []
    parts: list[str] = []
    for params in sent:
        parts.append(_visible(params))
        buttons = _keyboard(params)
        if not buttons and params is not sent[-1]:
            continue
        payloads = [b["payload"] for row in buttons for b in row]
        kind = ("consent" if any(p.startswith("consent:") for p in payloads)
                else "language" if any(p.startswith("lang:") for p in payloads) else "unrecorded")
        replies.append({"kind": kind, "text": "\n\n".join(parts), "buttons": buttons})
        parts = []
    return replies


def walk_telegram(path: Path, *, language_code: str | None = "ru", reply_timeout: float = 180.0,
                  startup_timeout: float = 600.0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The walk of ``path`` on Telegram, judged as the web walk is (``bench.walk_judge``)."""
    user_ids = itertools.count(FIRST_USER_ID)
    with running_server(reply_timeout=reply_timeout, startup_timeout=startup_timeout, progress=progress) as server:

        def person(lang: str, origin: str | None) -> Person:
            if progress:
                progress(f"{lang}: a new Telegram user (from {origin or '-'}, phone in {language_code or '-'})")
            return TelegramUser(server, next(user_ids), origin, language_code)

        result = walk_people(path, person)
        rejected = len(server.fake.rejected())
    result["channel"] = "telegram"
    result["language_code"] = language_code
    result["overall"]["undelivered"] = sum(row.get("undelivered", 0) for row in result["messages"])
    result["overall"]["rejected_by_telegram"] = rejected
    return result
