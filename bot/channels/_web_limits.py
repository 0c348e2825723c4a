"""Token buckets for the web chat: per session and per IP address, kept in memory and bounded.

Why both: a session limit keeps one person from flooding the engine (and a counsellor's queue); an
IP limit catches a script that opens a new anonymous session for every message. Why bounded: an
attacker must not grow the server's memory by inventing sessions; the least recently used bucket
is forgotten (which only makes the limit more lenient for that key, never stricter). Buckets live
in process memory and are never written anywhere: IP addresses are not stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetools import LRUCache

__all__ = ["BucketSpec", "RateLimiter"]


@dataclass(frozen=True)
class BucketSpec:
    """``burst`` messages at once, refilled at ``rate`` per second."""

    rate: float
    burst: int


class RateLimiter:
    """Several named token buckets, checked and consumed together."""

    def __init__(self, *, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        # (tokens, when) per (scope, key); the least recently used bucket goes first
        self._buckets: LRUCache[tuple[str, str], tuple[float, float]] = LRUCache(maxsize=max_keys)
        self._clock = clock

    def _level(self, key: tuple[str, str], spec: BucketSpec, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(spec.burst), now))
        return min(float(spec.burst), tokens + (now - at) * spec.rate)

    def take(self, checks: Sequence[tuple[str, str, BucketSpec]]) -> float:
        """Consume one token from every ``(scope, key, spec)`` bucket, or none at all.

        Returns 0 when allowed, else the seconds until the emptiest bucket has a token again, so
        the client can say "wait a moment" and retry by itself.
        """
        now = self._clock()
        levels = [(scope, key, spec, self._level((scope, key), spec, now)) for scope, key, spec in checks]
        wait = 0.0
        for _, _, spec, level in levels:
            if level < 1.0:
                wait = max(wait, math.inf if spec.rate <= 0 else (1.0 - level) / spec.rate)
        if wait > 0:
            return wait
        for scope, key, _spec, level in levels:
            self._buckets[(scope, key)] = (level - 1.0, now)
        return 0.0
