"""Ingest's HTTP errors: each carries a machine-readable code, a message, and the fields at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

FieldError = dict[str, Any]  # {"path": "events[3].occurred_at", "reason": "...", "type": "...", ["index": 3]}


class IngestError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.headers = headers
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields, **self.extra}}


def loc_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = prefix.rstrip(".") + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return path.lstrip(".")


EVENT_KINDS = frozenset({"usage", "ticket", "feedback", "lifecycle"})


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Field paths as a client writes them: ``events[3].occurred_at`` (the union's tag left out)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        if loc and loc[0] in EVENT_KINDS:
            loc = loc[1:]
        out.append(
            {"path": loc_path(loc, prefix) or prefix.rstrip(".") or "body", "reason": err["msg"], "type": err["type"]}
        )
    return out


def unavailable(what: str, retry_after: int, code: str = "kafka_unavailable") -> IngestError:
    return IngestError(
        503,
        code,
        f"{what} could not be stored; nothing was accepted, retry the whole request",
        headers={"Retry-After": str(retry_after)},
        extra={"accepted": 0},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IngestError)
    async def _ingest_error(_: Request, exc: IngestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"path": loc_path(tuple(e["loc"])), "reason": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = fields[0]["path"] if fields else "request"
        body = {"error": {"code": "invalid_request", "message": f"invalid field {first}", "fields": fields}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "fields": []}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))
