"""Rendering replies as Telegram HTML: escaped, split cleanly, buttons where they belong."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from bench.fake_telegram import telegram_html_problem
from bot.channels.telegram import TELEGRAM_TEXT_LIMIT, render_reply, split_html
from bot.engine import Button, Reply

pytestmark = pytest.mark.unit

FOOTER = "Source: {source}\nChecked on: {date}"


def translate(lang: str, key: str) -> str:
    assert key == "answer_footer"
    return FOOTER


def shown(text: str) -> str:
    problem, visible = telegram_html_problem(text)
    assert problem is None, problem
    return visible


def test_plain_text_is_escaped_for_html() -> None:
    [message] = render_reply(Reply("answer", 'a <b>bold</b> & "q" > 1', "en"))
    assert message.text == 'a &lt;b&gt;bold&lt;/b&gt; &amp; "q" &gt; 1'
    assert shown(message.text) == 'a <b>bold</b> & "q" > 1'
    assert message.keyboard is None


def test_a_long_reply_is_cut_at_paragraphs_and_buttons_go_on_the_last_part() -> None:
    paragraphs = [(f"{i} " + "word & more " * 60).strip() for i in range(12)]  # ~730 chars each, ~900 escaped
    buttons = ((Button("👍", "fb:up:x"), Button("👎", "fb:down:x")), (Button("Counsellor", "human:ask"),))
    messages = render_reply(Reply("answer", "\n\n".join(paragraphs), "en", buttons=buttons))
    assert len(messages) == 3
    assert all(len(m.text) <= TELEGRAM_TEXT_LIMIT for m in messages)
    assert [m.keyboard is None for m in messages] == [True, True, False]
    rows = messages[-1].keyboard.inline_keyboard  # type: ignore[union-attr]
    assert [[b.callback_data for b in row] for row in rows] == [["fb:up:x", "fb:down:x"], ["human:ask"]]
    received = [p for m in messages for p in shown(m.text).split("\n\n")]
    assert received == paragraphs


def test_an_entity_is_never_cut_even_in_a_text_of_nothing_but_ampersands() -> None:
    parts = split_html("&" * 10_000 + "<" * 3)
    assert all(len(p) <= TELEGRAM_TEXT_LIMIT for p in parts)
    assert all(re.fullmatch(r"(&amp;|&lt;)+", p) for p in parts)
    assert "".join(html.unescape(p) for p in parts) == "&" * 10_000 + "<" * 3


def test_lines_then_words_are_used_when_a_paragraph_is_too_long() -> None:
    line = "x" * 50
    text = "\n".join([line] * 200)  # one paragraph of 10,199 characters
    parts = split_html(text)
    assert all(len(p) <= TELEGRAM_TEXT_LIMIT for p in parts)
    assert all(set(p.split("\n")) == {line} for p in parts)  # no line cut in two
    words = " ".join(["word"] * 3000)
    assert all(set(p.split(" ")) == {"word"} for p in split_html(words))


def test_length_is_counted_as_telegram_counts_it_in_utf16_units() -> None:
    parts = split_html("😀" * 3000)  # 6,000 UTF-16 units
    assert len(parts) == 2
    assert all(len(p.encode("utf-16-le")) // 2 <= TELEGRAM_TEXT_LIMIT for p in parts)


def test_the_source_and_review_date_are_added_once_with_an_escaped_link() -> None:
    reply = Reply("answer", "Apply within 15 days.", "en", source_title="MRC <Guide>",
                  source_url="https://mrc.example/x?a=1&b=2", reviewed_on=dt.date(2024, 5, 1))
    [message] = render_reply(reply, translate=translate)
    assert message.text == ('Apply within 15 days.\n\nSource: <a href="https://mrc.example/x?a=1&amp;b=2">'
                            "MRC &lt;Guide&gt;</a>\nChecked on: 2024-05-01")
    shown(message.text)
    # the engine already wrote the footer into the text: nothing is added
    already = Reply("answer", "Apply.\n\nSource: MRC Guide (https://mrc.example)\nChecked on: 2024-05-01", "en",
                    source_title="MRC Guide", source_url="https://mrc.example", reviewed_on=dt.date(2024, 5, 1))
    assert render_reply(already, translate=translate)[0].text == html.escape(already.text, quote=False)


def test_a_non_http_source_url_is_not_made_a_link() -> None:
    reply = Reply("answer", "Text", "en", source_title="Leaflet", source_url="javascript:alert(1)")
    [message] = render_reply(reply, translate=translate)
    assert "<a " not in message.text and "Leaflet" in message.text


def test_invalid_buttons_are_dropped_rather_than_losing_the_message() -> None:
    buttons = ((Button("ok", "fb:up:1"), Button("too long", "x" * 65)), (Button("", "empty-label"),),
               (Button("multibyte", "é" * 33),))
    [message] = render_reply(Reply("clarify", "Which one?", "en", buttons=buttons))
    rows = message.keyboard.inline_keyboard  # type: ignore[union-attr]
    assert [[b.callback_data for b in row] for row in rows] == [["fb:up:1"]]


def test_an_empty_reply_sends_nothing_unless_it_has_buttons() -> None:
    assert render_reply(Reply("help", "  \n\n ", "en")) == []
    [message] = render_reply(Reply("language", "", "en", buttons=((Button("English", "lang:en"),),)))
    assert message.text.strip() and message.keyboard is not None
