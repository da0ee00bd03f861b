"""``signoff invitations``: invite people by email (database access, like the other admin
commands). The link is emailed by the worker when SMTP is set up, and printed here so an
admin can also hand it over another way."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from signoff import errors, schemas
from signoff.cli.local import database, server_state
from signoff.cli.output import emit, fail

if TYPE_CHECKING:
    from signoff.domain.accounts import Invitation

app = typer.Typer(help="Invitations: people join by an emailed link (database access).")
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
COLUMNS = ("id", "email", "role", "teams", "status", "expires_at", "send_count")


@app.command("create")
def create(
    email: str,
    team: Annotated[
        list[str] | None, typer.Option(help="A team to join; repeat for several.")
    ] = None,
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
    as_json: Json = False,
) -> None:
    """Invite EMAIL; prints the invitation and its link."""
    from signoff.domain.principals import Role
    from signoff.services import invitations

    with server_state() as (db, ctx, keys, settings):
        try:
            invitation, token = invitations.invite(
                db,
                ctx,
                email=email,
                teams=team or [],
                role=Role(role),
                ttl=timedelta(seconds=settings.invitation_ttl_seconds),
                secret_key=keys.secret_key,
            )
        except (errors.SignoffError, ValueError) as exc:
            raise fail(_as_error(exc)) from exc
        _print_sent(invitation, f"{settings.public_url.rstrip('/')}/invite/{token}", as_json)


@app.command("list")
def list_invitations(as_json: Json = False) -> None:
    """List invitations, newest first."""
    from signoff.services import invitations

    with database() as (db, ctx):
        found = invitations.list_invitations(db, ctx)
    emit([_public(i) for i in found], COLUMNS, as_json=as_json)


@app.command("resend")
def resend(invitation_id: str, as_json: Json = False) -> None:
    """Send a fresh link with a fresh expiry; earlier links stop working."""
    from signoff.services import invitations

    with server_state() as (db, ctx, keys, settings):
        try:
            invitation, token = invitations.resend(
                db,
                ctx,
                invitation_id,
                ttl=timedelta(seconds=settings.invitation_ttl_seconds),
                secret_key=keys.secret_key,
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
        _print_sent(invitation, f"{settings.public_url.rstrip('/')}/invite/{token}", as_json)


@app.command("revoke")
def revoke(invitation_id: str, as_json: Json = False) -> None:
    """Withdraw an invitation; its link stops working."""
    from signoff.services import invitations

    with database() as (db, ctx):
        try:
            invitation = invitations.revoke(db, ctx, invitation_id)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(_public(invitation), COLUMNS, as_json=as_json)


def _public(invitation: Invitation) -> schemas.InvitationPublic:
    status = invitation.status(datetime.now(UTC))
    return schemas.InvitationPublic.model_validate(asdict(invitation) | {"status": status})


def _print_sent(invitation: Invitation, link: str, as_json: bool) -> None:
    sent = schemas.InvitationSent.model_validate(_public(invitation).model_dump() | {"link": link})
    if as_json:
        emit(sent, COLUMNS, as_json=True)
        return
    typer.echo(f"{sent.id}: invited {sent.email} until {sent.expires_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(f"link (also emailed): {link}")


def _as_error(exc: Exception) -> errors.SignoffError:
    return exc if isinstance(exc, errors.SignoffError) else errors.InvalidInput(str(exc))
