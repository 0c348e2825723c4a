"""The Telegram walk (``python -m bench.walk --telegram``) end to end, on a two-message walk file.

The real ``hamroh serve`` in a subprocess polls the fake Bot API; one new Telegram user, phone in
Russian, asks a question before agreeing, presses the consent button, then asks for help. The
walk must read back what the bot sent to that chat and judge it with the web walk's judge. Most of
the run is the server loading its model: slow, and marked so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.walk_judge import format_table
from bench.walk_telegram import walk_telegram

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY_WALK = Path(__file__).with_name("walk-tiny.yaml")


def test_the_telegram_walk_reads_and_judges_what_the_bot_sent(settings: Any) -> None:
    if not (settings.path(settings.model.dir) / "modules.json").exists():
        pytest.skip("offline model not built: run 'make model'")
    result = walk_telegram(TINY_WALK, language_code="ru", reply_timeout=120)
    print(format_table(result))
    question, help_ = result["messages"]
    # the question sent before consent was kept and answered once the person agreed, not dropped
    assert question["got"].startswith(("answer:", "clarify")) and not question["retyped"]
    assert help_["verdict"] == "right" and help_["got"] == "menu"
    assert result["overall"]["n"] == 2
    assert result["overall"]["undelivered"] == 0 and result["overall"]["rejected_by_telegram"] == 0
