"""``churnwatch apikeys create|list|revoke``: the only way keys are made; the secret is printed once."""

from __future__ import annotations

import argparse
import asyncio

from services.ingest.settings import IngestSettings
from shared.api_keys import Scope, parse_scopes
from shared.db import build_engine
from shared.key_store import create_key, list_keys, revoke_key


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("apikeys", help="ingest API keys: create, list, revoke")
    action = keys.add_subparsers(dest="keys_action", required=True)
    create = action.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        choices=[s.value for s in Scope],
        help="repeat for several; default: events:write",
    )
    action.add_parser("list", help="list keys (prefix, name, scopes, created, revoked)")
    revoke = action.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")


async def _run(args: argparse.Namespace) -> int:
    engine = build_engine(IngestSettings())
    try:
        if args.keys_action == "create":
            new, key = await create_key(
                engine, name=args.name, scopes=parse_scopes(args.scopes or [Scope.WRITE_EVENTS.value])
            )
            print(f"created key {key.prefix} ({key.name}; {', '.join(sorted(key.scopes))}); it is shown only now:")
            print(new.secret_key)
            return 0
        if args.keys_action == "list":
            for k in await list_keys(engine):
                state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                print(f"{k.prefix}  {k.name:30}  {','.join(sorted(k.scopes)):35}  {k.created_at:%Y-%m-%d}  {state}")
            return 0
        if await revoke_key(engine, args.prefix):
            print(f"revoked {args.prefix}")
            return 0
        print(f"no active key with prefix {args.prefix}")
        return 1
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
