"""Where one approval's notifications went: every delivery of its events, and the channels
they are failing to reach (its callback, an approver's email, a subscription's channel).

Whoever may see the approval may see these, each target shown as that reader may see it
(``deliveries.shown_target``: an admin sees every address; to the requester and approvers,
what is not theirs to see is masked or redacted).
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from signoff.domain import deliveries
from signoff.domain.approvals import Approval
from signoff.domain.principals import Context, Scope
from signoff.services import approvals
from signoff.store import approvals as store
from signoff.store import outbox
from signoff.store.engine import Database


def get_with_notifications(
    db: Database, ctx: Context, approval_id: str
) -> tuple[Approval, list[deliveries.FailingChannel]]:
    """The approval, and where its notifications are failing (``notifications_of``), read
    together."""
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        approvals.check_can_see(session, ctx, approval)
        return approval, _failing_channels(session, ctx, approval)


def notifications_of(
    db: Database, ctx: Context, approval_id: str
) -> list[deliveries.FailingChannel]:
    """Each destination the approval's events are failing to reach (its callback, an
    approver's email, a subscription's channel): since when, how many attempts, the last
    error; empty while everything arrives. Targets are shown as ``deliveries.shown_target``
    lets the reader see them, URLs redacted."""
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        approvals.check_can_see(session, ctx, approval)
        return _failing_channels(session, ctx, approval)


def deliveries_of(
    db: Database, ctx: Context, approval_id: str, *, purpose: deliveries.Purpose | None = None
) -> list[deliveries.DeliveryRecord]:
    """Every delivery of the approval's events (only those made for ``purpose`` when
    given), targets shown as ``deliveries.shown_target`` lets the reader see them."""
    ctx.principal.require(Scope.APPROVALS_READ)
    with db.read() as session:
        approval = store.get_approval(session, approval_id)
        approvals.check_can_see(session, ctx, approval)
        found = outbox.deliveries_of_subject(
            session, approval_id, purposes=None if purpose is None else (purpose,)
        )
    reader = _reader(ctx, approval)

    def shown(d: deliveries.DeliveryRecord) -> deliveries.DeliveryRecord:
        target = deliveries.shown_target(d.purpose, d.target_kind, d.target, reader)
        error = deliveries.shown_error(d.last_error, d.target, target)
        return replace(d, target=target, last_error=error)

    return [shown(d) for d in found]


def _failing_channels(
    session: Session, ctx: Context, approval: Approval
) -> list[deliveries.FailingChannel]:
    reader = _reader(ctx, approval)

    def shown(d: deliveries.FailingDelivery) -> str:
        return deliveries.shown_target(d.purpose, d.target_kind, d.target, reader, compact=True)

    return deliveries.failing_channels(outbox.failing_of_subject(session, approval.id), shown)


def _reader(ctx: Context, approval: Approval) -> deliveries.Reader:
    principal = ctx.principal
    if principal.is_admin:
        return deliveries.Reader.ADMIN
    if principal.approval_id == approval.id or (
        principal.user is not None and principal.user.id == approval.requester_id
    ):
        return deliveries.Reader.REQUESTER
    return deliveries.Reader.APPROVER
