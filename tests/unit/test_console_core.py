"""The console's pure parts: password hashes, list filters and links, the week's alert sums, the chart."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.console.auth import csrf_token, csrf_valid
from services.console.chart import score_history_svg, score_points
from services.console.listing import ListFilters, Paging, parse_filters
from services.console.passwords import ScryptCost, WeakPassword, check_strength, hash_password, verify_password
from services.console.portfolio import NO_CSM, alerts_since, latest_backtest_report, week_of_alerts
from services.console.signin import safe_next
from services.console.upstream import FilterRejected

CHEAP = ScryptCost(n=2**10, r=8, p=1)


def test_a_hash_verifies_its_password_only_and_carries_its_parameters() -> None:
    stored = hash_password("correct horse battery", CHEAP)
    assert stored.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert hash_password("correct horse battery", CHEAP) != stored, "no salt"


@pytest.mark.parametrize("stored", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AA==$AA==", "scrypt$1024$8$1$!$!"])
def test_a_malformed_hash_verifies_nothing(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_a_short_password_is_refused() -> None:
    with pytest.raises(WeakPassword):
        check_strength("short")


def test_the_csrf_token_is_per_session_and_compared_exactly() -> None:
    session: dict[str, object] = {}
    token = csrf_token(session)
    assert csrf_token(session) == token
    assert csrf_valid(session, token)
    assert not csrf_valid(session, token[:-1]) and not csrf_valid(session, None) and not csrf_valid({}, token)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"band": "purple"}, "band"),
        ({"tier": "gold"}, "tier"),
        ({"signal_type": "vibes"}, "signal_type"),
        ({"sort": "luck"}, "sort"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"csm": "ana"}, "csm"),
        ({"q": "x" * 201}, "q"),
        ({"mine": "maybe"}, "mine"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_filter_names_its_field(query: dict[str, str], field: str) -> None:
    with pytest.raises(FilterRejected) as caught:
        parse_filters(query)
    assert caught.value.field == field


def test_filters_become_the_scorers_query_and_my_accounts_is_me() -> None:
    filters = parse_filters({"band": "red", "q": " acme ", "page": "3", "sort": "arr", "csm": "bo@x.io", "mine": "1"})
    assert filters == ListFilters(band="red", csm="bo@x.io", q="acme", sort="arr", page=3, mine=True)
    params = dict(filters.scorer_params(me="ana@x.io", page_size=50))
    assert params == {"band": "red", "csm": "ana@x.io", "q": "acme", "sort": "arr", "limit": 50, "offset": 100}
    assert parse_filters({}) == ListFilters()


def test_links_keep_the_filters_and_a_new_sort_starts_at_page_one() -> None:
    filters = ListFilters(band="red", q="a&b", page=4)
    assert filters.link(sort="arr") == "/?band=red&q=a%26b&sort=arr"
    assert filters.link(page=5) == "/?band=red&q=a%26b&page=5"
    assert ListFilters().link() == "/"
    assert ListFilters(mine=True).link() == "/?mine=1"


def test_paging_counts_rows_and_pages() -> None:
    assert Paging.of(1, 120, 50, 50) == Paging(1, 3, 120, 1, 50)
    assert Paging.of(3, 120, 50, 20) == Paging(3, 3, 120, 101, 120)
    assert Paging.of(1, 0, 50, 0) == Paging(1, 1, 0, 0, 0)


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/?band=red", "/?band=red"), ("//evil.example", "/"), ("https://evil.example", "/"), ("/\\evil", "/"), ("", "/")],
)
def test_after_sign_in_only_a_path_on_this_site(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_the_week_of_alerts_by_type_and_by_csm() -> None:
    now = datetime(2026, 3, 10, tzinfo=UTC)
    alerts: list[dict[str, Any]] = [
        {"account_id": "a", "signal_type": "usage_drop", "opened_at": (now - timedelta(days=1)).isoformat()},
        {"account_id": "b", "signal_type": "usage_drop", "opened_at": (now - timedelta(days=2)).isoformat()},
        {"account_id": "c", "signal_type": "ticket_spike", "opened_at": (now - timedelta(days=3)).isoformat()},
        {"account_id": "a", "signal_type": "inactivity", "opened_at": (now - timedelta(days=9)).isoformat()},
        {"account_id": "a", "signal_type": "inactivity", "opened_at": None},
    ]
    week = alerts_since(alerts, now - timedelta(days=7))
    summary = week_of_alerts(week, {"a": "ana@x.io", "b": "ana@x.io", "c": None})
    assert summary.total == 3
    assert summary.by_type == [("usage_drop", 2), ("ticket_spike", 1)]
    assert summary.by_csm == [("ana@x.io", 2), (NO_CSM, 1)]


def test_the_latest_backtest_report_is_the_newest_html(tmp_path: Path) -> None:
    assert latest_backtest_report(None) is None and latest_backtest_report(tmp_path / "missing") is None
    old, new = tmp_path / "a" / "backtest.html", tmp_path / "b" / "backtest.html"
    for i, path in enumerate((old, new)):
        path.parent.mkdir()
        path.write_text("<html></html>")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "b" / "backtest.json").write_text("{}")
    assert latest_backtest_report(tmp_path) == new


def test_the_chart_is_an_inline_svg_of_the_days_in_order() -> None:
    history = [
        {"day": "2026-01-03", "score": 55.0, "band": "yellow"},
        {"day": "2026-01-01", "score": 80.0, "band": "green"},
        {"day": "bad", "score": 1},
    ]
    assert [p[1] for p in score_points(history)] == [80.0, 55.0]
    svg = score_history_svg(history)
    assert svg is not None and svg.startswith("<svg ") and "<?xml" not in svg and "<path" in svg
    assert score_history_svg([]) is None


def test_a_webhook_url_is_shown_without_its_secret_path() -> None:
    from services.console.rendering import ENVIRONMENT

    shown = ENVIRONMENT.from_string("{{ t | destination }}")
    assert shown.render(t="https://hooks.slack.com/services/T0/B0/SECRET") == "https://hooks.slack.com/…"
    assert shown.render(t="ana@csm.example.com") == "ana@csm.example.com"
