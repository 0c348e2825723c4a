"""Curated entries: the YAML format, loading, and validation that names file, field and fix.

Why so strict: an entry is shown to a migrant as verified advice. A missing translation, an
expired review date or a silently dropped file must be caught by ``hamroh kb validate`` before it
reaches anyone, and the message must tell an MRC editor (not a programmer) what to change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

import languages

from ._problems import render_problem

__all__ = [
    "LANGUAGES",
    "MAX_ANSWER_CHARS",
    "Entry",
    "LoadReport",
    "Problem",
    "Source",
    "Topic",
    "Translation",
    "content_hash",
    "english_revision",
    "load_entries",
    "load_topics",
    "validate_entry",
]

#: every language code the content spec knows (the project's one registry: ``languages``)
LANGUAGES: tuple[str, ...] = languages.LANGUAGES
#: an answer plus its source line must fit one Telegram message (4,096 characters)
MAX_ANSWER_CHARS = 3500
#: the short answer shown first: about one phone screen
MAX_SUMMARY_CHARS = 450
#: a Telegram inline button shows about 30 characters on a small phone
MAX_SHORT_TITLE_CHARS = 32
#: a deadline, duration or amount in an answer: it must be backed by a specific source page
_FACT_RE = re.compile(
    r"\d+\s*(?:%|days?|working days|months?|years?|hours?|дн|день|дня|месяц|суток|час|рубл|₽|\$|usd|tk|taka|rs|"
    r"aed|sar|kun|oy|ай|күн|рӯз|моҳ|ден|سال|روز|ماه|دن|টাকা|দিন)", re.IGNORECASE)
_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
#: a homepage or an unsourced deadline is an error: no source supports a specific fact otherwise
_SOURCE_SEVERITY: Literal["error", "warning"] = "error"
_TOPICS_FILE = Path(__file__).with_name("topics.yml")


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3)
    url: str
    #: the source's title in other languages, shown to a reader of that language
    titles: dict[str, str] = Field(default_factory=dict)
    #: a whole site named on purpose (a portal to check), not the page that states a fact
    general: bool = False

    @property
    def is_homepage(self) -> bool:
        """A bare site address supports no specific deadline, amount or duty."""
        rest = re.sub(r"^https?://[^/]+", "", self.url)
        return rest.strip("/") == "" or rest.startswith("/?")

    def title_in(self, lang: str) -> str:
        return self.titles.get(lang) or self.title

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+\.[^\s]+", value):
            raise PydanticCustomError("url_not_https", "must be a full web address starting with https://")
        return value


class Translation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=200)
    #: fits a button whole (clarify choices, the menu)
    short_title: str | None = Field(default=None, min_length=2, max_length=MAX_SHORT_TITLE_CHARS)
    #: the short answer shown first on a phone: the key steps and the deadline
    summary: str | None = Field(default=None, min_length=40, max_length=MAX_SUMMARY_CHARS)
    answer: str = Field(min_length=40, max_length=MAX_ANSWER_CHARS)
    questions: list[str] = Field(min_length=1)
    #: this translation's own review: who (a role or initials) checked it, when, and against
    #: which English revision (``hamroh kb revision ID`` prints it)
    reviewed_on: dt.date | None = None
    reviewed_by: str | None = Field(default=None, max_length=40)
    source_version: str | None = Field(default=None, pattern=r"^[0-9a-f]{8}$")
    #: sources for facts this translation adds for its audience (e.g. a home ministry)
    sources: list[Source] = Field(default_factory=list)

    @field_validator("questions")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        cleaned = [q.strip() for q in value]
        if any(not q for q in cleaned):
            raise PydanticCustomError("empty_question", "contains an empty question")
        return cleaned


class Entry(BaseModel):
    """One curated answer, in several languages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    topic: str
    status: Literal["draft", "published"]
    origin: list[str] = Field(default_factory=list)
    destination: list[str] = Field(default_factory=list)
    stage: Literal["pre-departure", "abroad", "return", "any"] = "any"
    reviewed_on: dt.date
    review_by: dt.date
    safety: Literal["normal", "sensitive"] = "normal"
    sources: list[Source] = Field(min_length=1)
    translations: dict[str, Translation] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise PydanticCustomError("bad_id", "use lowercase letters, digits and '-' only, e.g. ru-registration-tj")
        return value

    @field_validator("origin", "destination")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _COUNTRY_RE.match(c)]
        if bad:
            raise PydanticCustomError("bad_country_codes", "{codes} are not ISO 3166-1 alpha-2 codes (two capital "
                                      "letters, e.g. RU)", {"codes": str(bad)})
        return value

    @field_validator("translations")
    @classmethod
    def _known_languages(cls, value: dict[str, Translation]) -> dict[str, Translation]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise PydanticCustomError("unknown_language", "unknown language code(s) {codes}; use one of {known}",
                                      {"codes": str(unknown), "known": ", ".join(LANGUAGES)})
        return value

    def expired(self, today: dt.date) -> bool:
        return self.review_by < today

    def stale_translations(self) -> list[str]:
        """Languages whose review was against an older English text than the one shipped now."""
        if "en" not in self.translations:
            return []
        current = english_revision(self)
        return sorted(lang for lang, tr in self.translations.items()
                      if lang != "en" and tr.source_version is not None and tr.source_version != current)


def english_revision(entry: Entry) -> str:
    """A short fingerprint of the English text; a translation names the one it was checked against."""
    en = entry.translations.get("en")
    if en is None:
        return ""
    text = "\n".join([en.title, en.summary or "", en.answer])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class Topic:
    id: str
    languages: tuple[str, ...]
    covers: str


@dataclass(frozen=True)
class Problem:
    """A validation finding an editor can act on.

    ``message`` and ``fix`` are English (the CLI prints them); ``code`` names the rule in the
    catalogue (``data/problems.yml``) and ``params`` the values it names, so the console can show
    the same finding in the editor's language (:meth:`in_language`).
    """

    file: str
    field: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"
    code: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, file: str, field: str, code: str, *, severity: Literal["error", "warning"] = "error",
           **params: object) -> Problem:
        """The problem ``code`` of the catalogue, its English text filled in."""
        return cls.coded(file, field, code, params, severity=severity)

    @classmethod
    def coded(cls, file: str, field: str, code: str, params: Mapping[str, object], *,
              severity: Literal["error", "warning"] = "error") -> Problem:
        values = tuple(sorted((k, str(v)) for k, v in params.items()))
        message, fix = render_problem(code, "en", dict(values))
        return cls(file, field, message, fix, severity, code, values)

    def in_language(self, lang: str | None) -> tuple[str, str]:
        """``(message, fix)`` in ``lang``, else English."""
        if not self.code:
            return self.message, self.fix
        return render_problem(self.code, lang, dict(self.params))

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.file}: {self.field}: {self.message}. Fix: {self.fix}"


@dataclass
class LoadReport:
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def published(self) -> list[Entry]:
        return [e for e in self.entries if e.status == "published"]


def load_topics(path: Path | None = None) -> dict[str, Topic]:
    """The topic contract (ids and required languages) shipped beside this module."""
    raw = yaml.safe_load((path or _TOPICS_FILE).read_text(encoding="utf-8"))
    return {
        tid: Topic(tid, tuple(spec["languages"]), spec.get("covers", ""))
        for tid, spec in raw["topics"].items()
    }


def _loc(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


#: pydantic's error types -> the catalogue's codes (and the context value each one names)
_PYDANTIC_CODES: dict[str, tuple[str, dict[str, str]]] = {
    "missing": ("required", {}),
    "extra_forbidden": ("unknown_field", {}),
    "date_from_datetime_parsing": ("bad_date", {}),
    "date_from_datetime_inexact": ("bad_date", {}),
    "date_parsing": ("bad_date", {}),
    "date_type": ("bad_date", {}),
    "string_too_long": ("too_long", {"max": "max_length"}),
    "string_too_short": ("too_short", {"min": "min_length"}),
    "too_short": ("no_items", {}),
    "literal_error": ("not_allowed", {"expected": "expected"}),
}


def _problems_from_validation(file: str, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        kind = err["type"]
        ctx = err.get("ctx") or {}
        field = _loc(err["loc"])
        if kind == "string_too_long" and err["loc"][-1] == "answer":
            out.append(Problem.of(file, field, "answer_too_long", max=MAX_ANSWER_CHARS))
        elif kind in _PYDANTIC_CODES:
            code, names = _PYDANTIC_CODES[kind]
            out.append(Problem.coded(file, field, code, {k: ctx.get(v, "") for k, v in names.items()}))
        elif kind in ("url_not_https", "empty_question", "bad_id", "bad_country_codes", "unknown_language"):
            out.append(Problem.coded(file, field, kind, ctx))
        else:
            out.append(Problem.of(file, field, "invalid", detail=err["msg"]))
    return out


def _check_entry(file: str, entry: Entry, topics: dict[str, Topic], stem: str) -> list[Problem]:
    problems: list[Problem] = []
    if entry.id != stem:
        problems.append(Problem.of(file, "id", "id_differs_from_file", id=entry.id, stem=stem))
    topic = topics.get(entry.topic)
    if topic is None:
        problems.append(Problem.of(file, "topic", "unknown_topic", topic=entry.topic))
    elif entry.status == "published":
        missing = [lang for lang in topic.languages if lang not in entry.translations]
        if missing:
            problems.append(Problem.of(file, "translations", "missing_languages", languages=missing,
                                       topic=topic.id))
    if entry.review_by <= entry.reviewed_on:
        problems.append(Problem.of(file, "review_by", "review_by_not_after"))
    if entry.reviewed_on > dt.date.today():
        problems.append(Problem.of(file, "reviewed_on", "reviewed_on_future"))
    if entry.expired(dt.date.today()):
        problems.append(Problem.of(file, "review_by", "review_date_passed", date=entry.review_by,
                                   severity="warning"))
    for i, source in enumerate(entry.sources):
        if source.is_homepage and not source.general:
            problems.append(Problem.of(file, f"sources.{i}.url", "homepage_source", url=source.url,
                                       severity=_SOURCE_SEVERITY))
    specific = any(not s.general and not s.is_homepage for s in entry.sources)
    for lang, tr in entry.translations.items():
        for i, source in enumerate(tr.sources):
            if source.is_homepage and not source.general:
                problems.append(Problem.of(file, f"translations.{lang}.sources.{i}.url", "homepage_source",
                                           url=source.url, severity=_SOURCE_SEVERITY))
        own = any(not s.general and not s.is_homepage for s in tr.sources)
        for name, text in (("summary", tr.summary or ""), ("answer", tr.answer)):
            fact = _FACT_RE.search(text)
            if fact and not (specific or own):
                problems.append(Problem.of(file, f"translations.{lang}.{name}", "unsourced_fact",
                                           fact=fact.group(0), severity=_SOURCE_SEVERITY))
        if len(tr.questions) < 4:
            problems.append(Problem.of(file, f"translations.{lang}.questions", "few_questions",
                                       count=len(tr.questions), severity="warning"))
    return problems


def load_entries(content_dir: Path, topics: dict[str, Topic] | None = None) -> LoadReport:
    """Load and validate every ``*.yml`` under ``content_dir``; never raises on bad content."""
    topics = topics if topics is not None else load_topics()
    report = LoadReport()
    seen: dict[str, str] = {}
    content_dir = Path(content_dir)
    if not content_dir.is_dir():
        report.problems.append(Problem.of(str(content_dir), "(directory)", "no_content_dir"))
        return report
    files = sorted(content_dir.glob("*.yml")) + sorted(content_dir.glob("*.yaml"))
    for path in files:
        name = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            report.problems.append(Problem.of(name, "(file)", "not_utf8"))
            continue
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f"line {where.line + 1}" if where is not None else "(file)"
            report.problems.append(Problem.of(name, line, "malformed_yaml", detail=getattr(exc, "problem", exc)))
            continue
        entry, problems = validate_entry(raw, file=name, topics=topics, stem=path.stem, seen=seen)
        report.problems.extend(problems)
        if entry is not None:
            seen[entry.id] = name
            report.entries.append(entry)
    return report


def validate_entry(raw: Any, *, file: str, topics: dict[str, Topic] | None = None, stem: str | None = None,
                   seen: dict[str, str] | None = None) -> tuple[Entry | None, list[Problem]]:
    """The one set of content rules: ``kb validate``, ``kb import`` and the console's editor all ask it.

    ``raw`` is an entry as YAML (or a form) gives it; ``stem`` is the file name it must match (None:
    the entry lives in the database, where the id is the name). Returns the entry (None when it is
    not even well formed) and every problem, errors and warnings, each naming field and fix.
    """
    topics = topics if topics is not None else load_topics()
    if not isinstance(raw, dict):
        return None, [Problem.of(file, "(file)", "not_a_mapping")]
    try:
        entry = Entry.model_validate(raw)
    except ValidationError as exc:
        return None, _problems_from_validation(file, exc)
    if seen and entry.id in seen:
        return None, [Problem.of(file, "id", "duplicate_id", id=entry.id, other=seen[entry.id])]
    return entry, _check_entry(file, entry, topics, stem if stem is not None else entry.id)


def content_hash(entries: Iterable[Entry]) -> str:
    """A stable digest of what the index is built from: rebuild only when it changes."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.id):
        digest.update(entry.model_dump_json().encode("utf-8"))
    return digest.hexdigest()
