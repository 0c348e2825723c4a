"""A walk through the chat as new users take it: realistic messages in every language, judged.

Why a walk beside the evaluation sets: the sets check single steps; a person holds a conversation
(a question before agreeing, a follow-up, "help", thanks, a crisis) through a real server. One new
person per language says the messages of ``bench/data/walk.yaml``, and each message's replies are
judged against what the file expects (``bench.walk_judge``: one judge for both channels).

The web chat: a running ``hamroh serve`` over the web chat's HTTP transport (the widget's fallback,
the same frames as its WebSocket). The transport is the same in every release, so the same walk
measures before and after a change:

    python -m bench.walk --url http://127.0.0.1:8765 [--json] [--file bench/data/walk.yaml]

Telegram: ``--telegram`` starts a fake Bot API and the real ``hamroh serve`` polling it, on a
temporary SQLite database, and each person is a new Telegram user whose phone is set to
``--language-code`` (``bench.walk_telegram``):

    python -m bench.walk --telegram [--language-code ru] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.walk_judge import DEFAULT_FILE, Person, format_table, judge, walk_people
from bench.walk_telegram import walk_telegram

__all__ = ["judge", "main", "walk"]


class _Visitor(Person):
    """One person in the web chat: a cookie jar, frames out, replies in, acknowledgements sent."""

    def __init__(self, url: str, origin: str | None) -> None:
        super().__init__(origin)
        self.client = httpx.Client(base_url=url, timeout=60, headers={"Origin": url})

    def send(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        frame = {**frame, "id": uuid.uuid4().hex[:16]}
        body = self.client.post("/api/chat/send", json=frame).json()
        replies = [f for f in body.get("frames", []) if f.get("type") == "reply"]
        ids = [str(f["id"]) for f in replies if f.get("id") is not None]
        if ids:
            self.client.get("/api/chat/poll", params={"ack": ",".join(ids)})
        return replies


def walk(url: str, path: Path) -> dict[str, Any]:
    """The walk through the web chat of the server at ``url``."""
    return walk_people(path, lambda lang, origin: _Visitor(url, origin))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.walk", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the web chat of a running server")
    parser.add_argument("--telegram", action="store_true",
                        help="walk on Telegram instead: a fake Bot API and the real 'hamroh serve' polling it")
    parser.add_argument("--language-code", default="ru",
                        help="--telegram: the people's phone locale (from_user.language_code); 'none' sends none")
    parser.add_argument("--reply-timeout", type=float, default=180.0,
                        help="--telegram: seconds to wait for the replies to one message")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.telegram:
        code = None if args.language_code.lower() in ("", "none") else args.language_code
        result = walk_telegram(args.file, language_code=code, reply_timeout=args.reply_timeout,
                               progress=None if args.json else _progress)
    else:
        result = walk(args.url.rstrip("/"), args.file)
    print(json.dumps(result, ensure_ascii=False, indent=1) if args.json else format_table(result))
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
