"""The dialogue policy: what to say, and what to have done, for one message.

Why a policy apart from the engine: the decisions that matter to a migrant (crisis first, ask the
citizenship once, a counsellor after two misses, the language that stays put) must be readable
and testable on their own, in milliseconds, without a database or the embedding model. The policy
gets everything already known for the turn — the person, their conversation state, the open
ticket, the understanding and the search results — and returns the replies plus the actions the
engine carries out in the same transaction (open a ticket, add to it, close it, erase the person).
It changes the person and the state it is given and nothing else; the only thing it reads besides
its inputs is the knowledge base's catalogue, to render answers and menus.

The Rasa action API uses the same policy for its answers and MRC routing (``bot.rasa``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from handoff import ConsoleSettings, MediaRef, Reason, next_opening
from knowledge_base import Profile, SearchResult
from nlu import Understanding

from ..i18n import MESSAGES, Translator
from ._emergency import EmergencyContact, country_buttons, country_name, crisis_text
from ._render import LANGUAGE_NAMES, Catalogue, answer_reply, babel_locale, details_reply, short_title, to_script
from ._state import ConversationState
from ._types import Button, IncomingMessage, Reply

__all__ = [
    "MENU_GROUPS",
    "AppendToTicket",
    "CloseTicket",
    "Decision",
    "DialoguePolicy",
    "EngineOptions",
    "Erase",
    "OpenTicket",
    "Person",
    "PersonRecord",
    "TicketView",
    "Turn",
    "TurnAnalysis",
    "country_code",
    "language_buttons",
    "typed_command",
]

MAX_TEXT_CHARS = 4000
#: origin countries in the content: a shared location there is home, not a destination
_HOME_COUNTRIES = ("UZ", "TJ", "KG", "BD", "PK", "LK", "AF", "NP")


@dataclass(frozen=True)
class EngineOptions:
    """What the engine needs from ``config.yml``, already validated."""

    languages: tuple[str, ...]
    default_language: str = "en"
    emergency: Mapping[str, Sequence[EmergencyContact]] = field(default_factory=dict)
    #: MRC ids by the migrant's origin country, and the default MRC for everyone else
    mrc_by_country: Mapping[str, str] = field(default_factory=dict)
    mrc_by_language: Mapping[str, str] = field(default_factory=dict)
    default_mrc: str = ""
    #: the languages each MRC's counsellors read: a ticket goes where someone can read it
    mrc_languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: topic groups of the menu: group key -> topic ids
    menu_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


#: the menu's topic groups (labels in bot.i18n: group_<key>)
MENU_GROUPS: dict[str, tuple[str, ...]] = {
    "documents": ("ru-registration", "ru-patent", "ru-entry-stay-rules", "ru-medical-fingerprinting",
                  "ru-language-exam", "ru-entry-ban-check", "eaeu-workers", "kz-work-rules", "ru-irregular-status",
                  "bd-emigration-clearance", "pk-protector-registration", "lk-slbfe-registration"),
    "before": ("fake-job-offers", "agency-license-check", "recruitment-fees", "contract-essentials",
               "documents-checklist", "pre-departure-orientation", "eu-legal-pathways", "eps-korea",
               "uk-seasonal-work", "malaysia-work", "study-abroad", "irregular-migration-risks"),
    "rights": ("wage-complaints", "passport-retention", "gulf-work-rights", "gulf-residence-exit", "change-employer",
               "health-insurance-abroad", "iraq-foreign-workers", "women-migrants-safety", "social-security-pensions"),
    "safety": ("emergency-abroad", "trafficking-signs", "scam-compounds", "detention-deportation-rights",
               "death-abroad", "afghans-neighbours"),
    "money": ("remittances-safe", "financial-planning", "family-left-behind", "family-reunification",
              "ru-children-school"),
    "return": ("reintegration-services", "returnee-business", "skills-recognition", "return-savings-customs",
               "diaspora-programmes", "mrc-services"),
}


class PersonRecord(Protocol):
    """The bot's row of one person as the policy reads and changes it (``bot.tables.BotUser``)."""

    lang: str
    current_lang: str | None
    origin: str | None
    destination: str | None
    stage: str | None
    consent_at: dt.datetime | None
    last_question: str | None
    last_answer_entry: str | None
    mrc_id: str | None
    notified_ticket_id: int | None


@dataclass
class Person:
    """A :class:`PersonRecord` outside the database: the Rasa action API's caller, and tests."""

    lang: str
    current_lang: str | None = None
    origin: str | None = None
    destination: str | None = None
    stage: str | None = None
    consent_at: dt.datetime | None = None
    last_question: str | None = None
    last_answer_entry: str | None = None
    mrc_id: str | None = None
    notified_ticket_id: int | None = None


@dataclass(frozen=True)
class TicketView:
    """The person's open ticket, as far as the policy cares."""

    id: int
    crisis: bool
    crisis_kind: str | None = None


@dataclass(frozen=True)
class TurnAnalysis:
    """What understanding and search found, computed by the engine before the policy runs."""

    understanding: Understanding
    lang: str
    origin: str | None
    destination: str | None
    stage: str | None
    result: SearchResult | None
    #: the search of the previous question with the new profile slot ("and for Tajiks?")
    follow_up: SearchResult | None = None
    #: the language the message is written in, when it differs from the conversation's
    other_lang: str | None = None


@dataclass(frozen=True)
class Turn:
    message: IncomingMessage
    person: PersonRecord
    state: ConversationState
    now: dt.datetime
    analysis: TurnAnalysis | None = None
    ticket: TicketView | None = None
    #: a citizenship button answered the bot's question: the waiting question searched again
    rerun: SearchResult | None = None


@dataclass(frozen=True)
class OpenTicket:
    reason: Reason
    lang: str
    mrc_id: str
    crisis_kind: str | None = None
    question: str | None = None


@dataclass(frozen=True)
class AppendToTicket:
    """A line from the person on their open ticket (the bot's own replies are mirrored by the engine)."""

    text: str
    client_key: str
    attachment_kind: str | None = None
    #: the channel's handle of the file (Telegram's file_id), for the console to fetch on demand
    attachment: MediaRef | None = None


@dataclass(frozen=True)
class CloseTicket:
    reason: str = "returned"


@dataclass(frozen=True)
class Erase:
    """/delete confirmed: everything of the person goes, in this transaction."""


Action = OpenTicket | AppendToTicket | CloseTicket | Erase


@dataclass
class Decision:
    replies: list[Reply] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def erases(self) -> bool:
        return any(isinstance(a, Erase) for a in self.actions)

    @property
    def opens_crisis(self) -> bool:
        return any(isinstance(a, OpenTicket) and a.reason is Reason.CRISIS for a in self.actions)


def language_buttons(languages: Sequence[str]) -> tuple[tuple[Button, ...], ...]:
    buttons = [Button(LANGUAGE_NAMES.get(code, code), f"lang:{code}") for code in languages]
    return tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))


#: a message this short (in words) that names a country continues the previous question
FOLLOW_UP_WORDS = 7
#: a message needs this many words to count towards switching the conversation's language
SWITCH_WORDS = 4
#: names of the languages as people ask for them ("по-русски", "English please", "o'zbekcha"); the
#: names of nationalities ("uzbek", "tajik") are left out: "men uzbek" is a citizenship, not a request
_LANGUAGE_REQUESTS: dict[str, tuple[str, ...]] = {
    "en": ("english", "английский", "по-английски", "inglizcha", "ingliz tilida", "انگلیسی", "ইংরেজি", "انگریزی"),
    "ru": ("русский", "по-русски", "на русском", "russian", "ruscha", "rus tilida", "orus tilinde", "орусча",
           "русӣ", "po russki", "po-russki", "na russkom", "рус тилинде", "rus tilinde"),
    "uz": ("o'zbekcha", "ozbekcha", "o'zbek tilida", "ўзбекча", "узбекский", "по-узбекски", "uzbek tilida"),
    "ky": ("кыргызча", "киргизский", "по-киргизски", "kyrgyzcha"),
    "tg": ("тоҷикӣ", "точики", "таджикский", "по-таджикски", "tojikcha", "тоҷикча", "забони тоҷикӣ"),
    "kk": ("қазақша", "казахский", "по-казахски", "kazakhsha", "казакча"),
    "bn": ("বাংলা", "bangla", "bengali", "banglay", "বাংলায়"),
    "ur": ("اردو", "urdu", "urdu mein"),
    "ar": ("العربية", "عربي", "بالعربي", "arabic"),
    "ckb": ("کوردی", "kurdish", "sorani", "بە کوردی"),
    "si": ("සිංහල", "sinhala", "sinhalen", "සිංහලෙන්"),
    "ta": ("தமிழ்", "tamil", "தமிழில்"),
    "ps": ("پښتو", "pashto", "په پښتو"),
    "prs": ("دری", "dari", "فارسی", "به دری"),
}
_FILLER = frozenset({"please", "pls", "plz", "пожалуйста", "пж", "in", "на", "говори", "пиши", "speak", "write",
                     "iltimos", "lütfen", "tilida", "language", "язык", "языке"})


def asked_language(text: str, languages: Collection[str]) -> str | None:
    """The language a short message asks for by name ("English please", "по-русски"), or None."""
    folded = re.sub(r"[!?.,;:¿¡؟،]+", " ", text.lower()).strip()
    words = folded.split()
    if not words or len(words) > 4:
        return None
    for code, names in _LANGUAGE_REQUESTS.items():
        if code not in languages:
            continue
        for name in names:
            if folded == name or (name in folded and all(w in _FILLER or w in name.split() for w in words)):
                return code
    return None


#: the crisis kinds counsellors and the evaluation sets name (nlu is finer: abuse and threats are violence)
CRISIS_KIND = {"sexual_abuse": "violence", "threatened": "violence"}
#: commands a person may type in any channel ("/delete" in the web chat works as on Telegram)
_COMMANDS = frozenset({"start", "menu", "language", "profile", "human", "delete", "help"})
#: the understanding's confidence when a rule (not only the embedder) found a request for a person
_SURE_ASK_HUMAN = 0.9
_MESSAGE_KEYS: frozenset[str] = frozenset(MESSAGES)


def words(text: str) -> int:
    return len([w for w in text.split() if any(ch.isalpha() for ch in w)])


def typed_command(message: IncomingMessage) -> IncomingMessage:
    """"/delete" typed as text is the command, in the web chat as on Telegram (whose channel parses it)."""
    text = (message.text or "").strip()
    if message.command or message.callback or not text.startswith("/"):
        return message
    word = text[1:].split("@", 1)[0].strip().lower()
    return replace(message, text=None, command=word) if word in _COMMANDS else message


def country_code(payload: str) -> str | None:
    """The ISO country code of a country button's payload end ("UZ"); None for "other" ("ZZ") or junk."""
    return payload if len(payload) == 2 and payload.isalpha() and payload.isupper() and payload != "ZZ" else None


def _profile_of(person: PersonRecord) -> Profile:
    """The menu lists what is written for the person's citizenship and destination (not by stage:
    someone planning to leave reads about patents too)."""
    return Profile(origin=person.origin, destination=person.destination)


class DialoguePolicy:
    """Decides one turn; see the module docstring. Holds configuration only, no per-person data."""

    def __init__(self, *, translator: Translator, options: EngineOptions, console: ConsoleSettings) -> None:
        self._t = translator
        self._opt = options
        self._console = console

    # ------------------------------------------------------------------ entry points
    def decide(self, turn: Turn, kb: Catalogue | None) -> Decision:
        """The replies and actions for a consented person's (or a crisis-first person's) message."""
        d = Decision()
        message, person = turn.message, turn.person
        lang = person.current_lang or person.lang
        if message.command:
            d.replies = self._command(d, turn, message.command, lang)
        elif message.callback:
            d.replies = self._callback(d, turn, kb, message.callback, lang)
        elif message.attachment:
            d.replies = self._attachment(d, turn, kb, lang)
        elif person.consent_at is None:
            d.replies = self._unconsented(d, turn, lang)
        else:
            text = (message.text or "").strip()
            if not text:
                d.replies = [self.menu(lang)]
            elif len(text) > MAX_TEXT_CHARS or turn.analysis is None:
                d.replies = [Reply("error", self._t(lang, "too_long"), lang)]
            else:
                d.replies = self._text(d, turn, kb, text, message.message_id, turn.analysis)
        return d

    def consent_reply(self, lang: str, *, first: bool = True) -> Reply:
        t = self._t
        text = f"{t(lang, 'consent')}\n\n{t(lang, 'consent_vital')}\n\n{t(lang, 'consent_media')}"
        if not first:
            text = f"{t(lang, 'consent_first')}\n\n{text}"
        rows = ((Button(t(lang, "consent_agree"), f"consent:{lang}"), Button(t(lang, "consent_decline"), "decline")),
                *language_buttons(self._opt.languages))
        return Reply("consent", text, lang, buttons=rows)

    def welcome(self, lang: str) -> Reply:
        return Reply("welcome", f"{self._t(lang, 'language_set')}\n\n{self._t(lang, 'welcome')}", lang,
                     buttons=((Button(self._t(lang, "menu_button"), "menu"),),))

    def declined(self, lang: str) -> Reply:
        return Reply("declined", self._t(lang, "declined"), lang)

    def answer_kept_question(self, turn: Turn, kb: Catalogue | None, text: str, message_id: str) -> Decision:
        """The question sent before consent, answered right after it (never dropped)."""
        d = Decision()
        assert turn.analysis is not None
        d.replies = self._text(d, turn, kb, text, message_id, turn.analysis)
        return d

    def crisis_first(self, turn: Turn, text: str) -> Decision:
        """A person in danger before agreeing: the notice first and the crisis reply last, so the
        number to call is what stays on screen; a crisis ticket opens at once."""
        assert turn.analysis is not None
        d = Decision()
        crisis = self._crisis(d, turn, turn.analysis.lang, turn.analysis, text)
        d.replies = [self.consent_reply(turn.analysis.lang), *crisis]
        return d

    def mrc_for(self, origin: str | None, lang: str, assigned: str | None = None) -> str:
        """An MRC whose counsellors read the person's language: their country's if it does, else the
        first that does, else the per-language fallback, else the default."""
        if assigned:
            return assigned
        readers = [mrc for mrc, langs in self._opt.mrc_languages.items() if lang in langs]
        home = self._opt.mrc_by_country.get(origin or "")
        if home and (home in readers or not readers):
            return home
        if readers:
            return readers[0]
        return self._opt.mrc_by_language.get(lang) or home or self._opt.default_mrc

    def search_replies(self, kb: Catalogue, person: PersonRecord, state: ConversationState, text: str, lang: str,
                       result: SearchResult | None, *, ask: bool = True) -> list[Reply]:
        """A search result as replies: the answer, a choice of entries, a citizenship question or
        "no verified answer" (also the Rasa action API's decision)."""
        return self._question(kb, person, state, text, lang, result, ask=ask)

    def menu(self, lang: str) -> Reply:
        t = self._t
        groups = self._opt.menu_groups or MENU_GROUPS
        buttons = [Button(t(lang, f"group_{key}"), f"menu:{key}") for key in groups if f"group_{key}" in _MESSAGE_KEYS]
        rows = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
        rows.append((Button(t(lang, "talk_to_counsellor"), "human:menu"),))
        return Reply("menu", t(lang, "menu"), lang, buttons=tuple(rows))

    # ------------------------------------------------------------------ commands and buttons
    def _unconsented(self, d: Decision, turn: Turn, lang: str) -> list[Reply]:
        """A person whose crisis was handled before they agreed: everything they write goes to the
        crisis ticket (never silence), and the consent is asked again for the rest."""
        text = (turn.message.text or "").strip()
        analysis = turn.analysis
        if analysis is not None and analysis.understanding.act == "crisis":
            replies = self._crisis(d, turn, lang, analysis, text)
        else:
            if turn.ticket is not None and text:
                d.actions.append(AppendToTicket(text, turn.message.message_id))
            replies = [Reply("counsellor_has_it", self._t(lang, "crisis_received"), lang)]
        return [self.consent_reply(lang), *replies]

    def _command(self, d: Decision, turn: Turn, command: str, lang: str) -> list[Reply]:
        t = self._t
        if command == "language":
            return [Reply("language", t(lang, "choose_language"), lang,
                          buttons=language_buttons(self._opt.languages))]
        if command == "human":
            return self._open(d, turn, Reason.USER_ASKED, lang)
        if command == "delete":
            text = t(lang, "delete_confirm")
            if turn.ticket is not None:
                # the privacy notice's rule, said where it applies: the request closes, its words go
                text = f"{text}\n\n{t(lang, 'delete_open_ticket')}"
            return [Reply("delete_confirm", text, lang,
                          buttons=((Button(t(lang, "delete_yes"), "delete:yes"), Button(t(lang, "no"), "delete:no")),))]
        if command == "profile":
            return [self._ask_origin(lang, turn.state, None)]
        return [self.menu(lang)]

    def _menu_group(self, kb: Catalogue | None, turn: Turn, key: str, lang: str) -> Reply:
        topics = (self._opt.menu_groups or MENU_GROUPS).get(key, ())
        found: list[tuple[int, Button]] = []
        if kb is not None:
            profile = _profile_of(turn.person)
            for entry in kb.entries:
                if entry.topic in topics and entry.status == "published" and profile.admits(entry):
                    a = kb.answer_for(entry, lang)
                    tr = entry.translations.get(a.lang)
                    label = to_script(short_title(a.title, tr.short_title if tr else None), a.lang, turn.state.script)
                    found.append((topics.index(entry.topic), Button(label, f"entry:{entry.id}"[:64])))
        found.sort(key=lambda pair: pair[0])
        rows: list[tuple[Button, ...]] = [(button,) for _, button in found[:8]]
        rows.append((Button(self._t(lang, "menu_button"), "menu"),))
        return Reply("menu", self._t(lang, "menu_group"), lang, buttons=tuple(rows))

    def _callback(self, d: Decision, turn: Turn, kb: Catalogue | None, data: str, lang: str) -> list[Reply]:
        t = self._t
        person, state = turn.person, turn.state
        head, _, rest = data.partition(":")
        if head in ("lang", "consent") and rest in self._opt.languages:
            return [self._choose_language(turn, rest)]
        if head == "decline":
            return [self.declined(lang)]
        if head == "delete":
            if rest == "yes":
                d.actions.append(Erase())
                return [Reply("deleted", t(lang, "deleted"), lang)]
            return [Reply("delete_cancelled", t(lang, "delete_cancelled"), lang)]
        if head == "country":
            return self._country(turn, kb, rest, lang)
        if head == "menu":
            return [self._menu_group(kb, turn, rest, lang) if rest else self.menu(lang)]
        if head == "back":
            d.actions.append(CloseTicket("returned"))
            person.notified_ticket_id = None
            extra = {"ticket": "closed"} if turn.ticket is not None else {}
            return [Reply("status", t(lang, "status_returned"), lang, extra=extra,
                          buttons=((Button(t(lang, "menu_button"), "menu"),),))]
        if head == "more" and kb is not None and kb.get(rest) is not None:
            return [details_reply(kb, t, rest, lang, script=state.script if lang == "uz" else None)]
        if head == "fb":
            return [self._feedback(rest, lang)]
        if head == "human":
            reason = {"neg": Reason.NEGATIVE_FEEDBACK, "att": Reason.UNREADABLE_ATTACHMENT,
                      "noans": Reason.NO_ANSWER}.get(rest.split(":")[0], Reason.USER_ASKED)
            question = person.last_question if reason in (Reason.NO_ANSWER, Reason.NEGATIVE_FEEDBACK) else None
            return self._open(d, turn, reason, lang, question=question)
        if head == "entry" and kb is not None and kb.get(rest) is not None:
            return [self._answer(kb, person, state, rest, lang)]
        return [self.menu(lang)]

    def _choose_language(self, turn: Turn, lang: str) -> Reply:
        """A language button: the conversation's language from now on (and the consent, if pending)."""
        t = self._t
        person, state = turn.person, turn.state
        changed = person.lang != lang or person.current_lang != lang
        person.lang = person.current_lang = lang
        state.other_lang, state.other_count = None, 0
        if person.consent_at is None:
            person.consent_at = turn.now
            return Reply("welcome", f"{t(lang, 'language_set')}\n\n{t(lang, 'welcome')}", lang)
        return Reply("language", t(lang, "language_set") if changed else t(lang, "welcome"), lang)

    def _feedback(self, data: str, lang: str) -> Reply:
        t = self._t
        verdict, _, entry_id = data.partition(":")
        if verdict == "down":
            return Reply("feedback", t(lang, "feedback_sorry"), lang, entry_id=entry_id or None,
                         buttons=((Button(t(lang, "talk_to_counsellor"), f"human:neg:{entry_id}"[:64]),),))
        return Reply("feedback", t(lang, "feedback_thanks"), lang)

    def _set_location(self, person: PersonRecord, state: ConversationState, code: str | None) -> None:
        state.location = code or None
        if code and not person.destination and code not in _HOME_COUNTRIES:
            person.destination = code

    def _crisis_numbers(self, turn: Turn, code: str | None, lang: str) -> Reply:
        kind = turn.ticket.crisis_kind if turn.ticket is not None else None
        return Reply("crisis", crisis_text(self._t, self._opt.emergency, code, lang, kind=kind), lang,
                     extra={"crisis": CRISIS_KIND.get(kind or "", kind or "")})

    def _country(self, turn: Turn, kb: Catalogue | None, data: str, lang: str) -> list[Reply]:
        """A country button: where the person is now (crisis numbers) or their citizenship."""
        person, state = turn.person, turn.state
        slot, _, code = data.rpartition(":")
        code = country_code(code) or ""
        waiting, question = state.waiting, state.waiting_question
        state.waiting = state.waiting_question = None
        if slot == "origin":
            person.origin = code or None
            if "origin" not in state.asked:
                state.asked.append("origin")
            if question:
                # answer the question the bot asked about, now that the profile has the missing slot
                if kb is None or turn.rerun is None:
                    return [self._no_answer(state, lang)]
                return self._question(kb, person, state, question, lang, turn.rerun, ask=False)
            return [Reply("profile", self._t(lang, "profile_set", country=country_name(code, lang) if code else "—"),
                          lang)]
        self._set_location(person, state, code)
        if waiting == "crisis_location" or slot == "crisis":
            return [self._crisis_numbers(turn, code or None, lang)]
        return [Reply("location", self._t(lang, "location_set", country=country_name(code, lang) if code else "—"),
                      lang)]

    def _attachment(self, d: Decision, turn: Turn, kb: Catalogue | None, lang: str) -> list[Reply]:
        t = self._t
        message, person, state = turn.message, turn.person, turn.state
        if message.attachment == "location":
            code = message.location_country
            if code:
                self._set_location(person, state, code)
            if state.waiting == "crisis_location" and code:
                state.waiting = None
                return [self._crisis_numbers(turn, code, lang)]
            return [Reply("location", t(lang, "location_set", country=country_name(code, lang) if code else "—"),
                          lang)]
        if message.attachment == "sticker":
            return [Reply("attachment", t(lang, "sticker"), lang)]
        replies: list[Reply] = []
        # a caption is read as text: a photo of a contract with "is this legal?" is a question
        if turn.analysis is not None and person.consent_at is not None:
            replies = self._text(d, turn, kb, (message.text or "").strip(), message.message_id, turn.analysis)
        kind_key = {"voice": "media_voice", "photo": "media_photo"}.get(message.attachment or "", "media_file")
        if turn.ticket is not None:
            note = message.attachment_note or f"[{message.attachment}]"
            d.actions.append(AppendToTicket(note, f"{message.message_id}#media", attachment_kind=message.attachment,
                                            attachment=message.attachment_ref))
            replies.append(Reply("counsellor_has_it", t(lang, "media_to_counsellor", kind=t(lang, kind_key)), lang))
            return replies
        key = "voice_offer" if message.attachment == "voice" else "file_offer"
        if not replies:
            replies.append(Reply("offer_human", t(lang, key), lang,
                                 buttons=((Button(t(lang, "talk_to_counsellor"), "human:att"),),)))
        return replies

    # ------------------------------------------------------------------ text
    def _text(self, d: Decision, turn: Turn, kb: Catalogue | None, text: str, message_id: str,
              analysis: TurnAnalysis) -> list[Reply]:
        person, state = turn.person, turn.state
        u, lang = analysis.understanding, analysis.lang
        person.current_lang = lang
        if u.script in ("Latn", "Cyrl") and (u.lang == "uz" or lang == "uz") and words(text) >= 2:
            state.script = u.script
        person.origin, person.destination, person.stage = analysis.origin, analysis.destination, analysis.stage
        if u.entities.destination and analysis.stage in (None, "abroad"):
            state.location = u.entities.destination
        if u.act == "crisis":
            return self._crisis(d, turn, lang, analysis, text)
        replies: list[Reply] = []
        ticket = turn.ticket
        if ticket is not None:
            d.actions.append(AppendToTicket(text, message_id))
            if ticket.crisis or u.act == "ask_human":
                # after a crisis reply, "помогите" or "help" is never small talk: the counsellor has it
                key = "crisis_received" if ticket.crisis else "counsellor_has_it"
                replies.append(Reply("counsellor_has_it", self._t(lang, key), lang))
                if u.act != "question":
                    return replies
        routed = self._route_act(d, turn, text, lang, u)
        if routed is not None:
            return [*replies, *routed]
        if analysis.other_lang:
            replies.extend(self._maybe_offer_switch(state, analysis.other_lang, lang))
        else:
            state.other_lang, state.other_count = None, 0
        if kb is None:
            return [*replies, self._no_answer(state, lang)]
        follow = self._follow_up(person, analysis)
        if follow is not None:
            # "and for Tajik citizens?": the previous question again, with the new profile slot
            question = state.waiting_question or state.last_question or text
            state.waiting = state.waiting_question = None
            return [*replies, *self._question(kb, person, state, question, lang, follow, ask=False)]
        state.waiting = state.waiting_question = None
        return [*replies, *self._question(kb, person, state, text, lang, analysis.result)]

    def _route_act(self, d: Decision, turn: Turn, text: str, lang: str, u: Understanding) -> list[Reply] | None:
        """Replies for what is not a question: a language asked for by name, a person, the menu,
        small talk. None: treat the message as a question."""
        asked = asked_language(text, self._opt.languages)
        if asked is not None:
            # "English please", "по-русски": an explicit choice, kept until the person chooses again
            return [self._choose_language(turn, asked)]
        if u.act == "ask_human" and u.confidence < _SURE_ASK_HUMAN:
            # only the embedder thinks so ("telefon tavsiya qiling" looks like "give me a person"):
            # offer a counsellor with a button instead of putting the person in the queue
            return [Reply("offer_human", self._t(lang, "no_answer"), lang,
                          buttons=((Button(self._t(lang, "talk_to_counsellor"), "human:ask"),),
                                   (Button(self._t(lang, "menu_button"), "menu"),)))]
        if u.act == "ask_human":
            return self._open(d, turn, Reason.USER_ASKED, lang)
        if u.act == "menu":
            return [self.menu(lang)]
        if u.act in ("greet", "thanks", "goodbye"):
            return [Reply("smalltalk", self._t(lang, u.act), lang)]
        return None

    @staticmethod
    def _follow_up(person: PersonRecord, analysis: TurnAnalysis) -> SearchResult | None:
        """The previous question's search with the new slot, when it should replace this message's
        own search: it points at another entry, and this message has no confident answer of its own
        (or one on the same topic)."""
        follow, result = analysis.follow_up, analysis.result
        if follow is None:
            return None
        follow_entry = _for_profile(follow, person.origin) or _confident(follow)
        own_entry = (_for_profile(result, person.origin) or _confident(result)) if result is not None else None
        own_confident = result is not None and _confident(result) is not None
        same_topic = (own_confident and bool(follow.hits) and result is not None and result.answer is not None
                      and follow.hits[0].entry.topic == result.answer.topic)
        if follow_entry is not None and follow_entry != own_entry and (not own_confident or same_topic):
            return follow
        return None

    def _maybe_offer_switch(self, state: ConversationState, other: str, lang: str) -> list[Reply]:
        """Two or more substantial messages in another language: offer it with one button."""
        if state.other_lang == other:
            state.other_count += 1
        else:
            state.other_lang, state.other_count = other, 1
        if state.other_count < 2:
            return []
        name = LANGUAGE_NAMES.get(other, other)
        return [Reply("language", self._t(other, "lang_switch_offer", language=name), other,
                      buttons=((Button(name, f"lang:{other}"), Button(LANGUAGE_NAMES.get(lang, lang),
                                                                        f"lang:{lang}")),))]

    def _question(self, kb: Catalogue, person: PersonRecord, state: ConversationState, text: str, lang: str,
                  result: SearchResult | None, *, ask: bool = True) -> list[Reply]:
        t = self._t
        person.last_question = text[:1000]
        state.last_question = text[:1000]
        if result is None:
            return [self._no_answer(state, lang)]
        if ask and self._needs_origin(person, state, result):
            return [self._ask_origin(lang, state, text)]
        chosen = _for_profile(result, person.origin) or _confident(result)
        if chosen is not None:
            state.misses = 0
            return [self._answer(kb, person, state, chosen, lang)]
        if result.decision == "clarify" and result.candidates:
            state.misses = 0
            script = state.script if lang == "uz" else None
            rows = []
            for c in result.candidates[:3]:
                entry = kb.get(c.entry_id)
                tr = entry.translations.get(c.lang) if entry is not None else None
                label = to_script(short_title(c.title, tr.short_title if tr else None), c.lang, script)
                rows.append((Button(label, f"entry:{c.entry_id}"[:64]),))
            rows.append((Button(t(lang, "menu_button"), "menu"),))
            return [Reply("clarify", to_script(t(lang, "clarify"), lang, script), lang, buttons=tuple(rows),
                          extra={"topics": " ".join(c.topic for c in result.candidates[:3])})]
        return [self._no_answer(state, lang)]

    def _no_answer(self, state: ConversationState, lang: str) -> Reply:
        """No verified answer: say so and offer the menu; a counsellor only after two misses in a row
        (offering one on every miss would flood the queue with weather questions)."""
        t = self._t
        state.misses += 1
        if state.misses >= 2:
            return Reply("offer_human", f"{t(lang, 'no_answer_menu')}\n\n{t(lang, 'offer_human')}", lang,
                         extra={"no_answer": "true"},
                         buttons=((Button(t(lang, "talk_to_counsellor"), "human:noans"),),
                                  (Button(t(lang, "menu_button"), "menu"),)))
        return Reply("no_answer", t(lang, "no_answer_menu"), lang, buttons=((Button(t(lang, "menu_button"), "menu"),),))

    @staticmethod
    def _needs_origin(person: PersonRecord, state: ConversationState, result: SearchResult) -> bool:
        """Ask the person's citizenship once, and only when the best answers differ by it."""
        if person.origin or "origin" in state.asked or not result.hits or result.decision == "handoff":
            return False
        # the topics the search is considering: a topic whose entries differ by citizenship
        for topic in result.ranked_topics()[:2]:
            same_topic = [h.entry for h in result.hits[:6] if h.entry.topic == topic]
            origins = {tuple(sorted(e.origin)) for e in same_topic}
            if len(same_topic) >= 2 and len(origins) >= 2 and any(origins):
                return True
        return False

    def _ask_origin(self, lang: str, state: ConversationState, question: str | None) -> Reply:
        state.waiting = "origin"
        state.waiting_question = question
        if "origin" not in state.asked:
            state.asked.append("origin")
        first = ("UZ", "TJ", "KG", "KZ", "BD", "PK", "LK", "AF", "IQ")
        buttons = [Button(country_name(c, lang), f"country:origin:{c}") for c in first]
        rows = [tuple(buttons[i:i + 3]) for i in range(0, len(buttons), 3)]
        rows.append((Button(self._t(lang, "country_other"), "country:origin:ZZ"),))
        return Reply("ask", self._t(lang, "ask_citizenship"), lang, buttons=tuple(rows), extra={"slot": "origin"})

    def _answer(self, kb: Catalogue, person: PersonRecord, state: ConversationState, entry_id: str,
                lang: str) -> Reply:
        person.last_answer_entry = entry_id
        state.last_entry = entry_id
        entry = kb.get(entry_id)
        state.last_topic = entry.topic if entry is not None else None
        return answer_reply(kb, self._t, entry_id, lang, script=state.script if lang == "uz" else None)

    # ------------------------------------------------------------------ handoff and crisis
    def _open(self, d: Decision, turn: Turn, reason: Reason, lang: str, *, question: str | None = None) -> list[Reply]:
        """A ticket for a counsellor, and a reply that keeps its promise: open now, or when."""
        t = self._t
        mrc_id = self.mrc_for(turn.person.origin, lang, turn.person.mrc_id)
        d.actions.append(OpenTicket(reason, lang, mrc_id, None, question))
        mrc = self._console.mrc(mrc_id)
        now = turn.now
        extra = {"ticket": "open"}
        if mrc is not None and next_opening(now, mrc) > now + dt.timedelta(minutes=1):
            opens = next_opening(now, mrc).astimezone(mrc.zone)
            text = t(lang, "ticket_closed_now", when=format_when(opens, lang), zone=mrc.name)
            extra["after_hours"] = "true"
        else:
            text = t(lang, "ticket_open_now")
        text = f"{text}\n\n{t(lang, 'ticket_meanwhile')}"
        return [Reply("ticket_opened", text, lang, extra=extra,
                      buttons=((Button(t(lang, "back_to_bot"), "back"),), (Button(t(lang, "menu_button"), "menu"),)))]

    def _crisis(self, d: Decision, turn: Turn, lang: str, analysis: TurnAnalysis, text: str) -> list[Reply]:
        """The crisis reply at once, a crisis-priority ticket (the alert follows the commit); ask
        where the person is when no country is known, with buttons in the same reply."""
        person, state = turn.person, turn.state
        kind = analysis.understanding.crisis_kind
        if analysis.understanding.entities.destination:
            state.location = analysis.understanding.entities.destination
        d.actions.append(OpenTicket(Reason.CRISIS, lang, self.mrc_for(person.origin, lang, person.mrc_id), kind, text))
        # the person's home country is a guess, not where they are: without a place, ask
        country = state.location or person.destination
        extra = {"crisis": CRISIS_KIND.get(kind or "", kind or ""), "ticket": "open", "ticket_priority": "crisis"}
        if country:
            return [Reply("crisis", crisis_text(self._t, self._opt.emergency, country, lang, kind=kind), lang,
                          extra=extra)]
        state.waiting = "crisis_location"
        body = crisis_text(self._t, self._opt.emergency, None, lang, kind=kind)
        ask = self._t(lang, "crisis_ask_country")
        buttons = country_buttons(lang, "country:crisis", first=(), other_label=self._t(lang, "country_other"))
        return [Reply("crisis", f"{body}\n\n{ask}", lang, buttons=buttons, extra=extra)]


def _confident(result: SearchResult) -> str | None:
    return result.answer.entry_id if result.decision == "answer" and result.answer is not None else None


def _for_profile(result: SearchResult, origin: str | None) -> str | None:
    """The entry written for the person's citizenship, when the search is torn between it and others.

    An entry for everyone (``origin: []``) and one for Tajik citizens both match a Tajik person;
    the specific one is the answer. Only among what the search would answer or offer as choices
    (never to override "no answer"), and only when exactly one of them is written for that country.
    """
    if not origin or not result.hits or result.decision not in ("answer", "clarify"):
        return None
    if result.decision == "answer":
        topic = result.hits[0].entry.topic
        pool = [h.entry for h in result.hits[:5] if h.entry.topic == topic]
    else:
        ids = {c.entry_id for c in result.candidates}
        pool = [h.entry for h in result.hits[:5] if h.entry.id in ids]
    specific = [e.id for e in pool if origin in e.origin]
    return specific[0] if len(specific) == 1 else None


def format_when(moment: dt.datetime, lang: str) -> str:
    """"Tuesday, 8 December, 09:00" in the reader's language (CLDR), in the MRC's time zone."""
    from babel.dates import format_datetime

    for loc in (babel_locale(lang), "en"):
        try:
            return str(format_datetime(moment, "EEEE, d MMMM, HH:mm", tzinfo=moment.tzinfo, locale=loc))
        except Exception:  # a locale Babel lacks: try English
            continue
    return moment.strftime("%A %d %B %H:%M")
