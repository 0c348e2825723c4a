"""SIGKILL the real server while people write on Telegram (webhook): nothing acknowledged is lost.

A reduced run of ``hamroh bench kill`` (see ``bench/kill_bench.py``): the real ``hamroh serve`` in
a subprocess with the real model, index and engine, a temporary database, the fake Bot API, and a
simulated Telegram that redelivers every update until the webhook answers 200. The figures are
counted, never timed: on a busy machine a run only takes longer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.kill_bench import format_report, kill_bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3
USERS = 5


@pytest.fixture(scope="module")
def built(settings: Any, repo_root: Path) -> Any:
    model = settings.path(settings.model.dir)
    if not (model / "modules.json").exists():
        pytest.skip(f"offline model not built at {model}: run 'make model'")
    return settings


def test_sigkill_loses_no_acknowledged_message_and_duplicates_at_most_one_reply_per_kill(built: Any) -> None:
    report = kill_bench(built, kills=KILLS, users=USERS, seed=6, min_uptime=0.5, max_uptime=2.5, progress=None)
    print(format_report(report))
    assert report.kills == KILLS and report.restarts == KILLS
    assert report.acknowledged == report.updates > USERS * 3  # /start, the language, at least two questions
    assert report.lost == 0, format_report(report)
    assert report.never_acknowledged == 0 and report.unanswered == 0, format_report(report)
    assert report.still_in_outbox == 0
    assert report.duplicates <= report.kills, format_report(report)
