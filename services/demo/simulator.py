"""A simulated customer base for the demo and the tests. Pure and seeded: the same seed gives the same events.

Most accounts are healthy; some slide toward churn over their last ``slide_days``: fewer users log in,
features go unused, tickets pile up and some get escalated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.accounts import AccountProfile, Contact, TouchTier

FEATURES = ("dashboards", "reports", "alerts", "exports", "integrations", "api", "sso", "automation")
CSMS = ("Ana Lima", "Ben Okafor", "Chloe Martin", "Dev Patel")


@dataclass(frozen=True)
class SimulatedAccount:
    profile: AccountProfile
    users: int
    sliding: bool


def make_accounts(count: int, *, seed: int = 7, at_risk_fraction: float = 0.15) -> list[SimulatedAccount]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        arr = round(rng.choice([3_000, 8_000, 15_000, 40_000, 90_000, 250_000]) * rng.uniform(0.8, 1.2), -2)
        tier = TouchTier.HIGH if arr >= 80_000 else TouchTier.LOW if arr >= 10_000 else TouchTier.TECH
        seats = max(3, int(arr / 2_000))
        csm = CSMS[i % len(CSMS)]
        handle = csm.split()[0].lower()
        profile = AccountProfile(
            account_id=f"acct-{i:04d}",
            name=f"{rng.choice(['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Vandelay'])} {i:04d}",
            plan=rng.choice(["starter", "growth", "enterprise"]),
            arr=arr,
            seats_purchased=seats,
            csm=Contact(name=csm, email=f"{handle}@csm.example.com", slack=f"@{handle}"),
            support_route=Contact(name="Support", email="support@example.com", slack="#support"),
            touch_tier=tier,
            renewal_date=date(2027, 1, 1) + timedelta(days=rng.randrange(365)),
        )
        users = max(2, min(12, int(seats * rng.uniform(0.5, 0.9))))
        out.append(SimulatedAccount(profile, users, sliding=rng.random() < at_risk_fraction))
    return out


def day_events(
    account: SimulatedAccount, day: date, *, day_index: int, days: int, slide_days: int = 12, seed: int = 7
) -> list[dict[str, Any]]:
    """The events one account produces on one day, as JSON-ready dicts for POST /v1/events."""
    rng = random.Random(f"{seed}:{account.profile.account_id}:{day.isoformat()}")
    into_slide = day_index - (days - slide_days)
    health = 1.0
    if account.sliding and into_slide >= 0:
        health = max(0.05, 1.0 - 0.09 * (into_slide + 1))
    weekend = day.weekday() >= 5
    aid = account.profile.account_id
    events: list[dict[str, Any]] = []

    def event(kind: str, n: int, **fields: Any) -> None:
        at = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(minutes=rng.randrange(600))
        events.append(
            {
                "kind": kind,
                "event_id": f"sim-{aid}-{day.isoformat()}-{kind}-{n}",
                "account_id": aid,
                "occurred_at": at.isoformat(),
                **fields,
            }
        )

    for u in range(account.users):
        if rng.random() > health * (0.6 if weekend else 0.95):
            continue
        user = f"{aid}-user-{u}"
        event("usage", len(events), action="login", user_id=user)
        event(
            "usage",
            len(events),
            action="feature_used",
            user_id=user,
            feature=rng.choice(FEATURES),
            quantity=rng.randint(4, 8),
        )
    ticket_rate = 0.04 if health > 0.9 else 0.15 + (1 - health) * 0.9
    for t in range(_poisson(rng, ticket_rate)):
        ticket = f"{aid}-{day.isoformat()}-t{t}"
        urgent = health < 0.6 and rng.random() < 0.3
        event("ticket", len(events), action="opened", ticket_id=ticket, priority="urgent" if urgent else "normal")
        if urgent:
            event("ticket", len(events), action="escalated", ticket_id=ticket, priority="urgent")
    return events


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, threshold = 0, 1.0, 2.718281828459045**-lam
    while True:
        p *= rng.random()
        if p < threshold:
            return n
        n += 1
