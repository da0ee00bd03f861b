"""Slack use cases: keeping track of posted messages, linking Slack users to signoff users,
and deciding from a button (``domain/slack.py`` says what these are).

Posting a message and recording it cannot be one transaction: Slack is not in it. The sender
records a message in its own short transaction right after Slack answers, keyed by the
delivery that posted it, and looks that record up before posting, so a retried delivery posts
again only if the record itself was lost (a crash or a database failure in the moment between
the two). ``chat.postMessage`` has no idempotency key, so that moment is the window of a
duplicate post: at least once, as every delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from signoff import errors
from signoff.domain import approvals, deliveries, slack
from signoff.domain.approvals import Approval, Channel
from signoff.domain.principals import Context, Principal, User, UserKind
from signoff.services import approval_settlement, journal
from signoff.store import approvals as approvals_store
from signoff.store import outbox, principals
from signoff.store import slack as store
from signoff.store.engine import Database


@dataclass(frozen=True)
class Shown:
    """What a rendered message showed of its approval: enough to tell if it is out of date."""

    status: str
    decisions: int

    @classmethod
    def of(cls, approval: Approval) -> Shown:
        return cls(approval.status.value, len(approval.decisions))


def find_approval(db: Database, approval_id: str) -> Approval | None:
    """The approval as it is now, to render its message from (the worker's read)."""
    with db.read() as session:
        try:
            return approvals_store.get_approval(session, approval_id)
        except errors.ApprovalNotFound:
            return None


def message_posted_by(db: Database, delivery_id: str) -> slack.Message | None:
    with db.read() as session:
        return store.message_posted_by(session, delivery_id)


def has_message_in(db: Database, approval_id: str, target: str) -> bool:
    """Whether ``target`` (a channel as a subscription names it) holds the approval's message."""
    with db.read() as session:
        return target in store.channels_with_message(session, approval_id)


def record_posted(
    db: Database,
    delivery: deliveries.Delivery,
    approval_id: str,
    message: slack.Message,
    shown: Shown,
) -> None:
    """Keep a message just posted for an approval. With the approval locked, so a decision
    either sees the message (and updates it) or happened before: then the message showed an
    older state, and an update is queued here."""
    now = datetime.now(UTC)
    with db.write(priority=True) as session:
        approval = approvals_store.get_approval(session, approval_id, for_update=True)
        store.insert_message(
            session,
            approval_id=approval_id,
            message=message,
            target=delivery.target,
            delivery_id=delivery.id,
            at=now,
        )
        if Shown.of(approval) != shown:
            latest = outbox.events_of_subject(session, approval_id)[-1]
            slack, purpose = deliveries.TargetKind.SLACK, deliveries.Purpose.SUBSCRIPTION
            journal.deliver(db, session, latest, slack, purpose, message.target)


def find_user(db: Database, slack_user_id: str) -> User | None:
    """The signoff user a Slack user is linked to, if any (explicitly or by email before)."""
    with db.read() as session:
        found = store.find_link(session, slack_user_id)
        return principals.find_user(session, found[0]) if found else None


def link_by_email(db: Database, slack_user_id: str, email: str) -> User | None:
    """The active person whose email is ``email`` (from the Slack user's profile), now linked
    to that Slack user for next time; None when there is none. An explicit link made in the
    meantime is kept."""
    try:
        with db.write() as session:
            user = principals.find_user_by_email(session, email.strip().lower())
            if user is None or not user.is_active or user.kind is not UserKind.PERSON:
                return None
            found = store.find_link(session, slack_user_id)
            if found is not None and found[1] is slack.Source.EXPLICIT:
                return principals.find_user(session, found[0])
            store.link(session, slack_user_id, user.id, slack.Source.EMAIL, datetime.now(UTC))
            return user
    except errors.Conflict:
        # Two first clicks of one Slack user at once (PostgreSQL): the other linked them.
        return find_user(db, slack_user_id)


def decide(
    db: Database,
    user: User,
    click: slack.Click,
    *,
    request_id: str | None = None,
    client_addr: str | None = None,
    now: datetime | None = None,
) -> Approval:
    """Record ``user``'s click as their decision (channel ``slack``), under the approval's
    policy; the reason it may not, as the error ``domain.slack.refusal`` explains."""
    now = now or datetime.now(UTC)
    if not user.is_active:
        raise errors.AccountDisabled()
    with db.write() as session:
        approval = approvals_store.get_approval(session, click.approval_id, for_update=True)
        team_ids = principals.team_ids_of(session, user.id)
        ctx = Context(
            principal=Principal(user=user, team_ids=team_ids),
            request_id=request_id,
            client_addr=client_addr,
        )
        _check_button_can_decide(approval, user.id, team_ids, click)
        approval_settlement.record_decision(
            db,
            session,
            ctx,
            approval,
            team_ids=team_ids,
            verdict=click.verdict,
            comment="",
            form=None,
            channel=Channel.SLACK,
            now=now,
            via={"slack_user_id": click.slack_user_id, "slack_team_id": click.team_id},
        )
    return approval


def _check_button_can_decide(
    approval: Approval, user_id: str, team_ids: frozenset[str], click: slack.Click
) -> None:
    """What the policy says first (settled, requester, approver, already decided), then
    whether a button can say enough: a comment or a form needs the page."""
    try:
        approvals.check_can_decide(
            approval,
            user_id=user_id,
            team_ids=set(team_ids),
            verdict=click.verdict,
            comment="",
            form=None,
        )
    except errors.InvalidForm as exc:
        raise errors.InvalidForm("Approving this asks for a few details.") from exc
    except errors.CommentRequired as exc:
        raise errors.CommentRequired("Its policy asks for a comment with every decision.") from exc
    if slack.needs_the_page(approval.policy, click.verdict):
        raise errors.InvalidForm("Approving this asks for a few details.")


def links(db: Database, ctx: Context, user: str) -> list[tuple[str, slack.Source]]:
    """The Slack users linked to a signoff user, and how (admins)."""
    ctx.principal.require_admin()
    with db.read() as session:
        found = principals.get_user(session, _ref(user))
        return store.links_of(session, found.id)


def link_user(db: Database, ctx: Context, user: str, slack_user_id: str) -> User:
    """Link a Slack user to a signoff user, explicitly (admins); it replaces any link that
    Slack user had, and any other Slack user linked to this user explicitly."""
    ctx.principal.require_admin()
    slack.check_slack_user_id(slack_user_id)
    now = datetime.now(UTC)
    with db.write() as session:
        found = principals.get_user(session, _ref(user))
        before = store.find_link(session, slack_user_id)
        for other, source in store.links_of(session, found.id):
            if source is slack.Source.EXPLICIT and other != slack_user_id:
                store.unlink(session, other)
        store.link(session, slack_user_id, found.id, slack.Source.EXPLICIT, now)
        journal.record(
            session,
            ctx,
            at=now,
            action="user.slack.link",
            object_type="user",
            object_id=found.id,
            before={"slack_user_id": slack_user_id, "user_id": before[0]} if before else None,
            after={"slack_user_id": slack_user_id},
        )
        return found


def unlink_user(db: Database, ctx: Context, user: str) -> list[str]:
    """Remove every link of a signoff user to Slack users (admins); the ids unlinked."""
    ctx.principal.require_admin()
    with db.write() as session:
        found = principals.get_user(session, _ref(user))
        removed = store.unlink_user(session, found.id)
        if removed:
            journal.record(
                session,
                ctx,
                at=datetime.now(UTC),
                action="user.slack.unlink",
                object_type="user",
                object_id=found.id,
                before={"slack_user_ids": removed},
            )
        return removed


def _ref(user: str) -> str:
    return user.lower() if "@" in user else user
