"""A real ``hamroh serve --workers 2`` for content tests, and a steady web-chat load beside it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.net import free_port

ROOT = Path(__file__).resolve().parents[2]
QUESTION_RU = "можно ли сменить работодателя по тому же патенту"


@dataclass
class Server:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True)

    def workers(self, seconds: float = 3.0) -> dict[str, int | None]:
        """Process token -> content version, from /health over fresh connections."""
        seen: dict[str, int | None] = {}
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(seen) < 2:
            body = httpx.get(self.base + "/health", timeout=5).json()
            seen[body["process"]] = body["content_version"]
        return seen

    def ask(self, question: str = QUESTION_RU, lang: str = "ru") -> dict[str, object]:
        response = httpx.post(self.base + "/api/ask", json={"question": question, "lang": lang}, timeout=30,
                              headers={"X-Forwarded-For": f"10.0.{secrets.randbelow(250)}.{secrets.randbelow(250)}"})
        response.raise_for_status()
        return dict(response.json())


@contextmanager
def serve_two_workers(tmp_path: Path, database_url: str | None = None, **extra_env: str) -> Iterator[Server]:
    port = free_port()
    env = dict(os.environ, HAMROH_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{tmp_path}/hamroh.db",
               HAMROH_SESSION_SECRET=secrets.token_hex(16), HAMROH_USER_KEY_SECRET=secrets.token_hex(16),
               HAMROH_CONTENT__POLL_SECONDS="1", **extra_env)
    env.pop("TELEGRAM_BOT_TOKEN", None)
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", "2"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", env, process)
    try:
        deadline = time.monotonic() + 420
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
            try:
                seen = server.workers(2)
                if len(seen) == 2 and all(v for v in seen.values()):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the workers did not start in 7 minutes"
            time.sleep(1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


@dataclass
class ChatLoad:
    """Web-chat visitors writing steadily; every message must get its reply frame."""

    base: str
    visitors: int = 4
    #: a person writes about every 2 s at most (the web chat's per-session limit is about that)
    pause: float = 2.0
    sent: int = 0
    replied: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _visitor(self, n: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30, headers={"X-Forwarded-For": f"10.77.0.{n + 1}"}) as c:
            def send(frame: dict[str, object]) -> list[dict[str, object]]:
                response = c.post("/api/chat/send", json=frame)
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")
                    return []
                return list(response.json()["frames"])

            send({"type": "command", "command": "start", "lang": "ru", "id": f"load-{n}-start"})
            send({"type": "button", "payload": "lang:ru", "id": f"load-{n}-consent"})
            i = 0
            while not self._stop.is_set():
                i += 1
                self.sent += 1
                frames = send({"type": "message", "text": QUESTION_RU if i % 2 else "как продлить патент",
                               "id": f"load-{n}-{i}"})
                if any(f["type"] == "reply" for f in frames):
                    self.replied += 1
                elif not self.errors:
                    self.errors.append(f"no reply frame for message {i}: {frames}")
                time.sleep(self.pause)

    def __enter__(self) -> ChatLoad:
        for n in range(self.visitors):
            t = threading.Thread(target=self._visitor, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)
