"""``hamroh chat eval``: whole conversations, step by step, against the real engine.

Why whole conversations: single questions scored well while people holding real conversations
(a crisis as the first message, "help", a follow-up, a voice note, a counsellor in between) got
silence or confident wrong answers. The format is ``../shared/eval/README.md`` ("conversations"):
each conversation runs on a throw-away SQLite database with the real model, index and
understanding, a fixed clock when ``at`` is given, and the persona's answers to the bot's own
questions (citizenship, where the person is) pressed automatically between steps.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine import Button, ConversationEngine, IncomingMessage, Outgoing, Reply

__all__ = ["ChatEvalError", "ConversationResult", "StepFailure", "evaluate_conversations", "format_report",
           "load_conversations", "reply_kinds"]

_PHONE = re.compile(r"(?<![\d.])(?:\+?\d[\d\s-]{1,14}\d|\d{2,})(?![\d.])")
#: the evaluation's kinds, from the engine's reply kinds
_KIND = {
    "ticket_opened": "handoff", "counsellor_has_it": "handoff", "welcome": "smalltalk", "feedback": "smalltalk",
    "declined": "status", "profile": "status", "location": "status", "attachment": "offer_human",
    "delete_confirm": "status", "delete_cancelled": "status",
}


class ChatEvalError(ValueError):
    """The conversation file is malformed; the message names the conversation, step and fix."""


@dataclass(frozen=True)
class StepFailure:
    name: str
    step: int
    expected: dict[str, Any]
    got: list[dict[str, Any]]
    problems: list[str]


@dataclass
class ConversationResult:
    name: str
    tags: list[str]
    passed: bool
    failures: list[StepFailure] = field(default_factory=list)


def reply_kinds(reply: Reply) -> set[str]:
    """The evaluation kinds one reply counts as."""
    kinds = {_KIND.get(reply.kind, reply.kind)}
    if reply.kind == "ticket_opened":
        kinds.add("handoff")
    if reply.kind == "no_answer":
        kinds.add("no_answer")
    if reply.kind == "offer_human" and reply.extra.get("no_answer") == "true":
        kinds.add("no_answer")
    if reply.kind == "language" and any(b.payload.startswith("lang:") for row in reply.buttons for b in row):
        kinds.add("language")
    return kinds


def load_conversations(path: Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ChatEvalError(f"{path}: cannot read it as YAML ({exc})") from exc
    if not isinstance(data, list):
        raise ChatEvalError(f"{path}: expected a list of conversations")
    for i, conv in enumerate(data):
        if not isinstance(conv, dict) or not isinstance(conv.get("steps"), list):
            raise ChatEvalError(f"{path}: conversation {i + 1}: needs 'name' and a list of 'steps'")
    return data


def _describe(reply: Reply) -> dict[str, Any]:
    return {"kind": reply.kind, "lang": reply.lang, "topic": reply.topic, "entry": reply.entry_id,
            "text": reply.text[:160], "buttons": [b.payload for row in reply.buttons for b in row][:8]}


def _script(text: str) -> str:
    cyr = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff")
    lat = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "Cyrl" if cyr > lat else "Latn"


class _Conversation:
    """One person and one counsellor talking to a fresh engine."""

    def __init__(self, engine: ConversationEngine, user_key: str, client_lang: str | None,
                 on_counsellor: Callable[[str, dict[str, Any]], Any]) -> None:
        self.engine = engine
        self.user_key = user_key
        self.client_lang = client_lang
        self.replies: list[Reply] = []
        self.seq = 0
        self._counsellor = on_counsellor

    async def send(self, **kwargs: Any) -> list[Reply]:
        self.seq += 1
        message = IncomingMessage(channel="web", user_key=self.user_key, message_id=f"m{self.seq}",
                                  client_lang=self.client_lang, **kwargs)
        out: list[Outgoing] = await self.engine.handle(message)
        await self.engine.mark_sent([o.id for o in out if o.id is not None])
        replies = [o.reply for o in out]
        self.replies.extend(replies)
        return replies

    async def delivered(self) -> list[Reply]:
        """Replies queued for the person by someone else (a counsellor, a status change)."""
        out = await self.engine.pending("web", user_keys=[self.user_key])
        await self.engine.mark_sent([o.id for o in out if o.id is not None])
        replies = [o.reply for o in out]
        self.replies.extend(replies)
        return replies

    def button(self, role: str) -> Button | None:
        """The newest button with this role: consent, decline, lang:XX, country:XX, option:N, more,
        human, back_to_bot, menu."""
        for reply in reversed(self.replies):
            flat = [b for row in reply.buttons for b in row]
            if role.startswith("option:"):
                options = [b for b in flat if b.payload.startswith("entry:")]
                n = int(role.split(":")[1])
                if len(options) >= n:
                    return options[n - 1]
                continue
            for b in flat:
                p = b.payload
                if ((role == "consent" and p.startswith("consent:")) or (role == "decline" and p == "decline")
                        or (role.startswith("lang:") and p == role) or (role == "more" and p.startswith("more:"))
                        or (role == "human" and p.startswith("human:")) or (role == "back_to_bot" and p == "back")
                        or (role == "menu" and p.startswith("menu"))
                        or (role.startswith("country:") and p.startswith("country:") and p.endswith(role[8:]))):
                    return b
        return None


async def _persona_answers(conv: _Conversation, replies: list[Reply], persona: dict[str, Any]) -> list[Reply]:
    """Answer the bot's own questions as the persona would; those are not steps."""
    out: list[Reply] = []
    for _ in range(3):
        pressed = False
        for reply in replies:
            for row in reply.buttons:
                for b in row:
                    country = None
                    if b.payload.startswith("country:origin:"):
                        country = persona.get("citizenship")
                    elif b.payload.startswith("country:crisis:") or b.payload.startswith("country:loc:"):
                        country = persona.get("location")
                    if country and b.payload.endswith(f":{country}"):
                        replies = await conv.send(callback=b.payload)
                        out.extend(replies)
                        pressed = True
                        break
                if pressed:
                    break
            if pressed:
                break
        if not pressed:
            break
    return out


def _check_kinds(expect: dict[str, Any], replies: list[Reply]) -> list[str]:
    problems: list[str] = []
    every: set[str] = set().union(*(reply_kinds(r) for r in replies)) if replies else set()
    want = expect.get("kind")
    if want is not None:
        wanted = set(want) if isinstance(want, list) else {want}
        if not wanted & every:
            problems.append(f"kind: wanted one of {sorted(wanted)}, got {sorted(every) or 'no reply'}")
    problems += [f"not_kind: got a {bad} reply" for bad in expect.get("not_kind") or [] if bad in every]
    return problems


def _answers(reply: Reply, key: str, value: str) -> bool:
    if reply.kind == "answer":
        return (reply.topic if key == "topic" else reply.entry_id) == value
    if reply.kind == "clarify":
        if key == "topic":
            return value in reply.extra.get("topics", "").split()
        return value in [b.payload[6:] for row in reply.buttons for b in row if b.payload.startswith("entry:")]
    return False


def _check_content(expect: dict[str, Any], replies: list[Reply]) -> list[str]:
    problems: list[str] = []
    main = [r for r in replies if r.kind not in ("counsellor_has_it",)] or replies
    for key in ("topic", "entry"):
        if key in expect and not any(_answers(r, key, expect[key]) for r in replies):
            problems.append(f"{key}: wanted {expect[key]}")
    if "lang" in expect and not any(r.lang == expect["lang"] for r in main):
        problems.append(f"lang: wanted {expect['lang']}, got {sorted({r.lang for r in main})}")
    if "script" in expect:
        scripts = {_script(r.text) for r in main if r.lang == "uz" or expect.get("lang") in (None, r.lang)}
        if expect["script"] not in scripts:
            problems.append(f"script: wanted {expect['script']}, got {sorted(scripts)}")
    return problems


def _check_safety(expect: dict[str, Any], replies: list[Reply], ticket: Any) -> list[str]:
    from handoff import Priority

    problems: list[str] = []
    if "crisis" in expect and not any(r.kind == "crisis" and r.extra.get("crisis") == expect["crisis"]
                                      for r in replies):
        problems.append(f"crisis: wanted kind {expect['crisis']}")
    if expect.get("has_phone") and not any(r.kind == "crisis" and _PHONE.search(r.text) for r in replies):
        problems.append("has_phone: no number to dial in the crisis reply")
    if "after_hours" in expect:
        said = any(r.extra.get("after_hours") == "true" for r in replies)
        if said != bool(expect["after_hours"]):
            problems.append(f"after_hours: wanted {expect['after_hours']}, got {said}")
    if "ticket" in expect:
        state = "open" if ticket is not None and ticket.is_active else "closed"
        if state != expect["ticket"]:
            problems.append(f"ticket: wanted {expect['ticket']}, got {state}")
    if "ticket_priority" in expect:
        prio = "none" if ticket is None else "crisis" if ticket.priority == int(Priority.CRISIS) else "normal"
        if prio != expect["ticket_priority"]:
            problems.append(f"ticket_priority: wanted {expect['ticket_priority']}, got {prio}")
    return problems


def _check(expect: dict[str, Any], replies: list[Reply], ticket: Any) -> list[str]:
    """Every expectation of one step against the replies to it (README.md of the eval sets)."""
    return [*_check_kinds(expect, replies), *_check_content(expect, replies), *_check_safety(expect, replies, ticket)]


class _Counsellor:
    """The counsellor of the person's open ticket, acting as the console does."""

    def __init__(self, engine: ConversationEngine, sessions: Any, actor: Any, user_key: str,
                 clock: Callable[[], dt.datetime]) -> None:
        self.engine, self.sessions, self.actor, self.user_key, self.clock = engine, sessions, actor, user_key, clock

    async def _claimed(self, session: Any) -> Any:
        from handoff import active_ticket_for_user, claim

        ticket = await active_ticket_for_user(session=session, user_key=self.user_key)
        if ticket is not None and ticket.claimed_by_id is None:
            await claim(session=session, ticket_id=ticket.id, actor=self.actor, now=self.clock())
        return ticket

    async def reply(self, text: str) -> None:
        from handoff import record_reply, send_outside_transaction

        async with self.sessions() as session:
            ticket = await self._claimed(session)
            if ticket is None:
                return
            message, _ = await record_reply(session=session, ticket_id=ticket.id, actor=self.actor, text=text,
                                            now=self.clock())
            await session.commit()
        # as the console does: record, commit, then send outside the transaction
        await send_outside_transaction(self.sessions, message_id=message.id, outbound=self.engine)

    async def act(self, action: str) -> None:
        from handoff import resolve, tell_user, transfer

        async with self.sessions() as session:
            ticket = await self._claimed(session)
            if ticket is None:
                return
            if action == "transfer":
                others = [m for m in self.engine.console.mrcs if m.id != ticket.mrc_id]
                if not others:
                    return
                done = await transfer(session=session, settings=self.engine.console, ticket_id=ticket.id,
                                      actor=self.actor, to_mrc_id=others[0].id, note="evaluation transfer",
                                      now=self.clock())
                await session.commit()
                await tell_user(self.engine, ticket=done, kind="transferred", text=others[0].name)
                return
            done = await resolve(session=session, ticket_id=ticket.id, actor=self.actor, now=self.clock())
            await session.commit()
            await tell_user(self.engine, ticket=done, kind="returned" if action == "return_to_bot" else "resolved")


async def _step(conv: _Conversation, step: dict[str, Any], counsellor: _Counsellor) -> list[Reply]:
    """One step of the conversation file: what the person or the counsellor does."""
    if "say" in step:
        return await conv.send(text=str(step["say"]))
    if "press" in step:
        button = conv.button(str(step["press"]))
        if button is None:
            return await conv.send(command="human") if step["press"] == "human" else []
        return await conv.send(callback=button.payload)
    if "media" in step:
        media = str(step["media"])
        if media.startswith("location:"):
            return await conv.send(attachment="location", location_country=media.split(":", 1)[1])
        kind = {"document": "file"}.get(media, media)
        return await conv.send(attachment=kind, attachment_note=f"[{media}]")
    if "counsellor" in step:
        await counsellor.reply(str(step["counsellor"]))
    elif "counsellor_action" in step:
        await counsellor.act(str(step["counsellor_action"]))
    return await conv.delivered()


async def _run_one(conv_spec: dict[str, Any], index: int, make_engine: Callable[..., Any]) -> ConversationResult:
    from handoff import Actor as HandoffActor
    from handoff import Role, active_ticket_for_user, create_account

    name = str(conv_spec.get("name") or f"conversation {index + 1}")
    tags = [str(t) for t in conv_spec.get("tags") or []]
    at = conv_spec.get("at")
    start = dt.datetime.fromisoformat(str(at)) if at else dt.datetime.now(dt.UTC)
    ticks = [0]

    def clock() -> dt.datetime:
        ticks[0] += 1
        return (start + dt.timedelta(seconds=ticks[0])).astimezone(dt.UTC)

    engine, sessions, close = await make_engine(clock)
    persona = dict(conv_spec.get("persona") or {})
    user_key = f"eval-{index}"
    result = ConversationResult(name, tags, True)
    try:
        async with sessions() as session:
            info = await create_account(session=session, username="evalcounsellor", display_name="Dilnoza",
                                        password="a-long-evaluation-password", role=Role.SUPERVISOR)
            await session.commit()
        actor = HandoffActor(id=info.id, username=info.username, display_name="Dilnoza", role=Role.SUPERVISOR,
                             mrc_id=None)
        conv = _Conversation(engine, user_key, conv_spec.get("client_lang"), lambda *_: None)
        if conv_spec.get("setup") == "consented":
            lang = str(conv_spec.get("lang") or "en")
            await conv.send(callback=f"consent:{lang}")
            conv.replies.clear()
        for n, step in enumerate(conv_spec["steps"], start=1):
            replies = await _step(conv, step, _Counsellor(engine, sessions, actor, user_key, clock))
            replies = replies + await _persona_answers(conv, replies, persona)
            async with sessions() as session:
                ticket = await active_ticket_for_user(session=session, user_key=user_key)
            problems = _check(dict(step.get("expect") or {}), replies, ticket)
            if problems:
                result.passed = False
                result.failures.append(StepFailure(name, n, dict(step.get("expect") or {}),
                                                   [_describe(r) for r in replies], problems))
    finally:
        await close()
    return result


async def evaluate_conversations(conversations: Sequence[dict[str, Any]],
                                 make_engine: Callable[..., Any]) -> list[ConversationResult]:
    """Run every conversation on its own fresh engine and database."""
    return [await _run_one(c, i, make_engine) for i, c in enumerate(conversations)]


def summary(results: Sequence[ConversationResult]) -> dict[str, Any]:
    def rate(items: Sequence[ConversationResult]) -> dict[str, Any]:
        passed = sum(r.passed for r in items)
        return {"n": len(items), "passed": passed, "pass_rate": round(passed / len(items), 4) if items else 0.0}

    tags = sorted({t for r in results for t in r.tags})
    return {
        "overall": rate(results),
        "per_tag": {t: rate([r for r in results if t in r.tags]) for t in tags},
        "failures": [{"name": f.name, "step": f.step, "expected": f.expected, "got": f.got, "problems": f.problems}
                     for r in results for f in r.failures],
    }


def format_report(results: Sequence[ConversationResult], *, failures: bool) -> str:
    data = summary(results)
    o = data["overall"]
    lines = [f"conversations: {o['passed']}/{o['n']} passed ({o['pass_rate']:.0%})", "", "per tag:"]
    for tag, d in data["per_tag"].items():
        lines.append(f"  {tag:<14} {d['passed']:>3}/{d['n']:<3} {d['pass_rate']:.0%}")
    if failures and data["failures"]:
        lines += ["", "failures:"]
        for f in data["failures"]:
            lines.append(f"- {f['name']} (step {f['step']}): {'; '.join(f['problems'])}")
            for g in f["got"]:
                shown = json.dumps(g["text"][:90], ensure_ascii=False)
                lines.append(f"    got {g['kind']} [{g['lang']}] {g['entry'] or ''} {shown}")
    return "\n".join(lines)


class TemplateDatabase:
    """A migrated SQLite file copied for each conversation: migrations run once, not per conversation."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="hamroh-chat-eval-"))
        self._template = self._dir / "template.db"
        self._n = 0

    def prepare(self) -> None:
        from storage import upgrade

        upgrade(f"sqlite+aiosqlite:///{self._template}")

    def fresh(self) -> str:
        self._n += 1
        path = self._dir / f"conv{self._n}.db"
        shutil.copy(self._template, path)
        return f"sqlite+aiosqlite:///{path}"

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
