"""Rules that must hold without any model: social phrases, asking for a person, crisis lexicon."""

from __future__ import annotations

import pytest

import nlu

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("hi", "greet"),
        ("Good evening!", "greet"),
        ("Assalomu alaykum", "greet"),
        ("Саламатсызбы", "greet"),
        ("Сәлеметсіз бе", "greet"),
        ("আসসালামু আলাইকুম", "greet"),
        ("مرحبا", "greet"),
        ("سڵاو", "greet"),
        ("ආයුබෝවන්", "greet"),
        ("வணக்கம்", "greet"),
        ("👋", "greet"),
        ("thanks a lot!", "thanks"),
        ("Спасибо вам огромное, очень помогли!", "thanks"),
        ("rahmat aka", "thanks"),
        ("Ташаккур", "thanks"),
        ("ধন্যবাদ ভাই", "thanks"),
        ("bohat shukriya", "thanks"),
        ("شكرا جزيلا", "thanks"),
        ("ډېره مننه", "thanks"),
        ("🙏", "thanks"),
        ("ok thank you bye", "goodbye"),
        ("До свидания", "goodbye"),
        ("Кош болуңуз", "goodbye"),
        ("খোদা হাফেজ", "goodbye"),
        ("خدا حافظ", "goodbye"),
    ],
)
def test_social_phrases(fake_understander: nlu.Understander, text: str, act: str) -> None:
    result = fake_understander.understand(text)
    assert result.act == act
    assert result.crisis_kind is None


@pytest.mark.parametrize(
    "text",
    [
        "Can I speak with a real person please?",
        "connect me to an operator",
        "Соедините меня с живым человеком",
        "hochu pogovorit s operatorom",
        "Operator bilan gaplashmoqchiman",
        "Консультант менен сүйлөшкүм келет",
        "Мехоҳам бо мушовир гап занам",
        "Маған тірі адаммен сөйлесу керек",
        "আমি অফিসের কারো সাথে কথা বলতে চাই",
        "mujhe kisi insaan se baat karni hai",
        "أريد التحدث مع موظف",
        "دەمەوێت قسە لەگەڵ ڕاوێژکارێک بکەم",
        "நான் ஒரு ஆலோசகருடன் பேச வேண்டும்",
        "می‌خواهم با یک مشاور صحبت کنم",
    ],
)
def test_asking_for_a_person(fake_understander: nlu.Understander, text: str) -> None:
    assert fake_understander.understand(text).act == "ask_human"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("I was beaten, help", "violence"),
        ("They locked us in the dormitory and won't let us out", "locked_in"),
        ("the police arrested me, I am in a cell now", "detained"),
        ("my boss said he will kill me if I leave", "threatened"),
        ("I want to end my life", "self_harm"),
        ("my coworker is unconscious and not breathing", "medical"),
        ("they sold me to another employer and force me to work", "trafficking"),
        ("the manager raped me", "sexual_abuse"),
        ("Меня избили, помогите", "violence"),
        ("nas zaperli, ne vypuskayut", "locked_in"),
        ("Meni politsiya ushlab oldi", "detained"),
        ("Мени кожоюн сабап жатат", "violence"),
        ("Маро дар ҳуҷра баста монданд", "locked_in"),
        ("Мені ұрып жатыр", "violence"),
        ("আমি আত্মহত্যা করতে চাই", "self_harm"),
        ("amake ghore atke rekheche", "locked_in"),
        ("مجھے جان سے مارنے کی دھمکی دی ہے", "threatened"),
        ("mujhe police ne pakad liya hai", "detained"),
        ("الكفيل يضربني", "violence"),
        ("دەستگیریان کردم", "detained"),
        ("මාව කාමරයක හිර කරලා", "locked_in"),
        ("என்னை அறையில் பூட்டி வைத்திருக்கிறார்கள்", "locked_in"),
        ("زه یې په کوټه کې بند کړی یم", "locked_in"),
        ("مرا مجبور به کار می‌کنند", "trafficking"),
    ],
)
def test_crisis_lexicon_names_the_kind(fake_understander: nlu.Understander, text: str, kind: str) -> None:
    result = fake_understander.understand(text)
    assert (result.act, result.crisis_kind) == ("crisis", kind)


@pytest.mark.parametrize(
    "text",
    [
        "What are the signs of trafficking?",
        "What are my rights if the police detain me abroad?",
        "If I am arrested in Dubai, can I call my embassy?",
        "Какие у меня права, если меня задержала полиция?",
        "Что будет, если меня задержат без регистрации?",
        "Odam savdosi belgilari qanday?",
        "اگر پولیس مرا بازداشت کند چه حقوقی دارم؟",
        "வெளிநாட்டில் கைது செய்யப்பட்டால் என்ன செய்ய வேண்டும்?",
    ],
)
def test_questions_about_danger_are_not_crises(fake_understander: nlu.Understander, text: str) -> None:
    assert fake_understander.understand(text).act != "crisis"


def test_a_threat_with_if_is_still_a_crisis(fake_understander: nlu.Understander) -> None:
    result = fake_understander.understand("If I tell anyone, they will kill me")
    assert (result.act, result.crisis_kind) == ("crisis", "threatened")


def test_danger_reported_before_a_question_is_a_crisis(fake_understander: nlu.Understander) -> None:
    result = fake_understander.understand("My boss beats me every day. What are my rights?")
    assert (result.act, result.crisis_kind) == ("crisis", "violence")


def test_crisis_kind_only_with_crisis(fake_understander: nlu.Understander) -> None:
    for text in ("hello", "How do I get a patent?", "I want to talk to a human"):
        assert fake_understander.understand(text).crisis_kind is None
