"""``signoff audit verify | export``: the audit log, on the database directly."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from signoff.cli.local import database

app = typer.Typer(help="Check and export the tamper-evident audit log (database access).")


@app.command()
def verify() -> None:
    """Recompute the hash chain; exit 1 and name the first broken entry if it does not hold."""
    from signoff.services import audit

    with database() as (db, ctx):
        checked, broken = audit.verify(db, ctx)
    if broken is None:
        typer.echo(f"ok: {checked} entries, chain intact")
        return
    print(
        f"BROKEN at entry {broken.seq}: {broken.reason} ({checked} entries checked)",
        file=sys.stderr,
    )
    raise typer.Exit(1)


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; default stdout.")
    ] = None,
) -> None:
    """Write every entry as JSON Lines, oldest first."""
    from signoff.services import audit

    stream = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        with database() as (db, ctx):
            for entry in audit.export(db, ctx):
                record = asdict(entry) | {"at": entry.at.isoformat()}
                stream.write(json.dumps(record, sort_keys=True) + "\n")
    finally:
        if output:
            stream.close()
