"""Sign-in and sign-out pages (local users; with a trusted proxy the proxy signs people in instead)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from services.console.auth import check_csrf, sign_in
from services.console.rendering import render
from services.console.settings import ConsoleSettings
from services.console.users import authenticate

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or a full URL (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    settings: ConsoleSettings = request.app.state.settings
    return render(request, "login.html", next=safe_next(next), error=None, proxy=settings.trust_proxy)


@router.post("/login", dependencies=[Depends(check_csrf)])
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    settings: ConsoleSettings = request.app.state.settings
    user = await authenticate(request.app.state.engine, email, password)
    if user is None:
        return render(request, "login.html", 401, next=safe_next(next), error="Wrong email or password.", proxy=False)
    sign_in(request.session, user, settings)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
