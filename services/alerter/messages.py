"""Building what is sent, separate from sending it. Pure: an alert notice in, a Slack payload or an email out.

Every string that came from events or account metadata is treated as hostile: in Slack it goes into
``plain_text`` objects (no formatting, no pings) and is escaped (``&``, ``<``, ``>``) wherever it is shown,
including the notification fallback text; in email HTML it is HTML-escaped. So an account called
``*bold* <!channel>`` or ``<script>`` arrives inert.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.alerter.lifecycle import Action, Notice
from shared.signals import RiskSignal, Severity

_ICON = {Severity.CRITICAL: ":red_circle:", Severity.WARNING: ":large_yellow_circle:", Severity.INFO: ":white_circle:"}
_SECTION_LIMIT = 3000
_HEADER_LIMIT = 150
_SLACK_ID = re.compile(r"^[UWC][A-Z0-9]{2,20}$")
_ACTION_LABEL = {Action.ACK: "Acknowledge", Action.SNOOZE: "Snooze"}


@dataclass(frozen=True)
class AlertNotice:
    """One notice about one alert, with everything a message shows."""

    signal: RiskSignal
    notice: Notice
    alert_id: int | None = None
    mention: str | None = None  # the raw Slack handle from account metadata
    playbook: str | None = None
    links: Mapping[Action, str] = field(default_factory=dict)
    account_url: str | None = None


def slack_escape(text: str) -> str:
    """Slack's three control characters; this also defuses <!channel> and <@user> pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_mention(handle: str | None) -> str:
    """Only a well-formed Slack user or channel id becomes a ping; any other handle is shown as inert text."""
    if not handle:
        return ""
    if _SLACK_ID.match(handle):
        return f"<#{handle}>" if handle.startswith("C") else f"<@{handle}>"
    return slack_escape(handle)


def account_label(signal: RiskSignal) -> str:
    name = signal.account.name if signal.account else None
    return f"{name} ({signal.account_id})" if name else signal.account_id


def headline(signal: RiskSignal, notice: Notice) -> str:
    kind = signal.signal_type.value.replace("_", " ")
    if notice is Notice.RESOLVED:
        return f"Resolved: {kind} on {account_label(signal)}"
    prefix = {Notice.ESCALATED: "Escalated", Notice.REMINDER: "Reminder"}.get(
        notice, signal.severity.value.capitalize()
    )
    return f"{prefix}: {kind} on {account_label(signal)}"


def score_line(signal: RiskSignal) -> str:
    if signal.score_after is None:
        return ""
    before = f"{signal.score_before:.0f} → " if signal.score_before is not None else ""
    change = f" ({signal.score_after - signal.score_before:+.0f})" if signal.score_before is not None else ""
    bands = f"{signal.band_before} → {signal.band_after}" if signal.band_before else str(signal.band_after or "")
    return f"health {before}{signal.score_after:.0f}{change}" + (f", band {bands}" if bands else "")


def evidence_line(signal: RiskSignal) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(signal.evidence.items()))


def track_record_line(signal: RiskSignal) -> str:
    """The rule's backtested record in one short line, or "" when the signal carries none (or a recovery)."""
    q = signal.quality
    if q is None or signal.recovered:
        return ""
    precision = q.precision if q.precision is not None and math.isfinite(q.precision) else None
    lift = q.lift if q.lift is not None and math.isfinite(q.lift) else None
    chance = f"{lift:.1f}x chance" if lift is not None else ""
    if precision is None:
        return f"This rule's alerts were {chance} in backtests" if chance else ""
    return f"This rule was right {_percent(precision)} of the time in backtests" + (f" ({chance})" if chance else "")


def _percent(share: float) -> str:
    """14%, and 2.2% or 0.4% for small shares (rounding them to 2% or 0% would say too little)."""
    return f"{share:.0%}" if share >= 0.095 else f"{share:.1%}"


def _plain(text: str, limit: int = _SECTION_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": slack_escape(text)[:limit] or "-", "emoji": False}


def slack_message(n: AlertNotice) -> dict[str, Any]:
    signal = n.signal
    icon = ":white_check_mark:" if n.notice is Notice.RESOLVED else _ICON[signal.severity]
    title = headline(signal, n.notice)
    mention = slack_mention(n.mention)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(title, _HEADER_LIMIT)}]
    if n.notice is not Notice.RESOLVED:
        lines = (signal.explanation, score_line(signal), evidence_line(signal), track_record_line(signal))
        details = "\n".join(x for x in lines if x)
        blocks.append({"type": "section", "text": _plain(details)})
        if n.playbook:
            blocks.append({"type": "section", "text": _plain(f"Next step: {n.playbook}")})
    own_links = [f"<{url}|{_ACTION_LABEL[a]}>" for a, url in n.links.items() if n.notice is not Notice.RESOLVED]
    if n.account_url:
        own_links.insert(0, f"<{n.account_url}|Open account>")
    if own_links or mention:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": " ".join([mention, *own_links]).strip()}})
    blocks.append(
        {
            "type": "context",
            "elements": [_plain(f"event time {signal.occurred_at.isoformat()} · signal {signal.signal_id}")],
        }
    )
    fallback = f"{mention} {icon} {slack_escape(title)}".strip()  # notifications show only this
    return {"text": fallback[:_SECTION_LIMIT], "blocks": blocks}


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def _notice_lines(n: AlertNotice) -> list[str]:
    s = n.signal
    lines = [headline(s, n.notice), s.explanation, score_line(s), evidence_line(s)]
    if n.notice is not Notice.RESOLVED:
        lines.append(track_record_line(s))
    if n.playbook and n.notice is not Notice.RESOLVED:
        lines.append(f"Next step: {n.playbook}")
    lines.append(f"Event time: {s.occurred_at.isoformat()} - signal {s.signal_id}")
    return [x for x in lines if x]


def _link_lines(n: AlertNotice) -> list[tuple[str, str]]:
    out = [("Open account", n.account_url)] if n.account_url else []
    if n.notice is not Notice.RESOLVED:
        out += [(_ACTION_LABEL[a], url) for a, url in n.links.items()]
    return out


def _html_block(n: AlertNotice) -> str:
    lines = _notice_lines(n)
    body = f"<h3>{html.escape(lines[0])}</h3>" + "".join(f"<p>{html.escape(x)}</p>" for x in lines[1:])
    anchors = " | ".join(f'<a href="{html.escape(url)}">{html.escape(label)}</a>' for label, url in _link_lines(n))
    return body + (f"<p>{anchors}</p>" if anchors else "")


def _text_block(n: AlertNotice) -> str:
    return "\n".join([*_notice_lines(n), *(f"{label}: {url}" for label, url in _link_lines(n))])


def _subject(text: str) -> str:
    return " ".join(("[Churnwatch] " + text).split())[:250]


def email_message(n: AlertNotice) -> Email:
    return Email(
        subject=_subject(headline(n.signal, n.notice)),
        text=_text_block(n),
        html=f"<html><body>{_html_block(n)}</body></html>",
    )


def digest_email(items: Sequence[AlertNotice], period: str) -> Email:
    accounts = len({n.signal.account_id for n in items})
    summary = f"Digest {period}: {len(items)} alert notices on {accounts} accounts"
    return Email(
        subject=_subject(summary),
        text="\n\n".join([summary, *(_text_block(n) for n in items)]),
        html=f"<html><body><h2>{html.escape(summary)}</h2>{'<hr>'.join(_html_block(n) for n in items)}</body></html>",
    )


def webhook_body(n: AlertNotice) -> dict[str, Any]:
    """The generic JSON webhook for CRMs and ticketing tools (JSON-encoded, so inert by construction)."""
    return {
        "type": "churnwatch.alert",
        "alert_id": n.alert_id,
        "notice": n.notice.value,
        "headline": headline(n.signal, n.notice),
        "playbook": n.playbook,
        "links": {a.value: url for a, url in n.links.items()},
        "account_url": n.account_url,
        "signal": n.signal.model_dump(mode="json"),
    }


def console_line(n: AlertNotice) -> str:
    return f"ALERT {headline(n.signal, n.notice)} | {n.signal.explanation}"
