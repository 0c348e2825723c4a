"""``hamroh bench ...`` (and ``python -m bench ...``): the benchmarks' command line.

``bench`` is a development tool: it is not in the wheel, and the product never imports it. From a
source checkout, ``hamroh bench`` finds this module by name at run time (``bot.cli``), and
``python -m bench`` runs it directly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.settings import Settings, SettingsError, load_settings

__all__ = ["main", "run"]


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from bench.search_bench import run

    return run(settings, entries=args.entries, scale_vectors=args.scale_vectors, queries=args.queries,
               rebuild=not args.reuse_index)


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    from bench.publish_bench import run

    return run(settings, sizes=[int(n) for n in args.sizes.split(",")], publications=args.publications)


def cmd_load(settings: Settings, args: argparse.Namespace) -> int:
    from bench.web_load import main as load_main

    argv = ["--clients", str(args.clients), "--messages", str(args.messages), "--deadline", str(args.deadline),
            "--visitors", str(args.visitors), "--warmup", str(args.warmup)]
    argv += ["--url", args.url] if args.url else ["--serve"] if args.instant else ["--real"]
    argv += ["--workers", str(args.workers)] + (["--database", args.database] if args.database else [])
    argv += (["--varied"] if args.varied else []) + ["--rate", str(args.rate)]
    load_main(argv)
    return 0


def cmd_kill(settings: Settings, args: argparse.Namespace) -> int:
    from bench.kill_bench import run

    return run(settings, kills=args.kills, users=args.users, database=args.database, config=args.config,
               seed=args.seed)


def cmd_peers(settings: Settings, args: argparse.Namespace) -> int:
    from bench.peers import run, run_holdout

    if args.holdout:
        return run_holdout(settings, k=args.holdout, seed=args.seed, epochs=args.epochs,
                           threshold=args.rasa_threshold, as_json=args.json, rasa=not args.no_rasa)
    eval_file = Path(args.file) if args.file else settings.root.parent / "shared/eval/retrieval-dev.yaml"
    return run(settings, eval_file=eval_file, epochs=args.epochs, threshold=args.rasa_threshold,
               as_json=args.json, rasa=not args.no_rasa)


def parser(prog: str = "hamroh bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="benchmarks (printed tables)")
    p.add_argument("--config", help="path to config.yml (default: $HAMROH_CONFIG or ./config.yml)")
    bench = p.add_subparsers(dest="cmd", required=True)
    bs = bench.add_parser("search", help="search latency, memory, build time, 1M-vector scale run")
    bs.add_argument("--entries", type=int, default=10_000)
    bs.add_argument("--scale-vectors", type=int, default=1_000_000)
    bs.add_argument("--queries", type=int, default=500)
    bs.add_argument("--reuse-index", action="store_true",
                    help="reuse a synthetic index built by an earlier run with the same settings")
    bs.set_defaults(func=cmd_search)
    bpu = bench.add_parser("publish", help="publish-to-served latency of one changed entry; answers during the swap")
    bpu.add_argument("--sizes", default="50,10000", help="entry counts, comma-separated (beyond the shipped "
                     "content: synthetic clones)")
    bpu.add_argument("--publications", type=int, default=10)
    bpu.set_defaults(func=cmd_publish)
    bl = bench.add_parser("load", help="web chat API under N concurrent visitors: messages/s, p50/p95 latency")
    bl.add_argument("--clients", type=int, default=50)
    bl.add_argument("--messages", type=int, default=8, help="questions per visitor (after start and consent)")
    bl.add_argument("--visitors", type=int, default=1,
                    help="visitors per client, one after the other (a longer, steadier run)")
    bl.add_argument("--deadline", type=float, default=60.0)
    bl.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the measured run (not counted)")
    bl.add_argument("--url", help="a running server on 127.0.0.1 (default: start the real one)")
    bl.add_argument("--instant", action="store_true", help="an instant engine: the channel's own cost only")
    bl.add_argument("--workers", type=int, default=1, help="server processes of the real server")
    bl.add_argument("--varied", action="store_true", help="a different real question in each message (no cache hits)")
    bl.add_argument("--rate", type=float, default=0.0, help="offered messages/s (default: as fast as answered)")
    bl.add_argument("--database", help="database URL for the real server (default: a temporary SQLite file)")
    bl.set_defaults(func=cmd_load)
    bk = bench.add_parser("kill", help="SIGKILL the server while people write on Telegram: lost and duplicate replies")
    bk.add_argument("--kills", type=int, default=20)
    bk.add_argument("--users", type=int, default=20)
    bk.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                    help="a temporary SQLite file, or a throw-away database on the PostgreSQL of the tests")
    bk.add_argument("--seed", type=int, help="for a repeatable choice of kill moments and questions")
    bk.set_defaults(func=cmd_kill)
    bp = bench.add_parser("peers", help="Hamroh's retrieval vs Rasa's ResponseSelector vs BM25 alone, over HTTP")
    bp.add_argument("--file", help="evaluation file (default: ../shared/eval/retrieval-dev.yaml)")
    bp.add_argument("--epochs", type=int, default=40, help="ResponseSelector training epochs")
    bp.add_argument("--rasa-threshold", type=float, default=0.5,
                    help="ResponseSelector confidence below which Rasa is counted as handing off")
    bp.add_argument("--json", action="store_true", help='{"systems": {NAME: {recall_at_1, right, wrong, ...}}}')
    bp.add_argument("--holdout", type=int, metavar="K",
                    help="the folds of 'kb eval --holdout K' instead of a file (Rasa trained once per fold)")
    bp.add_argument("--seed", type=int, default=0, help="how the --holdout folds are dealt")
    bp.add_argument("--no-rasa", action="store_true", help="leave Rasa out (it needs Python 3.10 and minutes)")
    bp.set_defaults(func=cmd_peers)
    return p


def run(argv: Sequence[str], *, config: str | None = None, prog: str = "hamroh bench") -> int:
    """Parse and run one benchmark command; ``config`` is the caller's ``--config`` (``hamroh --config X bench``)."""
    args = parser(prog).parse_args(argv)
    args.config = args.config or config
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    try:
        return func(load_settings(args.config), args)
    except (SettingsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, prog="python -m bench")
