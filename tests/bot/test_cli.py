"""The operator's commands: exit codes and machine-readable output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_validate_passes_on_shipped_content(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ROOT / "config.yml"), "kb", "validate"]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_validate_fails_with_file_and_fix_on_broken_content(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "broken.yml").write_text("id: broken\ntopic: nope\n", encoding="utf-8")
    monkeypatch.setenv("HAMROH_CONTENT_DIR", str(tmp_path))
    assert main(["--config", str(ROOT / "config.yml"), "kb", "validate"]) == 1
    out = capsys.readouterr().out
    assert "broken.yml" in out and "Fix:" in out


def test_stats_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ROOT / "config.yml"), "kb", "stats", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"topics", "missing", "expired", "stale_translations", "homepage_sources"}
    assert data["missing"] == {} and data["homepage_sources"] == {}
    assert "en" in data["topics"]["ru-patent"]


def test_bad_config_exits_1_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "config.yml"
    bad.write_text("languages: [zz]\n")
    assert main(["--config", str(bad), "kb", "validate"]) == 1
    assert "languages" in capsys.readouterr().err


def test_several_workers_refuse_telegram_polling_with_the_fix(monkeypatch, capsys) -> None:
    # two processes polling getUpdates would fight over the same updates (Telegram answers 409)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    assert main(["--config", str(ROOT / "config.yml"), "serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "webhook_url" in err and "--workers 1" in err


def test_workers_starting_together_share_one_generated_secret(tmp_path: Path) -> None:
    # each worker of `hamroh serve --workers N` derives user keys from this secret: two different
    # values would split one person into two users, depending on which process took the request
    import threading

    from bot.privacy import local_secret

    path = tmp_path / "secrets" / "user_key"
    results: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(local_secret(path, None))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1 and len(results[0]) >= 32
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["user_key"]  # no temporary files left behind
