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
    assert set(data) == {"topics", "missing", "expired"}
    assert "en" in data["topics"]["ru-patent"]


def test_bad_config_exits_1_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "config.yml"
    bad.write_text("languages: [zz]\n")
    assert main(["--config", str(bad), "kb", "validate"]) == 1
    assert "languages" in capsys.readouterr().err
