"""What the portal shows an approver: their inbox, and one approval in full (its decisions,
deliveries and history, and whether they may decide it and why not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import approvals, audit, deliveries
from signoff.domain.approvals import Approval, Status, Verdict
from signoff.domain.principals import Context, Scope, User
from signoff.services import approval_notifications
from signoff.services import approvals as approvals_service
from signoff.store import approvals as approvals_store
from signoff.store import audit as audit_store
from signoff.store import inbox as store
from signoff.store import principals
from signoff.store.engine import Database

PAGE_SIZE = 25
NOBODY = ""  # a requester id no account has
COUNT_CAP = store.COUNT_CAP
SEARCH_SCAN_LIMIT = store.SEARCH_SCAN_LIMIT


class View(StrEnum):
    """Whose approvals the inbox lists."""

    TO_DECIDE = "to-decide"  # pending: waiting for my decision; settled: I was an approver
    REQUESTED = "requested"  # opened by me
    ALL = "all"  # everything I may see (admins: everything)


@dataclass(frozen=True)
class Query:
    view: View = View.TO_DECIDE
    status: Status | None = Status.PENDING
    label: str = ""
    team: str = ""  # a team's name: approvals it may decide
    requester: str = ""  # an email
    text: str = ""
    latest_first: bool = False
    cursor: str | None = None


@dataclass(frozen=True)
class Inbox:
    query: Query
    page: store.Page
    counts: dict[Status, int]
    problems: dict[str, str] = field(default_factory=dict)  # a filter naming nobody


def list_inbox(
    db: Database, ctx: Context, query: Query, *, limit: int = PAGE_SIZE, with_counts: bool = True
) -> Inbox:
    user = _user(ctx)
    ctx.principal.require(Scope.APPROVALS_READ)
    me = (user.id, ctx.principal.team_ids)
    with db.read() as session:
        problems: dict[str, str] = {}
        requester_id = _requester_id(session, query.requester, problems)
        team_id = _team_id(session, query.team, problems)
        if "requester" in problems and not ctx.principal.is_admin:
            # Whether an account exists is for admins to learn: to anyone else an unknown
            # requester reads as an account that requested nothing, page and counts alike.
            problems.pop("requester")
            requester_id = NOBODY
        if problems:
            return Inbox(query, store.Page([], None, None), dict.fromkeys(Status, 0), problems)
        base = approvals_store.Filters(
            status=query.status,
            label=query.label or None,
            requester_id=user.id if query.view is View.REQUESTED else requester_id,
            visible_to=None if ctx.principal.is_admin else me,
        )
        if query.view is View.TO_DECIDE:
            base = _to_decide(base, me)
        # A NUL is in no title (PostgreSQL cannot store one; FTS5 cannot be asked for one).
        text = query.text.replace("\x00", "").strip() or None
        titles = store.find_titles(session, text) if text else None
        candidates = _both(_persons_approvals(session, ctx, query.view, me), titles)
        filters = store.Filters(
            base=base,
            team_id=team_id,
            text=text,
            candidates=candidates,
            text_found=titles is not None,
        )
        page = store.list_page(
            session, filters, cursor=query.cursor, latest_first=query.latest_first, limit=limit
        )
        counted = with_counts and _counted(query, read_by_key=candidates is not None)
        counts = store.count_by_status(session, filters) if counted else {}
    return Inbox(query, page, counts)


def _persons_approvals(
    session: Session, ctx: Context, view: View, me: tuple[str, frozenset[str]]
) -> frozenset[str] | None:
    """The approvals a view of this person's can hold at most, when there are few enough to
    read by key (a person who decides little); None: too many, or the view is not theirs."""
    if view is View.TO_DECIDE:
        return store.find_approvals_naming(session, *me)
    if view is View.ALL and not ctx.principal.is_admin:
        named = store.find_approvals_naming(session, *me)
        requested = None if named is None else store.find_requested_by(session, me[0])
        return None if named is None or requested is None else named | requested
    return None  # "Requested by me" walks the requester's own index


def _both(one: frozenset[str] | None, other: frozenset[str] | None) -> frozenset[str] | None:
    """Candidates that are in both sets, where each is known."""
    if one is None or other is None:
        return other if one is None else one
    return one & other


def count_pending(db: Database, ctx: Context, *, cap: int) -> int:
    """How many pending approvals this person may see (all of them for an admin), counted
    up to ``cap + 1`` without loading any."""
    user = _user(ctx)
    ctx.principal.require(Scope.APPROVALS_READ)
    visible_to = None if ctx.principal.is_admin else (user.id, ctx.principal.team_ids)
    base = approvals_store.Filters(status=Status.PENDING, visible_to=visible_to)
    with db.read() as session:
        return store.count(session, store.Filters(base=base), cap=cap)


def _counted(query: Query, *, read_by_key: bool) -> bool:
    """Whether the inbox shows counts per status: for what waits for me and for all I may
    see, when unfiltered or read from a few thousand candidates by key (each count then tests
    at most ``store.MATCH_CAP`` approvals). Otherwise a rare combination of filters (a label,
    a team or a requester, and what this person may see) would make a capped count read most
    of a status's rows at a million approvals; docs/benchmarks.md has the numbers."""
    filtered = query.label or query.team or query.requester or query.text.strip()
    return query.view is not View.REQUESTED and (read_by_key or not filtered)


def _to_decide(
    base: approvals_store.Filters, me: tuple[str, frozenset[str]]
) -> approvals_store.Filters:
    """Pending: what waits for my decision; otherwise: what I was asked to decide."""
    pending = base.status is Status.PENDING
    return approvals_store.Filters(
        status=base.status,
        label=base.label,
        requester_id=base.requester_id,
        visible_to=None,  # an approver may see it
        decidable_by=me if pending else None,
        approver=None if pending else me,
    )


def _requester_id(session: Session, email: str, problems: dict[str, str]) -> str | None:
    if not email.strip():
        return None
    found = principals.find_user_by_email(session, email.strip().lower())
    if found is None:
        problems["requester"] = f"nobody with the email {email.strip()!r} has an account"
        return None
    return found.id


def _team_id(session: Session, name: str, problems: dict[str, str]) -> str | None:
    if not name.strip():
        return None
    try:
        return principals.get_team_id_and_name(session, name.strip())[0]
    except errors.NotFound:
        problems["team"] = f"there is no team named {name.strip()!r}"
        return None


@dataclass(frozen=True)
class HistoryEntry:
    at: audit.AuditEntry
    actor: str  # a person's name, or what the log calls the actor


@dataclass(frozen=True)
class ApprovalView:
    """One approval as its page shows it."""

    approval: Approval
    requester: User | None
    people: dict[str, User]  # who decided, by id
    failing: list[deliveries.FailingChannel]  # destinations its events are failing to reach
    deliveries: list[deliveries.DeliveryRecord]  # every one of its events', oldest first
    history: list[HistoryEntry]  # oldest first
    cannot_decide: str | None  # why this visitor may not decide, or None: they may


def view_approval(db: Database, ctx: Context, approval_id: str) -> ApprovalView:
    """``ApprovalNotFound`` for an approval that does not exist or this person may not see:
    the two look the same."""
    user = _user(ctx)
    approval = approvals_service.get(db, ctx, approval_id)
    with db.read() as session:
        ids = {approval.requester_id} | {d.user_id for d in approval.decisions}
        entries = audit_store.list_entries(
            session,
            audit_store.Filters(object_type="approval", object_id=approval.id),
            before_seq=None,
            limit=500,
        )
        ids |= {e.actor.removeprefix("user:") for e in entries if e.actor.startswith("user:")}
        people = {uid: found for uid in ids if (found := principals.find_user(session, uid))}
        team_ids = principals.team_ids_of(session, user.id)
    sent = approval_notifications.deliveries_of(db, ctx, approval.id)
    failing = approval_notifications.notifications_of(db, ctx, approval.id)
    history = [HistoryEntry(e, _actor_name(e.actor, people)) for e in reversed(entries)]
    return ApprovalView(
        approval=approval,
        requester=people.get(approval.requester_id),
        people=people,
        failing=failing,
        deliveries=sent,
        history=history,
        cannot_decide=_why_not(approval, user, team_ids, ctx),
    )


def _why_not(approval: Approval, user: User, team_ids: frozenset[str], ctx: Context) -> str | None:
    if not ctx.principal.allows(Scope.APPROVALS_DECIDE):
        return "your sign-in may not decide approvals"
    try:
        approvals.check_can_decide(
            approval,
            user_id=user.id,
            team_ids=set(team_ids),
            verdict=Verdict.REJECT,
            comment="-",  # the comment and form are checked when a decision is posted
            form=None,
        )
    except errors.SignoffError as exc:
        return exc.title
    return None


def _actor_name(actor: str, people: dict[str, User]) -> str:
    if actor.startswith("user:") and (person := people.get(actor.removeprefix("user:"))):
        return person.name or person.email
    if actor.startswith("system:"):
        return "signoff"
    if actor.startswith("token:"):
        return "the workflow (task token)"
    return actor


def _user(ctx: Context) -> User:
    if ctx.principal.user is None:
        raise errors.PermissionDenied("the portal needs a signed-in person")
    return ctx.principal.user
