"""Which updates reach the engine, and as what."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from bench.fake_telegram import callback_update, message_update
from bot.channels.telegram import incoming_from_update

from .support import key_of

pytestmark = pytest.mark.unit

USER = 740_888_001


def convert(data: dict[str, Any]) -> Any:
    return incoming_from_update(Update.de_json(data, None), key_of)


@pytest.mark.parametrize(("text", "command"), [
    ("/start", "start"), ("/START", "start"), ("/start@hamroh_test_bot", "start"), ("/start ref-42", "start"),
    ("/language", "language"), ("/human", "human"), ("/delete", "delete"), ("/help", "help"),
])
def test_known_commands_are_named_and_carry_no_text(text: str, command: str) -> None:
    incoming = convert(message_update(5, USER, text))
    assert incoming.message.command == command and incoming.message.text is None


@pytest.mark.parametrize("text", ["/unknown", "/", "/ start", "/starting", "start"])
def test_anything_else_is_ordinary_text(text: str) -> None:
    incoming = convert(message_update(5, USER, text))
    assert incoming.message.command is None and incoming.message.text == text


def test_a_text_message_becomes_a_pseudonymous_incoming_message() -> None:
    incoming = convert(message_update(77, USER, "Как получить патент?", language_code="ru"))
    message = incoming.message
    assert (message.channel, message.message_id, message.text, message.client_lang) == (
        "telegram", "77", "Как получить патент?", "ru")
    assert message.user_key == key_of(USER) and len(message.user_key) == 32
    assert incoming.address == str(USER)


@pytest.mark.parametrize("data", [
    message_update(1, USER, "group", chat_type="group"),
    message_update(1, USER, "supergroup", chat_type="supergroup"),
    message_update(1, USER, "no sender", with_from=False),
    message_update(1, USER, "bot", **{"from": {"id": USER, "is_bot": True, "first_name": "B"}}),
    message_update(1, USER, new_chat_title="renamed"),
    message_update(1, USER, pinned_message={"message_id": 1, "date": 0, "chat": {"id": USER, "type": "private"}}),
    {"update_id": 1, "edited_message": message_update(1, USER, "edit")["message"]},
    {"update_id": 1},
    callback_update(1, USER, None),
    callback_update(1, USER, "x" * 65),
    callback_update(1, USER, "lang:\n"),
    callback_update(1, USER, "lang:ru", with_message=False),
], ids=["group", "supergroup", "no-sender", "bot", "service", "pinned", "edit", "empty", "no-data",
        "long-data", "control-char", "inline-message"])
def test_updates_the_bot_should_not_answer_are_dropped(data: dict[str, Any]) -> None:
    assert convert(data) is None


def test_a_button_press_carries_its_payload_and_the_query_id() -> None:
    incoming = convert(callback_update(9, USER, "fb:down:ru-patent", query_id="abc"))
    assert incoming.message.callback == "fb:down:ru-patent" and incoming.message.message_id == "cb:abc"
    assert incoming.address == str(USER)


def test_an_animation_is_a_video_not_a_file_and_its_caption_is_read() -> None:
    doc = {"file_id": "a", "file_unique_id": "au"}
    animation = {**doc, "width": 1, "height": 1, "duration": 1}
    incoming = convert(message_update(3, USER, animation=animation, document=doc, caption="is this legal?"))
    assert incoming.message.attachment == "video" and incoming.message.text == "is this legal?"
    assert incoming.message.attachment_note == "[video]"  # kind only: no file id, no content
    assert convert(message_update(4, USER, contact={"phone_number": "+1", "first_name": "A"})).message.attachment \
        == "other"


def test_text_longer_than_telegram_allows_is_cut() -> None:
    assert len(convert(message_update(5, USER, "x" * 50_000)).message.text) == 8192
