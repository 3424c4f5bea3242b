"""Turning stored outbox rows into what a notifier sends: the notices plus playbook, links and mention.

One row is one notice (or a digest, whose payload lists its items); several rows of one account and
destination are one grouped message, with links that act on every alert of the group. Links are signed when
the message is sent, so their expiry counts from the moment the person sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from services.alerter.lifecycle import Notice
from services.alerter.links import LinkSigner
from services.alerter.messages import AlertNotice
from services.alerter.outgoing import Outgoing
from shared.signals import RiskSignal, SignalType

DIGEST = "digest"


@dataclass(frozen=True)
class NoticeComposer:
    playbooks: Mapping[SignalType, str] = field(default_factory=dict)
    signer: LinkSigner | None = None
    account_url_template: str | None = None  # e.g. https://crm.example.com/accounts/{account_id}

    def notice(
        self, *, signal: dict[str, Any], notice: str, alert_id: int | None, mention: str | None, now: datetime
    ) -> AlertNotice:
        parsed = RiskSignal.model_validate(signal)  # a stored row: read back through the one schema
        links = self.signer.action_links(alert_id, now) if self.signer and alert_id is not None else {}
        account_url = (
            self.account_url_template.format(account_id=quote(parsed.account_id, safe=""))
            if self.account_url_template
            else None
        )
        return AlertNotice(
            signal=parsed,
            notice=Notice(notice),
            alert_id=alert_id,
            mention=mention,
            playbook=self.playbooks.get(parsed.signal_type),
            links=links,
            account_url=account_url,
        )

    def outgoing(self, rows: Sequence[Any], now: datetime) -> Outgoing:
        """``rows`` are deliveries rows of one message: one notice, one digest, or one account's group."""
        first = rows[0]
        if first.notice == DIGEST:
            items = tuple(
                self.notice(signal=i["signal"], notice=i["notice"], alert_id=i["alert_id"], mention=None, now=now)
                for i in first.payload["items"]
            )
            return Outgoing(first.id, first.target, items, digest_period=str(first.payload["period"]))
        notices = tuple(
            self.notice(signal=r.payload, notice=r.notice, alert_id=r.alert_id, mention=r.mention, now=now)
            for r in rows
        )
        ids = sorted({r.alert_id for r in rows if r.alert_id is not None})
        group_links = self.signer.group_links(ids, now) if self.signer and len(rows) > 1 and ids else {}
        return Outgoing(first.id, first.target, notices, group_links=group_links)
