"""The console's users in PostgreSQL: create, list, disable, and check a sign-in."""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.console.passwords import check_strength, hash_password, verify_password
from services.console.tables import console_users
from shared.db import build_engine
from shared.settings import CommonSettings

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@functools.cache
def _nobody_hash() -> str:
    """Checked when the email is unknown, so a wrong email costs as long as a wrong password."""
    return hash_password("no such user, no such password")


@dataclass(frozen=True)
class ConsoleUser:
    email: str
    name: str
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class UserError(ValueError):
    pass


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email) or len(email) > 320:
        raise UserError(f"not an email address: {email!r}")
    return email


async def add_user(engine: AsyncEngine, *, email: str, name: str, password: str) -> ConsoleUser:
    """Creates the user, or resets the name and password of an existing one and enables it again."""
    check_strength(password)
    email, name = normalise_email(email), name.strip()
    if not name or len(name) > 200:
        raise UserError("a name of 1-200 characters is needed")
    values = {"email": email, "name": name, "password_hash": hash_password(password), "disabled_at": None}
    stmt = insert(console_users).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["email"], set_={k: stmt.excluded[k] for k in values if k != "email"}
    )
    async with engine.begin() as conn:
        await conn.execute(stmt)
    found = await find_user(engine, email)
    assert found is not None
    return found


async def find_user(engine: AsyncEngine, email: str) -> ConsoleUser | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(console_users).where(console_users.c.email == email.strip().lower()))).first()
    return None if row is None else ConsoleUser(row.email, row.name, row.created_at, row.disabled_at)


async def list_users(engine: AsyncEngine) -> list[ConsoleUser]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(console_users).order_by(console_users.c.email))
    return [ConsoleUser(r.email, r.name, r.created_at, r.disabled_at) for r in rows]


async def disable_user(engine: AsyncEngine, email: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(console_users)
            .where(console_users.c.email == email.strip().lower(), console_users.c.disabled_at.is_(None))
            .values(disabled_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


async def authenticate(engine: AsyncEngine, email: str, password: str) -> ConsoleUser | None:
    """The active user with this email and password, or None (the same time either way)."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(console_users).where(console_users.c.email == email.strip().lower()))).first()
    stored = row.password_hash if row is not None else _nobody_hash()
    valid = await asyncio.to_thread(verify_password, password, stored)  # ~50 ms of CPU: off the event loop
    if row is None or not valid or row.disabled_at is not None:
        return None
    return ConsoleUser(row.email, row.name, row.created_at, row.disabled_at)


async def create_user(settings: CommonSettings, *, email: str, name: str, password: str) -> ConsoleUser:
    """``add_user`` with its own engine (the CLI, the demo, tests)."""
    engine = build_engine(settings)
    try:
        return await add_user(engine, email=email, name=name, password=password)
    finally:
        await engine.dispose()
