"""Due times follow each MRC's office hours; bad settings fail at start-up with the reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from handoff import ConsoleSettings, MrcSettings, Priority, due_at

pytestmark = pytest.mark.unit

DUSHANBE = MrcSettings(
    id="tj",
    name="MRC Tajikistan",
    country="TJ",
    timezone="Asia/Dushanbe",  # UTC+5
    office_hours={"mon-fri": "09:00-13:00, 14:00-18:00"},
    holidays=(date(2026, 3, 23),),  # a Monday (Navruz)
    reply_within_office_hours=4,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_ticket_inside_office_hours_is_due_four_office_hours_later_skipping_lunch():
    # Tuesday 10:00 Dushanbe = 05:00 UTC; 3 h before lunch + 1 h after → 15:00 local = 10:00 UTC.
    assert due_at(utc(2026, 3, 24, 5, 0), DUSHANBE, Priority.NORMAL) == utc(2026, 3, 24, 10, 0)


def test_friday_evening_ticket_is_due_monday_morning_and_holidays_are_skipped():
    # Friday 20:00 local; Monday 23 March is a holiday → Tuesday 13:00 local (08:00 UTC).
    assert due_at(utc(2026, 3, 20, 15, 0), DUSHANBE, Priority.NORMAL) == utc(2026, 3, 24, 8, 0)


def test_crisis_is_due_in_wall_clock_minutes_even_at_night():
    created = utc(2026, 3, 21, 22, 0)  # Sunday 03:00 local
    assert due_at(created, DUSHANBE, Priority.CRISIS) == created + timedelta(minutes=15)


def test_no_office_hours_means_always_open():
    mrc = MrcSettings(id="x", name="X", country="IQ", reply_within_office_hours=2)
    assert due_at(utc(2026, 1, 1), mrc, Priority.NORMAL) == utc(2026, 1, 1, 2)


def test_wrapping_day_ranges_like_sun_thu():
    mrc = MrcSettings(id="iq", name="Iraq", country="IQ", office_hours={"sun-thu": "08:00-16:00"})
    assert sorted(mrc.weekly_hours) == [0, 1, 2, 3, 6]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Asia/Atlantis", "IANA"),
        ("office_hours", {"mon-fri": "9 to 5"}, "09:00-13:00"),
        ("office_hours", {"weekdays": "09:00-17:00"}, "day names"),
        ("office_hours", {"mon": "18:00-09:00"}, "ends before it starts"),
        ("country", "Tajikistan", "pattern"),
    ],
)
def test_bad_mrc_settings_say_what_to_fix(field, value, message):
    values = {"id": "tj", "name": "T", "country": "TJ", field: value}
    with pytest.raises(ValidationError, match=message):
        MrcSettings.model_validate(values)


def test_console_settings_demand_a_long_secret_and_unique_mrcs():
    mrc = {"id": "tj", "name": "T", "country": "TJ"}
    with pytest.raises(ValidationError, match="32 characters"):
        ConsoleSettings.model_validate({"mrcs": [mrc], "session_secret": "short"})
    with pytest.raises(ValidationError, match="repeated: tj"):
        ConsoleSettings.model_validate({"mrcs": [mrc, mrc], "session_secret": "k" * 40})
    assert "k" * 40 not in repr(ConsoleSettings.model_validate({"mrcs": [mrc], "session_secret": "k" * 40}))
