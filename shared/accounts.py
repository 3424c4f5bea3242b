"""Account metadata: who owns an account, how big it is, where it is in its lifecycle."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.events import AccountId


class TouchTier(StrEnum):
    HIGH = "high"
    LOW = "low"
    TECH = "tech"


class LifecycleStage(StrEnum):
    ONBOARDING = "onboarding"
    ADOPTION = "adoption"
    EXPANSION = "expansion"
    RENEWAL = "renewal"
    CHURNED = "churned"


class Contact(BaseModel):
    """A person or team to notify: any of a name, an email address, a Slack user or channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(max_length=200)] | None = None
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    slack: Annotated[str, Field(max_length=200, description="Slack user id or #channel")] | None = None


class AccountProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: AccountId
    name: Annotated[str, Field(min_length=1, max_length=300)]
    plan: Annotated[str, Field(max_length=100)] | None = None
    arr: Annotated[float, Field(ge=0)] | None = Field(default=None, description="Annual recurring revenue")
    mrr: Annotated[float, Field(ge=0)] | None = None
    seats_purchased: Annotated[int, Field(ge=0)] | None = None
    csm: Contact | None = Field(default=None, description="The customer success manager who owns it")
    support_route: Contact | None = Field(default=None, description="The support team for ticket trouble")
    touch_tier: TouchTier = TouchTier.LOW
    lifecycle_stage: LifecycleStage = LifecycleStage.ADOPTION
    renewal_date: date | None = None
    created_date: date | None = None


class AccountProfileIn(BaseModel):
    """Body of PUT /v1/accounts/{account_id}: the profile without the id (the path names it)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=300)]
    plan: Annotated[str, Field(max_length=100)] | None = None
    arr: Annotated[float, Field(ge=0)] | None = None
    mrr: Annotated[float, Field(ge=0)] | None = None
    seats_purchased: Annotated[int, Field(ge=0)] | None = None
    csm: Contact | None = None
    support_route: Contact | None = None
    touch_tier: TouchTier = TouchTier.LOW
    lifecycle_stage: LifecycleStage = LifecycleStage.ADOPTION
    renewal_date: date | None = None
    created_date: date | None = None

    def with_id(self, account_id: str) -> AccountProfile:
        return AccountProfile(account_id=account_id, **self.model_dump())
