"""Subscriptions in the SDK (``client.subscriptions``): what each method sends, once, and the
sync and async resources that send it."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from signoff import schemas
from signoff.client._calls import Call, model

if TYPE_CHECKING:
    from signoff.client import AsyncClient, Client


class _SubscriptionCalls:
    @staticmethod
    def create(name: str, fields: dict[str, Any]) -> Call[schemas.SubscriptionPublic]:
        spec = schemas.SubscriptionCreate.model_validate({"name": name} | fields)
        body = spec.model_dump(mode="json")
        return Call("POST", "/v1/subscriptions", model(schemas.SubscriptionPublic), json=body)

    @staticmethod
    def replace(name: str, fields: dict[str, Any]) -> Call[schemas.SubscriptionPublic]:
        body = schemas.SubscriptionReplace.model_validate(fields).model_dump(mode="json")
        return Call("PUT", _subscription_path(name), model(schemas.SubscriptionPublic), json=body)

    @staticmethod
    def update(name: str, fields: dict[str, Any]) -> Call[schemas.SubscriptionPublic]:
        spec = schemas.SubscriptionUpdate.model_validate(fields)
        body = spec.model_dump(mode="json", exclude_none=True)
        return Call("PATCH", _subscription_path(name), model(schemas.SubscriptionPublic), json=body)

    @staticmethod
    def get(name: str) -> Call[schemas.SubscriptionPublic]:
        return Call("GET", _subscription_path(name), model(schemas.SubscriptionPublic), retry=True)

    @staticmethod
    def list(cursor: str | None, limit: int) -> Call[schemas.Page[schemas.SubscriptionPublic]]:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return Call(
            "GET",
            "/v1/subscriptions",
            model(schemas.Page[schemas.SubscriptionPublic]),
            params=params,
            retry=True,
        )

    @staticmethod
    def delete(name: str) -> Call[None]:
        return Call("DELETE", _subscription_path(name), lambda _body: None)


def _subscription_path(name: str) -> str:
    return f"/v1/subscriptions/{quote(name, safe='')}"


class Subscriptions:
    """Where matching events go (webhook, email, Slack, apprise): admins only."""

    def __init__(self, client: Client) -> None:
        self._send = client._send

    def create(
        self,
        name: str,
        *,
        kind: str,
        target: str | builtins.list[str],
        filter: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> schemas.SubscriptionPublic:
        """A new subscription: ``kind`` is webhook, email, slack or apprise; ``target`` a URL,
        a list of addresses, or a channel; ``filter`` an EventBridge-style pattern over the
        event envelope (default: every event)."""
        fields = {"kind": kind, "target": target, "filter": filter or {}, "enabled": enabled}
        return self._send(_SubscriptionCalls.create(name, fields))

    def replace(
        self,
        name: str,
        *,
        kind: str,
        target: str | builtins.list[str],
        filter: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> schemas.SubscriptionPublic:
        """Replace everything the subscription holds: what you leave out takes its default."""
        fields = {"kind": kind, "target": target, "filter": filter or {}, "enabled": enabled}
        return self._send(_SubscriptionCalls.replace(name, fields))

    def update(
        self,
        name: str,
        *,
        kind: str | None = None,
        target: str | builtins.list[str] | None = None,
        filter: dict[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> schemas.SubscriptionPublic:
        """Change only what you give, e.g. ``update("ops", enabled=False)``."""
        fields = {"kind": kind, "target": target, "filter": filter, "enabled": enabled}
        return self._send(_SubscriptionCalls.update(name, fields))

    def get(self, name: str) -> schemas.SubscriptionPublic:
        return self._send(_SubscriptionCalls.get(name))

    def list(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> schemas.Page[schemas.SubscriptionPublic]:
        """One page of subscriptions in name order."""
        return self._send(_SubscriptionCalls.list(cursor, limit))

    def delete(self, name: str) -> None:
        self._send(_SubscriptionCalls.delete(name))


class AsyncSubscriptions:
    def __init__(self, client: AsyncClient) -> None:
        self._send = client._send

    async def create(
        self,
        name: str,
        *,
        kind: str,
        target: str | builtins.list[str],
        filter: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> schemas.SubscriptionPublic:
        fields = {"kind": kind, "target": target, "filter": filter or {}, "enabled": enabled}
        return await self._send(_SubscriptionCalls.create(name, fields))

    async def replace(
        self,
        name: str,
        *,
        kind: str,
        target: str | builtins.list[str],
        filter: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> schemas.SubscriptionPublic:
        fields = {"kind": kind, "target": target, "filter": filter or {}, "enabled": enabled}
        return await self._send(_SubscriptionCalls.replace(name, fields))

    async def update(
        self,
        name: str,
        *,
        kind: str | None = None,
        target: str | builtins.list[str] | None = None,
        filter: dict[str, Any] | None = None,
        enabled: bool | None = None,
    ) -> schemas.SubscriptionPublic:
        fields = {"kind": kind, "target": target, "filter": filter, "enabled": enabled}
        return await self._send(_SubscriptionCalls.update(name, fields))

    async def get(self, name: str) -> schemas.SubscriptionPublic:
        return await self._send(_SubscriptionCalls.get(name))

    async def list(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> schemas.Page[schemas.SubscriptionPublic]:
        return await self._send(_SubscriptionCalls.list(cursor, limit))

    async def delete(self, name: str) -> None:
        await self._send(_SubscriptionCalls.delete(name))
