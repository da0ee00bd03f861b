"""``signoff plan | apply | destroy -f signoff.yaml`` and ``signoff config schema``: people,
teams, service accounts, named policies and subscriptions as code (database access, like the
other admin commands, so a CI job needs the database URL and the server's secrets, not an API
key)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from signoff import errors
from signoff.cli.local import server_state
from signoff.cli.output import fail

if TYPE_CHECKING:
    from signoff.domain.config import Document
    from signoff.services.config_apply import NewKey
    from signoff.services.config_plan import Plan

app = typer.Typer(help="signoff.yaml: the file's JSON Schema.")
File = Annotated[
    Path, typer.Option("-f", "--file", help="The file to read.", exists=True, dir_okay=False)
]


def plan_command(file: File = Path("signoff.yaml")) -> None:
    """Show what apply would change; exit 0 with nothing to do, 2 with changes."""
    from signoff.services import config

    document = _read(file)
    with server_state() as (db, ctx, _keys, settings):
        try:
            planned = config.plan(
                db, ctx, document, allowed_networks=settings.webhook_allowed_networks
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(planned)
    raise typer.Exit(2 if planned.changes else 0)


def apply_command(file: File = Path("signoff.yaml")) -> None:
    """Make the database hold what the file says; invitations are emailed by the worker."""
    from datetime import timedelta

    from signoff.services import config

    document = _read(file)
    with server_state() as (db, ctx, keys, settings):
        try:
            planned, _ = config.apply(
                db,
                ctx,
                document,
                secret_key=keys.secret_key,
                invitation_ttl=timedelta(seconds=settings.invitation_ttl_seconds),
                on_change=lambda change: typer.echo(str(change)),
                on_key=lambda key: _hand_over(key, file.parent),
                allowed_networks=settings.webhook_allowed_networks,
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    if not planned.changes:
        typer.echo(f"stack {planned.stack}: nothing to change")
    else:
        typer.echo(f"stack {planned.stack}: {len(planned.changes)} changes applied")


def destroy_command(
    file: File = Path("signoff.yaml"),
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove everything the file's stack created (nothing else)."""
    from signoff.services import config

    stack = _read(file).stack
    with server_state() as (db, ctx, _keys, _settings):
        try:
            planned = config.destroy(db, ctx, stack, apply_it=False)
            _show(planned)
            if planned.changes and (
                yes or typer.confirm(f"Remove all of this from stack {stack}?")
            ):
                config.destroy(db, ctx, stack, apply_it=True)
                typer.echo(f"stack {stack}: destroyed")
        except errors.SignoffError as exc:
            raise fail(exc) from exc


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of signoff.yaml (for editors and CI checks)."""
    from signoff.domain import config

    typer.echo(json.dumps(config.json_schema(), indent=2, sort_keys=True))


def _read(file: Path) -> Document:
    from signoff.domain import config

    try:
        return config.load(file.read_text(), os.environ, filename=file.name).document
    except errors.SignoffError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        raise typer.Exit(1) from exc


def _show(planned: Plan) -> None:
    if not planned.changes:
        typer.echo(f"stack {planned.stack}: nothing to change")
        return
    for change in planned.changes:
        typer.echo(str(change))
    typer.echo(f"stack {planned.stack}: {len(planned.changes)} changes")


def _hand_over(key: NewKey, base: Path) -> None:
    """Write a new key to its file (readable by its owner only), or print it once."""
    if key.file is None:
        typer.echo(f"key {key.key_id} for {key.service_account} (shown only now): {key.secret}")
        return
    path = base / key.file
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new file, readable by its owner from the start, put in place in one step: never
    # written through a symlink or into a file others could already read.
    fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key.secret + "\n")
    os.replace(fresh, path)
    typer.echo(f"key {key.key_id} for {key.service_account} written to {path}")
