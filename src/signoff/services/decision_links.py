"""Decision links: the Approve and Reject links in an approver's email.

A link is ``/decide/<token>``: the approval, the approver and the verdict, signed under the
server key together with the approval's deadline (``ids.decision_link_token``). Nothing is
stored for it. It expires at the deadline, and it is single-use because an approver decides
once: a used link is one whose approver has decided.

Opening a link (``open_link``) changes nothing; it says what the link would decide, or why it
no longer can (used, settled, past the deadline), so the page can still show the approval and
how it ended. Deciding (``decide``) checks the same again with the approval locked, then
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
from signoff.domain.approvals import Approval, Channel, Reason, Verdict
from signoff.domain.principals import Context, Principal, User
from signoff.services import approval_settlement
from signoff.store import approvals as store
from signoff.store import principals
from signoff.store.engine import Database


@dataclass(frozen=True)
class OpenLink:
    """A genuine link of this visitor's: whose decision, on which approval, which way; and
    ``refusal``, why it no longer decides (None while it does). ``people`` are the deciders
    so far, by id, for a page to name them."""

    approval: Approval
    approver: User
    verdict: Verdict
    team_ids: frozenset[str]
    people: dict[str, User]
    refusal: errors.Conflict | errors.InvalidLink | None = None


def open_link(
    db: Database, ctx: Context, secret_key: str, token: str, *, now: datetime | None = None
) -> OpenLink:
    """What ``token`` would decide, for a page to show and ask to confirm, or why it no longer
    can (``refusal``). ``ctx`` is the visitor: anonymous, or who they are signed in as. Raises
    for a link that is not genuine or not this visitor's, or whose approver may not decide."""
    with db.read() as session:
        return _opened(session, ctx, secret_key, token, now or datetime.now(UTC))


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
        link = _opened(session, ctx, secret_key, token, now, for_update=True)
        if link.refusal is not None:
            raise link.refusal
        as_approver = Context(
            principal=Principal(user=link.approver, team_ids=link.team_ids),
            request_id=ctx.request_id,
            client_addr=ctx.client_addr,
        )
        approval_settlement.record_decision(
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


def _opened(
    session: Session,
    ctx: Context,
    secret_key: str,
    token: str,
    now: datetime,
    *,
    for_update: bool = False,
) -> OpenLink:
    """The link ``token`` stands for, with why it no longer decides (decided, settled, past
    the deadline); raises when it is not genuine, needs its approver signed in, or its
    approver may not decide."""
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
    if not approver.is_active:  # shows nothing, the request and its outcome included
        raise errors.AccountDisabled("your signoff account is disabled")
    refusal = _why_closed(found, approver, now)
    team_ids = principals.team_ids_of(session, approver.id)
    if refusal is None:
        _check_may_decide(found, approver, team_ids)
    people = {u.id: u for d in found.decisions if (u := principals.find_user(session, d.user_id))}
    return OpenLink(found, approver, Verdict(named.verdict), team_ids, people, refusal)


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


def _why_closed(
    approval: Approval, approver: User, now: datetime
) -> errors.Conflict | errors.InvalidLink | None:
    mine = next((d for d in approval.decisions if d.user_id == approver.id), None)
    if mine is not None:
        return errors.DuplicateDecision(
            f"already decided by you at {_when(mine.decided_at)}: you {_past(mine.verdict)} it",
            verdict=mine.verdict.value,
        )
    timed_out = (approval.outcome or {}).get("reason") == Reason.TIMEOUT
    if timed_out or (approval.is_pending and now >= approval.deadline_at):
        detail = f"this link expired at {_when(approval.deadline_at)}, the approval's deadline"
        if timed_out:
            detail += f"; nobody decided in time, so it was {approval.status.value}"
        return errors.InvalidLink(detail)
    if not approval.is_pending:
        return errors.AlreadyDecided(
            "this link can no longer decide it",
            approval_status=approval.status.value,
            outcome=approval.outcome,
        )
    return None


def _check_may_decide(approval: Approval, approver: User, team_ids: frozenset[str]) -> None:
    """What would stop the decision anyway, said before the approver writes a comment."""
    if not approvals.is_approver(approval, user_id=approver.id, team_ids=set(team_ids)):
        raise errors.NotAnApprover(
            "you are no longer an approver of this approval: you left the team it names"
        )
    if approver.id == approval.requester_id and not approval.policy.requester_can_decide:
        raise errors.RequesterCannotDecide()


def _past(verdict: Verdict) -> str:
    return "approved" if verdict is Verdict.APPROVE else "rejected"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
