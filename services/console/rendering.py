"""The console's Jinja2 environment (autoescape on for every template) and how a page is rendered."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.console.auth import csrf_token

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _money(value: object) -> str:
    if not isinstance(value, int | float):
        return "—"
    if value >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"${value / 1000:.0f}k"
    return f"${value:,.0f}"


def _signed(value: object) -> str:
    return f"{value:+.1f}" if isinstance(value, int | float) else "—"


def _day(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)[:10] if value else "—"


def _when(value: object) -> str:
    text = str(value or "")
    return text[:16].replace("T", " ") if text else "—"


def _destination(value: object) -> str:
    """A delivery's target without the secret part: a Slack or webhook URL is a credential, so only its host."""
    text = str(value or "")
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.hostname}/…"
    return text or "—"


def build_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    env.filters.update(money=_money, signed=_signed, day=_day, when=_when, destination=_destination)
    return env


ENVIRONMENT = build_environment()


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``user`` (or None) and the session's CSRF token are in every page's context."""
    context.setdefault("user", None)
    context.setdefault("flash", request.session.pop("flash", None) if "session" in request.scope else None)
    csrf = csrf_token(request.session) if "session" in request.scope else ""
    body = ENVIRONMENT.get_template(template).render(request=request, csrf=csrf, **context)
    return HTMLResponse(body, status_code=status)
