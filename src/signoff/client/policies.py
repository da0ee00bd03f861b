"""Named policies in the SDK (``client.policies``): what each method sends, once, and the
sync and async resources that send it."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from signoff import schemas
from signoff.client._calls import Call, model

if TYPE_CHECKING:
    from signoff.client import AsyncClient, Client


class _PolicyCalls:
    @staticmethod
    def create(name: str, fields: dict[str, Any]) -> Call[schemas.PolicyPublic]:
        spec = schemas.PolicyCreate.model_validate({"name": name} | fields)
        body = spec.model_dump(mode="json", exclude_none=True)
        return Call("POST", "/v1/policies", model(schemas.PolicyPublic), json=body)

    @staticmethod
    def replace(name: str, fields: dict[str, Any]) -> Call[schemas.PolicyPublic]:
        body = schemas.PolicyReplace.model_validate(fields).model_dump(
            mode="json", exclude_none=True
        )
        return Call("PUT", _policy_path(name), model(schemas.PolicyPublic), json=body)

    @staticmethod
    def get(name: str) -> Call[schemas.PolicyPublic]:
        return Call("GET", _policy_path(name), model(schemas.PolicyPublic), retry=True)

    @staticmethod
    def list(cursor: str | None, limit: int) -> Call[schemas.Page[schemas.PolicyPublic]]:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return Call(
            "GET",
            "/v1/policies",
            model(schemas.Page[schemas.PolicyPublic]),
            params=params,
            retry=True,
        )

    @staticmethod
    def delete(name: str) -> Call[None]:
        return Call("DELETE", _policy_path(name), lambda _body: None)


def _policy_path(name: str) -> str:
    return f"/v1/policies/{quote(name, safe='')}"


class Policies:
    """Named policies: admins write them; any key that may read approvals reads them."""

    def __init__(self, client: Client) -> None:
        self._send = client._send

    def create(
        self,
        name: str,
        *,
        approvers: builtins.list[str],
        description: str = "",
        quorum: int = 1,
        rejections_to_reject: int = 1,
        requester_can_decide: bool = False,
        comment_required: bool = False,
        form: dict[str, Any] | None = None,
        link_requires_login: bool = False,
        timeout: int | str | None = None,
        on_timeout: str | None = None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> schemas.PolicyPublic:
        """A new named policy. ``timeout`` and ``on_timeout``, when given, are fixed for every
        approval made from it; otherwise each request chooses."""
        fields = {
            "approvers": approvers,
            "description": description,
            "quorum": quorum,
            "rejections_to_reject": rejections_to_reject,
            "requester_can_decide": requester_can_decide,
            "comment_required": comment_required,
            "form": form,
            "link_requires_login": link_requires_login,
            "timeout": timeout,
            "on_timeout": on_timeout,
            "reminders": reminders,
            "escalation": escalation,
        }
        return self._send(_PolicyCalls.create(name, fields))

    def replace(
        self,
        name: str,
        *,
        approvers: builtins.list[str],
        description: str = "",
        quorum: int = 1,
        rejections_to_reject: int = 1,
        requester_can_decide: bool = False,
        comment_required: bool = False,
        form: dict[str, Any] | None = None,
        link_requires_login: bool = False,
        timeout: int | str | None = None,
        on_timeout: str | None = None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> schemas.PolicyPublic:
        """Replace everything the policy holds: what you leave out takes its default.
        Approvals already made from it keep what they copied."""
        fields = {
            "approvers": approvers,
            "description": description,
            "quorum": quorum,
            "rejections_to_reject": rejections_to_reject,
            "requester_can_decide": requester_can_decide,
            "comment_required": comment_required,
            "form": form,
            "link_requires_login": link_requires_login,
            "timeout": timeout,
            "on_timeout": on_timeout,
            "reminders": reminders,
            "escalation": escalation,
        }
        return self._send(_PolicyCalls.replace(name, fields))

    def get(self, name: str) -> schemas.PolicyPublic:
        return self._send(_PolicyCalls.get(name))

    def list(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> schemas.Page[schemas.PolicyPublic]:
        """One page of policies in name order."""
        return self._send(_PolicyCalls.list(cursor, limit))

    def delete(self, name: str) -> None:
        self._send(_PolicyCalls.delete(name))


class AsyncPolicies:
    def __init__(self, client: AsyncClient) -> None:
        self._send = client._send

    async def create(
        self,
        name: str,
        *,
        approvers: builtins.list[str],
        description: str = "",
        quorum: int = 1,
        rejections_to_reject: int = 1,
        requester_can_decide: bool = False,
        comment_required: bool = False,
        form: dict[str, Any] | None = None,
        link_requires_login: bool = False,
        timeout: int | str | None = None,
        on_timeout: str | None = None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> schemas.PolicyPublic:
        fields = {
            "approvers": approvers,
            "description": description,
            "quorum": quorum,
            "rejections_to_reject": rejections_to_reject,
            "requester_can_decide": requester_can_decide,
            "comment_required": comment_required,
            "form": form,
            "link_requires_login": link_requires_login,
            "timeout": timeout,
            "on_timeout": on_timeout,
            "reminders": reminders,
            "escalation": escalation,
        }
        return await self._send(_PolicyCalls.create(name, fields))

    async def replace(
        self,
        name: str,
        *,
        approvers: builtins.list[str],
        description: str = "",
        quorum: int = 1,
        rejections_to_reject: int = 1,
        requester_can_decide: bool = False,
        comment_required: bool = False,
        form: dict[str, Any] | None = None,
        link_requires_login: bool = False,
        timeout: int | str | None = None,
        on_timeout: str | None = None,
        reminders: builtins.list[int | str] | None = None,
        escalation: schemas.EscalationSpec | dict[str, Any] | None = None,
    ) -> schemas.PolicyPublic:
        fields = {
            "approvers": approvers,
            "description": description,
            "quorum": quorum,
            "rejections_to_reject": rejections_to_reject,
            "requester_can_decide": requester_can_decide,
            "comment_required": comment_required,
            "form": form,
            "link_requires_login": link_requires_login,
            "timeout": timeout,
            "on_timeout": on_timeout,
            "reminders": reminders,
            "escalation": escalation,
        }
        return await self._send(_PolicyCalls.replace(name, fields))

    async def get(self, name: str) -> schemas.PolicyPublic:
        return await self._send(_PolicyCalls.get(name))

    async def list(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> schemas.Page[schemas.PolicyPublic]:
        return await self._send(_PolicyCalls.list(cursor, limit))

    async def delete(self, name: str) -> None:
        await self._send(_PolicyCalls.delete(name))
