"""The scorer's batch step: decode, deduplicate, evaluate each touched account, persist, queue signals.

Also the clock: each batch advances the per-partition event-time watermark (``scorer_clock``) in its
transaction, and a sweep re-evaluates, at that watermark, accounts on this instance's partitions that were
last evaluated on an earlier day, so inactivity and days-to-renewal advance for accounts that send nothing
(a page of them per interval while events flow, all of them once caught up).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scorer import store
from services.scorer.evaluate import AccountRecord, Evaluation, ScoringConfig, evaluate_account, record_to_row
from shared.accounts import AccountProfile
from shared.consumer_loop import Rejected
from shared.events import Event, decode_event
from shared.settings import Topics
from shared.signals import RiskSignal

log = logging.getLogger(__name__)

EVENTS = Counter("churnwatch_scorer_events_total", "Events seen by the scorer", ["outcome"])
SIGNALS = Counter("churnwatch_scorer_signals_total", "Risk signals emitted", ["signal_type", "recovered"])
PRUNED = Counter("churnwatch_scorer_dedup_pruned_total", "Days of event ids forgotten once too late to count anyway")
SWEPT = Counter("churnwatch_scorer_swept_accounts_total", "Idle accounts re-evaluated by the clock sweep")


class ScoringProcessor:
    def __init__(
        self,
        *,
        topics: Topics,
        producer: AIOKafkaProducer,
        sessions: async_sessionmaker[AsyncSession],
        config: ScoringConfig,
        sweep_interval_s: float = 5.0,
        sweep_batch: int = 500,
        prune_interval_s: float = 300.0,
    ) -> None:
        self._topics = topics
        self._producer = producer
        self.sessions = sessions
        self._config = config
        self._sweep_interval_s = sweep_interval_s
        self._sweep_batch = sweep_batch
        self._last_sweep = 0.0
        self._prune_interval_s = prune_interval_s
        self._last_prune = time.monotonic()
        self.owned_partitions: Callable[[], Collection[int]] = lambda: ()
        # True while the outbox may hold rows: at start (a previous run may have left some), after a batch
        # queued signals, and while a publish found a full page. Other batches skip the outbox query.
        self._outbox_pending = True

    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        rejected: list[Rejected] = []
        profiles: dict[str, dict[str, Any]] = {}
        events: list[tuple[Event, int]] = []
        for r in records:
            if r.topic == self._topics.accounts:
                if r.value is None:
                    continue  # a tombstone: the profile stays until a new one arrives
                try:
                    p = AccountProfile.model_validate_json(r.value)
                except ValidationError as exc:
                    rejected.append(Rejected(r, f"invalid account profile: {exc.errors()[:3]}"))
                    continue
                profiles[p.account_id] = p.model_dump(mode="json")
                continue
            try:
                events.append((decode_event(r.value or b""), r.partition))
            except ValidationError as exc:
                EVENTS.labels("invalid").inc()
                rejected.append(Rejected(r, f"invalid event: {exc.errors()[:3]}"))
        await store.upsert_profiles(session, profiles)
        await self._apply(session, [e for e, _ in events], {e.account_id: p for e, p in events})
        await store.advance_clock(session, self._topics.events, _watermarks(events))
        return rejected

    async def _apply(self, session: AsyncSession, events: list[Event], partition_of: dict[str, int]) -> None:
        if not events:
            return
        records = await store.load_records(session, partition_of)
        to_fold = await store.first_sightings(session, events, records, self._config.rules)
        EVENTS.labels("duplicate").inc(len(events) - len(to_fold))
        by_account: dict[str, list[Event]] = defaultdict(list)
        for e in to_fold:
            by_account[e.account_id].append(e)
        profiles = await store.load_profiles(session, by_account)
        evaluations = {
            a: evaluate_account(a, records.get(a, AccountRecord()), evs, profiles.get(a), self._config)
            for a, evs in by_account.items()
        }
        late = sum(ev.late for ev in evaluations.values())
        EVENTS.labels("too_late").inc(late)
        EVENTS.labels("counted").inc(len(to_fold) - late)
        await self._persist(session, evaluations, partition_of)

    async def _persist(
        self, session: AsyncSession, evaluations: dict[str, Evaluation], partition_of: dict[str, int]
    ) -> None:
        health_rows: list[dict[str, Any]] = []
        history_rows: list[dict[str, Any]] = []
        signals: list[RiskSignal] = []
        for account_id, ev in evaluations.items():
            h = ev.health
            health_rows.append(
                {
                    "account_id": account_id,
                    **record_to_row(ev.record, h),
                    "explanation": ev.explanation or None,
                    "partition": partition_of.get(account_id),
                    "scorecard": h.scorecard if h else None,
                    **_latest_risk(ev),
                }
            )
            history_rows.extend(
                {"account_id": account_id, "day": c.day, "score": c.health.score, "band": c.health.band}
                | ({"risk": c.risk.probability} if c.risk else {})
                for c in ev.closes
            )
            if h is not None and ev.as_of is not None:  # the day in progress, until its close replaces it
                history_rows.append(
                    {"account_id": account_id, "day": ev.as_of.date(), "score": h.score, "band": h.band}
                )
            for s in ev.signals:
                SIGNALS.labels(s.signal_type.value, str(s.recovered).lower()).inc()
                signals.append(s)
        await store.save_health(session, health_rows)
        await store.save_score_history(session, history_rows)
        await store.queue_signals(session, signals)
        if signals:
            self._outbox_pending = True

    async def sweep(self, *, caught_up: bool = True) -> int:
        """Close the days of idle accounts of this instance's partitions up to the clock; returns how many.

        While events flow, each partition's accounts go by that partition's own clock: in a replay one partition
        can be days ahead of another, and its clock would close days whose events are still unread elsewhere.
        Once caught up, every partition goes by the latest clock, so a partition whose accounts all went silent
        still sees the days pass."""
        partitions = list(self.owned_partitions())
        if not partitions:
            return 0
        async with self.sessions() as session, session.begin():
            known = await store.read_clocks(session, self._topics.events)
            if not known:
                return 0
            latest = max(known.values())
            clocks = {p: latest if caught_up else known[p] for p in partitions if caught_up or p in known}
            due = await store.stale_accounts(session, clocks, self._sweep_batch)
            if not due:
                return 0
            profiles = await store.load_profiles(session, due)
            evaluations = {
                a: evaluate_account(a, r, (), profiles.get(a), self._config, clock=clock)
                for a, (r, clock) in due.items()
            }
            await self._persist(session, evaluations, {})
        SWEPT.inc(len(due))
        return len(due)

    async def _maybe_sweep(self, *, caught_up: bool) -> None:
        """Caught up (a poll found nothing), the sweep goes through every stale account. While events flow it
        does one page per interval: the accounts that send events are re-evaluated by them anyway, and a
        replay moving the clock days a second would otherwise spend its time sweeping every account."""
        if time.monotonic() - self._last_sweep < self._sweep_interval_s:
            return
        self._last_sweep = time.monotonic()
        while await self.sweep(caught_up=caught_up) >= self._sweep_batch and caught_up:
            pass
        await self.publish_outbox()
        if time.monotonic() - self._last_prune >= self._prune_interval_s:
            self._last_prune = time.monotonic()
            await self.prune_dedup()

    async def prune_dedup(self) -> int:
        """Drop event ids of this instance's accounts that can no longer count (older than watermark - grace)."""
        async with self.sessions() as session, session.begin():
            gone = await store.prune_seen_events(session, list(self.owned_partitions()), self._config.rules.grace_days)
        PRUNED.inc(gone)
        return gone

    async def after_commit(self) -> None:
        if self._outbox_pending:
            await self.publish_outbox()
        await self._maybe_sweep(caught_up=False)

    async def on_idle(self) -> None:
        await self.publish_outbox()
        await self._maybe_sweep(caught_up=True)

    def on_partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        return None  # state is read from PostgreSQL per batch: nothing cached to drop

    async def publish_outbox(self, limit: int = 1000) -> int:
        """Publish queued signals, then delete them. A crash in between republishes the same signal ids,
        which the alerter drops, so each signal takes effect once."""
        self._outbox_pending = False  # set again by a batch that queues signals meanwhile
        try:
            published = await self._publish_page(limit)
        except BaseException:
            self._outbox_pending = True
            raise
        if published >= limit:
            self._outbox_pending = True
        return published

    async def _publish_page(self, limit: int) -> int:
        async with self.sessions() as session, session.begin():
            rows = await store.outbox_page(session, limit)
            if not rows:
                return 0
            futures = [
                await self._producer.send(self._topics.signals, key=account_id.encode(), value=payload)
                for _, account_id, payload in rows
            ]
            for f in futures:
                await f
            await store.drop_from_outbox(session, [signal_id for signal_id, _, _ in rows])
        return len(rows)


def _latest_risk(ev: Evaluation) -> dict[str, Any]:
    """The estimate of the evaluation's last day close; none when it closed no day (the stored one stays)."""
    risk = next((c.risk for c in reversed(ev.closes) if c.risk), None)
    return {"risk": risk.probability if risk else None, "risk_explanation": risk.explanation if risk else None}


def _watermarks(events: Iterable[tuple[Event, int]]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for e, p in events:
        at = e.occurred_at
        known = out.get(p)
        if known is None or at > known:
            out[p] = at
    return out
