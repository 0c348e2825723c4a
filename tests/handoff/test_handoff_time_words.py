"""How long ago and how long, as the console shows them (CLDR's words through Babel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handoff._web import _ago, _duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("span", "shown"), [
    (timedelta(seconds=20), "<1 min"),
    (timedelta(minutes=45), "45 min"),
    (timedelta(minutes=130), "2 hr"),
    (timedelta(days=3, hours=2), "3 days"),
])
def test_a_span_reads_at_a_glance(span: timedelta, shown: str) -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert _ago(now - span, now) == shown
    assert _duration(span) == shown


def test_nothing_to_show_is_said_so() -> None:
    assert _ago(None) == "" and _duration(None) == "—"
