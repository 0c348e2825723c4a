"""Curated entries: the YAML format, loading, and validation that names file, field and fix.

Why so strict: an entry is shown to a migrant as verified advice. A missing translation, an
expired review date or a silently dropped file must be caught by ``hamroh kb validate`` before it
reaches anyone, and the message must tell an MRC editor (not a programmer) what to change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import languages

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
            raise ValueError("must be a full web address starting with https://")
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
            raise ValueError("contains an empty question")
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
            raise ValueError("use lowercase letters, digits and '-' only, e.g. ru-registration-tj")
        return value

    @field_validator("origin", "destination")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _COUNTRY_RE.match(c)]
        if bad:
            raise ValueError(f"{bad} are not ISO 3166-1 alpha-2 codes (two capital letters, e.g. RU)")
        return value

    @field_validator("translations")
    @classmethod
    def _known_languages(cls, value: dict[str, Translation]) -> dict[str, Translation]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language code(s) {unknown}; use one of {', '.join(LANGUAGES)}")
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
    """A validation finding an editor can act on."""

    file: str
    field: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"

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


_FIXES = {
    "missing": "add the field",
    "extra_forbidden": "remove it or check its spelling against knowledge_base/CONTENT.md",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
    "date_parsing": "write the date as YYYY-MM-DD",
    "date_type": "write the date as YYYY-MM-DD",
    "string_too_long": "shorten it",
    "string_too_short": "write more",
    "too_short": "add at least one item",
    "literal_error": "use one of the allowed values",
}


def _problems_from_validation(file: str, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        kind = err["type"]
        msg = err["msg"]
        if kind == "string_too_long" and err["loc"][-1] == "answer":
            msg = f"answer is longer than {MAX_ANSWER_CHARS} characters (Telegram's limit with the source line)"
        out.append(Problem(file, _loc(err["loc"]), msg, _FIXES.get(kind, "correct the value")))
    return out


def _check_entry(file: str, entry: Entry, topics: dict[str, Topic], stem: str) -> list[Problem]:
    problems: list[Problem] = []
    if entry.id != stem:
        problems.append(Problem(file, "id", f"id '{entry.id}' differs from the file name",
                                f"rename the file to {entry.id}.yml or set id: {stem}"))
    topic = topics.get(entry.topic)
    if topic is None:
        problems.append(Problem(file, "topic", f"unknown topic '{entry.topic}'",
                                "use a topic id from knowledge_base/topics.yml"))
    elif entry.status == "published":
        missing = [lang for lang in topic.languages if lang not in entry.translations]
        if missing:
            problems.append(Problem(file, "translations", f"missing required language(s) {missing}",
                                    f"add a translation block for each of {missing} (topic {topic.id})"))
    if entry.review_by <= entry.reviewed_on:
        problems.append(Problem(file, "review_by", "review_by is not after reviewed_on",
                                "set review_by to a later date than reviewed_on"))
    if entry.reviewed_on > dt.date.today():
        problems.append(Problem(file, "reviewed_on", "reviewed_on is in the future",
                                "use the date the facts were actually checked"))
    if entry.expired(dt.date.today()):
        problems.append(Problem(file, "review_by", f"review date {entry.review_by} has passed",
                                "re-check the facts against the sources and move review_by forward",
                                severity="warning"))
    for i, source in enumerate(entry.sources):
        if source.is_homepage and not source.general:
            problems.append(Problem(file, f"sources.{i}.url", f"{source.url} is a bare homepage",
                                    "cite the page (or law article) that states the fact, or mark the "
                                    "source general: true if it is a portal the reader should check",
                                    severity=_SOURCE_SEVERITY))
    specific = any(not s.general and not s.is_homepage for s in entry.sources)
    for lang, tr in entry.translations.items():
        for i, source in enumerate(tr.sources):
            if source.is_homepage and not source.general:
                problems.append(Problem(file, f"translations.{lang}.sources.{i}.url",
                                        f"{source.url} is a bare homepage",
                                        "cite the page that states the fact, or mark it general: true",
                                        severity=_SOURCE_SEVERITY))
        own = any(not s.general and not s.is_homepage for s in tr.sources)
        for name, text in (("summary", tr.summary or ""), ("answer", tr.answer)):
            fact = _FACT_RE.search(text)
            if fact and not (specific or own):
                problems.append(Problem(file, f"translations.{lang}.{name}",
                                        f"states a deadline or amount ('{fact.group(0)}') that no specific "
                                        "source backs", "add the official page that states it to sources, "
                                        "or leave the number out and point to the official service",
                                        severity=_SOURCE_SEVERITY))
        if len(tr.questions) < 4:
            problems.append(Problem(file, f"translations.{lang}.questions",
                                    f"only {len(tr.questions)} example question(s)",
                                    "add at least 4 ways people really ask this", severity="warning"))
    return problems


def load_entries(content_dir: Path, topics: dict[str, Topic] | None = None) -> LoadReport:
    """Load and validate every ``*.yml`` under ``content_dir``; never raises on bad content."""
    topics = topics if topics is not None else load_topics()
    report = LoadReport()
    seen: dict[str, str] = {}
    content_dir = Path(content_dir)
    if not content_dir.is_dir():
        report.problems.append(Problem(str(content_dir), "(directory)", "content directory not found",
                                       "check content_dir in config.yml"))
        return report
    files = sorted(content_dir.glob("*.yml")) + sorted(content_dir.glob("*.yaml"))
    for path in files:
        name = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            report.problems.append(Problem(name, "(file)", "not UTF-8 text", "save the file as UTF-8"))
            continue
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f"line {where.line + 1}" if where is not None else "(file)"
            report.problems.append(Problem(name, line, f"malformed YAML ({getattr(exc, 'problem', exc)})",
                                           "fix the indentation or quote values that contain ':' or '#'"))
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
        return None, [Problem(file, "(file)", "the file is not a YAML mapping of fields",
                              "start from the example in knowledge_base/CONTENT.md")]
    try:
        entry = Entry.model_validate(raw)
    except ValidationError as exc:
        return None, _problems_from_validation(file, exc)
    if seen and entry.id in seen:
        return None, [Problem(file, "id", f"duplicate id '{entry.id}' (also in {seen[entry.id]})",
                              "give each entry its own id")]
    return entry, _check_entry(file, entry, topics, stem if stem is not None else entry.id)


def content_hash(entries: Iterable[Entry]) -> str:
    """A stable digest of what the index is built from: rebuild only when it changes."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.id):
        digest.update(entry.model_dump_json().encode("utf-8"))
    return digest.hexdigest()
