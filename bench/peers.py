"""``hamroh bench peers``: Hamroh's retrieval next to the tools an MRC team might use instead.

Three systems, one run, the same machine, each behind its own HTTP API, on the same evaluation file
(``../shared/eval/retrieval-dev.yaml``) and trained on the same curated data:

* **Hamroh** — ``POST /api/ask`` of the real app (hybrid dense + BM25 search and its decision rule);
* **Rasa ResponseSelector** — a Rasa 3.6 NLU model (no pretrained weights: word and char n-gram
  counts, DIET for ``faq`` vs ``out_of_scope``, a ResponseSelector over topics) trained on the
  knowledge base's titles and example questions in every language, plus Hamroh's out-of-scope
  examples; served by ``rasa run --enable-api``, asked at ``POST /model/parse``;
* **BM25 alone** — the same lexical index Hamroh fuses (titles and example questions, Hamroh's
  tokeniser), served by a minimal FastAPI app; it answers whenever any word matches.

Recall@1 is "the system's top-ranked topic is the expected one", abstention ignored (for Hamroh the
ranking comes from ``KnowledgeBase.search``, the function ``/api/ask`` runs, since the API shows
no ranking when it hands off). The wrong-answer rate counts confident answers with the wrong topic,
including answers to off-topic ("none") items — the number that harms people. Latency is per
message through each HTTP API, sequential, keep-alive, after a warm-up.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from bot.settings import Settings, load_settings
from knowledge_base import EvalItem, lexical_tokens, load_eval_items

__all__ = ["bm25_app", "build_faq_project", "hamroh_app", "run"]

WARM_UP = 5


# --------------------------------------------------------------------------- the servers
def hamroh_app() -> Any:
    """uvicorn factory: Hamroh's real app, settings from ``$HAMROH_CONFIG``."""
    from bot.app import create_app

    return create_app(load_settings())


class _Bm25:
    def __init__(self, settings: Settings, *, exclude: frozenset[tuple[str, str, int]] = frozenset(),
                 exclude_topics: frozenset[str] = frozenset()) -> None:
        import bm25s

        from bot.services import load_content

        self._bm25s = bm25s
        self.topics: list[str] = []
        corpus: list[list[str]] = []
        for entry in load_content(settings).published:
            if entry.topic in exclude_topics:
                continue
            for lang, tr in entry.translations.items():
                kept = [q for n, q in enumerate(tr.questions) if (entry.id, lang, n) not in exclude]
                corpus.append(lexical_tokens(" ".join([tr.title, *kept])))
                self.topics.append(entry.topic)
        self.vocab: dict[str, int] = {}
        ids = [[self.vocab.setdefault(tok, len(self.vocab)) for tok in doc] for doc in corpus]
        self.index = bm25s.BM25()
        self.index.index(bm25s.tokenization.Tokenized(ids=ids, vocab=self.vocab), show_progress=False)

    def search(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        tokens = [self.vocab[t] for t in lexical_tokens(text) if t in self.vocab]
        if not tokens:
            return []
        docs, scores = self.index.retrieve(self._bm25s.tokenization.Tokenized(ids=[tokens], vocab=self.vocab),
                                           k=min(100, len(self.topics)), show_progress=False, n_threads=1)
        ranked: dict[str, float] = {}
        for doc, score in zip(docs[0], scores[0], strict=True):
            if score > 0:
                ranked.setdefault(self.topics[int(doc)], float(score))
        return list(ranked.items())[:k]


class Query(BaseModel):
    text: str


def bm25_app() -> Any:
    """uvicorn factory: BM25 alone over the knowledge base, ``POST /search {"text"}``."""
    from fastapi import FastAPI

    engine = _Bm25(load_settings())
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/search")
    def search(query: Query) -> dict[str, Any]:
        return {"hits": [{"topic": t, "score": s} for t, s in engine.search(query.text)]}

    return app


@contextlib.contextmanager
def _uvicorn(factory: str, settings: Settings, env: dict[str, str], timeout: float = 300) -> Iterator[str]:
    from bot.net import free_port

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="hamroh-peers-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log"],
                            cwd=settings.root, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not start; see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).json().get("status") == "ok":
                    break
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --------------------------------------------------------------------------- Rasa's FAQ project
def build_faq_project(settings: Settings, out: Path, *, epochs: int,
                      exclude: frozenset[tuple[str, str, int]] = frozenset()) -> Any:
    """A Rasa NLU project: ``faq/<topic>`` from titles and example questions, ``out_of_scope``.

    ``exclude`` leaves out example questions (entry id, language, position): a held-out fold.
    """
    import yaml

    from bot.services import load_content
    from knowledge_base import load_out_of_scope
    from nlu.rasa import TRAINING_FILES, RasaProject, fingerprint, pipeline_config, write_nlu_yaml

    blocks: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for entry in sorted(load_content(settings).published, key=lambda e: e.id):
        for lang, tr in entry.translations.items():
            kept = [q for n, q in enumerate(tr.questions) if (entry.id, lang, n) not in exclude]
            for text in [tr.title, *kept]:
                text = " ".join(text.split())
                if text and text.casefold() not in seen:
                    seen.add(text.casefold())
                    blocks[f"faq/{entry.topic}"].append(text)
    oos = [" ".join(t.split()) for t in load_out_of_scope()]
    blocks["out_of_scope"] = [t for t in oos if t and t.casefold() not in seen]
    topics = sorted({k.partition("/")[2] for k in blocks if k.startswith("faq/")})
    domain = {"version": "3.1", "intents": ["faq", "out_of_scope"],
              "responses": {f"utter_faq/{t}": [{"text": t}] for t in topics}}
    # the knowledge base's questions in 14 scripts give ~10^5 distinct character n-grams; the most
    # frequent 20k keep training to minutes on two cores (uncapped it took over 30 min)
    config = pipeline_config(epochs=epochs, retrieval_intents=["faq"], fallback_threshold=None, policies=False,
                             max_features=20_000)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    (out / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True, sort_keys=False))
    (out / "data/nlu.yml").write_text(write_nlu_yaml(dict(sorted(blocks.items()))))
    (out / "data/rules.yml").write_text('version: "3.1"\nrules: []\n')
    return RasaProject(out, fingerprint(out, TRAINING_FILES), ("faq", "out_of_scope"),
                       sum(len(v) for v in blocks.values()))


# --------------------------------------------------------------------------- scoring
@dataclass
class _Outcome:
    ranked: list[str]
    answered: str | None  # the topic answered confidently, None = clarify or handoff
    seconds: float


@dataclass
class _Score:
    name: str
    key: str = ""
    ranks: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    wrong: int = 0
    right: int = 0
    none_total: int = 0
    none_abstained: int = 0
    items: int = 0
    latency: list[float] = field(default_factory=list)

    def add(self, item: EvalItem, out: _Outcome) -> None:
        self.items += 1
        self.latency.append(out.seconds)
        if item.topic == "none":
            self.none_total += 1
            self.none_abstained += out.answered is None
            self.wrong += out.answered is not None
            return
        self.ranks[item.lang].append(bool(out.ranked) and out.ranked[0] == item.topic)
        self.right += out.answered == item.topic
        self.wrong += out.answered is not None and out.answered != item.topic


    def as_json(self) -> dict[str, Any]:
        all_hits = [h for v in self.ranks.values() for h in v]
        answerable = len(all_hits) or 1
        return {
            "recall_at_1": round(sum(all_hits) / answerable, 4),
            "right": round(self.right / answerable, 4),
            "wrong": round(self.wrong / (self.items or 1), 4),
            "none_handoff": round(self.none_abstained / self.none_total, 4) if self.none_total else None,
            "p50_ms": round(_pct(self.latency, 0.5), 2),
            "p95_ms": round(_pct(self.latency, 0.95), 2),
            "per_language": {lang: {"n": len(h), "recall_at_1": round(sum(h) / len(h), 4)}
                             for lang, h in sorted(self.ranks.items()) if h},
        }


def _timed(client: httpx.Client, url: str, payload: dict[str, Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    response = client.post(url, json=payload)
    seconds = time.perf_counter() - start
    response.raise_for_status()
    return response.json(), seconds


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")


def _table(scores: Sequence[_Score], items: Sequence[EvalItem]) -> str:
    langs = sorted({i.lang for i in items if i.topic != "none"})
    name_w = max(len(s.name) for s in scores) + 2
    head = f"{'system':<{name_w}}" + "".join(f"{lang:>6}" for lang in langs)
    head += f"{'R@1':>7}{'right':>7}{'wrong':>7}{'none→h':>8}{'p50 ms':>8}{'p95 ms':>8}"
    counts = f"{'(n)':<{name_w}}" + "".join(f"{sum(1 for i in items if i.lang == lang and i.topic != 'none'):>6}"
                                            for lang in langs)
    lines = [head, counts]
    for s in scores:
        row = f"{s.name:<{name_w}}"
        for lang in langs:
            hits = s.ranks.get(lang, [])
            row += f"{sum(hits) / len(hits):>6.2f}" if hits else f"{'-':>6}"
        all_hits = [h for v in s.ranks.values() for h in v]
        answerable = len(all_hits)
        row += f"{sum(all_hits) / answerable:>7.3f}" if answerable else f"{'-':>7}"
        row += f"{s.right / answerable:>7.1%}" if answerable else f"{'-':>7}"
        row += f"{s.wrong / s.items:>7.1%}"
        row += f"{s.none_abstained / s.none_total:>8.0%}" if s.none_total else f"{'-':>8}"
        row += f"{_pct(s.latency, 0.5):>8.1f}{_pct(s.latency, 0.95):>8.1f}"
        lines.append(row)
    return "\n".join(lines)


def _report(scores: Sequence[_Score], items: Sequence[EvalItem], *, as_json: bool, note: str) -> None:
    if as_json:
        import json

        print(json.dumps({"systems": {s.key: s.as_json() for s in scores}, "items": len(items), "note": note},
                         indent=2, ensure_ascii=False))
        return
    print()
    print(_table(scores, items))
    print(note)


_NOTE = ("\nR@1: top-ranked topic is right (abstention ignored), per language and overall; right: answered "
         "confidently\nwith the right topic (share of answerable items); wrong: answered confidently with the "
         "wrong topic\n(share of all items, 'none' items included); none→h: off-topic items not answered; "
         "latency per message\nthrough each system's HTTP API (sequential, keep-alive, after a warm-up). "
         "'Hamroh ranking' is Hamroh's\ntop entry always taken as the answer (no decision), timed in process.")


# --------------------------------------------------------------------------- held-out folds
def run_holdout(settings: Settings, *, k: int, seed: int = 0, epochs: int = 40, threshold: float = 0.5,
                as_json: bool = False, rasa: bool = True) -> int:
    """The same K folds as ``hamroh kb eval --holdout K``: each fold's example questions leave every
    system's index (and Rasa's training data), then are asked. Everything runs in process (no HTTP):
    latency is the search alone."""
    from bot.services import open_knowledge_base
    from knowledge_base import held_out_item, question_folds

    kb = open_knowledge_base(settings)
    vectors = kb.vectors()
    hamroh = _Score("Hamroh (hybrid + decision)", "hamroh")
    ranking = _Score("Hamroh ranking (no decision)", "hamroh-ranking")
    bm25 = _Score("BM25 alone", "bm25")
    rasa_score = _Score(f"Rasa ResponseSelector (conf>={threshold})", "rasa")
    scores = [hamroh, ranking, bm25]
    rasa_env = None
    if rasa:
        from bot.rasa import RasaUnavailable, ensure_env

        try:
            rasa_env = ensure_env()
            scores.insert(1, rasa_score)
        except RasaUnavailable as exc:
            print(f"Rasa is not available, it is left out: {exc}", file=sys.stderr)
    all_items: list[EvalItem] = []
    for f, rows in enumerate(question_folds(kb, k, seed)):
        masked = kb.masked(rows=rows)
        exclude = frozenset((kb.entries[kb.rows[r].entry].id, kb.rows[r].lang, kb.rows[r].n) for r in rows)
        lexical = _Bm25(settings, exclude=exclude)
        items = [held_out_item(kb, r) for r in rows]
        all_items.extend(items)
        for row, item in zip(rows, items, strict=True):
            start = time.perf_counter()
            result = masked.search(item.text, item.lang, qvec=vectors[row])
            seconds = time.perf_counter() - start
            ranked = result.ranked_topics()
            hamroh.add(item, _Outcome(ranked, result.answer.topic if result.answer else None, seconds))
            ranking.add(item, _Outcome(ranked, ranked[0] if ranked else None, seconds))
            start = time.perf_counter()
            hits = [t for t, _ in lexical.search(item.text)]
            bm25.add(item, _Outcome(hits, hits[0] if hits else None, time.perf_counter() - start))
        if rasa_env is not None:
            _rasa_fold(settings, rasa_env, rasa_score, items, exclude, f, epochs, threshold)
        print(f"fold {f + 1}/{k}: {len(rows)} questions", file=sys.stderr, flush=True)
    note = (f"\n{k} folds over the knowledge base's own example questions (seed {seed}): each fold removed from "
            "every system's index\nand Rasa's training data, then asked; latency is in process (no HTTP)."
            + _NOTE.split("latency per message")[0].rstrip())
    _report(scores, all_items, as_json=as_json, note=note)
    return 0


def _rasa_fold(settings: Settings, env: Path, score: _Score, items: Sequence[EvalItem],
               exclude: frozenset[tuple[str, str, int]], fold: int, epochs: int, threshold: float) -> None:
    from bot.rasa import run_servers, train

    project = build_faq_project(settings, settings.path(Path(f"build/rasa/peers-fold{fold}")), epochs=epochs,
                                exclude=exclude)
    model = train(env, project, name=f"peers-fold{fold}")
    client = httpx.Client(timeout=60)
    with run_servers(env, model, project, hamroh_url="", token="", actions=False) as servers:
        parse = servers.rasa_url + "/model/parse"
        for item in items:
            body, seconds = _timed(client, parse, {"text": item.text})
            score.add(item, _rasa_outcome(body, seconds, threshold))
    client.close()


def _rasa_outcome(body: dict[str, Any], seconds: float, threshold: float) -> _Outcome:
    selected = (body.get("response_selector") or {}).get("faq") or {}
    ranking = selected.get("ranking") or []
    ranked = [str(r.get("intent_response_key", "")).partition("/")[2] for r in ranking]
    top = selected.get("response") or {}
    confident = (body.get("intent") or {}).get("name") == "faq" and float(top.get("confidence") or 0) >= threshold
    return _Outcome(ranked, ranked[0] if ranked and confident else None, seconds)


# --------------------------------------------------------------------------- the run
def run(settings: Settings, *, eval_file: Path, epochs: int = 40, threshold: float = 0.5,
        as_json: bool = False, rasa: bool = True) -> int:
    from bot.rasa import RasaUnavailable, ensure_env, run_servers, train
    from bot.services import open_knowledge_base
    from storage import upgrade

    items = load_eval_items(eval_file)
    print(f"{len(items)} items from {eval_file}", file=sys.stderr if as_json else sys.stdout, flush=True)
    config = Path(os.environ.get("HAMROH_CONFIG") or settings.root / "config.yml")
    tmp = Path(tempfile.mkdtemp(prefix="hamroh-peers-"))
    db = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    upgrade(db)
    env = {"HAMROH_CONFIG": str(config), "HAMROH_DATABASE_URL": db}

    kb = open_knowledge_base(settings)  # Hamroh's ranking (the API shows none when it hands off)
    hamroh = _Score("Hamroh (hybrid + decision)", "hamroh")
    ranking = _Score("Hamroh ranking (no decision)", "hamroh-ranking")
    bm25 = _Score("BM25 alone", "bm25")
    rasa_score = _Score(f"Rasa ResponseSelector (conf>={threshold})", "rasa")
    scores = [hamroh, ranking, rasa_score, bm25]
    model = None
    if rasa:
        try:
            rasa_env = ensure_env()
            project = build_faq_project(settings, settings.path(Path("build/rasa/peers")), epochs=epochs)
            model = train(rasa_env, project, name="peers")
        except RasaUnavailable as exc:
            print(f"Rasa is not available, it is left out: {exc}", file=sys.stderr)
    if model is None:
        scores.remove(rasa_score)

    client = httpx.Client(timeout=60)
    with _uvicorn("bench.peers:hamroh_app", settings, env) as url:
        for item in items[:WARM_UP]:
            client.post(url + "/api/ask", json={"question": item.text, "lang": item.lang})
        for item in items:
            body, seconds = _timed(client, url + "/api/ask", {"question": item.text, "lang": item.lang})
            answered = body.get("topic") if body.get("decision") == "answer" else None
            start = time.perf_counter()
            ranked = kb.search(item.text, item.lang).ranked_topics()
            in_process = time.perf_counter() - start
            hamroh.add(item, _Outcome(ranked, answered, seconds))
            ranking.add(item, _Outcome(ranked, ranked[0] if ranked else None, in_process))
    with _uvicorn("bench.peers:bm25_app", settings, env) as url:
        for item in items[:WARM_UP]:
            client.post(url + "/search", json={"text": item.text})
        for item in items:
            body, seconds = _timed(client, url + "/search", {"text": item.text})
            ranked = [h["topic"] for h in body["hits"]]
            bm25.add(item, _Outcome(ranked, ranked[0] if ranked else None, seconds))
    if model is not None:
        with run_servers(rasa_env, model, project, hamroh_url="", token="", actions=False) as servers:
            parse = servers.rasa_url + "/model/parse"
            for item in items[:WARM_UP]:
                client.post(parse, json={"text": item.text})
            for item in items:
                body, seconds = _timed(client, parse, {"text": item.text})
                rasa_score.add(item, _rasa_outcome(body, seconds, threshold))
    client.close()
    _report(scores, items, as_json=as_json, note=_NOTE)
    return 0
