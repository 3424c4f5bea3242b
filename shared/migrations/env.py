"""Alembic environment: runs every service's migrations (one branch each) into the configured schema."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import CommonSettings

config = context.config
settings: CommonSettings = config.attributes.get("settings") or CommonSettings()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, version_table_schema=settings.database_schema)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(settings.database_url)
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.database_schema}"'))
        await conn.execute(text(f'SET search_path TO "{settings.database_schema}"'))
        await conn.commit()
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


asyncio.run(_main())
