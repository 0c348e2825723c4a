"""``hamroh serve --workers 2``: the real server as two processes behind one port.

Why a test: each worker builds the whole application on its own from ``$HAMROH_CONFIG`` (the
factory path, not the in-process app the other tests use), so a setting, secret or migration that
only reaches the first process would break every other request.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]



def test_two_worker_processes_serve_one_conversation(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HAMROH_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hamroh.db",
               HAMROH_SESSION_SECRET=secrets.token_hex(16), HAMROH_USER_KEY_SECRET=secrets.token_hex(16))
    env.pop("TELEGRAM_BOT_TOKEN", None)
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 420
        while True:
            assert server.poll() is None, server.stdout.read().decode(errors="replace")[-2000:]  # type: ignore[union-attr]
            try:
                if httpx.get(base + "/health", timeout=2).json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the workers did not start in 7 minutes"
            time.sleep(1)
        # one visitor, several requests: whichever worker takes each, it is the same conversation
        with httpx.Client(base_url=base, timeout=30, headers={"X-Forwarded-For": "10.9.8.7"}) as client:
            def send(frame: dict[str, object]) -> list[dict[str, object]]:
                response = client.post("/api/chat/send", json=frame)
                assert response.status_code == 200, response.text
                return list(response.json()["frames"])

            send({"type": "command", "command": "start", "lang": "en", "id": "workers-start"})
            send({"type": "button", "payload": "lang:en", "id": "workers-consent"})
            replies: list[dict[str, object]] = []
            for n in range(6):
                frames = send({"type": "message", "text": "How do I apply for a work patent in Russia?",
                               "id": f"workers-question-{n}"})
                replies += [f for f in frames if f["type"] == "reply"]
            assert len(replies) == 6
            assert {r["kind"] for r in replies} <= {"answer", "clarify"}, replies
            assert all(r["lang"] == "en" for r in replies)  # the consent was seen by every worker
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
