"""The Python SDK: ``Client`` and ``AsyncClient`` over httpx, with the same method names.

Each method is written once as a *call* (method, path, body, how to parse the answer); the
sync and async clients only differ in how they send it. ``_calls`` holds what every call
shares; one module per resource (``approvals``, ``people``, ``policies``, ``subscriptions``,
``deliveries``) holds its calls and its sync and async classes. Problem+json answers become
the same ``errors.*`` exceptions the server raised. Reads and creates (which always carry an
Idempotency-Key) are retried on connection failures and 502/503/504, so a pipeline survives a
server restart without creating anything twice.

    client = signoff.Client("http://127.0.0.1:8000", api_key="sok_...")
    approval = client.approvals.create(title="Apply batch 42?", approvers=["team:data-owners"])
    approval = approval.wait()           # returns once someone decided
    if approval.status == "approved": ...
    client.approvals.create(title="Promote v7?", policy="prod-promotion")  # a named policy
"""

from __future__ import annotations

import asyncio
import time

import httpx

from signoff import errors
from signoff.__about__ import __version__
from signoff.client._calls import (
    DEFAULT_WAIT_POLL,
    RETRY_DELAYS,
    Call,
    T,
    result,
    should_retry,
)
from signoff.client.approvals import Approval, Approvals, AsyncApprovals
from signoff.client.deliveries import AsyncDeliveries, Deliveries
from signoff.client.people import AsyncPeople, People
from signoff.client.policies import AsyncPolicies, Policies
from signoff.client.subscriptions import AsyncSubscriptions, Subscriptions

__all__ = [
    "Approval",
    "Approvals",
    "AsyncApprovals",
    "AsyncClient",
    "AsyncDeliveries",
    "AsyncPeople",
    "AsyncPolicies",
    "AsyncSubscriptions",
    "Client",
    "Deliveries",
    "People",
    "Policies",
    "Subscriptions",
]


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"user-agent": f"signoff-python/{__version__}", "accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


class Client:
    """A synchronous client. ``api_key`` may also be an approval's task token."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers=_headers(api_key),
            timeout=httpx.Timeout(timeout, read=timeout + DEFAULT_WAIT_POLL),
            transport=transport,
        )
        self.approvals = Approvals(self)
        self.policies = Policies(self)
        self.deliveries = Deliveries(self)
        self.subscriptions = Subscriptions(self)
        self.people = People(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                if not should_retry(call, attempt, None):
                    raise errors.ServerUnreachable(f"{type(exc).__name__}: {exc}") from exc
                response = None
            if response is not None and not should_retry(call, attempt, response):
                return result(call, response)
            time.sleep(RETRY_DELAYS[attempt])
            attempt += 1

    def _bind(self, approval: Approval) -> Approval:
        approval._client = self
        return approval


class AsyncClient:
    """The asynchronous twin of ``Client``: the same methods, awaited."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=_headers(api_key),
            timeout=httpx.Timeout(timeout, read=timeout + DEFAULT_WAIT_POLL),
            transport=transport,
        )
        self.approvals = AsyncApprovals(self)
        self.policies = AsyncPolicies(self)
        self.deliveries = AsyncDeliveries(self)
        self.subscriptions = AsyncSubscriptions(self)
        self.people = AsyncPeople(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
            except httpx.TransportError as exc:
                if not should_retry(call, attempt, None):
                    raise errors.ServerUnreachable(f"{type(exc).__name__}: {exc}") from exc
                response = None
            if response is not None and not should_retry(call, attempt, response):
                return result(call, response)
            await asyncio.sleep(RETRY_DELAYS[attempt])
            attempt += 1
