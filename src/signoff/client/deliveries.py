"""The outbox in the SDK (``client.deliveries``): what each method sends, once, and the sync
and async resources that send it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from signoff import schemas
from signoff.client._calls import Call, model

if TYPE_CHECKING:
    from signoff.client import AsyncClient, Client


class _DeliveryCalls:
    @staticmethod
    def list(
        status: str | None,
        target_kind: str | None,
        event_type: str | None,
        subject: str | None,
        cursor: str | None,
        limit: int,
    ) -> Call[schemas.Page[schemas.DeliveryPublic]]:
        given = {
            "status": status,
            "target_kind": target_kind,
            "event_type": event_type,
            "subject": subject,
            "cursor": cursor,
        }
        params = {k: v for k, v in given.items() if v is not None} | {"limit": limit}
        return Call(
            "GET",
            "/v1/deliveries",
            model(schemas.Page[schemas.DeliveryPublic]),
            params=params,
            retry=True,
        )

    @staticmethod
    def get(delivery_id: str) -> Call[schemas.DeliveryDetail]:
        path = f"/v1/deliveries/{quote(delivery_id, safe='')}"
        return Call("GET", path, model(schemas.DeliveryDetail), retry=True)

    @staticmethod
    def redrive(delivery_id: str) -> Call[schemas.DeliveryPublic]:
        path = f"/v1/deliveries/{quote(delivery_id, safe='')}/redrive"
        return Call("POST", path, model(schemas.DeliveryPublic))

    @staticmethod
    def redrive_all(
        target_kind: str | None, event_type: str | None, subject: str | None
    ) -> Call[int]:
        spec = schemas.DeliveryRedrive.model_validate(
            {"target_kind": target_kind, "event_type": event_type, "subject": subject}
        )
        return Call(
            "POST",
            "/v1/deliveries/redrive",
            lambda data: schemas.DeliveriesRedriven.model_validate(data).redriven,
            json=spec.model_dump(exclude_none=True),
        )


class Deliveries:
    """The outbox, for admins: deliveries of events to destinations, their attempts, and
    redriving dead ones."""

    def __init__(self, client: Client) -> None:
        self._send = client._send

    def list(
        self,
        *,
        status: str | None = None,
        target_kind: str | None = None,
        event_type: str | None = None,
        subject: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> schemas.Page[schemas.DeliveryPublic]:
        """One page, newest first; ``status`` is pending, delivered or dead."""
        call = _DeliveryCalls.list(status, target_kind, event_type, subject, cursor, limit)
        return self._send(call)

    def iterate(self, **filters: Any) -> Iterator[schemas.DeliveryPublic]:
        """Every matching delivery, newest first, following cursors."""
        cursor = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, delivery_id: str) -> schemas.DeliveryDetail:
        """The delivery with every attempt (``attempt_log``), oldest first."""
        return self._send(_DeliveryCalls.get(delivery_id))

    def redrive(self, delivery_id: str) -> schemas.DeliveryPublic:
        """Make a dead delivery pending and due at once; ``errors.DeliveryNotDead`` if it is
        pending or delivered."""
        return self._send(_DeliveryCalls.redrive(delivery_id))

    def redrive_all(
        self,
        *,
        target_kind: str | None = None,
        event_type: str | None = None,
        subject: str | None = None,
    ) -> int:
        """Redrive every dead delivery that matches the filters; how many."""
        return self._send(_DeliveryCalls.redrive_all(target_kind, event_type, subject))


class AsyncDeliveries:
    def __init__(self, client: AsyncClient) -> None:
        self._send = client._send

    async def list(
        self,
        *,
        status: str | None = None,
        target_kind: str | None = None,
        event_type: str | None = None,
        subject: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> schemas.Page[schemas.DeliveryPublic]:
        call = _DeliveryCalls.list(status, target_kind, event_type, subject, cursor, limit)
        return await self._send(call)

    async def iterate(self, **filters: Any) -> AsyncIterator[schemas.DeliveryPublic]:
        cursor = None
        while True:
            page = await self.list(cursor=cursor, **filters)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, delivery_id: str) -> schemas.DeliveryDetail:
        return await self._send(_DeliveryCalls.get(delivery_id))

    async def redrive(self, delivery_id: str) -> schemas.DeliveryPublic:
        return await self._send(_DeliveryCalls.redrive(delivery_id))

    async def redrive_all(
        self,
        *,
        target_kind: str | None = None,
        event_type: str | None = None,
        subject: str | None = None,
    ) -> int:
        return await self._send(_DeliveryCalls.redrive_all(target_kind, event_type, subject))
