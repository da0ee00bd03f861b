"""``signoff subscriptions create | list | show | delete``: where matching events go, on the
database directly.

Like policies and teams, subscriptions are set up by admins, so these commands work as the
other admin commands do (``SIGNOFF_DATABASE_URL``, acting as ``system:cli``), and a webhook
URL is checked against ``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS`` as the server checks it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from signoff import errors, schemas
from signoff.cli.local import database, server_state
from signoff.cli.output import emit, fail

if TYPE_CHECKING:
    from signoff.domain.subscriptions import Subscription

app = typer.Typer(help="Subscriptions: where matching events go (database access).")

COLUMNS = ("name", "kind", "target", "enabled", "filter")
PAGE = 200

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Name = Annotated[str, typer.Argument(help="The subscription's name, a lower-case slug.")]


@app.command()
def create(
    name: Name,
    webhook: Annotated[str | None, typer.Option(help="POST signed events to this URL.")] = None,
    email: Annotated[
        list[str] | None, typer.Option(help="Email events to this address; repeatable.")
    ] = None,
    slack: Annotated[str | None, typer.Option(help="A Slack channel: '#name' or an id.")] = None,
    apprise: Annotated[str | None, typer.Option(help="An apprise URL.")] = None,
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            help='An EventBridge-style pattern, e.g. \'{"type": ["approval.settled"]}\'; '
            "default: every event.",
        ),
    ] = "{}",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    as_json: Json = False,
) -> None:
    """Create a subscription: give exactly one of --webhook, --email, --slack, --apprise."""
    from signoff.services import subscriptions

    targets = {"webhook": webhook, "email": email or None, "slack": slack, "apprise": apprise}
    given = {kind: target for kind, target in targets.items() if target is not None}
    if len(given) != 1:
        raise fail(
            errors.InvalidInput("give exactly one of --webhook, --email, --slack, --apprise")
        )
    ((kind, target),) = given.items()
    fields = {"name": name, "kind": kind, "target": target, "filter": _pattern(filter_)}
    spec = _parsed(fields | {"enabled": not disabled})
    with server_state() as (db, ctx, _keys, settings):
        try:
            made = subscriptions.create(
                db, ctx, spec, allowed_networks=settings.webhook_allowed_networks
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(made, as_json)


@app.command("list")
def list_(as_json: Json = False) -> None:
    """List every subscription, in name order."""
    from signoff.services import subscriptions

    found: list[Subscription] = []
    cursor: str | None = None
    with database() as (db, ctx):
        while True:
            page, cursor = subscriptions.list_subscriptions(db, ctx, cursor=cursor, limit=PAGE)
            found += page
            if cursor is None:
                break
    emit([_public(subscription) for subscription in found], COLUMNS, as_json=as_json)


@app.command()
def show(name: Name, as_json: Json = False) -> None:
    """Show one subscription."""
    from signoff.services import subscriptions

    with database() as (db, ctx):
        try:
            found = subscriptions.get(db, ctx, name)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(found, as_json)


@app.command()
def delete(name: Name) -> None:
    """Delete a subscription. Deliveries it already made are still sent."""
    from signoff.services import subscriptions

    with database() as (db, ctx):
        try:
            subscriptions.delete(db, ctx, name)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    typer.echo(f"deleted subscription {name}")


def _pattern(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(errors.InvalidInput(f"--filter is not JSON: {exc}")) from exc


def _parsed(fields: dict[str, Any]) -> schemas.SubscriptionCreate:
    try:
        return schemas.SubscriptionCreate.model_validate(fields)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        raise fail(errors.InvalidInput("the subscription is not valid", errors=problems)) from exc


def _public(subscription: Subscription) -> schemas.SubscriptionPublic:
    return schemas.SubscriptionPublic.model_validate(subscription.as_json())


def _show(subscription: Subscription, as_json: bool) -> None:
    public = _public(subscription)
    if as_json:
        emit(public, COLUMNS, as_json=True)
        return
    state = "enabled" if public.enabled else "disabled"
    typer.echo(f"{public.name}  {public.id}  ({state})")
    target = ", ".join(public.target) if isinstance(public.target, list) else public.target
    typer.echo(f"  {public.kind}: {target}")
    typer.echo(f"  filter: {json.dumps(public.filter)}")
