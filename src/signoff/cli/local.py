"""Admin commands work on the database directly (``SIGNOFF_DATABASE_URL``): they are how the
first admin key comes to exist, and they need no running server. They need the server's
dependencies, imported only when such a command runs, so the SDK-only install still works."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from signoff import errors
from signoff.cli.output import fail

if TYPE_CHECKING:
    from signoff.domain.principals import Context
    from signoff.services.server_secrets import Keys
    from signoff.settings import Settings
    from signoff.store.engine import Database


def load_settings(settings_class: type[Settings]) -> Settings:
    """The settings from the environment, or a one-line error per bad ``SIGNOFF_*`` value."""
    from pydantic import ValidationError

    try:
        return settings_class()
    except ValidationError as exc:
        for error in exc.errors():
            name = "SIGNOFF_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
            print(f"error: {name}: {error['msg']}", file=sys.stderr)
        raise typer.Exit(1) from exc


@contextlib.contextmanager
def database() -> Iterator[tuple[Database, Context]]:
    with server_state() as (db, ctx, _keys, _settings):
        yield db, ctx


@contextlib.contextmanager
def server_state() -> Iterator[tuple[Database, Context, Keys, Settings]]:
    """The database, the operator's context, the server's keys and the settings."""
    try:
        from signoff.domain.principals import system_context
        from signoff.services import server
        from signoff.settings import Settings
    except ImportError as exc:
        print(
            f"error: this command needs the server: pip install 'signoff[server]' ({exc})",
            file=sys.stderr,
        )
        raise typer.Exit(1) from exc
    settings = load_settings(Settings)
    try:
        db, keys = server.open_database(settings)
    except errors.SignoffError as exc:
        raise fail(exc) from exc
    try:
        yield db, system_context("cli"), keys, settings
    finally:
        db.dispose()
