"""Users, teams, invitations, API keys and the audit log in the SDK (``client.people``): what
each method sends, once, and the sync and async resources that send it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from signoff import schemas
from signoff.client._calls import Call, model, models

if TYPE_CHECKING:
    from signoff.client import AsyncClient, Client


class _PeopleCalls:
    @staticmethod
    def create_user(email: str, name: str, role: str, kind: str) -> Call[schemas.UserPublic]:
        spec = schemas.UserCreate.model_validate(
            {"email": email, "name": name, "role": role, "kind": kind}
        )
        return Call("POST", "/v1/users", model(schemas.UserPublic), json=spec.model_dump())

    @staticmethod
    def list_users() -> Call[list[schemas.UserPublic]]:
        return Call("GET", "/v1/users", models(schemas.UserPublic), retry=True)

    @staticmethod
    def me() -> Call[schemas.UserPublic]:
        return Call("GET", "/v1/users/me", model(schemas.UserPublic), retry=True)

    @staticmethod
    def update_user(user: str, changes: dict[str, Any]) -> Call[schemas.UserPublic]:
        spec = schemas.UserUpdate.model_validate(changes)
        body = spec.model_dump(exclude_none=True)
        return Call("PATCH", f"/v1/users/{user}", model(schemas.UserPublic), json=body)

    @staticmethod
    def unlink_oidc(user: str) -> Call[None]:
        return Call("DELETE", f"/v1/users/{quote(user, safe='@')}/oidc", lambda _body: None)

    @staticmethod
    def slack_links(user: str) -> Call[list[schemas.SlackLinkPublic]]:
        path = f"/v1/users/{quote(user, safe='@')}/slack"
        return Call("GET", path, models(schemas.SlackLinkPublic), retry=True)

    @staticmethod
    def link_slack_user(user: str, slack_user_id: str) -> Call[list[schemas.SlackLinkPublic]]:
        spec = schemas.SlackLinkUpdate.model_validate({"slack_user_id": slack_user_id})
        path = f"/v1/users/{quote(user, safe='@')}/slack"
        return Call("PUT", path, models(schemas.SlackLinkPublic), json=spec.model_dump())

    @staticmethod
    def unlink_slack_users(user: str) -> Call[None]:
        return Call("DELETE", f"/v1/users/{quote(user, safe='@')}/slack", lambda _body: None)

    @staticmethod
    def invite(email: str, teams: list[str], role: str) -> Call[schemas.InvitationSent]:
        spec = schemas.InvitationCreate.model_validate(
            {"email": email, "teams": teams, "role": role}
        )
        return Call(
            "POST", "/v1/invitations", model(schemas.InvitationSent), json=spec.model_dump()
        )

    @staticmethod
    def list_invitations() -> Call[list[schemas.InvitationPublic]]:
        return Call("GET", "/v1/invitations", models(schemas.InvitationPublic), retry=True)

    @staticmethod
    def resend_invitation(invitation_id: str) -> Call[schemas.InvitationSent]:
        return Call(
            "POST", f"/v1/invitations/{invitation_id}/resend", model(schemas.InvitationSent)
        )

    @staticmethod
    def revoke_invitation(invitation_id: str) -> Call[schemas.InvitationPublic]:
        return Call(
            "POST", f"/v1/invitations/{invitation_id}/revoke", model(schemas.InvitationPublic)
        )

    @staticmethod
    def create_team(name: str) -> Call[schemas.TeamPublic]:
        return Call("POST", "/v1/teams", model(schemas.TeamPublic), json={"name": name})

    @staticmethod
    def list_teams() -> Call[list[schemas.TeamPublic]]:
        return Call("GET", "/v1/teams", models(schemas.TeamPublic), retry=True)

    @staticmethod
    def add_member(team: str, user: str) -> Call[schemas.TeamPublic]:
        return Call(
            "POST", f"/v1/teams/{team}/members", model(schemas.TeamPublic), json={"user": user}
        )

    @staticmethod
    def remove_member(team: str, user: str) -> Call[schemas.TeamPublic]:
        path = f"/v1/teams/{quote(team, safe='')}/members/{quote(user, safe='@')}"
        return Call("DELETE", path, model(schemas.TeamPublic))

    @staticmethod
    def delete_team(team: str) -> Call[None]:
        return Call("DELETE", f"/v1/teams/{quote(team, safe='')}", lambda _body: None)

    @staticmethod
    def create_key(
        user: str | None,
        name: str,
        scopes: list[schemas.ScopeName] | None,
        expires_in: int | str | None,
    ) -> Call[schemas.ApiKeyCreated]:
        spec = schemas.ApiKeyCreate(user=user, name=name, scopes=scopes, expires_in=expires_in)
        body = spec.model_dump(exclude_none=True)
        return Call("POST", "/v1/api-keys", model(schemas.ApiKeyCreated), json=body)

    @staticmethod
    def list_keys() -> Call[list[schemas.ApiKeyPublic]]:
        return Call("GET", "/v1/api-keys", models(schemas.ApiKeyPublic), retry=True)

    @staticmethod
    def revoke_key(key_id: str) -> Call[schemas.ApiKeyPublic]:
        return Call("POST", f"/v1/api-keys/{key_id}/revoke", model(schemas.ApiKeyPublic))

    @staticmethod
    def audit(
        object_id: str | None, action: str | None, cursor: str | None, limit: int
    ) -> Call[schemas.Page[schemas.AuditEntryPublic]]:
        params = {"object_id": object_id, "action": action, "cursor": cursor, "limit": limit}
        return Call(
            "GET",
            "/v1/audit",
            model(schemas.Page[schemas.AuditEntryPublic]),
            params={k: v for k, v in params.items() if v is not None},
            retry=True,
        )

    @staticmethod
    def verify_audit() -> Call[schemas.AuditVerification]:
        return Call("GET", "/v1/audit/verify", model(schemas.AuditVerification))

    @staticmethod
    def webhook_secret() -> Call[schemas.WebhookSecret]:
        return Call("GET", "/v1/webhook-secret", model(schemas.WebhookSecret), retry=True)


class People:
    """Users, teams, API keys, the audit log and the webhook secret."""

    def __init__(self, client: Client) -> None:
        self._send = client._send

    def create_user(
        self, email: str, *, name: str = "", role: str = "member", kind: str = "person"
    ) -> schemas.UserPublic:
        return self._send(_PeopleCalls.create_user(email, name, role, kind))

    def list_users(self) -> list[schemas.UserPublic]:
        return self._send(_PeopleCalls.list_users())

    def me(self) -> schemas.UserPublic:
        return self._send(_PeopleCalls.me())

    def update_user(
        self,
        user: str,
        *,
        role: str | None = None,
        is_active: bool | None = None,
        name: str | None = None,
    ) -> schemas.UserPublic:
        """Change a user's role, name, or whether they may sign in (admins)."""
        changes = {"role": role, "is_active": is_active, "name": name}
        return self._send(_PeopleCalls.update_user(user, changes))

    def unlink_oidc(self, user: str) -> None:
        """Forget the identity-provider account that signs in as ``user`` (admins)."""
        self._send(_PeopleCalls.unlink_oidc(user))

    def slack_links(self, user: str) -> list[schemas.SlackLinkPublic]:
        """The Slack users linked to a user, for deciding with Slack's buttons (admins)."""
        return self._send(_PeopleCalls.slack_links(user))

    def link_slack_user(self, user: str, slack_user_id: str) -> list[schemas.SlackLinkPublic]:
        """Link a Slack member id to a user explicitly (admins): their clicks count as the
        user's. Replaces the user's previous explicit link."""
        return self._send(_PeopleCalls.link_slack_user(user, slack_user_id))

    def unlink_slack_users(self, user: str) -> None:
        """Remove every link of a user to Slack users (admins)."""
        self._send(_PeopleCalls.unlink_slack_users(user))

    def invite(
        self, email: str, *, teams: list[str] | None = None, role: str = "member"
    ) -> schemas.InvitationSent:
        """Invite ``email`` into ``teams``; they are emailed a link to join."""
        return self._send(_PeopleCalls.invite(email, teams or [], role))

    def list_invitations(self) -> list[schemas.InvitationPublic]:
        return self._send(_PeopleCalls.list_invitations())

    def resend_invitation(self, invitation_id: str) -> schemas.InvitationSent:
        return self._send(_PeopleCalls.resend_invitation(invitation_id))

    def revoke_invitation(self, invitation_id: str) -> schemas.InvitationPublic:
        return self._send(_PeopleCalls.revoke_invitation(invitation_id))

    def create_team(self, name: str) -> schemas.TeamPublic:
        return self._send(_PeopleCalls.create_team(name))

    def list_teams(self) -> list[schemas.TeamPublic]:
        return self._send(_PeopleCalls.list_teams())

    def add_member(self, team: str, user: str) -> schemas.TeamPublic:
        return self._send(_PeopleCalls.add_member(team, user))

    def remove_member(self, team: str, user: str) -> schemas.TeamPublic:
        """Take ``user`` out of ``team`` (admins); one who is not a member changes nothing."""
        return self._send(_PeopleCalls.remove_member(team, user))

    def delete_team(self, team: str) -> None:
        """Delete a team no pending approval waits on (admins; ``Conflict`` otherwise)."""
        self._send(_PeopleCalls.delete_team(team))

    def create_key(
        self,
        *,
        user: str | None = None,
        name: str = "",
        scopes: list[schemas.ScopeName] | None = None,
        expires_in: int | str | None = None,
    ) -> schemas.ApiKeyCreated:
        """A new API key; ``scopes`` default to all its user's role allows, ``expires_in``
        ('90d') to never."""
        return self._send(_PeopleCalls.create_key(user, name, scopes, expires_in))

    def list_keys(self) -> list[schemas.ApiKeyPublic]:
        return self._send(_PeopleCalls.list_keys())

    def revoke_key(self, key_id: str) -> schemas.ApiKeyPublic:
        return self._send(_PeopleCalls.revoke_key(key_id))

    def audit(
        self,
        *,
        object_id: str | None = None,
        action: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> schemas.Page[schemas.AuditEntryPublic]:
        return self._send(_PeopleCalls.audit(object_id, action, cursor, limit))

    def verify_audit(self) -> schemas.AuditVerification:
        return self._send(_PeopleCalls.verify_audit())

    def webhook_secret(self) -> str:
        return self._send(_PeopleCalls.webhook_secret()).secret


class AsyncPeople:
    def __init__(self, client: AsyncClient) -> None:
        self._send = client._send

    async def create_user(
        self, email: str, *, name: str = "", role: str = "member", kind: str = "person"
    ) -> schemas.UserPublic:
        return await self._send(_PeopleCalls.create_user(email, name, role, kind))

    async def list_users(self) -> list[schemas.UserPublic]:
        return await self._send(_PeopleCalls.list_users())

    async def me(self) -> schemas.UserPublic:
        return await self._send(_PeopleCalls.me())

    async def update_user(
        self,
        user: str,
        *,
        role: str | None = None,
        is_active: bool | None = None,
        name: str | None = None,
    ) -> schemas.UserPublic:
        changes = {"role": role, "is_active": is_active, "name": name}
        return await self._send(_PeopleCalls.update_user(user, changes))

    async def unlink_oidc(self, user: str) -> None:
        await self._send(_PeopleCalls.unlink_oidc(user))

    async def slack_links(self, user: str) -> list[schemas.SlackLinkPublic]:
        return await self._send(_PeopleCalls.slack_links(user))

    async def link_slack_user(self, user: str, slack_user_id: str) -> list[schemas.SlackLinkPublic]:
        return await self._send(_PeopleCalls.link_slack_user(user, slack_user_id))

    async def unlink_slack_users(self, user: str) -> None:
        await self._send(_PeopleCalls.unlink_slack_users(user))

    async def invite(
        self, email: str, *, teams: list[str] | None = None, role: str = "member"
    ) -> schemas.InvitationSent:
        return await self._send(_PeopleCalls.invite(email, teams or [], role))

    async def list_invitations(self) -> list[schemas.InvitationPublic]:
        return await self._send(_PeopleCalls.list_invitations())

    async def resend_invitation(self, invitation_id: str) -> schemas.InvitationSent:
        return await self._send(_PeopleCalls.resend_invitation(invitation_id))

    async def revoke_invitation(self, invitation_id: str) -> schemas.InvitationPublic:
        return await self._send(_PeopleCalls.revoke_invitation(invitation_id))

    async def create_team(self, name: str) -> schemas.TeamPublic:
        return await self._send(_PeopleCalls.create_team(name))

    async def list_teams(self) -> list[schemas.TeamPublic]:
        return await self._send(_PeopleCalls.list_teams())

    async def add_member(self, team: str, user: str) -> schemas.TeamPublic:
        return await self._send(_PeopleCalls.add_member(team, user))

    async def remove_member(self, team: str, user: str) -> schemas.TeamPublic:
        return await self._send(_PeopleCalls.remove_member(team, user))

    async def delete_team(self, team: str) -> None:
        await self._send(_PeopleCalls.delete_team(team))

    async def create_key(
        self,
        *,
        user: str | None = None,
        name: str = "",
        scopes: list[schemas.ScopeName] | None = None,
        expires_in: int | str | None = None,
    ) -> schemas.ApiKeyCreated:
        return await self._send(_PeopleCalls.create_key(user, name, scopes, expires_in))

    async def list_keys(self) -> list[schemas.ApiKeyPublic]:
        return await self._send(_PeopleCalls.list_keys())

    async def revoke_key(self, key_id: str) -> schemas.ApiKeyPublic:
        return await self._send(_PeopleCalls.revoke_key(key_id))

    async def audit(
        self,
        *,
        object_id: str | None = None,
        action: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> schemas.Page[schemas.AuditEntryPublic]:
        return await self._send(_PeopleCalls.audit(object_id, action, cursor, limit))

    async def verify_audit(self) -> schemas.AuditVerification:
        return await self._send(_PeopleCalls.verify_audit())

    async def webhook_secret(self) -> str:
        return (await self._send(_PeopleCalls.webhook_secret())).secret
