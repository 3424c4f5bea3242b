"""Schema migrations (Alembic), runnable from the CLI and from tests without an alembic.ini on disk.

Each service keeps its migrations in its own folder as an Alembic branch; ``upgrade`` takes all heads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.settings import CommonSettings

_ROOT = Path(__file__).resolve().parent.parent
VERSION_LOCATIONS = [
    _ROOT / "shared" / "migrations" / "versions",
    _ROOT / "services" / "scorer" / "migrations",
    _ROOT / "services" / "alerter" / "migrations",
    _ROOT / "services" / "ingest" / "migrations",
    _ROOT / "services" / "console" / "migrations",
]


def alembic_config(settings: CommonSettings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_ROOT / "shared" / "migrations"))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in VERSION_LOCATIONS))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: CommonSettings) -> None:
    command.upgrade(alembic_config(settings), "heads")


async def upgrade_async(settings: CommonSettings) -> None:
    """env.py runs its own event loop, so run it in a worker thread when called from async code."""
    await asyncio.to_thread(upgrade, settings)
