"""The dialogue policy on its own: no database, no model, a handful of fake entries.

Each test is a decision a migrant would notice (a number to call, a counsellor who has the message,
a question asked once, a menu instead of a wrong answer), checked in milliseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from bot.engine import (
    AppendToTicket,
    ConversationState,
    DialoguePolicy,
    EmergencyContact,
    EngineOptions,
    Erase,
    IncomingMessage,
    OpenTicket,
    Person,
    TicketView,
    Turn,
    TurnAnalysis,
)
from bot.i18n import Translator
from handoff import ConsoleSettings, MrcSettings, Reason
from knowledge_base import Answer, Entry, Hit, SearchResult
from nlu import Entities, Understanding

NOON = dt.datetime(2026, 12, 8, 7, 0, tzinfo=dt.UTC)  # Tuesday 12:00 in Tashkent
NIGHT = dt.datetime(2026, 12, 8, 17, 13, tzinfo=dt.UTC)  # Tuesday 22:13 in Tashkent


def _entry(id_: str, topic: str, origin: Sequence[str] = ()) -> Entry:
    text = f"The answer of {id_}: go to the office within seven working days with your passport and card."
    return Entry.model_validate({
        "id": id_, "topic": topic, "status": "published", "origin": list(origin), "destination": ["RU"],
        "reviewed_on": "2026-11-20", "review_by": "2027-05-20",
        "sources": [{"title": "Official page", "url": "https://example.gov/rules/page"}],
        "translations": {"en": {"title": f"Title of {id_}", "answer": text, "questions": ["q?"]},
                         "ru": {"title": f"Заголовок {id_}", "answer": text, "questions": ["в?"]}}})


class FakeCatalogue:
    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)

    def get(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def answer_for(self, entry: Entry, lang: str | None) -> Answer:
        code = lang if lang in entry.translations else "en"
        tr = entry.translations[code]
        return Answer(entry.id, entry.topic, code, lang or code, code != lang, tr.title, tr.answer,
                      tuple(entry.sources), entry.reviewed_on, entry.safety)


GENERAL = _entry("ru-registration", "ru-registration")
TAJIK = _entry("ru-registration-tj", "ru-registration", origin=["TJ"])
PATENT = _entry("ru-patent", "ru-patent")
KB = FakeCatalogue([GENERAL, TAJIK, PATENT])


def _hit(entry: Entry, score: float) -> Hit:
    return Hit(entry, score, score, 1, 1)


def _answer(entry: Entry, *others: Entry) -> SearchResult:
    a = KB.answer_for(entry, "en")
    return SearchResult("answer", "test", [_hit(entry, 0.9), *[_hit(o, 0.5) for o in others]], answer=a)


def _nothing() -> SearchResult:
    return SearchResult("handoff", "test", [])


@pytest.fixture(scope="module")
def policy() -> DialoguePolicy:
    tashkent = MrcSettings(id="tashkent", name="MRC Tashkent", country="UZ", timezone="Asia/Tashkent",
                           languages=("en", "ru", "uz"), office_hours={"mon-fri": "09:00-18:00"})
    kabul = MrcSettings(id="islamabad", name="MRC Islamabad", country="PK", timezone="Asia/Karachi",
                        languages=("ur", "ps", "prs"))
    console = ConsoleSettings(mrcs=(tashkent, kabul), session_secret="x" * 32)
    options = EngineOptions(
        languages=("en", "ru", "uz", "prs"), emergency={
            "RU": (EmergencyContact("Emergency", "112", None, "emergency", "https://example.gov/112"),)},
        mrc_by_country={"UZ": "tashkent", "PK": "islamabad"}, default_mrc="tashkent",
        mrc_languages={"tashkent": ("en", "ru", "uz"), "islamabad": ("ur", "ps", "prs")})
    return DialoguePolicy(translator=Translator(), options=options, console=console)


def _turn(text: str, act: str = "question", *, lang: str = "en", result: SearchResult | None = None,
          person: Person | None = None, state: ConversationState | None = None, ticket: TicketView | None = None,
          now: dt.datetime = NOON, crisis_kind: str | None = None, origin: str | None = None,
          destination: str | None = None, follow_up: SearchResult | None = None, confidence: float = 1.0) -> Turn:
    person = person or Person(lang, lang, consent_at=NOON)
    u = Understanding(lang, "Latn", act, crisis_kind=crisis_kind,  # type: ignore[arg-type]
                      entities=Entities(origin=origin, destination=destination), confidence=confidence,
                      lang_confident=True)
    analysis = TurnAnalysis(u, lang, origin or person.origin, destination or person.destination, person.stage,
                            result, follow_up)
    message = IncomingMessage("web", "k1", f"m{id(u)}", text=text)
    return Turn(message, person, state or ConversationState(), now, analysis, ticket)


def test_a_crisis_before_consent_gets_the_number_last_and_a_crisis_ticket(policy: DialoguePolicy) -> None:
    person = Person("ru", "ru")
    turn = _turn("помогите хозяин бьёт меня я в Москве", "crisis", lang="ru", person=person, destination="RU",
                 crisis_kind="violence")
    d = policy.crisis_first(turn, "помогите хозяин бьёт меня я в Москве")
    assert [r.kind for r in d.replies] == ["consent", "crisis"], "the number to call stays on screen"
    assert "112" in d.replies[-1].text and d.replies[-1].lang == "ru"
    [action] = d.actions
    assert isinstance(action, OpenTicket) and action.reason is Reason.CRISIS and action.mrc_id == "tashkent"


def test_a_crisis_with_no_known_place_asks_where_with_buttons(policy: DialoguePolicy) -> None:
    state = ConversationState()
    d = policy.decide(_turn("help me they locked me in", "crisis", state=state, crisis_kind="locked_in"), KB)
    [reply] = d.replies
    assert reply.kind == "crisis" and any(b.payload.startswith("country:crisis:") for row in reply.buttons
                                          for b in row)
    assert state.waiting == "crisis_location"


def test_help_after_a_crisis_goes_to_the_counsellor_never_small_talk(policy: DialoguePolicy) -> None:
    ticket = TicketView(7, crisis=True, crisis_kind="violence")
    d = policy.decide(_turn("help", "greet", ticket=ticket), KB)
    assert [r.kind for r in d.replies] == ["counsellor_has_it"]
    assert d.actions == [AppendToTicket("help", d.actions[0].client_key)]  # type: ignore[union-attr]


def test_citizenship_is_asked_once_and_only_when_the_answers_differ_by_it(policy: DialoguePolicy) -> None:
    state = ConversationState()
    torn = _answer(GENERAL, TAJIK)
    d = policy.decide(_turn("how many days to register", result=torn, state=state), KB)
    assert d.replies[0].kind == "ask" and state.waiting == "origin"
    again = policy.decide(_turn("how many days to register", result=torn, state=state), KB)
    assert again.replies[0].kind == "answer", "asked once, never twice"
    plain = policy.decide(_turn("patent price", result=_answer(PATENT), state=ConversationState()), KB)
    assert plain.replies[0].kind == "answer", "no question when the answers do not differ by citizenship"


def test_a_tajik_person_gets_the_entry_written_for_tajik_citizens(policy: DialoguePolicy) -> None:
    person = Person("en", "en", origin="TJ", consent_at=NOON)
    d = policy.decide(_turn("how many days to register", result=_answer(GENERAL, TAJIK), person=person), KB)
    assert d.replies[0].entry_id == "ru-registration-tj"


def test_and_for_tajik_citizens_reruns_the_last_question(policy: DialoguePolicy) -> None:
    state = ConversationState(last_question="how many days to register", asked=["origin"])
    person = Person("en", "en", consent_at=NOON)
    follow = _answer(GENERAL, TAJIK)
    d = policy.decide(_turn("and for Tajiks?", result=_nothing(), person=person, state=state, origin="TJ",
                            follow_up=follow), KB)
    assert d.replies[0].entry_id == "ru-registration-tj"
    assert person.origin == "TJ" and state.last_question == "how many days to register"


def test_no_answer_offers_the_menu_and_a_counsellor_only_at_the_second_miss(policy: DialoguePolicy) -> None:
    state = ConversationState()
    first = policy.decide(_turn("what is the weather", result=_nothing(), state=state), KB)
    second = policy.decide(_turn("recommend a phone", result=_nothing(), state=state), KB)
    assert first.replies[0].kind == "no_answer" and second.replies[0].kind == "offer_human"
    assert [b.payload for row in second.replies[0].buttons for b in row] == ["human:noans", "menu"]
    assert first.actions == second.actions == [], "a miss never fills the queue by itself"


def test_help_opens_the_menu_and_thanks_is_small_talk(policy: DialoguePolicy) -> None:
    menu = policy.decide(_turn("help", "menu"), KB).replies[0]
    assert menu.kind == "menu" and any(b.payload.startswith("menu:") for row in menu.buttons for b in row)
    assert policy.decide(_turn("thanks", "thanks"), KB).replies[0].kind == "smalltalk"


def test_a_guessed_request_for_a_person_is_offered_not_queued(policy: DialoguePolicy) -> None:
    d = policy.decide(_turn("telefon tavsiya qiling", "ask_human", confidence=0.6), KB)
    assert d.replies[0].kind == "offer_human" and d.actions == []
    sure = policy.decide(_turn("I want a real person", "ask_human", confidence=1.0), KB)
    assert isinstance(sure.actions[0], OpenTicket) and sure.actions[0].reason is Reason.USER_ASKED


def test_a_request_after_hours_says_when_the_mrc_opens(policy: DialoguePolicy) -> None:
    night = policy.decide(_turn("I want a real person", "ask_human", now=NIGHT), KB).replies[0]
    day = policy.decide(_turn("I want a real person", "ask_human", now=NOON), KB).replies[0]
    assert night.extra.get("after_hours") == "true" and "09:00" in night.text and "Wednesday" in night.text
    assert "after_hours" not in day.extra
    assert next(b.payload for row in night.buttons for b in row) == "back", "the person can go back to the bot"


def test_a_dari_request_goes_to_an_mrc_whose_counsellors_read_dari(policy: DialoguePolicy) -> None:
    person = Person("prs", "prs", consent_at=NOON)
    d = policy.decide(_turn("می خواهم با یک مشاور صحبت کنم", "ask_human", lang="prs", person=person), KB)
    assert isinstance(d.actions[0], OpenTicket) and d.actions[0].mrc_id == "islamabad"


def test_english_please_switches_the_language_until_chosen_again(policy: DialoguePolicy) -> None:
    person = Person("ru", "ru", consent_at=NOON)
    d = policy.decide(_turn("English please", lang="ru", person=person, result=_nothing()), KB)
    assert person.lang == person.current_lang == "en" and d.replies[0].lang == "en"


def test_delete_confirmed_erases_and_a_voice_note_on_a_ticket_reaches_the_counsellor(policy: DialoguePolicy) -> None:
    turn = _turn("")
    yes = Turn(IncomingMessage("web", "k1", "d1", callback="delete:yes"), turn.person, turn.state, NOON)
    assert policy.decide(yes, KB).actions == [Erase()]
    voice = IncomingMessage("telegram", "k1", "v1", attachment="voice", attachment_note="[voice, 14 s]")
    d = policy.decide(Turn(voice, turn.person, turn.state, NOON, None, TicketView(3, crisis=False)), KB)
    assert d.actions == [AppendToTicket("[voice, 14 s]", "v1#media", attachment_kind="voice")]
    assert d.replies[0].kind == "counsellor_has_it"
