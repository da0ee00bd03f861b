"""``signoff plan | apply | destroy -f signoff.yaml``: make the database hold what the file
says, for teams, people, service accounts, named policies and subscriptions.

What a file creates is recorded under its ``stack`` name (``managed_objects``), and that
record is all apply and destroy ever remove: a team, person, policy or subscription made
another way is never deleted, and one made by another stack is refused rather than taken
over. A plan is computed from one read of the database (``services/config_plan``); apply
carries it out step by step (``services/config_apply``), each step one of the services' own
transactions with its audit entry, so a failure half way leaves every done step done and a
second apply finishes the rest. Apply twice and the second plan is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from signoff import errors
from signoff.domain import destinations, subscriptions
from signoff.domain.config import Document
from signoff.domain.principals import Context
from signoff.domain.subscriptions import Kind
from signoff.services import config_apply, config_plan, journal
from signoff.services.config_apply import NewKey
from signoff.services.config_plan import Change, Plan
from signoff.store import config as store
from signoff.store.engine import Database


def plan(
    db: Database,
    ctx: Context,
    document: Document,
    *,
    allowed_networks: Collection[destinations.Network] = (),
) -> Plan:
    """The changes apply would make. Subscriptions' URLs are checked here already against
    ``allowed_networks`` (``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS``), as apply will check them."""
    ctx.principal.require_admin()
    state = config_plan.read_state(db, ctx, document.stack)
    _refuse_foreign(db, document)
    for spec in document.subscriptions.values():
        subscriptions.checked_target(Kind(spec.kind), spec.target, allowed_networks)
    return Plan(document.stack, tuple(config_plan.changes(document, state)))


def apply(
    db: Database,
    ctx: Context,
    document: Document,
    *,
    secret_key: str,
    invitation_ttl: timedelta,
    on_change: Callable[[Change], None] = lambda _change: None,
    on_key: Callable[[NewKey], None] = lambda _key: None,
    action: str = "config.apply",
    allowed_networks: Collection[destinations.Network] = (),
) -> tuple[Plan, list[NewKey]]:
    """Carry out the plan; the plan and the keys made. Each key is also handed to ``on_key``
    as soon as it exists, so a later step that fails cannot lose it."""
    planned = plan(db, ctx, document, allowed_networks=allowed_networks)
    run = config_apply.Run(db, ctx, document, secret_key, invitation_ttl, on_key, allowed_networks)
    for change in planned.changes:
        run.do(change)
        on_change(change)
    run.adopt_memberships()
    _record_run(db, ctx, action, planned)
    return planned, run.new_keys


def destroy(db: Database, ctx: Context, stack: str, *, apply_it: bool) -> Plan:
    """Remove everything ``stack`` created (a plan only, unless ``apply_it``)."""
    empty = Document(stack=stack)
    if not apply_it:
        return plan(db, ctx, empty)
    planned, _ = apply(
        db, ctx, empty, secret_key="", invitation_ttl=timedelta(0), action="config.destroy"
    )
    return planned


def _refuse_foreign(db: Database, document: Document) -> None:
    """A name another stack manages is that stack's: refuse rather than share it."""
    wanted = [("team", name) for name in document.teams]
    wanted += [("service_account", name) for name in document.service_accounts]
    wanted += [("policy", name) for name in document.policies]
    wanted += [("subscription", name) for name in document.subscriptions]
    with db.read() as session:
        for kind, name in wanted:
            other = store.managed_elsewhere(session, document.stack, kind, name)
            if other is not None:
                raise errors.Conflict(f"{kind} {name} is managed by the stack {other!r}")


def _record_run(db: Database, ctx: Context, action: str, planned: Plan) -> None:
    with db.write() as session:
        journal.record(
            session,
            ctx,
            at=datetime.now(UTC),
            action=action,
            object_type="stack",
            object_id=planned.stack,
            after={"changes": [str(change) for change in planned.changes[:500]]},
        )
