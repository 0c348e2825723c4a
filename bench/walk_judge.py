"""The walk's one judge and one person, whatever the channel the person writes on.

Why a module of its own: the web chat (``bench.walk``) and Telegram (``bench.walk_telegram``) walk
the same ``bench/data/walk.yaml`` and must be judged alike, or the two tables could not be compared.
What differs is only how a message reaches the server and how its replies come back: a channel
gives a :class:`Person` its ``send``; consenting, answering the citizenship question with one's
country button and typing a question again when the bot dropped it are the same everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_FILE", "Person", "format_table", "judge", "topics", "walk_people"]

DEFAULT_FILE = Path(__file__).with_name("data") / "walk.yaml"
_CONTENT = Path(__file__).resolve().parents[1] / "knowledge_base" / "content"
_MENU = ("menu", "help")
_NO_ANSWER = ("no_answer", "offer_human", "handoff")


def topics() -> dict[str, str]:
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


class Person:
    """A new user of one channel. Subclasses give :meth:`send`: a frame (``{"type": "message",
    "text", "lang"}`` or ``{"type": "button", "payload"}``) out, the replies to it back, each a dict
    shaped like the web chat's reply frame (``kind``, ``entry_id``, ``extra``, ``buttons``)."""

    def __init__(self, origin: str | None) -> None:
        self.consented = False
        self.origin = origin
        #: replies the server made but the person never got (a channel that can tell counts them)
        self.undelivered = 0

    def send(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

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


def walk_people(path: Path, person: Callable[[str, str | None], Person]) -> dict[str, Any]:
    """Every conversation of the walk file, each by a new ``person(lang, origin)``, judged."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    known = topics()
    rows: list[dict[str, Any]] = []
    for lang, conversation in data["conversations"].items():
        someone = person(lang, conversation.get("from"))
        for step in conversation["steps"]:
            started = time.perf_counter()
            someone.undelivered = 0
            replies, retyped = someone.say(step["say"], lang)
            verdict, got = judge(replies, step["expect"], known)
            rows.append({"lang": lang, "say": step["say"], "expect": step["expect"], "verdict": verdict,
                         "got": got, "retyped": retyped, "ms": round((time.perf_counter() - started) * 1000)})
            if someone.undelivered:
                rows[-1]["undelivered"] = someone.undelivered
    per_lang: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = per_lang.setdefault(row["lang"], {"n": 0, "right": 0, "partial": 0, "wrong": 0, "retyped": 0})
        counts["n"] += 1
        counts[row["verdict"]] += 1
        counts["retyped"] += int(row["retyped"])
    total = {k: sum(c[k] for c in per_lang.values()) for k in ("n", "right", "partial", "wrong", "retyped")}
    return {"overall": total, "per_language": per_lang, "messages": rows}


def format_table(result: dict[str, Any]) -> str:
    """Each message's verdict, then right/partial/wrong/retyped per language and in all."""
    lines = []
    for row in result["messages"]:
        flag = {"right": "ok ", "partial": "~  ", "wrong": "XX "}[row["verdict"]]
        note = " (retyped)" if row["retyped"] else ""
        if row.get("undelivered"):
            note += f" ({row['undelivered']} not delivered)"
        lines.append(f"{flag}{row['lang']:4} {row['say'][:60]:60} -> {row['got']}{note}")
    lines += ["", f"{'lang':5} {'n':>3} {'right':>5} {'part':>5} {'wrong':>5} {'retyped':>7}"]
    for lang, c in result["per_language"].items():
        lines.append(f"{lang:5} {c['n']:3} {c['right']:5} {c['partial']:5} {c['wrong']:5} {c['retyped']:7}")
    o = result["overall"]
    lines += [f"{'all':5} {o['n']:3} {o['right']:5} {o['partial']:5} {o['wrong']:5} {o['retyped']:7}", "",
              f"{o['right']}/{o['n']} right, {o['partial']} partial, {o['wrong']} wrong, {o['retyped']} retyped"]
    return "\n".join(lines)
