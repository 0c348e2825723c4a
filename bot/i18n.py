"""User-facing strings, translated in gettext catalogs: ``bot/locale/<lang>/LC_MESSAGES/hamroh.po``.

Why catalogs and not dicts in code: MRC staff and volunteer translators review tone in ordinary
PO editors, and a missing translation falls back (user's language → its fallback chain → English)
instead of breaking a reply. The message ids below are the English source texts; ``{name}``
placeholders are filled with ``str.format``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

__all__ = ["MESSAGES", "Translator", "load_catalogs"]

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "hamroh"

#: every message id the bot uses, with a note for translators
MESSAGES: dict[str, str] = {
    "consent": (
        "Hello! I am Hamroh, a free helper of the Migrant Resource Centre. I answer questions about "
        "working and living abroad safely and legally, and I can connect you with a counsellor.\n\n"
        "Before we start: we keep your messages and the language you choose so that we can answer you "
        "and a counsellor can help you. We do not share them. You can erase everything at any time "
        "with /delete.\n\nPlease choose your language to agree and continue."
    ),
    "choose_language": "Please choose your language.",
    "welcome": "Thank you. Write your question in your own words, for example: how do I get a work permit?",
    "language_set": "Your language is now English.",
    "answer_footer": "Source: {source}\nChecked on: {date}",
    "fallback_note": "This answer is not yet available in your language, so it is shown in {language}.",
    "was_this_helpful": "Did this answer help?",
    "clarify": "I found several answers. Which one do you mean?",
    "no_answer": (
        "I do not have a verified answer to this question. A counsellor of the Migrant Resource Centre "
        "can help you. Would you like to talk to a counsellor?"
    ),
    "talk_to_counsellor": "Talk to a counsellor",
    "ticket_opened": "A counsellor will reply to you here as soon as possible. You can keep writing.",
    "ticket_opened_after_hours": (
        "A counsellor will reply to you here when the centre opens. You can keep writing."
    ),
    "counsellor_has_it": "A counsellor is looking at your conversation and will reply here.",
    "counsellor_prefix": "Counsellor {name}:",
    "crisis": (
        "You are not alone. If you are in danger right now, call the emergency number or go to a safe "
        "place. A counsellor has been alerted and will contact you here as soon as possible."
    ),
    "crisis_numbers": "Emergency numbers in {country}:",
    "crisis_embassy": (
        "Contact your country's embassy or consulate: they must help citizens in danger, including "
        "with documents and a safe return."
    ),
    "greet": "Hello! How can I help you? Ask your question about working or living abroad.",
    "thanks": "You are welcome. Stay safe! Ask me anything else at any time.",
    "goodbye": "Goodbye, and stay safe. You can write here again at any time.",
    "feedback_thanks": "Thank you for your feedback.",
    "feedback_sorry": "Sorry this did not help. Would you like to talk to a counsellor?",
    "yes": "Yes",
    "no": "No",
    "helpful_yes": "👍 Yes",
    "helpful_no": "👎 No",
    "voice": (
        "Sorry, I cannot listen to voice messages. Please write your question, or ask for a counsellor."
    ),
    "file": "Sorry, I cannot read files or photos. Please write your question, or ask for a counsellor.",
    "sticker": "😊 Please write your question in words and I will try to help.",
    "help": (
        "Write your question in your own words. Commands:\n/language – change the language\n"
        "/human – talk to a counsellor\n/delete – erase everything about you\n/help – this message"
    ),
    "delete_confirm": "This will erase all your messages and data. This cannot be undone. Are you sure?",
    "delete_yes": "Yes, erase everything",
    "deleted": "Everything about you has been erased. Goodbye. Write /start to begin again.",
    "delete_cancelled": "Nothing was erased.",
    "too_long": "Your message is too long. Please write a shorter question.",
    "rate_limited": "You are sending messages very fast. Please wait a moment.",
    "error": "Sorry, something went wrong. Please try again in a minute.",
    "consent_first": "Please choose your language first, to agree and continue.",
    # second release: crisis before consent, the menu, profile questions, answers that fit a phone
    "consent_vital": (
        "If you tell us that you are in danger, we act at once, even before you agree: a counsellor "
        "sees that message to protect you."
    ),
    "consent_media": (
        "If you send a voice message, photo or file to a counsellor on Telegram, they can open it. The file "
        "stays with Telegram: we keep only a link to it, and it is deleted with your messages."
    ),
    "consent_agree": "✅ I agree",
    "consent_decline": "No, thank you",
    "declined": "Nothing was stored. You can write again at any time.",
    "menu": "Here is what I can help with. Choose a topic, or write your question in your own words.",
    "menu_group": "Choose what you want to know:",
    "menu_button": "☰ Menu",
    "group_documents": "Permits and registration",
    "group_before": "Before you go",
    "group_rights": "Work, pay and rights",
    "group_safety": "Safety and emergencies",
    "group_money": "Money and family",
    "group_return": "Coming home",
    "no_answer_menu": (
        "I do not have a verified answer to this. Please try other words, or choose a topic from the menu."
    ),
    "offer_human": "I could not find a verified answer again. Would you like a counsellor to help you?",
    "ask_citizenship": "The answer depends on your citizenship. Which country are you a citizen of?",
    "ask_location": "Which country are you in now?",
    "country_other": "Another country",
    "location_set": "Thank you. I will use {country} for emergency numbers.",
    "profile_set": "Thank you, noted: {country}.",
    "more_details": "More details",
    "sources_label": "Sources:",
    "checked_on": "Checked on {date}",
    "ticket_open_now": "The centre is open now. A counsellor will reply to you here soon.",
    "ticket_closed_now": (
        "The centre is closed now. A counsellor will reply here after it opens: {when} ({zone} time). "
        "If you are in danger, call the emergency number of the country you are in."
    ),
    "ticket_meanwhile": "While you wait, I can still answer your questions.",
    "back_to_bot": "↩ Back to the bot",
    "status_returned": "Your request for a counsellor is closed. I am answering you again: write your question.",
    "status_resolved": (
        "The counsellor has closed your request. If you need more help, write here or ask for a counsellor again."
    ),
    "status_transferred": "Your request was passed to {mrc}. Their counsellors will reply to you here.",
    "status_deleted": "Your request was closed because you erased your data.",
    "crisis_received": "A counsellor has your message and will reply here as soon as possible.",
    "crisis_ask_country": "Which country are you in now? Press it and I will give you the number to call.",
    "crisis_no_number": (
        "I do not have a verified emergency number for {country}. Ask people near you to call the police "
        "or an ambulance, or call your embassy."
    ),
    "self_harm": (
        "I am very sorry you feel this way. You matter, and you do not have to face this alone. Please "
        "talk to someone now. A counsellor has been alerted and will write to you here."
    ),
    "self_harm_numbers": "People you can call in {country}:",
    "voice_offer": (
        "I cannot listen to voice messages. Please write your question, or press the button for a counsellor."
    ),
    "file_offer": "I cannot read photos or files. Please write your question, or press the button for a counsellor.",
    "media_to_counsellor": "Your {kind} was passed to the counsellor.",
    "media_voice": "voice message",
    "media_photo": "photo",
    "media_file": "file",
    "lang_switch_offer": "You are writing in {language}. Shall I answer in {language}?",
    "feedback_question": "Did this answer help you?",
    "delete_open_ticket": (
        "Your request to a counsellor will be closed too. The counsellor will only see that you deleted "
        "your data, not what you wrote."
    ),
    # Telegram's command menu (setMyCommands), one short line each
    "cmd_start": "Start again",
    "cmd_menu": "What I can help with",
    "cmd_language": "Change the language",
    "cmd_profile": "Your citizenship and where you are",
    "cmd_human": "Talk to a counsellor",
    "cmd_delete": "Erase everything about you",
    "cmd_help": "How to use Hamroh",
}


def _read_po(path: Path) -> dict[str, str]:
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        catalog = read_po(fh)
    out: dict[str, str] = {}
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy:
            out[message.id] = str(message.string)
    return out


@lru_cache(maxsize=4)
def load_catalogs(locale_dir: Path = LOCALE_DIR) -> Mapping[str, Mapping[str, str]]:
    """Translations by language: msgid (the English text) → translated text."""
    catalogs: dict[str, Mapping[str, str]] = {}
    if locale_dir.is_dir():
        for po in sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
            catalogs[po.parts[-3]] = _read_po(po)
    return catalogs


class Translator:
    """``t(lang, key, **values)``: the user's language, else along the fallback chain, else English."""

    def __init__(self, fallbacks: Mapping[str, Iterable[str]] | None = None,
                 catalogs: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._fallbacks = {k: list(v) for k, v in (fallbacks or {}).items()}
        self._catalogs = catalogs if catalogs is not None else load_catalogs()

    def __call__(self, lang: str | None, key: str, **values: object) -> str:
        source = MESSAGES[key]
        for code in [lang or "en", *self._fallbacks.get(lang or "", [])]:
            text = self._catalogs.get(code, {}).get(source)
            if text:
                break
        else:
            text = source
        return text.format(**values) if values else text

    def has(self, lang: str, key: str) -> bool:
        return MESSAGES[key] in self._catalogs.get(lang, {})
