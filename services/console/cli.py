"""``churnwatch console-user add|list|disable``: the only way console users are made.

The password is read from stdin (a prompt on a terminal, or a pipe) or from ``--password-file``, never from the
command line, where it would sit in the shell history and in every process listing.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from services.console.passwords import WeakPassword
from services.console.users import UserError, add_user, disable_user, list_users
from shared.db import build_engine
from shared.settings import CommonSettings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = sub.add_parser("console-user", help="console users: add, list, disable")
    action = users.add_subparsers(dest="user_action", required=True)
    add = action.add_parser("add", help="add a user (or reset one's name and password); password from stdin")
    add.add_argument("email", help="also the CSM email of the accounts this person owns")
    add.add_argument("--name", required=True)
    add.add_argument("--password-file", type=Path, help="read the password from this file's first line")
    action.add_parser("list", help="list users (email, name, created, disabled)")
    disable = action.add_parser("disable", help="disable a user: signed out at their next request")
    disable.add_argument("email")


def read_password(password_file: Path | None) -> str:
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        return lines[0] if lines else ""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise UserError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _run(args: argparse.Namespace) -> int:
    engine = build_engine(CommonSettings())
    try:
        if args.user_action == "add":
            user = await add_user(engine, email=args.email, name=args.name, password=read_password(args.password_file))
            print(f"console user {user.email} ({user.name}) can sign in")
            return 0
        if args.user_action == "list":
            for u in await list_users(engine):
                state = f"disabled {u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "active"
                print(f"{u.email:40}  {u.name:30}  {u.created_at:%Y-%m-%d}  {state}")
            return 0
        if await disable_user(engine, args.email):
            print(f"disabled {args.email}")
            return 0
        print(f"no active console user {args.email}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (UserError, WeakPassword, OSError) as exc:
        print(f"churnwatch console-user: {exc}", file=sys.stderr)
        return 2
