"""A silent source holds back the inactivity and usage-drop raises it would cause, in the resident accounts' fold.

A partition of accounts: most send from "web", some only from "mobile", some from both; "mobile" stops for ten
days (a broken SDK release). Exactly one data-quality notice and its end; no inactivity or usage-drop raise for
the mobile accounts; a lone web churner still raises inactivity. The same stream without sources (nothing to
tell a data problem by) raises them: so the hold is what keeps them quiet.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from services.scorer.decode import ScorerEvent, decode_scorer_event
from services.scorer.evaluate import ScoringConfig
from services.scorer.resident import Loaded, ResidentAccounts
from shared.signals import RiskSignal, SignalType

START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 60
OUTAGE = range(40, 50)  # days on which "mobile" sends nothing
WEB_ONLY, MOBILE_ONLY, BOTH = 60, 8, 10
CHURNER = "web-0"  # stops on day 40, alone


def _accounts() -> dict[str, tuple[str, ...]]:
    out = {f"web-{i}": ("web",) for i in range(WEB_ONLY)}
    out |= {f"mobile-{i}": ("mobile",) for i in range(MOBILE_ONLY)}
    return out | {f"both-{i}": ("web", "mobile") for i in range(BOTH)}


def _stream(with_sources: bool = True) -> list[ScorerEvent]:
    rng = random.Random(7)
    out: list[tuple[datetime, bytes]] = []
    for day in range(DAYS):
        for account, sources in _accounts().items():
            if account == CHURNER and day >= 40:
                continue
            for source in sources:
                if source == "mobile" and day in OUTAGE:
                    continue
                for n in range(3):
                    at = START + timedelta(days=day, hours=8 + rng.randrange(10), minutes=n)
                    src = f', "source": "{source}"' if with_sources else ""
                    body = (
                        f'{{"kind": "usage", "action": "login", "event_id": "{account}-{source}-{day}-{n}",'
                        f' "account_id": "{account}", "user_id": "{account}-u{n}", "occurred_at": "{at.isoformat()}"'
                        f"{src}}}"
                    )
                    out.append((at, body.encode()))
    return [decode_scorer_event(b) for _, b in sorted(out)]


def _fold(events: list[ScorerEvent], cuts: list[int]) -> list[RiskSignal]:
    resident = ResidentAccounts(ScoringConfig())
    ids = list(_accounts())
    resident.admit(Loaded(), ids, dict.fromkeys(ids, 0))
    bounds = [0, *sorted(set(cuts)), len(events)]
    for lo, hi in pairwise(bounds):
        resident.fold([(e, 0) for e in events[lo:hi]])
    resident.sweep(dict.fromkeys(ids, START + timedelta(days=DAYS, hours=12)))  # the clock closes idle accounts
    return resident.pending.signals


def _raised(signals: list[RiskSignal], kind: SignalType) -> set[str]:
    return {s.account_id for s in signals if s.signal_type is kind and not s.recovered}


def _touched(signals: list[RiskSignal]) -> list[tuple[str, str]]:
    """Raises for accounts that send from "mobile" (the silent source)."""
    kinds = [(s.account_id, s.signal_type.value) for s in signals if not s.recovered]
    return [(a, k) for a, k in kinds if not a.startswith(("web", "source:"))]


def test_a_silent_source_is_one_notice_and_holds_only_what_it_causes() -> None:
    signals = _fold(_stream(), [])
    notices = [
        (s.account_id, s.recovered, s.occurred_at.date()) for s in signals if s.signal_type is SignalType.DATA_QUALITY
    ]
    start, end = (START + timedelta(days=OUTAGE.start)).date(), (START + timedelta(days=OUTAGE.stop)).date()
    assert notices == [("source:mobile", False, start), ("source:mobile", True, end)]
    assert _raised(signals, SignalType.INACTIVITY) == {CHURNER}  # the lone churner still alerts
    assert _touched(signals) == []


def test_without_sources_the_same_stream_raises_what_the_hold_kept_back() -> None:
    signals = _fold(_stream(with_sources=False), [])
    assert not [s for s in signals if s.signal_type is SignalType.DATA_QUALITY]
    assert _raised(signals, SignalType.INACTIVITY) == {CHURNER} | {f"mobile-{i}" for i in range(MOBILE_ONLY)}
    assert {k for _, k in _touched(signals)} >= {"inactivity", "band_change", "score_drop", "usage_drop"}


def test_cutting_the_stream_anywhere_gives_the_same_signals() -> None:
    events = _stream()
    whole = sorted(s.signal_id for s in _fold(events, []))
    rng = random.Random(3)
    for _ in range(3):
        cuts = sorted(rng.sample(range(len(events)), 25))
        assert sorted(s.signal_id for s in _fold(events, cuts)) == whole
