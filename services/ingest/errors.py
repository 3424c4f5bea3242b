"""Ingest's HTTP errors: each carries a machine-readable code, a message, and the fields at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError


class IngestError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.headers = headers


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        out.append({"path": path.lstrip("."), "reason": err["msg"], "type": err["type"]})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IngestError)
    async def _ingest_error(_: Request, exc: IngestError) -> JSONResponse:
        body = {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"path": ".".join(str(p) for p in e["loc"]), "reason": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        first = fields[0]["path"] if fields else "request"
        body = {"error": {"code": "invalid_request", "message": f"invalid field {first}", "fields": fields}}
        return JSONResponse(body, status_code=422)
