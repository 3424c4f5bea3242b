from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.codec import state_to_json
from services.scorer.dedup import KEY_BYTES, event_key, first_sightings, keys_of
from services.scorer.windows import AccountState, WindowRules, apply_event, too_late
from shared.events import EVENT_ADAPTER, Event

RULES = WindowRules(grace_days=2)
DAY0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def login(event_id: str, account: str = "a", day: int = 20) -> Event:
    at = DAY0 + timedelta(days=day - 1)
    raw = {"kind": "usage", "action": "login", "event_id": event_id, "account_id": account, "occurred_at": at}
    return EVENT_ADAPTER.validate_python(raw)


def test_an_id_counts_once_per_account_within_and_across_batches() -> None:
    known: dict[str, dict[bytes, date]] = {}
    batch = [login("e1"), login("e2"), login("e1"), login("e1", account="b")]
    fresh, added = first_sightings(batch, known, {}, RULES)
    assert [(e.account_id, e.event_id) for e in fresh] == [("a", "e1"), ("a", "e2"), ("b", "e1")]
    assert added == {
        ("a", date(2026, 11, 20)): event_key("e1") + event_key("e2"),
        ("b", date(2026, 11, 20)): event_key("e1"),
    }
    known = {"a": dict.fromkeys(keys_of(added["a", date(2026, 11, 20)]), date(2026, 11, 20))}
    fresh, added = first_sightings([login("e2", day=21), login("e3", day=21)], known, {}, RULES)
    assert [e.event_id for e in fresh] == ["e3"]  # e2 again, even on another day, is a duplicate
    assert added == {("a", date(2026, 11, 21)): event_key("e3")}


def test_an_event_too_late_goes_to_the_fold_to_be_counted_late_seen_or_not() -> None:
    known = {"a": {event_key("old"): date(2026, 11, 5)}}
    watermarks = {"a": DAY0 + timedelta(days=19)}
    to_fold, added = first_sightings([login("old", day=5), login("new", day=20)], known, watermarks, RULES)
    assert [e.event_id for e in to_fold] == ["old", "new"]
    assert too_late(watermarks["a"], to_fold[0].occurred_at.date(), RULES)
    assert added == {("a", date(2026, 11, 20)): event_key("new")}  # a late event's key is not kept


def test_an_id_resent_after_its_first_use_stopped_counting_counts_again_however_batches_are_cut() -> None:
    # grace 2 days: once the account is at day 10, day 5 can no longer count, nor its ids
    events = [login("x", day=5), login("y", day=10), login("x", day=10)]
    assert _batched(events, []) == _batched(events, [1]) == _batched(events, [2])
    assert _batched(events, [])["a"]["d"] == {"9805": [1], "9810": [2]}  # type: ignore[index]


def test_keys_are_fixed_width_and_stable() -> None:
    assert len(event_key("x")) == KEY_BYTES
    # the first 8 bytes of md5: what migration s0003 computes in SQL for the ids it carries over
    assert event_key("evt-1") == bytes.fromhex("ef205f13777dad5a")
    assert list(keys_of(event_key("a") + event_key("b"))) == [event_key("a"), event_key("b")]


def _batched(events: list[Event], cuts: list[int]) -> dict[str, object]:
    """What the scorer stores: per batch, the keys of days an event can still count on are read back from
    the (account, day) rows, deduplicated, folded; new keys appended to their rows."""
    rows: dict[tuple[str, date], bytes] = {}
    states: dict[str, AccountState] = {}
    bounds = [0, *sorted(set(cuts)), len(events)]
    for start, end in pairwise(bounds):
        batch = events[start:end]
        watermarks = {a: s.watermark for a, s in states.items() if s.watermark is not None}
        since = {a: wm.date() - timedelta(days=RULES.grace_days) for a, wm in watermarks.items()}
        known: dict[str, dict[bytes, date]] = {}
        for (a, d), ids in sorted(rows.items(), key=lambda row: row[0][1]):
            if d >= since.get(a, date.min):
                known.setdefault(a, {}).update(dict.fromkeys(keys_of(ids), d))
        to_fold, added = first_sightings(batch, known, watermarks, RULES)
        for e in to_fold:
            apply_event(states.setdefault(e.account_id, AccountState()), e, RULES)
        for day, ids in added.items():
            rows[day] = rows.get(day, b"") + ids
    return {a: state_to_json(s) for a, s in states.items()}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.sampled_from("ab"), st.integers(1, 12)), min_size=1, max_size=40),
    st.lists(st.integers(0, 40), max_size=6),
)
def test_what_counts_does_not_depend_on_where_batches_are_cut(
    stream: list[tuple[int, str, int]], cuts: list[int]
) -> None:
    # ids are reused on purpose: retries, and the odd client that resends an id with another time
    events = [login(f"e{n}-{day if n % 3 else 0}", account, day) for n, account, day in stream]
    cuts = [c for c in cuts if 0 < c < len(events)]
    assert _batched(events, cuts) == _batched(events, [])
