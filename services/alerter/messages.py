"""Building what is sent, separate from sending it. Pure: a signal in, a Slack payload or an email out.

Every string that came from events or account metadata is escaped for its medium, so an account called
``<!channel>`` or ``<script>`` arrives inert.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from services.alerter.lifecycle import Notice
from shared.signals import RiskSignal, Severity

_ICON = {Severity.CRITICAL: ":red_circle:", Severity.WARNING: ":large_yellow_circle:", Severity.INFO: ":white_circle:"}
_SECTION_LIMIT = 3000


def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters; this also defuses <!channel> and <@user> pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def account_label(signal: RiskSignal) -> str:
    name = signal.account.name if signal.account else None
    return f"{name} ({signal.account_id})" if name else signal.account_id


def headline(signal: RiskSignal, notice: Notice) -> str:
    kind = signal.signal_type.value.replace("_", " ")
    if notice is Notice.RESOLVED:
        return f"Resolved: {kind} on {account_label(signal)}"
    prefix = "Escalated" if notice is Notice.ESCALATED else signal.severity.value.capitalize()
    return f"{prefix}: {kind} on {account_label(signal)}"


def score_line(signal: RiskSignal) -> str:
    if signal.score_after is None:
        return ""
    before = f"{signal.score_before:.0f} -> " if signal.score_before is not None else ""
    band = f" ({signal.band_after})" if signal.band_after else ""
    return f"health {before}{signal.score_after:.0f}{band}"


def evidence_line(signal: RiskSignal) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(signal.evidence.items()))


def slack_message(signal: RiskSignal, notice: Notice) -> dict[str, Any]:
    title = slack_escape(headline(signal, notice))
    icon = ":white_check_mark:" if notice is Notice.RESOLVED else _ICON[signal.severity]
    body = "\n".join(
        line
        for line in (
            slack_escape(signal.explanation),
            slack_escape(score_line(signal)),
            slack_escape(evidence_line(signal)),
        )
        if line
    )
    return {
        "text": f"{icon} {title}",  # notifications show only this fallback
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{title}*"[:_SECTION_LIMIT]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:_SECTION_LIMIT] or "-"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": slack_escape(
                            f"event time {signal.occurred_at.isoformat()} · signal {signal.signal_id}"
                        )[:_SECTION_LIMIT],
                    }
                ],
            },
        ],
    }


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def email_message(signal: RiskSignal, notice: Notice) -> Email:
    subject = "[Churnwatch] " + headline(signal, notice)
    lines = [
        headline(signal, notice),
        "",
        signal.explanation,
        score_line(signal),
        evidence_line(signal),
        "",
        f"Event time: {signal.occurred_at.isoformat()}",
        f"Signal: {signal.signal_id}",
    ]
    text = "\n".join(lines)
    html_body = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    return Email(subject=subject.replace("\n", " ")[:250], text=text, html=f"<html><body>{html_body}</body></html>")


def console_line(signal: RiskSignal, notice: Notice) -> str:
    return f"ALERT {headline(signal, notice)} | {signal.explanation}"
