"""/v1/users, /v1/invitations, /v1/teams and /v1/api-keys."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response

from signoff import errors, schemas
from signoff.domain import accounts
from signoff.domain import principals as domain
from signoff.services import invitations, oidc, principals, slack
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1", tags=["people"])


@router.post("/users", status_code=201, response_model=schemas.UserPublic)
def create_user(
    spec: schemas.UserCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.UserPublic:
    user = principals.create_user(
        runtime.db,
        ctx,
        email=spec.email,
        name=spec.name,
        role=domain.Role(spec.role),
        kind=domain.UserKind(spec.kind),
    )
    return schemas.UserPublic.model_validate(asdict(user))


@router.get("/users", response_model=list[schemas.UserPublic])
def list_users(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.UserPublic]:
    return [
        schemas.UserPublic.model_validate(asdict(u)) for u in principals.list_users(runtime.db, ctx)
    ]


@router.get("/users/me", response_model=schemas.UserPublic)
def me(ctx: ContextDep) -> schemas.UserPublic:
    if ctx.principal.user is None:
        raise errors.PermissionDenied("a task token belongs to an approval, not a user")
    return schemas.UserPublic.model_validate(asdict(ctx.principal.user))


@router.patch("/users/{user}", response_model=schemas.UserPublic)
def update_user(
    user: str, spec: schemas.UserUpdate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.UserPublic:
    """Change a user's role, name or whether they may sign in (admins)."""
    updated = principals.update_user(
        runtime.db,
        ctx,
        user,
        role=domain.Role(spec.role) if spec.role else None,
        is_active=spec.is_active,
        name=spec.name,
    )
    return schemas.UserPublic.model_validate(asdict(updated))


@router.delete("/users/{user}/oidc", status_code=204, response_class=Response)
def unlink_oidc(user: str, ctx: ContextDep, runtime: RuntimeDep) -> Response:
    """Forget the identity-provider subject that signs in as this user (admins); nothing to
    forget is no error."""
    oidc.unlink(runtime.db, ctx, user)
    return Response(status_code=204)


@router.get("/users/{user}/slack", response_model=list[schemas.SlackLinkPublic])
def slack_links(user: str, ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.SlackLinkPublic]:
    """The Slack users linked to a user, for deciding from Slack (admins)."""
    return _slack_links(slack.links(runtime.db, ctx, user))


@router.put("/users/{user}/slack", response_model=list[schemas.SlackLinkPublic])
def link_slack_user(
    user: str, spec: schemas.SlackLinkUpdate, ctx: ContextDep, runtime: RuntimeDep
) -> list[schemas.SlackLinkPublic]:
    """Link a Slack user to a user explicitly (admins): their clicks on Approve and Reject
    count as this user's. It replaces the user's previous explicit link."""
    found = slack.link_user(runtime.db, ctx, user, spec.slack_user_id)
    return _slack_links(slack.links(runtime.db, ctx, found.id))


@router.delete("/users/{user}/slack", status_code=204)
def unlink_slack_users(user: str, ctx: ContextDep, runtime: RuntimeDep) -> Response:
    """Remove every link of a user to Slack users (admins), explicit or found by email."""
    slack.unlink_user(runtime.db, ctx, user)
    return Response(status_code=204)


def _slack_links(found: list[tuple[str, Any]]) -> list[schemas.SlackLinkPublic]:
    return [
        schemas.SlackLinkPublic(slack_user_id=slack_user_id, source=source.value)
        for slack_user_id, source in found
    ]


@router.post("/invitations", status_code=201, response_model=schemas.InvitationSent)
def invite(
    spec: schemas.InvitationCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.InvitationSent:
    """Invite an email address into teams; the invitee is emailed a link."""
    invitation, token = invitations.invite(
        runtime.db,
        ctx,
        email=spec.email,
        teams=spec.teams,
        role=domain.Role(spec.role),
        ttl=timedelta(seconds=runtime.settings.invitation_ttl_seconds),
        secret_key=runtime.keys.secret_key,
    )
    return _sent(invitation, token, runtime.settings.public_url)


@router.get("/invitations", response_model=list[schemas.InvitationPublic])
def list_invitations(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.InvitationPublic]:
    return [_invitation(i) for i in invitations.list_invitations(runtime.db, ctx)]


@router.post("/invitations/{invitation_id}/resend", response_model=schemas.InvitationSent)
def resend_invitation(
    invitation_id: str, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.InvitationSent:
    """Email a new link with a new expiry; earlier links stop working."""
    invitation, token = invitations.resend(
        runtime.db,
        ctx,
        invitation_id,
        ttl=timedelta(seconds=runtime.settings.invitation_ttl_seconds),
        secret_key=runtime.keys.secret_key,
    )
    return _sent(invitation, token, runtime.settings.public_url)


@router.post("/invitations/{invitation_id}/revoke", response_model=schemas.InvitationPublic)
def revoke_invitation(
    invitation_id: str, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.InvitationPublic:
    return _invitation(invitations.revoke(runtime.db, ctx, invitation_id))


def _invitation(invitation: accounts.Invitation) -> schemas.InvitationPublic:
    status = invitation.status(datetime.now(UTC))
    return schemas.InvitationPublic.model_validate(asdict(invitation) | {"status": status})


def _sent(invitation: accounts.Invitation, token: str, public_url: str) -> schemas.InvitationSent:
    link = f"{public_url.rstrip('/')}/invite/{token}"
    return schemas.InvitationSent.model_validate(
        _invitation(invitation).model_dump() | {"link": link}
    )


@router.post("/teams", status_code=201, response_model=schemas.TeamPublic)
def create_team(
    spec: schemas.TeamCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.TeamPublic:
    return schemas.TeamPublic.model_validate(
        asdict(principals.create_team(runtime.db, ctx, name=spec.name))
    )


@router.get("/teams", response_model=list[schemas.TeamPublic])
def list_teams(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.TeamPublic]:
    return [
        schemas.TeamPublic.model_validate(asdict(t)) for t in principals.list_teams(runtime.db, ctx)
    ]


@router.post("/teams/{team}/members", response_model=schemas.TeamPublic)
def add_member(
    team: str, spec: schemas.TeamMemberAdd, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.TeamPublic:
    found = principals.add_member(runtime.db, ctx, team=team, user=spec.user)
    return schemas.TeamPublic.model_validate(asdict(found))


@router.delete("/teams/{team}/members/{user}", response_model=schemas.TeamPublic)
def remove_member(team: str, user: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.TeamPublic:
    """Take a user out of a team (admins); one who is not a member changes nothing."""
    found = principals.remove_member(runtime.db, ctx, team=team, user=user)
    return schemas.TeamPublic.model_validate(asdict(found))


@router.delete("/teams/{team}", status_code=204, response_class=Response)
def delete_team(team: str, ctx: ContextDep, runtime: RuntimeDep) -> Response:
    """Delete a team that no pending approval waits on (admins)."""
    principals.delete_team(runtime.db, ctx, team)
    return Response(status_code=204)


@router.post("/api-keys", status_code=201, response_model=schemas.ApiKeyCreated)
def create_api_key(
    spec: schemas.ApiKeyCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.ApiKeyCreated:
    """A new key; its secret is in this answer and nowhere else, ever."""
    created = principals.create_api_key(
        runtime.db,
        ctx,
        user=spec.user,
        name=spec.name,
        scopes=spec.scopes,
        expires_in=spec.expires_in,
    )
    return schemas.ApiKeyCreated.model_validate(asdict(created.api_key) | {"key": created.secret})


@router.get("/api-keys", response_model=list[schemas.ApiKeyPublic])
def list_api_keys(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.ApiKeyPublic]:
    return [
        schemas.ApiKeyPublic.model_validate(asdict(k))
        for k in principals.list_api_keys(runtime.db, ctx)
    ]


@router.post("/api-keys/{key_id}/revoke", response_model=schemas.ApiKeyPublic)
def revoke_api_key(key_id: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.ApiKeyPublic:
    return schemas.ApiKeyPublic.model_validate(
        asdict(principals.revoke_api_key(runtime.db, ctx, key_id))
    )
