"""Who is signed in, and the CSRF token every form carries.

The session is Starlette's signed cookie (HttpOnly, SameSite=Lax): it holds the user's email, this
deployment's mark, and a CSRF token. Every request looks the user up again, so a disabled user is signed out at
once and a cookie from another deployment (another schema, or the same host on another port) names nobody here.

With ``CHURNWATCH_CONSOLE_TRUST_PROXY`` the user is whoever the reverse proxy names in ``proxy_user_header``.
It is off by default because anyone who can reach the console's port directly could send that header and be
anyone; turn it on only when the console listens where only the proxy can reach it. A user disabled in the
console's table is refused even then.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from services.console.settings import ConsoleSettings
from services.console.users import ConsoleUser, UserError, find_user, normalise_email

SESSION_USER = "user"
SESSION_DEPLOYMENT = "deployment"
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class SignedIn:
    email: str
    name: str


class SignInRequired(Exception):
    """Raised by ``signed_in``: the app sends the browser to the sign-in page."""


class CsrfRejected(Exception):
    pass


def deployment_mark(settings: ConsoleSettings) -> str:
    """Tells this deployment's sessions from another's that shares the cookie jar (same host, other port)."""
    basis = f"{settings.database_url}|{settings.database_schema}|{settings.scorer_url}|{settings.alerter_url}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def csrf_token(session: dict[str, Any]) -> str:
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def csrf_valid(session: dict[str, Any], submitted: object) -> bool:
    expected = session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def sign_in(session: dict[str, Any], user: ConsoleUser, settings: ConsoleSettings) -> None:
    """A new session for the user: the old CSRF token is not carried over (no fixation)."""
    session.clear()
    session[SESSION_USER] = user.email
    session[SESSION_DEPLOYMENT] = deployment_mark(settings)
    csrf_token(session)


async def check_csrf(request: Request) -> None:
    """A dependency of every POST: the form's token must be this session's (403 otherwise)."""
    form = await request.form()
    if not csrf_valid(request.session, form.get(CSRF_FIELD)):
        raise CsrfRejected()


async def signed_in(request: Request) -> SignedIn:
    """A dependency of every page but sign-in and the probes."""
    settings: ConsoleSettings = request.app.state.settings
    if settings.trust_proxy:
        return await _from_proxy(request, settings)
    email = request.session.get(SESSION_USER)
    if not isinstance(email, str) or request.session.get(SESSION_DEPLOYMENT) != deployment_mark(settings):
        raise SignInRequired()
    user = await find_user(request.app.state.engine, email)
    if user is None or not user.active:
        request.session.clear()
        raise SignInRequired()
    return SignedIn(user.email, user.name)


async def _from_proxy(request: Request, settings: ConsoleSettings) -> SignedIn:
    header = request.headers.get(settings.proxy_user_header, "")
    try:
        email = normalise_email(header)
    except UserError as exc:
        raise SignInRequired() from exc
    user = await find_user(request.app.state.engine, email)
    if user is not None and not user.active:
        raise SignInRequired()
    csrf_token(request.session)
    return SignedIn(email, user.name if user else email)
