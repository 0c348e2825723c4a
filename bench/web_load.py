"""Load on the web chat's HTTP API: N concurrent anonymous visitors, each sending a few messages.

    .venv/bin/python -m bench.web_load --url http://127.0.0.1:8000 [--clients 50] [--messages 8]
    .venv/bin/python -m bench.web_load --serve            # a throw-away server with a no-op engine

Each client is one visitor with its own session: it opens the chat (``start``), consents (picks
English), then sends ``--messages`` questions one after the other through ``POST /api/chat/send``,
acknowledging the replies it got, as the widget does over the HTTP fallback. Prints messages per
second and p50/p95/p99 latency of the sends; refusals (429: rate limits) and failures are counted
apart. The run is bounded by ``--deadline`` seconds. Figures only, never asserts on time
(DESIGN.md budget: >= 100 messages/s with p95 <= 250 ms on 2 cores).

Rate limits: all clients come from 127.0.0.1, which the per-IP limit would (rightly) treat as one
flooding address. Each client therefore sends ``X-Forwarded-For: 10.77.x.y``, standing for a phone
of its own; uvicorn honours it only from 127.0.0.1 (its default ``forwarded_allow_ips``). Use
``--same-ip`` to measure the limit itself. The default of 8 questions (plus start and consent) stays
within one session's burst of 10.

``--serve`` starts ``bot.channels.web`` in a subprocess (so the load generator does not share its
CPU) around an engine that answers instantly: it measures the channel's own cost. Against a real
``hamroh serve`` the figures include understanding, search and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.net import free_port

__all__ = ["LoadResult", "main", "run_load", "varied_questions"]


@dataclass
class LoadResult:
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, answered messages only
    outcomes: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0
    #: monotonic time of the first timed send and of the last timed answer: msg/s is taken over this
    #: span, so the visitors' opening (start, consent) does not count against the question rate
    first_sent: float = float("inf")
    last_answered: float = 0.0

    @property
    def span(self) -> float:
        return max(self.last_answered - self.first_sent, 1e-9) if self.last_answered else 0.0


def varied_questions() -> list[str]:
    """Every example question of the shipped content, in all its languages (for ``--varied``)."""
    from pathlib import Path

    from knowledge_base import load_entries

    root = Path(__file__).resolve().parents[1]
    return [q for e in load_entries(root / "knowledge_base/content").entries
            for tr in e.translations.values() for q in tr.questions]


class _Http:
    """A minimal HTTP/1.1 keep-alive client for JSON posts, one connection per visitor.

    Why not httpx: here it spent 5-7 ms of CPU per request, on the same two cores as the server
    it measures (about half a core at 100 requests a second). This client keeps the session
    cookie the web chat sets, as a browser would, and nothing else.
    """

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        from urllib.parse import urlsplit

        url = urlsplit(base)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._timeout = timeout
        self._cookie = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await asyncio.wait_for(self._post(path, payload), self._timeout)

    async def _post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._reader, self._writer
        body = json.dumps(payload).encode()
        cookie = f"Cookie: {self._cookie}\r\n" if self._cookie else ""
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                      f"{self._headers}{cookie}\r\n").encode() + body)
        await writer.drain()
        status = int((await reader.readline()).split(b" ", 2)[1])
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.lower() == "close"
            elif name == "set-cookie":
                self._cookie = value.split(";", 1)[0]
        data = json.loads(await reader.readexactly(length)) if length else {}
        if close:
            await self.aclose()
        return status, data

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def _visitor(base: str, index: int, messages: int, result: LoadResult, same_ip: bool, stop_at: float,
                   questions: Sequence[str] = (), interval: float = 0.0, spread: bool = True) -> None:
    headers = {} if same_ip else {"X-Forwarded-For": f"10.77.{index // 250}.{index % 250 + 1}"}
    client = _Http(base, headers, timeout=10.0)
    try:
        acks: list[int] = []

        async def send(frame: dict[str, Any], timed: bool) -> None:
            frame = {**frame, "id": secrets.token_hex(8), "ack": acks[:]}
            started = time.perf_counter()
            if timed:
                result.first_sent = min(result.first_sent, time.monotonic())
            try:
                status, data = await client.post_json("/api/chat/send", frame)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                result.outcomes[f"error:{type(exc).__name__}"] += 1
                await client.aclose()
                return
            elapsed = time.perf_counter() - started
            if status != 200:
                result.outcomes[f"http {status}"] += 1
                return
            acks.clear()
            acks.extend(f["id"] for f in data.get("frames", [])
                        if f.get("type") == "reply" and isinstance(f.get("id"), int))
            if timed:
                result.outcomes["answered"] += 1
                result.latencies.append(elapsed)
                result.last_answered = max(result.last_answered, time.monotonic())

        # --rate: a person writes, reads the answer, writes again a while later. The first visitors
        # open the chat spread over one interval, so the offered load is even rather than in waves
        # (50 openings in the same instant are a burst no real MRC sees, and near capacity its
        # backlog took seconds to drain); a later visitor takes over its slot's place in that spread
        if interval and spread:
            await asyncio.sleep(random.uniform(0, interval))
        await send({"type": "command", "command": "start", "lang": "en"}, timed=False)
        await send({"type": "button", "payload": "lang:en"}, timed=False)
        next_at = time.monotonic()
        for n in range(messages):
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
            if time.monotonic() > stop_at:
                result.outcomes["not sent (deadline)"] += messages - n
                return
            if questions:  # a different question each time, never seen before by the server's caches
                text = f"{questions[(index * messages + n) % len(questions)]} ({index}.{n})"
            else:
                text = f"How do I get a work permit? ({n})"
            await send({"type": "message", "text": text}, timed=True)
    finally:
        await client.aclose()


async def run_load(base: str, *, clients: int, messages: int, deadline: float, same_ip: bool = False,
                   questions: Sequence[str] = (), rate: float = 0.0, visitors: int = 1,
                   first_visitor: int = 0) -> LoadResult:
    """Run the visitors concurrently; never longer than ``deadline`` seconds.

    Each of the ``clients`` slots is taken by ``visitors`` visitors one after the other (each a new
    session and a new connection), so ``clients`` people are in the chat at any moment while the
    run lasts long enough for steady figures (one visitor stays within a session's burst limit).

    ``rate`` (messages/s over all visitors) paces each visitor to one question every
    ``clients / rate`` seconds; 0 sends each next question as soon as the answer arrives, which
    measures the most the server can take (and latency then grows with the number of visitors).
    """
    result = LoadResult(clients)
    started = time.monotonic()
    interval = clients / rate if rate > 0 else 0.0

    async def slot(i: int) -> None:
        for k in range(visitors):
            await _visitor(base, first_visitor + i + k * clients, messages, result, same_ip, started + deadline,
                           questions, interval, spread=k == 0)

    tasks = [asyncio.create_task(slot(i)) for i in range(clients)]
    _done, pending = await asyncio.wait(tasks, timeout=deadline + 15)
    for task in pending:
        task.cancel()
    if pending:
        result.outcomes["visitors cut off"] += len(pending)
    result.wall = time.monotonic() - started
    return result


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(result: LoadResult) -> str:
    lat = [v * 1000 for v in result.latencies]
    answered = result.outcomes["answered"]
    rate = answered / result.span if result.span else 0.0
    lines = [
        f"{'clients':>8} {'answered':>9} {'wall s':>7} {'msg/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'mean ms':>8}",
        f"{result.clients:>8} {answered:>9} {result.wall:>7.2f} {rate:>8.1f} {_percentile(lat, .5):>8.1f}"
        f" {_percentile(lat, .95):>8.1f} {_percentile(lat, .99):>8.1f}"
        f" {statistics.fmean(lat) if lat else float('nan'):>8.1f}",
    ]
    others = {k: v for k, v in result.outcomes.items() if k != "answered"}
    if others:
        lines.append("not answered: " + ", ".join(f"{k}={v}" for k, v in sorted(others.items())))
    return "\n".join(lines)


# ------------------------------------------------------------------ --serve: a throw-away server
def _serve(port: int) -> None:
    """The web router around an engine that answers at once (runs in the subprocess)."""
    import datetime as dt

    import uvicorn
    from cachetools import LRUCache
    from fastapi import FastAPI

    from bot.channels.web import BucketSpec, WebLimits, create_web_router
    from bot.engine import IncomingMessage, Outgoing, Reply

    class InstantEngine:
        """Idempotent like the real engine (a bounded memory of message ids), but without work."""

        def __init__(self) -> None:
            self._seen: LRUCache[str, None] = LRUCache(100_000)
            self._next = 0

        async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
            if message.message_id in self._seen:
                return []
            self._seen[message.message_id] = None
            self._next += 1
            reply = Reply("answer", "Curated answer.", "en", source_title="Source",
                          source_url="https://example.org/", reviewed_on=dt.date(2025, 1, 1), entry_id="bench")
            return [Outgoing(self._next, message.user_key, "web", None, reply)]

        async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
            return None

        async def pending(self, channel: str, *, limit: int = 100,
                          user_keys: Collection[str] | None = None) -> list[Outgoing]:
            return []

        async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                                exclude: Sequence[int] = ()) -> list[Outgoing]:
            return []

    app = FastAPI()
    app.include_router(create_web_router(InstantEngine(), key_secret=secrets.token_hex(16),
                                         limits=WebLimits(poll=BucketSpec(rate=1000.0, burst=1000))))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)



def _wait_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    """Wait until the widget's files are served (the real server first loads the model and index)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the bench server exited with code {process.returncode}")
        try:
            if httpx.get(base + "/static/web/i18n/languages.json", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the bench server did not start within {seconds:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", help="a running Hamroh server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--serve", action="store_true", help="start a throw-away server with an instant engine")
    parser.add_argument("--real", action="store_true",
                        help="start the real 'hamroh serve' (model, NLU, search, a temporary SQLite database)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=8, help="questions per client (after start and consent)")
    parser.add_argument("--visitors", type=int, default=1,
                        help="visitors per client, one after the other (a longer, steadier run)")
    parser.add_argument("--deadline", type=float, default=60.0, help="stop sending after this many seconds")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of the same load before the measured run, not counted (a server just "
                             "started compiles statements and fills caches on its first requests)")
    parser.add_argument("--same-ip", action="store_true", help="no X-Forwarded-For: all clients share one address")
    parser.add_argument("--workers", type=int, default=1, help="--real: server processes ('hamroh serve --workers')")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered messages/s over all visitors (default 0: as fast as answers come)")
    parser.add_argument("--varied", action="store_true",
                        help="each message a different real question in its own language (no query-cache hits); "
                             "default: the same 8 English questions, as a busy MRC's repeated questions")
    parser.add_argument("--database", help="--real: a database URL to use instead of a temporary SQLite file "
                                           "(its tables are created; use a throw-away database)")
    parser.add_argument("--_server-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._server_only:
        _serve(args._server_only)
        return
    if not args.url and not args.serve and not args.real:
        parser.error("give --url of a running server, --serve or --real")
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--url must be a server on 127.0.0.1 (this is a load test)")
    process = None
    base = args.url
    if args.serve:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen([sys.executable, "-m", "bench.web_load", "--_server-only", str(port)],
                                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        _wait_ready(base, process)
    scratch = None
    if args.real:
        import tempfile

        scratch = tempfile.mkdtemp(prefix="hamroh-load-")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, HAMROH_DATABASE_URL=args.database or f"sqlite+aiosqlite:///{scratch}/load.db",
                   HAMROH_USER_KEY_SECRET=secrets.token_hex(16), HAMROH_SESSION_SECRET=secrets.token_hex(16))
        env.pop("TELEGRAM_BOT_TOKEN", None)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                                    "--workers", str(args.workers)], cwd=root,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # workers are children: stop the group
        _wait_ready(base, process, seconds=600.0)
    try:
        print(f"web chat load: {args.clients} clients x {args.visitors} visitors x {args.messages} messages"
              f" -> {base}/api/chat/send")
        questions = varied_questions() if args.varied else ()
        if args.warmup > 0:
            asyncio.run(run_load(base.rstrip("/"), clients=args.clients, messages=args.messages,
                                 deadline=args.warmup, same_ip=args.same_ip, questions=questions[::-1],
                                 rate=args.rate, first_visitor=args.clients * (args.visitors + 1)))
        result = asyncio.run(run_load(base.rstrip("/"), clients=args.clients, messages=args.messages,
                                      deadline=args.deadline, same_ip=args.same_ip, questions=questions,
                                      rate=args.rate, visitors=args.visitors))
        print(report(result))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
