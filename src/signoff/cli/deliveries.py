"""``signoff deliveries list | show | redrive``: the outbox, on the database directly.

Looking into deliveries and redriving dead letters is an operator's work, like reading the
audit log, so these commands act as ``system:cli`` on ``SIGNOFF_DATABASE_URL``. A redrive wakes
workers on PostgreSQL at once (``NOTIFY``); a server on an SQLite file finds the redriven
deliveries within ``SIGNOFF_WORKER_MAX_SLEEP_SECONDS``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from signoff import errors, schemas
from signoff.cli.local import database
from signoff.cli.output import emit, fail

if TYPE_CHECKING:
    from signoff.domain.deliveries import DeliveryHistory, DeliveryRecord
    from signoff.services.deliveries import Filters

app = typer.Typer(help="Deliveries of events: list, show attempts, redrive (database access).")

COLUMNS = ("id", "status", "event_type", "subject", "target", "attempts", "last_error")

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Status = Annotated[str | None, typer.Option(help="pending, delivered or dead.")]
TargetKind = Annotated[str | None, typer.Option(help="callback or email.")]
EventType = Annotated[str | None, typer.Option(help="e.g. approval.settled.")]
Subject = Annotated[str | None, typer.Option(help="What the event is about, e.g. an approval id.")]


@app.command("list")
def list_(
    status: Status = None,
    target_kind: TargetKind = None,
    event_type: EventType = None,
    subject: Subject = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after this delivery id.")] = None,
    as_json: Json = False,
) -> None:
    """List deliveries, newest first (one page: --cursor continues)."""
    from signoff.services import deliveries

    filters = _filters(status, target_kind, event_type, subject)
    with database() as (db, ctx):
        found, next_cursor = deliveries.list_deliveries(
            db, ctx, filters, cursor=cursor, limit=limit
        )
    emit([_public(record) for record in found], COLUMNS, as_json=as_json)
    if next_cursor is not None:
        print(f"more: --cursor {next_cursor}", file=sys.stderr)


@app.command()
def show(delivery_id: str, as_json: Json = False) -> None:
    """Show a delivery and every attempt at it."""
    from signoff.services import deliveries

    with database() as (db, ctx):
        try:
            found = deliveries.get(db, ctx, delivery_id)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    if as_json:
        emit(_detail(found), COLUMNS, as_json=True)
        return
    _print(found)


@app.command()
def redrive(
    delivery_id: Annotated[str | None, typer.Argument(help="A dead delivery.")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every dead delivery that matches the filters.")
    ] = False,
    status: Annotated[str, typer.Option(help="With --all: only 'dead' is redriven.")] = "dead",
    target_kind: TargetKind = None,
    event_type: EventType = None,
    subject: Subject = None,
) -> None:
    """Make a dead delivery (or, with --all, every matching one) pending and due at once."""
    from signoff.services import deliveries

    filtered = any(v is not None for v in (target_kind, event_type, subject))
    if every == (delivery_id is not None) or (filtered and not every):
        raise fail(errors.InvalidInput("give a delivery id, or --all with optional filters"))
    with database() as (db, ctx):
        try:
            if delivery_id is not None:
                deliveries.redrive(db, ctx, delivery_id)
                typer.echo(f"redrove {delivery_id}: pending, due now")
                return
            count = deliveries.redrive_all(
                db, ctx, _filters(status, target_kind, event_type, subject)
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    typer.echo(f"redrove {count} dead deliver{'y' if count == 1 else 'ies'}")


def _filters(
    status: str | None, target_kind: str | None, event_type: str | None, subject: str | None
) -> Filters:
    from signoff.domain.deliveries import DeliveryStatus, TargetKind
    from signoff.services.deliveries import Filters

    for name, value, choices in (
        ("--status", status, DeliveryStatus),
        ("--target-kind", target_kind, TargetKind),
    ):
        if value is not None and value not in {choice.value for choice in choices}:
            known = ", ".join(choice.value for choice in choices)
            raise fail(errors.InvalidInput(f"{name} is one of {known}, not {value!r}"))
    return Filters(
        status=DeliveryStatus(status) if status is not None else None,
        target_kind=target_kind,
        event_type=event_type,
        subject=subject,
    )


def _public(record: DeliveryRecord) -> schemas.DeliveryPublic:
    return schemas.DeliveryPublic.model_validate(asdict(record))


def _detail(found: DeliveryHistory) -> schemas.DeliveryDetail:
    return schemas.DeliveryDetail.model_validate(
        asdict(found.record) | {"attempt_log": [asdict(a) for a in found.attempts]}
    )


def _print(found: DeliveryHistory) -> None:
    d = found.record
    typer.echo(f"{d.id}  {d.status.value}  {d.event_type}  {d.subject}")
    typer.echo(f"  to {d.target_kind} {d.target}")
    line = f"  {d.attempts} attempt{'' if d.attempts == 1 else 's'}"
    if d.failing_since is not None:
        line += f"; failing since {d.failing_since:%Y-%m-%d %H:%M:%S %Z}"
    if d.last_error:
        line += f"; last error: {d.last_error}"
    typer.echo(line)
    if d.next_attempt_at is not None:
        typer.echo(f"  next attempt {d.next_attempt_at:%Y-%m-%d %H:%M:%S %Z}")
    elif d.completed_at is not None:
        typer.echo(f"  {d.status.value} at {d.completed_at:%Y-%m-%d %H:%M:%S %Z}")
    for a in found.attempts:
        answer = a.status_code if a.status_code is not None else "-"
        outcome = "ok" if a.ok else (a.error or "failed")
        typer.echo(
            f"    {a.attempted_at:%Y-%m-%d %H:%M:%S}  {answer}  {outcome}  {a.latency_ms} ms"
        )
