"""The ``signoff`` command.

Client commands (``approvals``) talk to a server through ``SIGNOFF_URL`` and
``SIGNOFF_API_KEY``; admin commands (``users``, ``invitations``, ``teams``, ``keys``,
``policies``, ``deliveries``, ``subscriptions``, ``audit``, ``db``, ``plan``, ``apply``,
``destroy``) and the processes (``server run``, ``worker``) use ``SIGNOFF_DATABASE_URL``.
"""

from __future__ import annotations

import typer

from signoff.__about__ import __version__
from signoff.cli import (
    approvals,
    audit,
    config,
    deliveries,
    invitations,
    people,
    policies,
    server,
    subscriptions,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"signoff {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="signoff",
    help="Human-in-the-loop approvals for ML and data pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """signoff: where pipelines ask people to decide."""


app.add_typer(server.server, name="server")
app.command("worker")(server.worker_command)
app.add_typer(server.db, name="db")
app.add_typer(approvals.app, name="approvals")
app.add_typer(people.users, name="users")
app.add_typer(invitations.app, name="invitations")
app.add_typer(people.teams, name="teams")
app.add_typer(people.keys, name="keys")
app.add_typer(policies.app, name="policies")
app.add_typer(deliveries.app, name="deliveries")
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(audit.app, name="audit")
app.command("plan")(config.plan_command)
app.command("apply")(config.apply_command)
app.command("destroy")(config.destroy_command)
app.add_typer(config.app, name="config")


def main() -> None:
    app()
