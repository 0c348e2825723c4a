"""Due times from an MRC's office hours.

A ticket opened on Friday evening in Dushanbe is not overdue on Saturday morning: the clock only
runs while the MRC is open. Crisis tickets are the exception and count wall-clock minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handoff._enums import Priority
from handoff._settings import MrcSettings

__all__ = ["add_office_time", "due_at", "next_opening"]

_MAX_DAYS = 400


def due_at(created_at: datetime, mrc: MrcSettings, priority: Priority) -> datetime:
    """When a first reply is due for a ticket opened at ``created_at``."""
    if priority is Priority.CRISIS:
        return created_at + timedelta(minutes=mrc.crisis_reply_within_minutes)
    return add_office_time(created_at, timedelta(hours=mrc.reply_within_office_hours), mrc)


def add_office_time(start: datetime, amount: timedelta, mrc: MrcSettings) -> datetime:
    """``start`` plus ``amount`` of time during which the MRC is open (UTC in, UTC out)."""
    if start.tzinfo is None:
        raise ValueError("start must be time-zone aware")
    weekly = mrc.weekly_hours
    if not weekly:
        return start + amount
    zone = mrc.zone
    cursor = start.astimezone(UTC)
    remaining = amount
    day = start.astimezone(zone).date()
    for _ in range(_MAX_DAYS):
        if day not in mrc.holidays:
            for opens, closes in weekly.get(day.weekday(), []):
                span_start = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
                span_end = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
                begin = max(span_start, cursor)
                if begin >= span_end:
                    continue
                available = span_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
                cursor = span_end
        day += timedelta(days=1)
    # Office hours that never open (every day a holiday): fall back to wall-clock time.
    return start + amount


def next_opening(now: datetime, mrc: MrcSettings) -> datetime:
    """``now`` while the MRC is open, else the moment it next opens (UTC in, UTC out).

    Why: a person who asks for a counsellor at 22:13 must be told "tomorrow at 09:00", not "as soon
    as possible"; the same office calendar that sets due times answers it.
    """
    return add_office_time(now, timedelta(0), mrc)
