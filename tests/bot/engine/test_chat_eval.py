"""``hamroh chat eval`` on the development conversations: the real engine, model, index and
understanding, a fresh database per conversation. Every conversation about the engine's promises
must pass (crisis first, the menu, follow-ups, handoffs that keep their promises, media), and the
whole set at least 90% (two conversations still depend on ranking Tajik and Cyrillic Uzbek well)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat_eval import TemplateDatabase, evaluate_conversations, load_conversations, summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEV = Path(__file__).resolve().parents[4] / "shared" / "eval" / "conversations" / "dev.yaml"


@pytest.mark.skipif(not DEV.exists(), reason="../shared/eval/conversations/dev.yaml is not beside the repository")
async def test_every_development_conversation_passes(settings, kb, embedder) -> None:  # type: ignore[no-untyped-def]
    from bot.services import build_engine, open_understander
    from storage import create_engine, session_factory

    understander = open_understander(settings, embedder)
    template = TemplateDatabase()
    template.prepare()

    async def make_engine(clock):  # type: ignore[no-untyped-def]
        db = create_engine(template.fresh())
        sessions = session_factory(db)
        return build_engine(settings, sessions, lambda: kb, understander, clock=clock), sessions, db.dispose

    try:
        results = await evaluate_conversations(load_conversations(DEV), make_engine)
    finally:
        template.cleanup()
    report = summary(results)
    failing = "\n".join(f"{f['name']} (step {f['step']}): {f['problems']}" for f in report["failures"])
    assert report["overall"]["n"] >= 20
    # the engine's promises hold in every conversation: a person in danger, a request for a person,
    # a voice note or a location, "help", a question nobody covers, small talk, a profile, a follow-up
    for tag in ("crisis", "handoff", "media", "menu", "out-of-scope", "smalltalk", "profile", "context"):
        assert report["per_tag"][tag]["pass_rate"] == 1.0, f"{tag}:\n{failing}"
    # where the answer depends on ranking a thin language well (Tajik, Uzbek in Cyrillic), the search
    # may still offer choices instead of the answer: the whole set must stay at 90% or better
    assert report["overall"]["pass_rate"] >= 0.9, failing


def test_a_malformed_conversation_file_is_named_with_the_fix(tmp_path: Path) -> None:
    from bot.chat_eval import ChatEvalError

    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: no steps here\n", encoding="utf-8")
    with pytest.raises(ChatEvalError, match="conversation 1: needs 'name' and a list of 'steps'"):
        load_conversations(bad)
