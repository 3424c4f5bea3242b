"""A data problem told from a customer problem: silent sources and quiet-day spikes (pure)."""

from __future__ import annotations

import pytest

from services.scorer.data_quality import (
    DataQualityRules,
    QuietDay,
    SourceDays,
    held_back,
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


def test_held_back_when_a_usual_source_was_silent_or_on_a_spike_day() -> None:
    assert held_back({"web"}, frozenset({"web"}), spike_day=False)
    assert held_back({"web", "mobile"}, frozenset({"web"}), spike_day=False)
    assert not held_back({"mobile"}, frozenset({"web"}), spike_day=False)  # a lone churner still alerts
    assert not held_back(set(), frozenset({"web"}), spike_day=False)
    assert held_back({"mobile"}, frozenset(), spike_day=True)
