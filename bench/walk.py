"""A walk through the web chat as new users take it: realistic messages in every language, judged.

Why a walk beside the evaluation sets: the sets check single steps; a person holds a conversation
(a question before agreeing, a follow-up, "help", thanks, a crisis) through a real server. This
drives a running ``hamroh serve`` over the web chat's HTTP transport (the widget's fallback, the
same frames as its WebSocket), one new visitor per language, and judges each message's replies
against what ``bench/data/walk.yaml`` expects. The transport is the same in every release, so the
same walk measures before and after a change:

    python -m bench.walk --url http://127.0.0.1:8765 [--json] [--file bench/data/walk.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = ["judge", "main", "walk"]

_DEFAULT_FILE = Path(__file__).with_name("data") / "walk.yaml"
_CONTENT = Path(__file__).resolve().parents[1] / "knowledge_base" / "content"
_MENU = ("menu", "help")
_NO_ANSWER = ("no_answer", "offer_human", "handoff")


def _topics() -> dict[str, str]:
    """Entry id -> topic, from the shipped content (ids are stable across releases)."""
    found: dict[str, str] = {}
    for path in sorted(_CONTENT.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in data if isinstance(data, list) else [data]:
            if isinstance(entry, dict) and "id" in entry:
                found[str(entry["id"])] = str(entry.get("topic") or entry["id"])
    return found


def judge(replies: Sequence[dict[str, Any]], expect: Sequence[str], topics: dict[str, str]) -> tuple[str, str]:
    """("right" | "partial" | "wrong", what came back) for one message's replies."""
    got: list[str] = []
    offered: set[str] = set()
    for r in replies:
        kind = r.get("kind", "")
        if kind == "answer":
            entry_id = str(r.get("entry_id") or "")
            got.append(f"answer:{topics.get(entry_id, entry_id)}")
        elif kind in _MENU:
            got.append("menu")
        elif kind in _NO_ANSWER and (r.get("extra") or {}).get("ticket") != "open":
            got.append("no_answer")
        elif kind == "ticket_opened" or ((r.get("extra") or {}).get("ticket") == "open" and kind != "crisis"):
            got.append("human")
        elif kind in ("crisis", "smalltalk"):
            got.append(kind)
        elif kind == "clarify":
            got.append("clarify")
            for row in r.get("buttons") or []:
                for b in row:
                    if str(b.get("payload", "")).startswith("entry:"):
                        offered.add(f"answer:{topics.get(b['payload'][6:], b['payload'][6:])}")
        elif kind not in ("consent", "welcome", "language", "counsellor_has_it", "status", "ask"):
            got.append(kind)
    shown = " + ".join(got) or "(nothing)"
    if any(g in expect for g in got):
        return "right", shown
    if offered & set(expect):
        return "partial", shown + " [" + ", ".join(sorted(offered & set(expect))) + " offered]"
    return "wrong", shown


class _Visitor:
    """One person in the web chat: a cookie jar, frames out, replies in, acknowledgements sent."""

    def __init__(self, url: str, origin: str | None) -> None:
        self.client = httpx.Client(base_url=url, timeout=60, headers={"Origin": url})
        self.consented = False
        self.origin = origin

    def send(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        frame = {**frame, "id": uuid.uuid4().hex[:16]}
        body = self.client.post("/api/chat/send", json=frame).json()
        replies = [f for f in body.get("frames", []) if f.get("type") == "reply"]
        ids = [str(f["id"]) for f in replies if f.get("id") is not None]
        if ids:
            self.client.get("/api/chat/poll", params={"ack": ",".join(ids)})
        return replies

    def say(self, text: str, lang: str) -> tuple[list[dict[str, Any]], bool]:
        """The replies to ``text``; True when the person had to type it again after agreeing. When
        the bot asks for their citizenship, the person presses their country's button."""
        replies, retyped = self._say(text, lang)
        asked = [b["payload"] for r in replies if r.get("kind") == "ask" for row in r.get("buttons") or []
                 for b in row if str(b.get("payload", "")).startswith("country:origin:")]
        if asked and self.origin:
            mine = next((p for p in asked if p.endswith(f":{self.origin}")), asked[-1])
            replies = replies + self.send({"type": "button", "payload": mine})
        return replies, retyped

    def _say(self, text: str, lang: str) -> tuple[list[dict[str, Any]], bool]:
        replies = self.send({"type": "message", "text": text, "lang": lang})
        if self.consented or not any(r.get("kind") == "consent" for r in replies):
            return replies, False
        buttons = [b["payload"] for r in replies for row in r.get("buttons") or [] for b in row]
        agree = next((p for p in buttons if p.startswith("consent:")), None) or f"lang:{lang}"
        after = self.send({"type": "button", "payload": agree})
        self.consented = True
        answered = [r for r in after if r.get("kind") not in ("welcome", "language")]
        if answered:
            return replies + after, False
        return self.send({"type": "message", "text": text, "lang": lang}), True


def walk(url: str, path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    topics = _topics()
    rows: list[dict[str, Any]] = []
    for lang, person in data["conversations"].items():
        visitor = _Visitor(url, person.get("from"))
        for step in person["steps"]:
            started = time.perf_counter()
            replies, retyped = visitor.say(step["say"], lang)
            verdict, got = judge(replies, step["expect"], topics)
            rows.append({"lang": lang, "say": step["say"], "expect": step["expect"], "verdict": verdict,
                         "got": got, "retyped": retyped, "ms": round((time.perf_counter() - started) * 1000)})
    per_lang: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = per_lang.setdefault(row["lang"], {"n": 0, "right": 0, "partial": 0, "wrong": 0, "retyped": 0})
        counts["n"] += 1
        counts[row["verdict"]] += 1
        counts["retyped"] += int(row["retyped"])
    total = {k: sum(c[k] for c in per_lang.values()) for k in ("n", "right", "partial", "wrong", "retyped")}
    return {"overall": total, "per_language": per_lang, "messages": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.walk", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--file", type=Path, default=_DEFAULT_FILE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = walk(args.url.rstrip("/"), args.file)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    for row in result["messages"]:
        flag = {"right": "ok ", "partial": "~  ", "wrong": "XX "}[row["verdict"]]
        print(f"{flag}{row['lang']:4} {row['say'][:60]:60} -> {row['got']}{' (retyped)' if row['retyped'] else ''}")
    o = result["overall"]
    print(f"\n{o['right']}/{o['n']} right, {o['partial']} partial, {o['wrong']} wrong, {o['retyped']} retyped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
