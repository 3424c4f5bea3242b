"""A data problem told from a customer problem: silent sources and quiet-day spikes (pure)."""

from __future__ import annotations

import pytest

from services.scorer.data_quality import (
    DataQualityRules,
    PartitionWatch,
    QuietDay,
    SourceDays,
    is_silent,
    is_spike,
    silent_sources,
    usual_count,
)

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


def _busy_partition(days: int, accounts: int = 40, outage: tuple[str, int, int] | None = None) -> PartitionWatch:
    """Accounts a0.. send usage every day from web (and odd ones also from mobile) for ``days`` days, advancing
    the clock day by day; ``outage``: (source, first day, last day) sends nothing from that source."""
    watch = PartitionWatch()
    for day in range(days):
        watch.advance(day)
        for i in range(accounts):
            for source in ("web", "mobile") if i % 2 else ("web",):
                if outage and outage[0] == source and outage[1] <= day <= outage[2]:
                    continue
                watch.observe(f"a{i}", source, day, usage=True)
    return watch


def test_a_source_outage_is_named_holds_its_accounts_and_ends() -> None:
    watch = _busy_partition(45, outage=("mobile", 35, 37))
    verdicts = watch.verdicts
    assert [d for d, v in sorted(verdicts.items()) if v.silent] == [35, 36, 37]
    assert verdicts[36].silent == {"mobile"} and verdicts[36].spike is None
    assert watch.holds("a1", {"web", "mobile"}, day=38, window_days=7)  # its drop may be mobile's silence
    assert not watch.holds("a0", {"web"}, day=38, window_days=7)  # web-only: nothing to hold
    assert not watch.holds("a1", {"web", "mobile"}, day=45, window_days=7)  # the window has passed


def test_a_lone_churner_is_not_held_but_a_mass_quiet_day_is_a_spike() -> None:
    watch = PartitionWatch()
    for day in range(60):
        watch.advance(day)
        for i in range(200):
            churned_alone = i == 7 and day >= 30
            everyone_stopped = i >= 20 and day >= 40  # 180 accounts stop sending at once (a broken release)
            if not (churned_alone or everyone_stopped):
                watch.observe(f"a{i}", "app", day, usage=True)
    quiet_from_a7 = 30 + watch.inactivity_days  # a7 last active on day 29: quiet from day 35's close
    assert watch.verdicts[quiet_from_a7].spike is None
    assert not watch.holds("a7", {"app"}, day=quiet_from_a7, window_days=7)
    spike_day = 40 + watch.inactivity_days  # last active day 39, quiet at day 45's close
    spike = watch.verdicts[spike_day].spike
    assert spike is not None and spike.went_quiet == 180
    assert watch.holds("a25", {"app"}, day=spike_day, window_days=7)
    assert not watch.holds("a7", {"app"}, day=spike_day, window_days=7)


def test_advance_closes_each_day_once_and_prunes_old_days() -> None:
    watch = _busy_partition(10)
    assert [v.day for v in watch.advance(10)] == [9]
    assert watch.advance(10) == [] and watch.advance(5) == []  # once only; an older day closes nothing
    assert [v.day for v in watch.advance(12)] == [10, 11]
    assert PartitionWatch().advance(7) == []  # a partition's first day is where its history starts
    _busy = _busy_partition(120)
    assert min(_busy.verdicts) >= 120 - 1 - _busy.rules.spike_baseline_days
    assert all(min(s.counts) >= 120 - 7 * 5 - 1 for s in _busy.sources.values())
