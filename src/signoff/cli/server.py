"""``signoff server run``, ``signoff worker`` and ``signoff db upgrade``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from signoff import errors
from signoff.cli.local import load_settings
from signoff.cli.output import fail

if TYPE_CHECKING:
    from signoff.settings import Settings

server = typer.Typer(help="Run the server.")
db = typer.Typer(help="Database schema.")


def _settings() -> Settings:
    try:
        from signoff.settings import Settings
    except ImportError as exc:
        print(
            f"error: this needs the server: pip install 'signoff[server]' ({exc})", file=sys.stderr
        )
        raise typer.Exit(1) from exc
    return load_settings(Settings)


@server.command("run")
def run(
    host: Annotated[str, typer.Option(envvar="SIGNOFF_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SIGNOFF_PORT")] = 8000,
    worker: Annotated[
        bool | None,
        typer.Option("--worker/--no-worker", help="Run the worker in-process (default: on)."),
    ] = None,
) -> None:
    """Serve the API (and, by default, the worker) until interrupted."""
    import uvicorn

    from signoff.services import server as setup
    from signoff.web.app import create_app

    settings = _settings()
    if worker is not None:
        settings.run_worker = worker
    if not settings.is_sqlite:
        current, head = setup.schema_status(settings)
        if current != head:
            print(
                f"error: the database schema is at {current or 'nothing'} and this version needs "
                f"{head}. Run `signoff db upgrade` first.",
                file=sys.stderr,
            )
            raise typer.Exit(1)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )


def worker_command() -> None:
    """Run a worker (dispatcher and scheduler) without serving HTTP."""
    import logging

    from signoff.worker.runner import run_standalone

    settings = _settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(run_standalone(settings))
        except errors.SchemaBehind as exc:
            raise fail(exc) from exc


@db.command("upgrade")
def upgrade() -> None:
    """Upgrade the schema to this version's."""
    from signoff.services import server as setup

    before, after = setup.upgrade(_settings())
    if before == after:
        typer.echo(f"already at {after}")
    else:
        typer.echo(f"upgraded {before or 'empty database'} -> {after}")


@db.command("current")
def current() -> None:
    """Print the schema revision and the one this version needs."""
    from signoff.services import server as setup

    at, head = setup.schema_status(_settings())
    typer.echo(f"database: {at or 'empty'}; this version: {head}")
    if at != head:
        raise typer.Exit(1)
