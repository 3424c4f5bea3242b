"""The scorer's batch step: decode, deduplicate, evaluate each touched account, persist, queue signals."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scorer.evaluate import (
    AccountRecord,
    ScoringConfig,
    evaluate_account,
    record_from_row,
    record_to_row,
)
from services.scorer.tables import account_health, account_profiles, seen_events, signal_outbox
from shared.accounts import AccountProfile
from shared.consumer_loop import Rejected
from shared.events import Event, decode_event
from shared.settings import Topics

log = logging.getLogger(__name__)

EVENTS = Counter("churnwatch_scorer_events_total", "Events seen by the scorer", ["outcome"])
SIGNALS = Counter("churnwatch_scorer_signals_total", "Risk signals emitted", ["signal_type", "recovered"])


class ScoringProcessor:
    def __init__(
        self,
        *,
        topics: Topics,
        producer: AIOKafkaProducer,
        sessions: async_sessionmaker[AsyncSession],
        config: ScoringConfig,
    ) -> None:
        self._topics = topics
        self._producer = producer
        self._sessions = sessions
        self._config = config

    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        rejected: list[Rejected] = []
        profiles: dict[str, dict[str, Any]] = {}
        events: list[Event] = []
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
                events.append(decode_event(r.value or b""))
            except ValidationError as exc:
                EVENTS.labels("invalid").inc()
                rejected.append(Rejected(r, f"invalid event: {exc.errors()[:3]}"))
        if profiles:
            stmt = insert(account_profiles).values([{"account_id": k, "profile": v} for k, v in profiles.items()])
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["account_id"], set_={"profile": stmt.excluded.profile})
            )
        fresh = await self._first_sightings(session, events)
        EVENTS.labels("duplicate").inc(len(events) - len(fresh))
        EVENTS.labels("counted").inc(len(fresh))
        await self._evaluate(session, fresh)
        return rejected

    async def _first_sightings(self, session: AsyncSession, events: list[Event]) -> list[Event]:
        """Events whose id this account has not counted before (nor earlier in this batch)."""
        unique: dict[tuple[str, str], Event] = {}
        for e in events:
            unique.setdefault((e.account_id, e.event_id), e)
        if not unique:
            return []
        stmt = (
            insert(seen_events)
            .values(
                [{"account_id": a, "event_id": i, "occurred_on": e.occurred_at.date()} for (a, i), e in unique.items()]
            )
            .on_conflict_do_nothing()
            .returning(seen_events.c.account_id, seen_events.c.event_id)
        )
        inserted = {(row.account_id, row.event_id) for row in await session.execute(stmt)}
        return [e for key, e in unique.items() if key in inserted]

    async def _evaluate(self, session: AsyncSession, events: list[Event]) -> None:
        by_account: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            by_account[e.account_id].append(e)
        if not by_account:
            return
        ids = list(by_account)
        rows = await session.execute(select(account_health).where(account_health.c.account_id.in_(ids)))
        records = {
            r.account_id: record_from_row(r.state, r.score, r.band, r.components, r.active_signals) for r in rows
        }
        prof_rows = await session.execute(select(account_profiles).where(account_profiles.c.account_id.in_(ids)))
        profiles = {r.account_id: AccountProfile.model_validate(r.profile) for r in prof_rows}
        upserts: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        for account_id, evs in by_account.items():
            ev = evaluate_account(
                account_id, records.get(account_id, AccountRecord()), evs, profiles.get(account_id), self._config
            )
            upserts.append(
                {
                    "account_id": account_id,
                    **record_to_row(ev.record),
                    "explanation": ev.explanation or None,
                    "as_of": ev.as_of,
                }
            )
            for s in ev.signals:
                SIGNALS.labels(s.signal_type.value, str(s.recovered).lower()).inc()
                outbox.append(
                    {"signal_id": s.signal_id, "account_id": account_id, "payload": s.model_dump(mode="json")}
                )
        stmt = insert(account_health).values(upserts)
        cols = ("state", "score", "band", "components", "active_signals", "explanation", "as_of")
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["account_id"],
                set_={**{c: stmt.excluded[c] for c in cols}, "updated_at": stmt.excluded.updated_at},
            )
        )
        if outbox:
            await session.execute(insert(signal_outbox).values(outbox).on_conflict_do_nothing())

    async def after_commit(self) -> None:
        await self.publish_outbox()

    async def on_idle(self) -> None:
        await self.publish_outbox()

    def on_partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        return None  # state is read from PostgreSQL per batch: nothing cached to drop

    async def publish_outbox(self, limit: int = 1000) -> int:
        """Publish queued signals, then delete them. A crash in between republishes the same signal ids,
        which the alerter drops, so each signal takes effect once."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(signal_outbox.c.signal_id, signal_outbox.c.account_id, signal_outbox.c.payload)
                    .order_by(signal_outbox.c.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            futures = [
                await self._producer.send(
                    self._topics.signals, key=r.account_id.encode(), value=json.dumps(r.payload).encode()
                )
                for r in rows
            ]
            for f in futures:
                await f
            await session.execute(
                delete(signal_outbox).where(signal_outbox.c.signal_id.in_([r.signal_id for r in rows]))
            )
        return len(rows)
