"""``python -m bench search|load|kill|peers`` from a source checkout (see :mod:`bench.cli`)."""

from bench.cli import main

raise SystemExit(main())
