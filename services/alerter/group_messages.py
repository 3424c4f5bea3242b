"""One message for an account's group of notices (grouping.py). Pure: notices in, a Slack payload or an email out.

The headline names the worst severity and every reason; each signal gets its own block (what moved, by how
much, against what baseline); one set of links acts on every alert of the group, and each alert keeps its own
acknowledge link. Slack's limits hold whatever the group's size: at most 50 blocks and 3,000 characters per
text, with an "and N more" line, and the ``text`` fallback lists each notice's own headline. Hostile strings
are treated as in messages.py: plain_text in Slack, escaped everywhere, HTML-escaped in email.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from services.alerter.lifecycle import Action, Notice
from services.alerter.messages import (
    _HEADER_LIMIT,
    _ICON,
    _SECTION_LIMIT,
    AlertNotice,
    Email,
    _html_block,
    _notice_lines,
    _plain,
    _subject,
    _text_block,
    account_label,
    headline,
    slack_escape,
    slack_mention,
)
from shared.signals import Severity

MAX_BLOCKS = 50
_FIXED_BLOCKS = 3  # header, links, context
_ALL_LABEL = {Action.ACK: "Acknowledge all", Action.SNOOZE: "Snooze all"}


def reason(n: AlertNotice) -> str:
    return n.signal.signal_type.value.replace("_", " ")


def worst_severity(notices: Sequence[AlertNotice]) -> Severity | None:
    """The highest severity among the notices that are not good news; None when every one is a resolve."""
    open_ones = [n.signal.severity for n in notices if n.notice is not Notice.RESOLVED]
    return max(open_ones, key=lambda s: s.rank, default=None)


def group_headline(notices: Sequence[AlertNotice]) -> str:
    worst = worst_severity(notices)
    reasons = ", ".join(dict.fromkeys(reason(n) for n in notices))
    lead = worst.value.capitalize() if worst else "Resolved"
    return f"{lead} · {len(notices)} alerts on {account_label(notices[0].signal)}: {reasons}"


def group_fallback(notices: Sequence[AlertNotice], limit: int = _SECTION_LIMIT) -> str:
    """The notification text: mention, worst severity, and each notice's own headline, cut with "and N more"."""
    first = notices[0]
    worst = worst_severity(notices)
    icon = _ICON[worst] if worst else ":white_check_mark:"
    lead = f"{slack_mention(first.mention)} {icon} {slack_escape(account_label(first.signal))}".strip()
    lead += f": {len(notices)} alerts (worst {worst.value if worst else 'resolved'}) - "
    parts = [slack_escape(headline(n.signal, n.notice)) for n in notices]
    return _joined_within(lead, parts, "; ", limit)


def _joined_within(lead: str, parts: Sequence[str], sep: str, limit: int) -> str:
    """``lead`` and as many whole ``parts`` as fit in ``limit`` characters, then "and N more"."""
    out = lead
    for i, part in enumerate(parts):
        rest = len(parts) - i - 1
        tail = f"{sep}and {rest} more" if rest else ""
        candidate = out + (sep if i else "") + part
        if len(candidate) + len(tail) > limit:
            return (out + f"{sep if i else ''}and {len(parts) - i} more")[:limit]
        out = candidate
    return out[:limit]


def slack_group_message(notices: Sequence[AlertNotice], group_links: Mapping[Action, str]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(group_headline(notices), _HEADER_LIMIT)}]
    room = MAX_BLOCKS - _FIXED_BLOCKS
    shown = notices if len(notices) <= room else notices[: room - 1]
    blocks += [{"type": "section", "text": _plain("\n".join(_notice_lines(n)))} for n in shown]
    if len(shown) < len(notices):
        more = notices[len(shown) :]
        blocks.append({"type": "section", "text": _plain(f"and {len(more)} more: " + ", ".join(map(reason, more)))})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _links_line(notices, group_links)}})
    ids = ", ".join(str(n.alert_id) for n in notices if n.alert_id is not None)
    blocks.append({"type": "context", "elements": [_plain(f"{len(notices)} notices, one message · alerts {ids}")]})
    return {"text": group_fallback(notices), "blocks": blocks}


def _links_line(notices: Sequence[AlertNotice], group_links: Mapping[Action, str]) -> str:
    first = notices[0]
    lead = [slack_mention(first.mention)] if first.mention else []
    if first.account_url:
        lead.append(f"<{first.account_url}|Open account>")
    lead += [f"<{url}|{_ALL_LABEL[a]}>" for a, url in group_links.items() if a in _ALL_LABEL]
    own = [f"<{n.links[Action.ACK]}|{reason(n)}>" for n in notices if Action.ACK in n.links]
    text = " ".join(lead)
    if own:
        text = _joined_within(f"{text} · Acknowledge one: ".lstrip(" ·"), own, " ", _SECTION_LIMIT)
    return text or "-"


def group_email(notices: Sequence[AlertNotice], group_links: Mapping[Action, str]) -> Email:
    title = group_headline(notices)
    links = [(_ALL_LABEL[a], url) for a, url in group_links.items() if a in _ALL_LABEL]
    text_links = [f"{label}: {url}" for label, url in links]
    anchors = " | ".join(f'<a href="{html.escape(url)}">{html.escape(label)}</a>' for label, url in links)
    blocks = "<hr>".join(_html_block(n) for n in notices)
    return Email(
        subject=_subject(title),
        text="\n\n".join([title, *text_links, *(_text_block(n) for n in notices)]),
        html=f"<html><body><h2>{html.escape(title)}</h2>"
        + (f"<p>{anchors}</p>" if anchors else "")
        + f"{blocks}</body></html>",
    )
