"""Grouping: when a notice goes out (grouping.send_at), and the one message for a group (group_messages.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.alerter.group_messages import (
    MAX_BLOCKS,
    group_email,
    group_fallback,
    group_headline,
    slack_group_message,
)
from services.alerter.grouping import DestinationHistory, GroupTiming, send_at
from services.alerter.lifecycle import Action, Notice
from services.alerter.links import LinkSigner, group_link_signature, group_link_valid
from services.alerter.messages import AlertNotice
from shared.signals import Severity, SignalType
from tests.unit.test_alerting import HOSTILE, T0, signal

TIMING = GroupTiming(wait=timedelta(seconds=5), interval=timedelta(seconds=300))
S = timedelta(seconds=1)
KINDS = [SignalType.USAGE_DROP, SignalType.ESCALATION, SignalType.BAND_CHANGE, SignalType.SCORE_DROP]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (DestinationHistory(), T0 + 5 * S),  # a new group waits group_wait for the rest of its evaluation
        (DestinationHistory(pending_at=T0 + 3 * S), T0 + 3 * S),  # a group is waiting: join it
        (DestinationHistory(pending_at=T0 - 2 * S), T0),  # it is due (or being retried): join it now
        (DestinationHistory(last_sent_at=T0 - 100 * S), T0 + 200 * S),  # just sent: wait for the interval's end
        (DestinationHistory(last_sent_at=T0 - 300 * S), T0 + 5 * S),  # interval over: a new group
        (DestinationHistory(T0 + 1 * S, T0 - 10 * S), T0 + 1 * S),  # the waiting group wins
    ],
)
def test_when_a_notice_goes_out(history: DestinationHistory, expected: object) -> None:
    assert send_at(T0, TIMING, history) == expected


def test_zero_timing_sends_at_once() -> None:
    assert send_at(T0, GroupTiming(timedelta(0), timedelta(0)), DestinationHistory(last_sent_at=T0 - S)) == T0


def notices(n: int, **kw: object) -> list[AlertNotice]:
    links = {Action.ACK: "https://cw.example/v1/alerts/1/ack?exp=1&sig=x"}
    return [
        AlertNotice(
            signal(signal_id=f"s{i}", signal_type=KINDS[i % len(KINDS)], **kw),
            Notice.NEW,
            alert_id=i,
            mention="U0ANA",
            links=links,
        )
        for i in range(n)
    ]


GROUP_LINKS = {Action.ACK: "https://cw.example/v1/alert-groups/1,2/ack?exp=1&sig=y"}


def test_the_headline_names_the_worst_severity_and_every_reason() -> None:
    group = notices(3)
    group[1] = AlertNotice(signal(signal_type=SignalType.ESCALATION, severity=Severity.CRITICAL), Notice.ESCALATED)
    title = group_headline(group)
    assert title.startswith("Critical · 3 alerts on ")
    assert title.endswith(": usage drop, escalation, band change")
    resolved = [AlertNotice(signal(recovered=True, severity=Severity.INFO), Notice.RESOLVED)] * 2
    assert group_headline(resolved).startswith("Resolved · 2 alerts")


def test_one_block_per_signal_one_set_of_group_links_and_each_alerts_own_ack() -> None:
    msg = slack_group_message(notices(4), GROUP_LINKS)
    sections = [b for b in msg["blocks"] if b["type"] == "section"]
    assert len(sections) == 5  # four signals and the links
    assert all(b["text"]["type"] == "plain_text" for b in sections[:4])  # hostile text stays inert
    links = sections[-1]["text"]["text"]
    assert links.count("|Acknowledge all>") == 1 and links.startswith("<@U0ANA>")
    assert "Acknowledge one: <https://cw.example/v1/alerts/1/ack?exp=1&sig=x|usage drop>" in links
    assert "<!channel>" not in str(msg) and "&lt;!channel&gt;" in str(msg)
    for n in notices(4):
        assert f"Warning: {n.signal.signal_type.value.replace('_', ' ')} on" in msg["text"]


@pytest.mark.parametrize("size", [2, 46, 47, 48, 120])
def test_slack_limits_hold_for_any_group_size(size: int) -> None:
    msg = slack_group_message(notices(size, explanation="x" * 2000), GROUP_LINKS)
    assert len(msg["blocks"]) <= MAX_BLOCKS
    assert len(msg["text"]) <= 3000
    for block in msg["blocks"]:
        texts = [block["text"]] if "text" in block else block.get("elements", [])
        assert all(len(t["text"]) <= 3000 for t in texts)
    shown = [b for b in msg["blocks"] if b["type"] == "section" and "Event time" in b["text"]["text"]]
    if size + 3 > MAX_BLOCKS:
        assert len(shown) == MAX_BLOCKS - 4
        assert any(f"and {size - len(shown)} more" in b["text"]["text"] for b in msg["blocks"] if "text" in b)
    else:
        assert len(shown) == size


def test_the_fallback_text_is_cut_at_whole_headlines_with_and_n_more() -> None:
    group = notices(120, account={"account_id": "a1", "name": "N" * 60})
    text = group_fallback(group)
    assert len(text) <= 3000 and text.endswith(" more")
    listed = text.count("Warning: ")
    assert f"; and {120 - listed} more" in text


def test_group_email_names_every_reason_and_links_once() -> None:
    mail = group_email(notices(3), GROUP_LINKS)
    assert "usage drop, escalation, band change" in mail.subject
    assert mail.text.count("Acknowledge all: ") == 1 and mail.text.count("Event time") == 3
    assert "<script>" not in mail.html and HOSTILE not in mail.html


def test_group_links_are_signed_for_exactly_their_alerts() -> None:
    signer = LinkSigner("https://cw.example", "s" * 20, timedelta(days=7))
    links = signer.group_links([3, 5], T0)
    assert "/v1/alert-groups/3,5/ack?" in links[Action.ACK]
    exp = int((T0 + timedelta(days=7)).timestamp())
    sig = group_link_signature("s" * 20, [3, 5], Action.ACK, exp)
    assert group_link_valid("s" * 20, [3, 5], Action.ACK, exp, sig, T0)
    assert not group_link_valid("s" * 20, [3, 5, 6], Action.ACK, exp, sig, T0)  # another set of alerts
    assert not group_link_valid("s" * 20, [3, 5], Action.SNOOZE, exp, sig, T0)
    assert not group_link_valid("s" * 20, [3, 5], Action.ACK, exp, sig, T0 + timedelta(days=8))  # expired
