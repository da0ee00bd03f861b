"""Decision links: the Approve and Reject links in an approver's email.

A link is ``/decide/<token>``: the approval, the approver and the verdict, signed under the
server key together with the approval's deadline (``ids.decision_link_token``). Nothing is
stored for it. It expires at the deadline, and it is single-use because an approver decides
once: a used link is one whose approver has decided.

Opening a link (``open_link``) changes nothing; it says what the link would decide, or why it
no longer can. Deciding (``decide``) checks the same again with the approval locked, then
records the decision as any other (channel ``link``), audited as its approver's.

The policy's ``link_requires_login`` says whether the link alone is enough or its approver
must also be signed in. Someone signed in as another person is refused either way: deciding
as someone else from one's own session is a forwarded email, not a use of the link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import approvals, ids
from signoff.domain.approvals import Approval, Channel, Reason, Status, Verdict
from signoff.domain.principals import Context, Principal, User
from signoff.services import approvals as approvals_service
from signoff.store import approvals as store
from signoff.store import principals
from signoff.store.engine import Database


@dataclass(frozen=True)
class OpenLink:
    """A link that may decide now: whose decision, on which approval, which way."""

    approval: Approval
    approver: User
    verdict: Verdict
    team_ids: frozenset[str]


def open_link(
    db: Database, ctx: Context, secret_key: str, token: str, *, now: datetime | None = None
) -> OpenLink:
    """What ``token`` would decide, for a page to show and ask to confirm. ``ctx`` is the
    visitor: anonymous, or who they are signed in as."""
    with db.read() as session:
        return _usable(session, ctx, secret_key, token, now or datetime.now(UTC))


def decide(
    db: Database,
    ctx: Context,
    secret_key: str,
    token: str,
    *,
    comment: str,
    form: dict[str, Any] | None,
    now: datetime | None = None,
) -> Approval:
    """Record the link's decision, as its approver, with ``comment`` and ``form`` data; the
    approval settles when its policy is met, as with any decision."""
    now = now or datetime.now(UTC)
    with db.write() as session:
        link = _usable(session, ctx, secret_key, token, now, for_update=True)
        as_approver = Context(
            principal=Principal(user=link.approver, team_ids=link.team_ids),
            request_id=ctx.request_id,
            client_addr=ctx.client_addr,
        )
        approvals_service.record_decision(
            db,
            session,
            as_approver,
            link.approval,
            team_ids=link.team_ids,
            verdict=link.verdict,
            comment=comment,
            form=form,
            channel=Channel.LINK,
            now=now,
        )
    return link.approval


def _usable(
    session: Session,
    ctx: Context,
    secret_key: str,
    token: str,
    now: datetime,
    *,
    for_update: bool = False,
) -> OpenLink:
    """The link ``token`` stands for, or the first reason it cannot decide now: not genuine;
    needs its approver signed in; decided; past the deadline; its approver may not decide."""
    named = ids.decision_link_of(token)
    found = _approval(session, named.approval_id, for_update) if named else None
    approver = principals.find_user(session, named.user_id) if named and found else None
    if (
        named is None
        or found is None
        or approver is None
        or named.verdict not in tuple(Verdict)
        or not ids.is_genuine_decision_link(secret_key, token, found.deadline_at)
    ):
        raise errors.LinkNotFound(
            "this link is not one signoff made: it may be cut short or mistyped; open it "
            "from your email again"
        )
    _check_visitor(ctx, found, approver)
    _check_still_open(found, approver, now)
    team_ids = principals.team_ids_of(session, approver.id)
    _check_may_decide(found, approver, team_ids)
    return OpenLink(found, approver, Verdict(named.verdict), team_ids)


def _approval(session: Session, approval_id: str, for_update: bool) -> Approval | None:
    try:
        return store.get_approval(session, approval_id, for_update=for_update)
    except errors.ApprovalNotFound:
        return None


def _check_visitor(ctx: Context, approval: Approval, approver: User) -> None:
    visitor = ctx.principal.user
    if visitor is not None and visitor.id != approver.id:
        raise errors.PermissionDenied(
            f"this link was emailed to another person, and you are signed in as "
            f"{visitor.email}; if it is yours, sign out and open it again"
        )
    if visitor is None and approval.policy.link_requires_login:
        raise errors.Unauthenticated("this link needs you signed in to signoff")


def _check_still_open(approval: Approval, approver: User, now: datetime) -> None:
    mine = next((d for d in approval.decisions if d.user_id == approver.id), None)
    if mine is not None:
        raise errors.DuplicateDecision(
            f"already decided by you at {_when(mine.decided_at)}: you {_past(mine.verdict)} it",
            verdict=mine.verdict.value,
        )
    timed_out = (approval.outcome or {}).get("reason") == Reason.TIMEOUT
    if timed_out or (approval.is_pending and now >= approval.deadline_at):
        detail = f"this link expired at {_when(approval.deadline_at)}, the approval's deadline"
        if timed_out:
            detail += f"; nobody decided in time, so it was {approval.status.value}"
        raise errors.InvalidLink(detail)
    if not approval.is_pending:
        raise errors.AlreadyDecided(
            f"already decided: {_settlement(approval)}",
            approval_status=approval.status.value,
            outcome=approval.outcome,
        )


def _check_may_decide(approval: Approval, approver: User, team_ids: frozenset[str]) -> None:
    """What would stop the decision anyway, said before the approver writes a comment."""
    if not approver.is_active:
        raise errors.AccountDisabled("your signoff account is disabled")
    if not approvals.is_approver(approval, user_id=approver.id, team_ids=set(team_ids)):
        raise errors.NotAnApprover(
            "you are no longer an approver of this approval: you left the team it names"
        )
    if approver.id == approval.requester_id and not approval.policy.requester_can_decide:
        raise errors.RequesterCannotDecide()


def _settlement(approval: Approval) -> str:
    """How a settled approval ended, in a few words: "approved by a@x and b@y at T"."""
    when = _when(approval.settled_at) if approval.settled_at else "an earlier time"
    if approval.status is Status.CANCELED:
        return f"canceled at {when}"
    if (approval.outcome or {}).get("reason") == Reason.HEARTBEAT:
        return f"expired at {when}, as the workflow waiting for it stopped"
    verdict = Verdict.APPROVE if approval.status is Status.APPROVED else Verdict.REJECT
    deciders = [d.user_email for d in approval.decisions if d.verdict is verdict]
    return f"{approval.status.value} by {' and '.join(deciders) or 'nobody'} at {when}"


def _past(verdict: Verdict) -> str:
    return "approved" if verdict is Verdict.APPROVE else "rejected"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
