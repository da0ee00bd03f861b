"""``signoff users | teams | keys``: people and credentials, on the database directly."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from signoff import errors, schemas
from signoff.cli.local import database
from signoff.cli.output import emit, fail

users = typer.Typer(help="Users: people and service accounts (database access).")
teams = typer.Typer(help="Teams: named groups of users (database access).")
keys = typer.Typer(help="API keys (database access).")

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
USER_COLUMNS = ("id", "email", "name", "role", "kind", "is_active")
KEY_COLUMNS = (
    "id",
    "user_id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
)


@users.command("create")
def create_user(
    email: str,
    name: str = "",
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
    service: Annotated[bool, typer.Option("--service", help="A service account.")] = False,
    as_json: Json = False,
) -> None:
    """Create a user."""
    from signoff.domain.principals import Role, UserKind
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            user = principals.create_user(
                db,
                ctx,
                email=email,
                name=name,
                role=Role(role),
                kind=UserKind.SERVICE if service else UserKind.PERSON,
            )
        except (errors.SignoffError, ValueError) as exc:
            raise fail(
                exc if isinstance(exc, errors.SignoffError) else errors.InvalidInput(str(exc))
            ) from exc
    emit(schemas.UserPublic.model_validate(asdict(user)), USER_COLUMNS, as_json=as_json)


@users.command("list")
def list_users(as_json: Json = False) -> None:
    """List users."""
    from signoff.services import principals

    with database() as (db, ctx):
        found = principals.list_users(db, ctx)
    emit(
        [schemas.UserPublic.model_validate(asdict(u)) for u in found], USER_COLUMNS, as_json=as_json
    )


@users.command("disable")
def disable_user(user: Annotated[str, typer.Argument(help="Email or id.")]) -> None:
    """Stop a user signing in; their sessions and API keys stop working."""
    _update_user(user, is_active=False)


@users.command("enable")
def enable_user(user: Annotated[str, typer.Argument(help="Email or id.")]) -> None:
    """Let a disabled user sign in again."""
    _update_user(user, is_active=True)


@users.command("set-role")
def set_role(
    user: Annotated[str, typer.Argument(help="Email or id.")],
    role: Annotated[str, typer.Argument(help="admin or member.")],
) -> None:
    """Make a user an admin or a member; they sign in again."""
    from signoff.domain.principals import Role

    try:
        wanted = Role(role)
    except ValueError as exc:
        raise fail(errors.InvalidInput(f"the role is admin or member, not {role!r}")) from exc
    _update_user(user, role=wanted)


@users.command("unlink-oidc")
def unlink_oidc(user: Annotated[str, typer.Argument(help="Email or id.")]) -> None:
    """Forget the identity-provider account that signs in as this user; the next provider
    sign-in with their email links anew. The teams the provider gave them and their sessions
    end too."""
    from signoff.services import oidc

    with database() as (db, ctx):
        try:
            unlinked = oidc.unlink(db, ctx, user)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    typer.echo(f"unlinked {user}" if unlinked else f"{user} was not linked to a provider account")


@users.command("slack-link")
def slack_link(
    user: Annotated[str, typer.Argument(help="Email or id.")],
    slack_user_id: Annotated[str, typer.Argument(help="Slack member id, e.g. U012AB3CD.")],
    as_json: Json = False,
) -> None:
    """Link a Slack user to a user: their clicks on Slack's Approve and Reject count as the
    user's (an explicit link wins over one found by email)."""
    from signoff.services import slack

    with database() as (db, ctx):
        try:
            found = slack.link_user(db, ctx, user, slack_user_id)
            links = slack.links(db, ctx, found.id)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _emit_slack_links(links, as_json)


@users.command("slack-links")
def slack_links(
    user: Annotated[str, typer.Argument(help="Email or id.")], as_json: Json = False
) -> None:
    """List the Slack users linked to a user, and how (explicit or email)."""
    from signoff.services import slack

    with database() as (db, ctx):
        try:
            links = slack.links(db, ctx, user)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _emit_slack_links(links, as_json)


@users.command("slack-unlink")
def slack_unlink(user: Annotated[str, typer.Argument(help="Email or id.")]) -> None:
    """Remove every link of a user to Slack users."""
    from signoff.services import slack

    with database() as (db, ctx):
        try:
            removed = slack.unlink_user(db, ctx, user)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    typer.echo(f"unlinked {', '.join(removed)}" if removed else "no Slack user was linked")


def _emit_slack_links(links: list[tuple[str, Any]], as_json: bool) -> None:
    rows = [
        schemas.SlackLinkPublic(slack_user_id=slack_user_id, source=source.value)
        for slack_user_id, source in links
    ]
    emit(rows, ("slack_user_id", "source"), as_json=as_json)


def _update_user(user: str, **changes: Any) -> None:
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            updated = principals.update_user(db, ctx, user, **changes)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(schemas.UserPublic.model_validate(asdict(updated)), USER_COLUMNS, as_json=False)


@teams.command("create")
def create_team(name: str, as_json: Json = False) -> None:
    """Create a team."""
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            team = principals.create_team(db, ctx, name=name)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(
        schemas.TeamPublic.model_validate(asdict(team)),
        ("id", "name", "member_ids"),
        as_json=as_json,
    )


@teams.command("add-member")
def add_member(
    team: str, user: Annotated[str, typer.Argument(help="Email or id.")], as_json: Json = False
) -> None:
    """Add a user to a team."""
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            found = principals.add_member(db, ctx, team=team, user=user)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(
        schemas.TeamPublic.model_validate(asdict(found)),
        ("id", "name", "member_ids"),
        as_json=as_json,
    )


@teams.command("remove-member")
def remove_member(
    team: str, user: Annotated[str, typer.Argument(help="Email or id.")], as_json: Json = False
) -> None:
    """Take a user out of a team."""
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            found = principals.remove_member(db, ctx, team=team, user=user)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(
        schemas.TeamPublic.model_validate(asdict(found)),
        ("id", "name", "member_ids"),
        as_json=as_json,
    )


@teams.command("delete")
def delete_team(team: str) -> None:
    """Delete a team that no pending approval waits on."""
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            principals.delete_team(db, ctx, team)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    typer.echo(f"deleted team {team}")


@teams.command("list")
def list_teams(as_json: Json = False) -> None:
    """List teams."""
    from signoff.services import principals

    with database() as (db, ctx):
        found = principals.list_teams(db, ctx)
    emit(
        [schemas.TeamPublic.model_validate(asdict(t)) for t in found],
        ("id", "name", "member_ids"),
        as_json=as_json,
    )


@keys.command("create")
def create_key(
    user: Annotated[str, typer.Option("--user", help="Email or id of the key's user.")],
    name: str = "",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="approvals:read, approvals:write, approvals:decide or admin; repeat for "
            "several (default: all the user's role allows)."
        ),
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option(help="The key stops working after this long, e.g. 90d.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create an API key and print its secret, once."""
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            created = principals.create_api_key(
                db, ctx, user=user, name=name, scopes=scope, expires_in=expires_in
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    public = schemas.ApiKeyCreated.model_validate(asdict(created.api_key) | {"key": created.secret})
    if as_json:
        emit(public, KEY_COLUMNS, as_json=True)
    else:
        typer.echo(f"{public.id} for {public.user_id}; the key (shown only now):")
        typer.echo(public.key)


@keys.command("list")
def list_keys(as_json: Json = False) -> None:
    """List API keys (never their secrets)."""
    from signoff.services import principals

    with database() as (db, ctx):
        found = principals.list_api_keys(db, ctx)
    emit(
        [schemas.ApiKeyPublic.model_validate(asdict(k)) for k in found],
        KEY_COLUMNS,
        as_json=as_json,
    )


@keys.command("revoke")
def revoke_key(key_id: str, as_json: Json = False) -> None:
    """Revoke an API key. A server on PostgreSQL refuses it at once; a server on this SQLite
    file within SIGNOFF_AUTH_CACHE_SECONDS (changes made through the API apply at once)."""
    from signoff.services import principals

    with database() as (db, ctx):
        try:
            key = principals.revoke_api_key(db, ctx, key_id)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(schemas.ApiKeyPublic.model_validate(asdict(key)), KEY_COLUMNS, as_json=as_json)
