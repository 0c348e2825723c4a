"""Crash safety of the Telegram path: SIGKILL the real server again and again while people write.

    hamroh bench kill [--kills 20] [--users 20] [--database sqlite|postgres] [--seed N]

What runs: the real server (``hamroh serve``: ``bot.app.create_app(channels=True)``, the real
model, index, engine and outbox) in a subprocess on a free loopback port, in Telegram **webhook**
mode, talking to the local fake of the Bot API (``bench/fake_telegram.py``, which
records every ``sendMessage``). The database is a throw-away one: a SQLite file in a temporary
directory (default), or a uniquely named database created next to PostgreSQL's ``test`` database
on 127.0.0.1:5432 (``$HAMROH_TEST_POSTGRES_URL``), dropped afterwards. ``data/hamroh.db`` is
never opened.

This process plays Telegram: ``--users`` people, each in their own private chat, send ``/start``,
press a language button, then ask questions from the shipped content in that language, one after
the other, as long as the run lasts. Like Telegram, an update is POSTed to the webhook again and
again until the webhook answers 200; an update whose POST failed because the server died is
redelivered after the restart. A killer sends SIGKILL to the server at random moments (``--kills``
times), restarting it each time and waiting for ``/health``. After the last restart the people
stop, the outbox is given time to drain, and the server is stopped.

The figures come from the fake Bot API's recorded ``sendMessage`` calls and from the database:

* **lost**: updates the webhook acknowledged (200) whose user message is not stored — must be 0
  (the first ``/start`` is answered with the consent notice and, by design, stores nothing);
* **unanswered**: acknowledged updates for which no reply reached Telegram (a reply still in the
  outbox, or marked sent but never sent), plus updates never acknowledged at all — must be 0;
* **duplicate replies**: ``sendMessage`` calls beyond one per reply part. The outbox makes
  delivery at-least-once: a kill between Telegram accepting a message and the outbox row being
  marked sent makes the next process send it again, so a handful per run is expected — at most
  one per kill is the target.

Figures only, never a timing assert; exit status 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import fake_telegram
from bot.net import free_port
from bot.settings import Settings

__all__ = ["KillReport", "format_report", "kill_bench", "run"]

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
#: the languages people pick, in turn (those with content and configured are used)
USER_LANGUAGES = ("ru", "en", "uz", "tg", "ky", "bn", "ur", "ar", "kk", "ps")
#: Telegram user ids of the simulated people (private chat id = user id)
FIRST_USER_ID = 771_000_001


@dataclass
class KillReport:
    """What one run measured; ``passed`` applies the targets of issue 6."""

    users: int
    database: str
    kills: int = 0
    restarts: int = 0
    startup_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    updates: int = 0  # distinct updates the people sent
    posts: int = 0  # webhook POSTs, redeliveries included
    post_outcomes: Counter[str] = field(default_factory=Counter)
    acknowledged: int = 0  # updates answered 200
    never_acknowledged: int = 0
    pre_consent: int = 0  # acknowledged /start before consent: answered, by design not stored
    must_be_stored: int = 0
    stored: int = 0
    lost: int = 0
    replies_expected: int = 0  # reply parts the outbox holds, plus one consent notice per person
    replies_sent: int = 0  # accepted sendMessage calls
    unanswered: int = 0
    still_in_outbox: int = 0
    marked_not_sent: int = 0
    duplicates: int = 0
    quiet: int = 0  # stored, no reply by design: a counsellor has the conversation
    log_path: str = ""

    @property
    def passed(self) -> bool:
        return (self.lost == 0 and self.unanswered == 0 and self.never_acknowledged == 0
                and self.duplicates <= self.kills)


# --------------------------------------------------------------------------- helpers
def _question_pools(settings: Settings) -> dict[str, list[str]]:
    """Example questions of the shipped (non-sensitive) content, by language."""
    from bot.services import load_content

    pools: dict[str, list[str]] = {}
    for entry in load_content(settings).published:
        if entry.safety != "normal":
            continue
        for lang, tr in entry.translations.items():
            pools.setdefault(lang, []).extend(tr.questions)
    return pools


@contextlib.contextmanager
def _database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database for this run only; removed afterwards."""
    from storage import upgrade

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'hamroh-kill.db'}"
        upgrade(url)
        yield url
        return
    if kind != "postgres":
        raise ValueError(f"--database must be sqlite or postgres, not {kind!r}")
    from storage.scratch import temporary_postgres_database  # the suites' throw-away database

    with temporary_postgres_database(prefix="hamroh_kill") as url:
        yield url


# --------------------------------------------------------------------------- the server
class _Server:
    """``hamroh serve`` in a subprocess that can be killed and started again on the same port."""

    def __init__(self, config: Path, cwd: Path, env: Mapping[str, str], port: int, log_path: Path,
                 setwebhook_calls: Callable[[], int], startup_timeout: float) -> None:
        self._cmd = [sys.executable, "-m", "bot.cli", "--config", str(config), "serve",
                     "--host", "127.0.0.1", "--port", str(port)]
        self._cwd = cwd
        self._env = dict(env)
        self._log_path = log_path
        self._setwebhook_calls = setwebhook_calls
        self._timeout = startup_timeout
        self.base = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()

    async def start(self) -> float:
        """Start and wait until ``/health`` says ok and the webhook is registered; seconds taken."""
        self.ready.clear()
        before = self._setwebhook_calls()
        started = time.monotonic()
        with self._log_path.open("ab") as log:
            log.write(f"\n===== start at {dt.datetime.now().isoformat(timespec='seconds')}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self._cmd, cwd=self._cwd, env=self._env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT)
        async with httpx.AsyncClient(base_url=self.base, timeout=2.0) as client:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"the server exited with {self.proc.returncode} while starting; "
                                       f"see {self._log_path}")
                if time.monotonic() - started > self._timeout:
                    raise RuntimeError(f"the server was not ready after {self._timeout:.0f}s; see {self._log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get("/health")
                    if response.status_code == 200 and response.json().get("status") == "ok":
                        break
                await asyncio.sleep(0.1)
        # the lifespan registers the webhook before the server accepts requests: no new call means
        # Telegram did not start (the server logs why), and every update would get 503 forever
        if self._setwebhook_calls() <= before:
            raise RuntimeError(f"the server is up but Telegram did not start in webhook mode; see {self._log_path}")
        self.ready.set()
        return time.monotonic() - started

    async def kill(self) -> None:
        self.ready.clear()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        """A graceful stop (SIGTERM), SIGKILL if it hangs."""
        self.ready.clear()
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await self.kill()


# --------------------------------------------------------------------------- Telegram, simulated
@dataclass
class _Sent:
    """One update as Telegram holds it, and what became of it."""

    update_id: int
    user_id: int
    kind: str  # "start" | "consent" | "question"
    stored_id: str  # the engine's channel message id for it
    acknowledged: bool = False
    posts: int = 0


class _Telegram:
    """The Telegram side: update ids, redelivery until 200, per-update bookkeeping."""

    def __init__(self, server: _Server, secret: str, rng: random.Random, deadline: float) -> None:
        self._server = server
        self._secret = secret
        self._rng = rng
        self._deadline = deadline
        self._next_update = 10_000
        self.updates: list[_Sent] = []
        self.outcomes: Counter[str] = Counter()
        self.stop = asyncio.Event()

    def new_update(self, user_id: int, kind: str, stored_id: Callable[[int], str]) -> _Sent:
        self._next_update += 1
        sent = _Sent(self._next_update, user_id, kind, stored_id(self._next_update))
        self.updates.append(sent)
        return sent

    async def deliver(self, client: httpx.AsyncClient, sent: _Sent, body: dict[str, Any]) -> None:
        """POST until the webhook answers 200, as Telegram does (it gives up only after a day)."""
        content = json.dumps(body).encode()
        headers = {"content-type": "application/json", "X-Telegram-Bot-Api-Secret-Token": self._secret}
        while time.monotonic() < self._deadline:
            if not self._server.ready.is_set():  # down: Telegram keeps the update and tries later
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._server.ready.wait(), timeout=1.0)
                continue
            sent.posts += 1
            try:
                response = await client.post(self._server.base + WEBHOOK_PATH, content=content, headers=headers)
            except httpx.TransportError as exc:
                self.outcomes[f"failed: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.2 + self._rng.random() * 0.3)
                continue
            self.outcomes[f"HTTP {response.status_code}"] += 1
            if response.status_code == 200:
                sent.acknowledged = True
                return
            await asyncio.sleep(0.2 + self._rng.random() * 0.3)

    async def person(self, index: int, lang: str, questions: list[str], fake: Any, min_questions: int) -> None:
        user_id = FIRST_USER_ID + index
        rng = random.Random(self._rng.random())
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=2.0)) as client:
            start = self.new_update(user_id, "start", str)
            await self.deliver(client, start, fake.message_update(start.update_id, user_id, "/start",
                                                                  language_code=lang))
            consent = self.new_update(user_id, "consent", lambda u: f"cb:q{u}")
            await self.deliver(client, consent, fake.callback_update(consent.update_id, user_id, f"lang:{lang}",
                                                                     query_id=f"q{consent.update_id}"))
            asked = 0
            while (not self.stop.is_set() or asked < min_questions) and time.monotonic() < self._deadline:
                await asyncio.sleep(rng.uniform(0.1, 1.0))
                question = self.new_update(user_id, "question", str)
                await self.deliver(client, question, fake.message_update(question.update_id, user_id,
                                                                         rng.choice(questions), language_code=lang))
                asked += 1


# --------------------------------------------------------------------------- counting
def _reply_parts(payload: Mapping[str, Any], render: Callable[[Any], list[str]]) -> list[str]:
    from bot.engine import Button, Reply

    data = dict(payload)
    rows = tuple(tuple(Button(b["label"], b["payload"]) for b in row) for row in data.pop("buttons", []))
    reviewed = data.pop("reviewed_on", None)
    reply = Reply(buttons=rows, reviewed_on=dt.date.fromisoformat(reviewed) if reviewed else None, **data)
    return render(reply)


def _renderer() -> Callable[[Any], list[str]]:
    """The texts the server sends for a reply: the channel's renderer with its footer translator."""
    from bot.channels.telegram import render_reply
    from bot.i18n import Translator

    translator = Translator()
    return lambda reply: [m.text for m in render_reply(reply, translate=lambda lang, key: translator(lang, key))]


async def _database_rows(url: str) -> tuple[list[Any], list[Any], set[str]]:
    from sqlalchemy import text

    from storage import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            incoming = (await c.execute(text(
                "SELECT user_key, channel_message_id FROM bot_messages WHERE channel = :c AND direction = 'in'"),
                {"c": CHANNEL})).all()
            outbox = (await c.execute(text(
                "SELECT user_key, in_reply_to, seq, payload, sent_at FROM bot_outbox WHERE channel = :c"),
                {"c": CHANNEL})).all()
            tickets = set((await c.execute(text("SELECT user_key FROM handoff_ticket"))).scalars())
    finally:
        await engine.dispose()
    return list(incoming), list(outbox), tickets


async def _pending(url: str) -> int:
    from sqlalchemy import text

    from storage import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            result = await c.execute(text(
                "SELECT count(*) FROM bot_outbox WHERE channel = :c AND sent_at IS NULL"), {"c": CHANNEL})
            return int(result.scalar_one())
    finally:
        await engine.dispose()


def _count(report: KillReport, telegram: _Telegram, sent_messages: list[dict[str, Any]],
           rows: tuple[list[Any], list[Any], set[str]], key_of: Callable[[int], str]) -> None:
    incoming, outbox, tickets = rows
    render = _renderer()
    stored = {(r.user_key, r.channel_message_id) for r in incoming}
    by_ref: dict[tuple[str, str], list[Any]] = {}
    for row in outbox:
        by_ref.setdefault((row.user_key, row.in_reply_to), []).append(row)

    report.updates = len(telegram.updates)
    report.posts = sum(u.posts for u in telegram.updates)
    report.post_outcomes = telegram.outcomes
    acked = [u for u in telegram.updates if u.acknowledged]
    report.acknowledged = len(acked)
    report.never_acknowledged = report.updates - report.acknowledged
    report.pre_consent = sum(1 for u in acked if u.kind == "start")
    must = [u for u in acked if u.kind != "start"]
    report.must_be_stored = len(must)
    report.stored = sum(1 for u in must if (key_of(u.user_id), u.stored_id) in stored)
    report.lost = report.must_be_stored - report.stored

    sent_by_chat: dict[int, Counter[str]] = {}
    for params in sent_messages:
        sent_by_chat.setdefault(int(params.get("chat_id", 0)), Counter())[str(params.get("text", ""))] += 1
    report.replies_sent = len(sent_messages)

    unanswered: set[int] = set()
    duplicates = 0
    for user_id in sorted({u.user_id for u in telegram.updates}):
        key = key_of(user_id)
        mine = [u for u in telegram.updates if u.user_id == user_id]
        expected: Counter[str] = Counter()
        parts_of: dict[int, list[str]] = {}
        for u in mine:
            rows_u = sorted(by_ref.get((key, u.stored_id), []), key=lambda r: r.seq)
            payloads = [json.loads(r.payload) if isinstance(r.payload, str) else r.payload for r in rows_u]
            parts_of[u.update_id] = [p for payload in payloads for p in _reply_parts(payload, render)]
            expected.update(parts_of[u.update_id])
            report.still_in_outbox += sum(1 for r in rows_u if r.sent_at is None)
            if u.acknowledged and u.kind != "start" and not rows_u and (key, u.stored_id) in stored:
                if key in tickets:
                    report.quiet += 1
                else:
                    unanswered.add(u.update_id)
        got = sent_by_chat.get(user_id, Counter())
        missing = expected - got
        extra = got - expected
        # a missing part is charged to the first update that should have produced it
        for u in mine:
            for part in parts_of[u.update_id]:
                if missing[part] > 0:
                    missing[part] -= 1
                    unanswered.add(u.update_id)
                    if all(r.sent_at is not None for r in by_ref.get((key, u.stored_id), [])):
                        report.marked_not_sent += 1
        # texts that match no stored reply are the consent notices, which are never stored
        unstored = sum(n for text, n in extra.items() if text not in expected)
        starts = [u for u in mine if u.kind == "start"]
        if starts and unstored == 0:
            unanswered.add(starts[0].update_id)
        duplicates += sum(n for text, n in extra.items() if text in expected) + max(0, unstored - len(starts))
        report.replies_expected += sum(expected.values()) + len(starts)
    report.unanswered = len(unanswered) + report.never_acknowledged
    report.duplicates = duplicates


# --------------------------------------------------------------------------- the run
@contextlib.asynccontextmanager
async def _running(server: _Server) -> AsyncIterator[_Server]:
    try:
        yield server
    finally:
        await server.stop()


def kill_bench(settings: Settings, *, kills: int = 20, users: int = 20, database: str = "sqlite",
               config: Path | str | None = None, seed: int | None = None, min_uptime: float = 0.5,
               max_uptime: float = 4.0, min_questions: int = 2, drain_seconds: float = 60.0,
               startup_timeout: float = 300.0, progress: Callable[[str], None] | None = print) -> KillReport:
    """Run the crash test and count; see the module docstring. Raises ``RuntimeError`` if the server
    cannot start (the message names its log)."""
    if kills < 0 or users < 1 or not 0 < min_uptime <= max_uptime:
        raise ValueError("--kills must be >= 0, --users >= 1, and 0 < min_uptime <= max_uptime")
    say = progress or (lambda _: None)
    rng = random.Random(seed)
    config_path = Path(config or os.environ.get("HAMROH_CONFIG") or settings.root / "config.yml").resolve()
    pools = _question_pools(settings)
    langs = [lang for lang in USER_LANGUAGES if lang in settings.languages and pools.get(lang)] or \
        [next(iter(pools))]
    fake_module = fake_telegram
    from bot.privacy import user_key

    workdir = Path(tempfile.mkdtemp(prefix="hamroh-kill-"))
    report = KillReport(users=users, database=database, log_path=str(workdir / "server.log"))
    fake = fake_module.FakeBotApi()
    fake.start()
    keep = False
    try:
        with _database(database, workdir) as url:
            key_secret = secrets.token_urlsafe(32)
            webhook_secret = secrets.token_urlsafe(24)
            port = free_port()
            env = {**os.environ, "HAMROH_DATABASE_URL": url, "TELEGRAM_BOT_TOKEN": fake.token,
                   "TELEGRAM_WEBHOOK_SECRET": webhook_secret, "HAMROH_USER_KEY_SECRET": key_secret,
                   "HAMROH_SESSION_SECRET": secrets.token_urlsafe(32),
                   "HAMROH_TELEGRAM__BASE_URL": fake.base_url,
                   "HAMROH_TELEGRAM__WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                   "PYTHONUNBUFFERED": "1"}
            server = _Server(config_path, settings.root.resolve(), env, port, workdir / "server.log",
                             lambda: len(fake.calls_to("setWebhook")), startup_timeout)

            async def main() -> _Telegram:
                started = time.monotonic()
                # a generous bound so a broken server cannot hang the run: start-ups plus writing
                deadline = started + (kills + 1) * (startup_timeout + max_uptime) + 600
                telegram = _Telegram(server, webhook_secret, rng, deadline)
                async with _running(server):
                    first = await server.start()
                    say(f"server ready in {first:.1f}s (port {port}, {database}); {users} people start writing")
                    people = [asyncio.create_task(telegram.person(
                        i, langs[i % len(langs)], pools[langs[i % len(langs)]], fake_module, min_questions))
                        for i in range(users)]
                    for k in range(kills):
                        await asyncio.sleep(rng.uniform(min_uptime, max_uptime))
                        await server.kill()
                        report.kills += 1
                        seconds = await server.start()
                        report.restarts += 1
                        report.startup_seconds.append(seconds)
                        say(f"kill {k + 1}/{kills}: restarted in {seconds:.1f}s, "
                            f"{sum(u.acknowledged for u in telegram.updates)} updates acknowledged so far")
                    await asyncio.sleep(rng.uniform(min_uptime, max_uptime))
                    telegram.stop.set()
                    await asyncio.gather(*people)
                    say("people stopped; letting the outbox drain")
                    drain_until = time.monotonic() + drain_seconds
                    while await _pending(url) and time.monotonic() < drain_until:
                        await asyncio.sleep(0.5)
                    await asyncio.sleep(1.0)  # a send in flight when the last row was marked
                report.wall_seconds = time.monotonic() - started
                return telegram

            telegram = asyncio.run(main())
            rows = asyncio.run(_database_rows(url))
            _count(report, telegram, fake.sent(), rows, lambda uid: user_key(CHANNEL, uid, key_secret))
            keep = not report.passed
    except BaseException:
        keep = True
        raise
    finally:
        fake.stop()
        if keep:
            say(f"server log kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def format_report(r: KillReport) -> str:
    startup = (f"p50 {statistics.median(r.startup_seconds):.1f} s, max {max(r.startup_seconds):.1f} s"
               if r.startup_seconds else "-")
    outcomes = ", ".join(f"{k} x{v}" for k, v in sorted(r.post_outcomes.items()))
    rows = [
        ("database", r.database, ""),
        ("people (each in their own chat)", r.users, ""),
        ("SIGKILLs", r.kills, ""),
        ("restarts", r.restarts, f"start-up to ready {startup}"),
        ("wall time", f"{r.wall_seconds:.0f} s", ""),
        ("updates sent", r.updates, f"{r.posts} webhook POSTs: {outcomes}"),
        ("updates acknowledged (200)", r.acknowledged, f"{r.pre_consent} /start before consent (not stored)"),
        ("user messages that must be stored", r.must_be_stored, f"{r.stored} stored"),
        ("LOST (acknowledged, not stored)", r.lost, "target 0"),
        ("never acknowledged", r.never_acknowledged, "target 0"),
        ("UNANSWERED updates", r.unanswered, f"target 0; {r.still_in_outbox} replies left in the outbox, "
                                             f"{r.marked_not_sent} marked sent but not sent"),
        ("quiet (a counsellor has the chat)", r.quiet, "no reply by design"),
        ("reply messages expected", r.replies_expected, "one per reply part, one consent notice per person"),
        ("sendMessage calls", r.replies_sent, ""),
        ("DUPLICATE replies", r.duplicates, f"target <= {r.kills} (one per kill)"),
    ]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"kill bench: SIGKILL x{r.kills} while {r.users} people write (Telegram webhook, real server)"]
    lines += [f"  {name:<{width}}  {value!s:>8}  {note}".rstrip() for name, value, note in rows]
    lines.append(f"  result: {'PASS' if r.passed else 'FAIL'}")
    return "\n".join(lines)


def run(settings: Settings, *, kills: int = 20, users: int = 20, database: str = "sqlite",
        config: Path | str | None = None, seed: int | None = None) -> int:
    """``hamroh bench kill``: print the table; exit status 1 when a target is missed."""
    try:
        report = kill_bench(settings, kills=kills, users=users, database=database, config=config, seed=seed)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0 if report.passed else 1
