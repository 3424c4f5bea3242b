"""A data problem told from a customer problem: silent sources and quiet-day spikes (pure)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from services.scorer.data_quality import (
    DataQualityChange,
    DataQualityRules,
    PartitionWatch,
    QuietDay,
    SourceDays,
    data_quality_signal,
    hold_back,
    hold_days,
    is_silent,
    is_spike,
    silent_sources,
    usual_count,
)
from services.scorer.detectors import ActiveSignal, Condition
from services.scorer.watch_format import watch_from_json, watch_to_json
from services.scorer.windows import WindowRules
from shared.signals import Audience, Severity, SignalType

DAY = 100  # a Monday, say: the same weekday is DAY - 7k


def _source(per_weekday: dict[int, int], weeks: int = 5, today: int | None = None) -> SourceDays:
    """``per_weekday``: day offset within the week (0 = DAY's weekday) -> events; ``today``: DAY's own count."""
    s = SourceDays(first_day=DAY - 7 * weeks)
    for d in range(DAY - 7 * weeks, DAY):
        count = per_weekday.get((d - DAY) % 7, 0)
        if count:
            s.add(d, count)
    if today:
        s.add(DAY, today)
    return s


def test_usual_count_is_the_same_weekday_median_and_needs_history() -> None:
    s = _source({0: 100, 3: 5})
    assert usual_count(s, DAY) == 100
    assert usual_count(s, DAY + 3) == 5
    young = SourceDays(first_day=DAY - 10, counts={DAY - 7: 100})
    assert usual_count(young, DAY) is None


@pytest.mark.parametrize(
    ("today", "silent"),
    [(0, True), (9, True), (10, False), (100, False)],  # below 10% of the usual 100 is silent
)
def test_a_busy_source_sending_almost_nothing_is_silent(today: int, silent: bool) -> None:
    assert is_silent(_source({0: 100}, today=today), DAY) is silent


def test_a_quiet_weekday_or_a_small_source_is_not_watched() -> None:
    weekend = _source({0: 0, 1: 100})  # nothing on DAY's weekday is usual for it
    assert not is_silent(weekend, DAY)
    small = _source({0: 5})  # fewer than min_usual_events usually
    assert not is_silent(small, DAY)
    assert is_silent(small, DAY, DataQualityRules(min_usual_events=3))


def test_silent_sources_names_the_silent_one_but_not_all_at_once() -> None:
    web, mobile = _source({0: 100}, today=0), _source({0: 80}, today=75)
    assert silent_sources({"web": web, "mobile": mobile}, DAY) == {"web"}
    both_dead = {"web": web, "mobile": _source({0: 80})}
    assert silent_sources(both_dead, DAY) == frozenset()  # everything stopped: the spike rule's case


def test_prune_keeps_the_recent_days() -> None:
    s = _source({0: 100})
    s.prune(DAY - 14)
    assert min(s.counts) >= DAY - 14 and s.first_day == DAY - 35


def _quiet_days(share: float, days: int = 28, active: int = 1000) -> list[QuietDay]:
    return [QuietDay(DAY - k, round(share * active), active) for k in range(1, days + 1)]


@pytest.mark.parametrize(
    ("went_quiet", "spike"),
    [
        (300, True),  # 30% of the active accounts went quiet, against a usual 0.5%
        (20, False),  # 2%: below the 5% floor
        (40, False),  # 4%: still below it
    ],
)
def test_a_spike_is_far_above_the_usual_day(went_quiet: int, spike: bool) -> None:
    assert is_spike(QuietDay(DAY, went_quiet, 1000), _quiet_days(0.005)) is spike


def test_a_spike_needs_enough_accounts_and_beats_a_noisy_history() -> None:
    assert not is_spike(QuietDay(DAY, 5, 20), _quiet_days(0.0, active=20))  # 25% but only 5 accounts
    assert not is_spike(QuietDay(DAY, 300, 1000), _quiet_days(0.1))  # 30% against a usual 10%: 3x, not 5x


class _Feed:
    """Feeds a watch as the resident accounts do: counts per source, and each account's last active day."""

    def __init__(self, watch: PartitionWatch | None = None) -> None:
        self.watch = watch or PartitionWatch()
        self.last_active: dict[str, int] = {}
        self.changes: list[DataQualityChange] = []

    def day(self, day: int) -> None:
        self.changes += self.watch.advance(day)

    def usage(self, account: str, source: str, day: int) -> None:
        self.watch.observe(source, day)
        before = self.last_active.get(account)
        if before is None or day > before:
            self.watch.moved_active(before, day)
            self.last_active[account] = day


def _busy_partition(days: int, accounts: int = 40, outage: tuple[str, int, int] | None = None) -> _Feed:
    """Accounts a0.. send usage every day from web (and odd ones also from mobile) for ``days`` days, advancing
    the clock day by day; ``outage``: (source, first day, last day) sends nothing from that source."""
    feed = _Feed()
    for day in range(days):
        feed.day(day)
        for i in range(accounts):
            for source in ("web", "mobile") if i % 2 else ("web",):
                if outage and outage[0] == source and outage[1] <= day <= outage[2]:
                    continue
                feed.usage(f"a{i}", source, day)
    return feed


def test_a_source_outage_is_named_holds_its_accounts_and_ends() -> None:
    feed = _busy_partition(45, outage=("mobile", 35, 37))
    watch = feed.watch
    verdicts = watch.verdicts
    assert [d for d, v in sorted(verdicts.items()) if v.silent] == [35, 36, 37]
    assert verdicts[36].silent == {"mobile"} and verdicts[36].spike is None
    assert watch.problem_age({"web", "mobile"}, 37, day=38, lookback=7) == 1  # its drop may be mobile's silence
    assert watch.problem_age({"web"}, 37, day=38, lookback=7) is None  # web-only: nothing to hold
    assert watch.problem_age({"web", "mobile"}, 44, day=45, lookback=7) is None  # the window has passed
    assert watch.problem_age({"web", "mobile"}, 44, day=45, lookback=35) == 8
    assert [(c.subject, c.day, c.recovered) for c in feed.changes] == [
        ("source:mobile", 35, False),
        ("source:mobile", 38, True),
    ]
    assert feed.changes[0].evidence == {"events": 0.0, "usual_events": 20.0}


def test_a_data_problem_is_one_notice_per_day_and_reads_like_one() -> None:
    feed = _busy_partition(45, outage=("mobile", 35, 37))
    raised, over = (data_quality_signal(c) for c in feed.changes)
    again = data_quality_signal(_busy_partition(45, outage=("mobile", 35, 37)).changes[0])
    assert raised.signal_id == again.signal_id != over.signal_id  # every partition seeing it: one notice
    assert raised.account_id == "source:mobile" and raised.audience is Audience.OPS
    assert raised.signal_type is SignalType.DATA_QUALITY and not raised.recovered and over.recovered
    assert "'mobile' went silent" in raised.explanation and "held back" in raised.explanation
    assert raised.occurred_at.date().toordinal() == 35


def test_a_lone_churner_is_not_held_but_a_mass_quiet_day_is_a_spike() -> None:
    feed = _Feed()
    for day in range(60):
        feed.day(day)
        for i in range(200):
            churned_alone = i == 7 and day >= 30
            everyone_stopped = i >= 20 and day >= 40  # 180 accounts stop sending at once (a broken release)
            if not (churned_alone or everyone_stopped):
                feed.usage(f"a{i}", "app", day)
    watch = feed.watch
    quiet_from_a7 = 30 + watch.inactivity_days  # a7 last active on day 29: quiet from day 35's close
    assert watch.verdicts[quiet_from_a7].spike is None
    assert watch.problem_age({"app"}, 29, day=quiet_from_a7, lookback=7) is None
    spike_day = 40 + watch.inactivity_days  # last active day 39, quiet at day 45's close
    spike = watch.verdicts[spike_day].spike
    assert spike is not None and spike.went_quiet == 180
    assert watch.problem_age({"app"}, 39, day=spike_day, lookback=7) == 0
    assert watch.problem_age({"app"}, 29, day=spike_day, lookback=7) is None
    assert ("accounts:went-quiet", spike_day, False) in [(c.subject, c.day, c.recovered) for c in feed.changes]


def test_advance_closes_each_day_once_and_prunes_old_days() -> None:
    watch = _busy_partition(10).watch
    assert watch.advance(10) == [] and watch.closed_through == 9
    assert watch.advance(10) == [] and watch.advance(5) == [] and watch.closed_through == 9
    watch.advance(12)
    assert watch.closed_through == 11 and set(watch.verdicts) >= {9, 10, 11}
    fresh = PartitionWatch()
    assert fresh.advance(7) == [] and fresh.closed_through == 6  # a partition's first day starts its history
    busy = _busy_partition(120).watch
    assert min(busy.verdicts) >= 120 - 1 - max(busy.rules.spike_baseline_days, busy.lookback_days)
    assert all(min(s.counts) >= 120 - 7 * 5 - 1 for s in busy.sources.values())


def test_the_stored_watch_reads_back_the_same() -> None:
    watch = _busy_partition(45, outage=("mobile", 35, 44)).watch
    stored = json.loads(json.dumps(watch_to_json(watch)))
    back = watch_from_json(stored)
    assert back == watch and back.raised == {"source:mobile": 35}
    assert watch_from_json({"v": 0}) == PartitionWatch()  # a row without fields: a fresh watch
    with pytest.raises(ValueError, match="newer"):
        watch_from_json({"v": 99})


RULES = WindowRules()
ACTIVE = {SignalType.USAGE_DROP: ActiveSignal(Severity.WARNING, date(2026, 3, 1))}


def _now(*kinds: tuple[SignalType, Severity]) -> dict[SignalType, Condition]:
    return {t: Condition(t, sev, Audience.CSM) for t, sev in kinds}


@pytest.mark.parametrize(
    ("age", "held"),
    [
        (None, ()),  # no data problem touched the account: nothing held
        (0, (SignalType.INACTIVITY, SignalType.USAGE_DROP, SignalType.EXPANSION)),
        (6, (SignalType.INACTIVITY, SignalType.USAGE_DROP, SignalType.EXPANSION)),
        (7, (SignalType.EXPANSION,)),  # the current window has passed; the baseline still holds the gap
        (35, ()),
    ],
)
def test_hold_back_leaves_out_what_a_gap_can_cause(age: int | None, held: tuple[SignalType, ...]) -> None:
    now = _now(
        (SignalType.INACTIVITY, Severity.WARNING),
        (SignalType.USAGE_DROP, Severity.CRITICAL),  # raised as a warning: an escalation
        (SignalType.TICKET_SPIKE, Severity.WARNING),  # tickets are not usage: never held
        (SignalType.EXPANSION, Severity.INFO),
    )
    out, got = hold_back(now, ACTIVE, lambda: age, RULES)
    assert set(got) == set(held)
    assert SignalType.TICKET_SPIKE in out
    assert (SignalType.INACTIVITY in out) is (SignalType.INACTIVITY not in held)
    escalated = out[SignalType.USAGE_DROP].severity
    assert escalated is (Severity.WARNING if SignalType.USAGE_DROP in held else Severity.CRITICAL)


def test_hold_back_asks_the_age_only_when_something_could_be_held() -> None:
    def never() -> int | None:
        raise AssertionError("asked")

    assert hold_back(_now((SignalType.TICKET_SPIKE, Severity.WARNING)), {}, never, RULES)[1] == ()
    same = _now((SignalType.USAGE_DROP, Severity.WARNING))  # already raised at this severity: nothing rises
    assert hold_back(same, ACTIVE, never, RULES) == (same, ())
    assert hold_days(SignalType.DATA_QUALITY, RULES) is None
