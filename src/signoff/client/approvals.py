"""Approvals in the SDK (``client.approvals``): the ``Approval`` it returns, what each method
sends, once, and the sync and async resources that send it."""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import PrivateAttr

from signoff import schemas
from signoff.client._calls import DEFAULT_WAIT_POLL, Call, models

if TYPE_CHECKING:
    from signoff.client import AsyncClient, Client


class Approval(schemas.ApprovalPublic):
    """An approval as the SDK returns it: the wire data plus methods bound to its client."""

    token: str | None = None
    _client: Client | None = PrivateAttr(default=None)

    def _sync(self) -> Client:
        if self._client is None:
            raise RuntimeError("this approval belongs to an AsyncClient: use its methods")
        return self._client

    def refresh(self) -> Approval:
        return self._sync().approvals.get(self.id)

    def wait(self, timeout: float | None = None) -> Approval:
        """Block until the approval settles; ``TimeoutError`` after ``timeout`` seconds."""
        return self._sync().approvals.wait(self.id, timeout=timeout)

    def approve(self, comment: str = "", form: dict[str, Any] | None = None) -> Approval:
        return self._sync().approvals.approve(self.id, comment=comment, form=form)

    def reject(self, comment: str = "", form: dict[str, Any] | None = None) -> Approval:
        return self._sync().approvals.reject(self.id, comment=comment, form=form)

    def cancel(self, reason: str = "") -> Approval:
        return self._sync().approvals.cancel(self.id, reason=reason)

    def heartbeat(self) -> Approval:
        return self._sync().approvals.heartbeat(self.id)


def _approval(data: Any) -> Approval:
    return Approval.model_validate(data)


def _approval_page(data: Any) -> schemas.Page[Approval]:
    return schemas.Page[Approval].model_validate(data)


class _ApprovalCalls:
    """What each approvals method sends; shared by the sync and async clients."""

    @staticmethod
    def create(
        *,
        title: str,
        approvers: list[str] | None,
        body: str,
        context: dict[str, Any] | None,
        labels: list[str] | None,
        policy: schemas.PolicySpec | dict[str, Any] | str | None,
        timeout: int | str | None,
        on_timeout: str | None,
        heartbeat_timeout: int | str | None,
        callback_url: str | None,
        idempotency_key: str | None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> Call[Approval]:
        spec = schemas.ApprovalCreate.model_validate(
            {
                "title": title,
                "approvers": approvers,
                "body": body,
                "context": context or {},
                "labels": labels or [],
                "policy": {} if policy is None else policy,
                "timeout": timeout,
                "on_timeout": on_timeout,
                "heartbeat_timeout": heartbeat_timeout,
                "reminders": reminders,
                "escalation": escalation,
                "callback_url": callback_url,
            }
        )
        key = idempotency_key or str(uuid.uuid4())
        return Call(
            "POST",
            "/v1/approvals",
            _approval,
            json=spec.model_dump(mode="json", exclude_none=True),
            headers={"Idempotency-Key": key},
            retry=True,
        )

    @staticmethod
    def get(approval_id: str) -> Call[Approval]:
        return Call("GET", f"/v1/approvals/{approval_id}", _approval, retry=True)

    @staticmethod
    def list(
        status: str | None,
        label: str | None,
        requester: str | None,
        decidable: bool,
        cursor: str | None,
        limit: int,
    ) -> Call[schemas.Page[Approval]]:
        given = {"status": status, "label": label, "requester": requester, "cursor": cursor}
        params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        params |= {"limit": limit} | ({"decidable": "true"} if decidable else {})
        return Call("GET", "/v1/approvals", _approval_page, params=params, retry=True)

    @staticmethod
    def decide(
        approval_id: str, verdict: str, comment: str, form: dict[str, Any] | None, channel: str
    ) -> Call[Approval]:
        spec = schemas.DecisionCreate.model_validate(
            {"verdict": verdict, "comment": comment, "form": form, "channel": channel}
        )
        return Call(
            "POST",
            f"/v1/approvals/{approval_id}/decisions",
            _approval,
            json=spec.model_dump(mode="json"),
        )

    @staticmethod
    def cancel(approval_id: str, reason: str) -> Call[Approval]:
        return Call(
            "POST", f"/v1/approvals/{approval_id}/cancel", _approval, json={"reason": reason}
        )

    @staticmethod
    def heartbeat(approval_id: str) -> Call[Approval]:
        return Call("POST", f"/v1/approvals/{approval_id}/heartbeat", _approval)

    @staticmethod
    def deliveries(
        approval_id: str, purpose: str | None
    ) -> Call[builtins.list[schemas.DeliveryPublic]]:
        return Call(
            "GET",
            f"/v1/approvals/{approval_id}/deliveries",
            models(schemas.DeliveryPublic),
            params={} if purpose is None else {"purpose": purpose},
            retry=True,
        )

    @staticmethod
    def wait_once(approval_id: str, seconds: float) -> Call[Approval]:
        return Call(
            "GET",
            f"/v1/approvals/{approval_id}/wait",
            _approval,
            params={"timeout": round(seconds, 3)},
            retry=True,
        )


def _remaining(deadline: float | None) -> float:
    return DEFAULT_WAIT_POLL if deadline is None else deadline - time.monotonic()


class Approvals:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        *,
        title: str,
        approvers: list[str] | None = None,
        body: str = "",
        context: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        policy: schemas.PolicySpec | dict[str, Any] | str | None = None,
        timeout: int | str | None = None,
        on_timeout: str | None = None,
        heartbeat_timeout: int | str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> Approval:
        """Open an approval; the answer carries its task ``token``. Safe to retry: a key is
        generated when you give none, and retries reuse it.

        ``policy`` is the decision rules, or the name of a policy that supplies the approvers,
        rules, and possibly timeout and on_timeout (then leave ``approvers`` out). Without a
        name, ``approvers`` are required; ``timeout`` defaults to 24h, ``on_timeout`` to
        reject. ``reminders`` (e.g. ``["4h", "12h"]``) email whoever has not decided yet;
        ``escalation`` (``{"after": "20h", "approvers": ["team:oncall"]}``) adds approvers;
        both before the deadline, and a named policy may fix them."""
        call = _ApprovalCalls.create(
            title=title,
            approvers=approvers,
            body=body,
            context=context,
            labels=labels,
            policy=policy,
            timeout=timeout,
            on_timeout=on_timeout,
            heartbeat_timeout=heartbeat_timeout,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            reminders=reminders,
            escalation=escalation,
        )
        return self._client._bind(self._client._send(call))

    def get(self, approval_id: str) -> Approval:
        return self._client._bind(self._client._send(_ApprovalCalls.get(approval_id)))

    def list(
        self,
        *,
        status: str | None = None,
        label: str | None = None,
        requester: str | None = None,
        decidable: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> schemas.Page[Approval]:
        page = self._client._send(
            _ApprovalCalls.list(status, label, requester, decidable, cursor, limit)
        )
        for item in page.items:
            self._client._bind(item)
        return page

    def iterate(self, **filters: Any) -> Iterator[Approval]:
        """Every matching approval, newest first, following cursors."""
        cursor = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def decide(
        self,
        approval_id: str,
        verdict: str,
        *,
        comment: str = "",
        form: dict[str, Any] | None = None,
        channel: str = "api",
    ) -> Approval:
        call = _ApprovalCalls.decide(approval_id, verdict, comment, form, channel)
        return self._client._bind(self._client._send(call))

    def approve(
        self, approval_id: str, *, comment: str = "", form: dict[str, Any] | None = None
    ) -> Approval:
        return self.decide(approval_id, "approve", comment=comment, form=form)

    def reject(
        self, approval_id: str, *, comment: str = "", form: dict[str, Any] | None = None
    ) -> Approval:
        return self.decide(approval_id, "reject", comment=comment, form=form)

    def cancel(self, approval_id: str, *, reason: str = "") -> Approval:
        return self._client._bind(self._client._send(_ApprovalCalls.cancel(approval_id, reason)))

    def heartbeat(self, approval_id: str) -> Approval:
        return self._client._bind(self._client._send(_ApprovalCalls.heartbeat(approval_id)))

    def deliveries(
        self, approval_id: str, *, purpose: str | None = None
    ) -> builtins.list[schemas.DeliveryPublic]:
        """Where the approval's events were sent (its callback, its approvers' emails, its
        subscriptions'; only ``purpose``'s when given), and how that is going:
        ``failing_since``, ``attempts``, ``last_error`` and ``next_attempt_at`` of each."""
        return self._client._send(_ApprovalCalls.deliveries(approval_id, purpose))

    def wait(self, approval_id: str, *, timeout: float | None = None) -> Approval:
        """Long-poll until the approval settles; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seconds = max(0.0, min(DEFAULT_WAIT_POLL, _remaining(deadline)))
            approval = self._client._send(_ApprovalCalls.wait_once(approval_id, seconds))
            if not approval.is_pending:
                return self._client._bind(approval)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"approval {approval_id} is still pending after {timeout}s")


class AsyncApprovals:
    def __init__(self, client: AsyncClient) -> None:
        self._send = client._send

    async def create(
        self,
        *,
        title: str,
        approvers: list[str] | None = None,
        body: str = "",
        context: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        policy: schemas.PolicySpec | dict[str, Any] | str | None = None,
        timeout: int | str | None = None,
        on_timeout: str | None = None,
        heartbeat_timeout: int | str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> Approval:
        call = _ApprovalCalls.create(
            title=title,
            approvers=approvers,
            body=body,
            context=context,
            labels=labels,
            policy=policy,
            timeout=timeout,
            on_timeout=on_timeout,
            heartbeat_timeout=heartbeat_timeout,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            reminders=reminders,
            escalation=escalation,
        )
        return await self._send(call)

    async def get(self, approval_id: str) -> Approval:
        return await self._send(_ApprovalCalls.get(approval_id))

    async def list(
        self,
        *,
        status: str | None = None,
        label: str | None = None,
        requester: str | None = None,
        decidable: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> schemas.Page[Approval]:
        return await self._send(
            _ApprovalCalls.list(status, label, requester, decidable, cursor, limit)
        )

    async def iterate(self, **filters: Any) -> AsyncIterator[Approval]:
        cursor = None
        while True:
            page = await self.list(cursor=cursor, **filters)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def decide(
        self,
        approval_id: str,
        verdict: str,
        *,
        comment: str = "",
        form: dict[str, Any] | None = None,
        channel: str = "api",
    ) -> Approval:
        return await self._send(_ApprovalCalls.decide(approval_id, verdict, comment, form, channel))

    async def approve(
        self, approval_id: str, *, comment: str = "", form: dict[str, Any] | None = None
    ) -> Approval:
        return await self.decide(approval_id, "approve", comment=comment, form=form)

    async def reject(
        self, approval_id: str, *, comment: str = "", form: dict[str, Any] | None = None
    ) -> Approval:
        return await self.decide(approval_id, "reject", comment=comment, form=form)

    async def cancel(self, approval_id: str, *, reason: str = "") -> Approval:
        return await self._send(_ApprovalCalls.cancel(approval_id, reason))

    async def heartbeat(self, approval_id: str) -> Approval:
        return await self._send(_ApprovalCalls.heartbeat(approval_id))

    async def deliveries(
        self, approval_id: str, *, purpose: str | None = None
    ) -> builtins.list[schemas.DeliveryPublic]:
        return await self._send(_ApprovalCalls.deliveries(approval_id, purpose))

    async def wait(self, approval_id: str, *, timeout: float | None = None) -> Approval:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seconds = max(0.0, min(DEFAULT_WAIT_POLL, _remaining(deadline)))
            approval = await self._send(_ApprovalCalls.wait_once(approval_id, seconds))
            if not approval.is_pending:
                return approval
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"approval {approval_id} is still pending after {timeout}s")
