"""config.yml mistakes stop start-up with the key and the reason; the environment overrides the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_config_is_valid() -> None:
    settings = load_settings(ROOT / "config.yml")
    assert settings.fallback_chains["tg"] == ["ru"]
    assert settings.emergency["RU"][0].phone == "112"
    assert all(c.source.startswith("https://") for contacts in settings.emergency.values() for c in contacts)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"languages": ["en", "xx"]}, "languages"),
        ({"search": {"rrf_k": 0}}, "search.rrf_k"),
        ({"search": {"thresholds": {"handoff_below": 0.95, "answer_min": 0.9}}}, "thresholds"),
        ({"serevr": {}}, "serevr"),
        ({"mrcs": [{"id": "x", "name": "X", "country": "Uzbekistan"}]}, "mrcs.0.country"),
        ({"mrcs": [{"id": "x", "name": "X", "country": "UZ", "office_hours": {"mon": "9-5"}}]}, "office_hours"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, changes: dict, key: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(_config(tmp_path, **changes))
    assert key in str(err.value) and str(tmp_path / "config.yml") in str(err.value)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAMROH_SERVER__PORT", "9123")
    monkeypatch.setenv("HAMROH_SEARCH__THRESHOLDS__ANSWER_MIN", "0.9")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:TOPSECRETVALUE")
    settings = load_settings(_config(tmp_path))
    assert settings.server.port == 9123 and settings.search.thresholds.answer_min == 0.9
    assert settings.telegram_bot_token is not None
    assert "TOPSECRETVALUE" not in repr(settings)


def test_missing_or_malformed_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("languages: [en\n")
    with pytest.raises(SettingsError, match="malformed YAML"):
        load_settings(bad)
