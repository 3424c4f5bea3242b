"""Every failure as a page with the right status: 400 naming the field, 403, 404, 502/503 naming the service;
anything unexpected is a plain 500 page (logged, never a traceback). Plus the security headers of every answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console.auth import CsrfRejected, SignInRequired
from services.console.rendering import render
from services.console.upstream import FilterRejected, UnknownAccount, UpstreamError

log = logging.getLogger(__name__)
SECURITY_HEADERS = {
    # no script at all: a name that slipped through escaping still could not run
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _page(request: Request, status: int, title: str, message: str, field: str | None = None) -> Response:
    return render(request, "error.html", status, title=title, message=message, field=field)


def add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, _: SignInRequired) -> Response:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(wanted, safe='')}", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def csrf(request: Request, _: CsrfRejected) -> Response:
        return _page(request, 403, "Form expired", "This form's security token is missing or stale. Reload the page.")

    @app.exception_handler(FilterRejected)
    async def bad_filter(request: Request, exc: FilterRejected) -> Response:
        return _page(request, 400, "Bad request", f"{exc.field}: {exc.message}", exc.field)

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", []) if p not in ("query", "path", "body")) or "request"
        return _page(request, 400, "Bad request", f"{field}: {first.get('msg', 'invalid')}", field)

    @app.exception_handler(UnknownAccount)
    async def unknown(request: Request, _: UnknownAccount) -> Response:
        return _page(request, 404, "Not found", "There is no such account (or alert) in this deployment.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = "Not found" if exc.status_code == 404 else "Error"
        return _page(request, exc.status_code, title, str(exc.detail))

    @app.exception_handler(UpstreamError)
    async def upstream(request: Request, exc: UpstreamError) -> Response:
        log.warning("upstream failure: %s", exc)
        return _page(request, exc.status, f"The {exc.service} is not answering", f"The {exc.service} {exc.message}.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _page(request, 500, "Something went wrong", "The console hit an unexpected error; it is logged.")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
