"""config.yml mistakes stop start-up with the key and the reason; the environment overrides the file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

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


#: where the content spec's people are: the destinations (content-spec.md and content-spec-next.md:
#: Russia, Kazakhstan, the Gulf, Malaysia, Iraq, Turkey, Korea, the UK, Iran, Thailand) and the origin
#: countries (a returnee or a family member at home)
_SPEC_COUNTRIES = ("RU", "KZ", "SA", "AE", "QA", "KW", "OM", "BH", "MY", "IQ", "TR", "KR", "GB", "IR", "TH",
                   "UZ", "TJ", "KG", "BD", "PK", "LK", "AF")
_EU = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
       "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")


def test_a_person_anywhere_in_the_content_spec_gets_a_number_to_dial() -> None:
    """A crisis reply without a number sends the person to look for one; every destination and origin
    of the content spec, and every EU member state (112), has one, each with the page that states it."""
    emergency = load_settings(ROOT / "config.yml").emergency
    missing = [c for c in (*_SPEC_COUNTRIES, *_EU) if not any(x.phone for x in emergency.get(c, ()))]
    assert missing == []
    assert {emergency[c][0].phone for c in _EU} == {"112"}
    for contacts in emergency.values():
        for contact in contacts:
            page, _, note = contact.source.partition(" ")
            own_site = "service's own site" in note  # e.g. 1990.lk: the number is the service's name
            assert urlsplit(page).path.strip("/") or own_site, f"{contact.label}: {page} is a homepage"


def test_mental_health_lines_are_listed_where_an_official_one_exists() -> None:
    """A person who wants to end their life is offered the public mental-health line first where
    one is configured (bot/engine/_emergency.py); the emergency number stays with it."""
    emergency = load_settings(ROOT / "config.yml").emergency
    with_line = {c for c, contacts in emergency.items() if any(x.kind == "mental_health" for x in contacts)}
    assert {"KR", "MY", "LK", "QA", "GB", "TH"} <= with_line
    for country in with_line:
        assert any(x.kind != "mental_health" for x in emergency[country]), country


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
