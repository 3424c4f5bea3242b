"""Reading a request body under a size limit, before any parsing; gzip bodies are limited after inflating too."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import Request

from services.ingest.errors import IngestError


def too_large(limit: int) -> IngestError:
    return IngestError(413, "payload_too_large", f"body is larger than {limit} bytes")


def inflate_gzip(data: bytes, limit: int) -> bytes:
    """Inflates at most ``limit`` + 1 bytes, so a zip bomb costs us no more than an honest large body."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise IngestError(400, "malformed_body", f"body is not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large(limit)
    return out


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return inflate_gzip(bytes(body), limit)
    if encoding not in ("identity", ""):
        raise IngestError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; use gzip")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IngestError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character is (PostgreSQL text cannot hold one, so it would poison the scorer)."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        key_path = f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}".lstrip(".")
        if isinstance(k, str) and "\x00" in k:
            return key_path
        found = nul_path(v, key_path)
        if found:
            return found
    return None


def refuse_nul(payload: Any, body: bytes | None = None) -> None:
    if body is not None and b"\\u0000" not in body:
        return  # JSON can only carry a NUL as the \u0000 escape: the usual case costs one scan of the bytes
    found = nul_path(payload)
    if found:
        raise IngestError(
            422,
            "invalid_character",
            f"invalid field {found}: NUL characters are not allowed",
            fields=[{"path": found, "type": "nul_character", "reason": "NUL characters are not allowed"}],
        )
