"""Turning a stored outbox row into what a notifier sends: the notice plus playbook, links and mention.

Links are signed when the row is sent, so their expiry counts from the moment the person sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from services.alerter.lifecycle import Notice
from services.alerter.links import LinkSigner
from services.alerter.messages import AlertNotice
from services.alerter.notifiers import Outgoing
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
        parsed = RiskSignal.model_validate(signal)
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

    def outgoing(self, row: Any, now: datetime) -> Outgoing:
        """``row`` is a deliveries row; a digest row's payload lists its items."""
        if row.notice == DIGEST:
            items = tuple(
                self.notice(signal=i["signal"], notice=i["notice"], alert_id=i["alert_id"], mention=None, now=now)
                for i in row.payload["items"]
            )
            return Outgoing(row.id, row.target, items, digest_period=str(row.payload["period"]))
        single = self.notice(signal=row.payload, notice=row.notice, alert_id=row.alert_id, mention=row.mention, now=now)
        return Outgoing(row.id, row.target, (single,))
