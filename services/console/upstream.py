"""The console's only path to data: the scorer's and alerter's HTTP APIs (httpx, with timeouts).

Every failure becomes an ``UpstreamError`` naming the service and what went wrong, which the app renders as a
502 (a bad answer) or 503 (no answer) page; a 404 from the scorer is ``UnknownAccount``; a 422 is a
``FilterRejected`` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx


class UpstreamError(Exception):
    def __init__(self, service: str, status: int, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service, self.status, self.message = service, status, message


class UnknownAccount(LookupError):
    pass


class FilterRejected(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class ActionRefused(Exception):
    """The alerter refused a lifecycle action (e.g. resolving a resolved alert): shown, not an outage."""


def _rejected_field(body: Any) -> FilterRejected:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = [str(p) for p in detail[0].get("loc", []) if p not in ("query", "body", "path")]
        return FilterRejected(".".join(loc) or "query", str(detail[0].get("msg", "invalid")))
    return FilterRejected("query", str(body)[:200])


class Upstream:
    """One service's API, read with the console's read key; ``write_token`` for the alerter's POSTs."""

    def __init__(self, service: str, client: httpx.AsyncClient, write_token: str | None = None) -> None:
        self.service, self.client, self._write_token = service, client, write_token

    async def get(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> Any:
        return self._body(await self._send("GET", path, params=list(params)))

    async def post(self, path: str, json: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._write_token}"} if self._write_token else {}
        resp = await self._send("POST", path, json=json, headers=headers)
        if resp.status_code == 409:
            raise ActionRefused(_message(resp))
        return self._body(resp)

    async def reachable(self) -> bool:
        try:
            return (await self.client.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self.client.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise UpstreamError(self.service, 503, f"no answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(self.service, 503, f"cannot be reached ({type(exc).__name__})") from exc

    def _body(self, resp: httpx.Response) -> Any:
        if resp.status_code == 404:
            raise UnknownAccount(resp.request.url.path)
        if resp.status_code == 422:
            raise _rejected_field(_json(resp))
        if resp.status_code in (401, 403):
            raise UpstreamError(self.service, 502, f"refused the console's credentials ({resp.status_code})")
        if resp.status_code >= 400:
            status = 503 if resp.status_code == 503 else 502
            raise UpstreamError(self.service, status, f"answered {resp.status_code}: {_message(resp)}")
        body = _json(resp)
        if body is None:
            raise UpstreamError(self.service, 502, "answered something that is not JSON")
        return body


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _message(resp: httpx.Response) -> str:
    body = _json(resp)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:300]
    return resp.text[:300]


def build_upstream(
    service: str, base_url: str, *, read_key: str | None, timeout: float, write_token: str | None = None
) -> Upstream:
    headers = {"Authorization": f"Bearer {read_key}"} if read_key else {}
    client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout))
    return Upstream(service, client, write_token)
