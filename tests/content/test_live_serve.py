"""Publish live: both workers of a real ``hamroh serve --workers 2`` answer with the new text within
10 s of a publication, with no restart, while web-chat visitors keep writing (no error, no lost reply)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .live_server import ChatLoad, serve_two_workers

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONTENT = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"
MARK = "Проверено МРЦ сегодня: новый порядок действует для всех работодателей."


def test_published_change_reaches_both_workers_without_restart(tmp_path: Path, db_url: str) -> None:
    # SQLite (one machine) and PostgreSQL (the replicas' database): the same version poll on both
    with serve_two_workers(tmp_path, db_url) as server:
        before = server.workers()
        assert len(before) == 2 and len(set(before.values())) == 1
        assert MARK not in str(server.ask().get("answer"))
        edited = tmp_path / "content"
        shutil.copytree(CONTENT, edited)
        path = edited / "change-employer.yml"
        text = path.read_text(encoding="utf-8")
        ru_at = text.index("\n  ru:\n")
        answer_at = text.index("    answer: |\n", ru_at) + len("    answer: |\n")
        path.write_text(text[:answer_at] + f"      {MARK}\n\n" + text[answer_at:], encoding="utf-8")
        pids = {server.process.pid}
        with ChatLoad(server.base) as load:
            time.sleep(2)
            out = server.cli("kb", "import", str(edited))  # the CLI process embeds the changed text
            published = time.monotonic()
            assert "1 updated" in out.stdout, out.stdout
            new_version = int(out.stdout.rsplit("content version", 1)[1].strip())
            while True:
                seen = server.workers()
                if len(seen) == 2 and all(v == new_version for v in seen.values()):
                    break
                assert time.monotonic() - published < 10, f"workers still at {seen} after 10 s"
                time.sleep(0.2)
            answers = [server.ask() for _ in range(10)]
            time.sleep(1)
        assert all(MARK in str(a["answer"]) for a in answers), answers[0]
        assert load.errors == [] and load.sent > 0 and load.replied == load.sent
        assert server.process.poll() is None and {server.process.pid} == pids  # no restart
