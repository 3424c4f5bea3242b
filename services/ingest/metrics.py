"""Ingest's Prometheus metrics, defined once."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("churnwatch_ingest_events_total", "Events by kind, outcome and reason", ["kind", "outcome", "reason"])
BATCH_SIZE = Histogram(
    "churnwatch_ingest_batch_size", "Events per request", buckets=(1, 5, 20, 100, 250, 500, 1000, 2500)
)
REQUEST_SECONDS = Histogram(
    "churnwatch_ingest_request_seconds",
    "HTTP request latency",
    ["route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRODUCE_SECONDS = Histogram(
    "churnwatch_ingest_produce_seconds",
    "Time for Kafka to acknowledge a request's writes",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUTH_FAILURES = Counter("churnwatch_ingest_auth_failures_total", "Requests refused by auth", ["reason"])
RATE_LIMITED = Counter("churnwatch_ingest_rate_limited_total", "Requests refused with 429")


def count_rejected(kind: str, reason: str, n: int = 1) -> None:
    EVENTS.labels(kind[:20], "rejected", reason[:40]).inc(n)


def count_accepted(kind: str, n: int = 1) -> None:
    EVENTS.labels(kind, "accepted", "").inc(n)


LAST_EVENT = Gauge(
    "churnwatch_ingest_last_event_timestamp_seconds",
    "When ingest last accepted an event (wall clock), per API key and source: a source that used to send and has"
    " gone quiet shows here first",
    ["key", "source"],
)
MAX_SENDERS = 500  # (key, source) pairs with their own series; beyond it a key's new sources count as "other"
_senders: set[tuple[str, str]] = set()


def record_senders(key: str, sources: Iterable[str | None], now: float | None = None) -> None:
    """``key``: the caller (``key:<prefix>`` or ``anonymous``); ``sources``: the accepted events' sources."""
    at = time.time() if now is None else now
    for source in set(sources):
        pair = (key, source or "unset")
        if pair not in _senders:
            if len(_senders) >= MAX_SENDERS:
                pair = (key, "other")
            _senders.add(pair)
        LAST_EVENT.labels(*pair).set(at)
