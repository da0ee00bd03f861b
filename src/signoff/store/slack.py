"""Slack messages posted for approvals, and Slack users linked to signoff users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from signoff.domain import slack
from signoff.store.tables import SlackMessageRow, SlackUserRow


def insert_message(
    session: Session,
    *,
    approval_id: str,
    message: slack.Message,
    target: str,
    delivery_id: str,
    at: datetime,
) -> None:
    session.add(
        SlackMessageRow(
            approval_id=approval_id,
            channel=message.channel,
            ts=message.ts,
            target=target,
            delivery_id=delivery_id,
            posted_at=at,
        )
    )
    session.flush()


def message_posted_by(session: Session, delivery_id: str) -> slack.Message | None:
    row = session.scalars(
        select(SlackMessageRow).where(SlackMessageRow.delivery_id == delivery_id)
    ).first()
    return slack.Message(row.channel, row.ts) if row else None


def messages_of(session: Session, approval_id: str) -> list[slack.Message]:
    rows = session.scalars(
        select(SlackMessageRow)
        .where(SlackMessageRow.approval_id == approval_id)
        .order_by(SlackMessageRow.id)
    )
    return [slack.Message(row.channel, row.ts) for row in rows]


def channels_with_message(session: Session, approval_id: str) -> set[str]:
    """The targets (channels as subscriptions name them) holding a message of the approval."""
    return set(
        session.scalars(
            select(SlackMessageRow.target).where(SlackMessageRow.approval_id == approval_id)
        )
    )


def find_link(session: Session, slack_user_id: str) -> tuple[str, slack.Source] | None:
    """The signoff user id a Slack user is linked to, and how it was found."""
    row = session.get(SlackUserRow, slack_user_id)
    return (row.user_id, slack.Source(row.source)) if row else None


def links_of(session: Session, user_id: str) -> list[tuple[str, slack.Source]]:
    rows = session.scalars(
        select(SlackUserRow)
        .where(SlackUserRow.user_id == user_id)
        .order_by(SlackUserRow.slack_user_id)
    )
    return [(row.slack_user_id, slack.Source(row.source)) for row in rows]


def link(
    session: Session, slack_user_id: str, user_id: str, source: slack.Source, at: datetime
) -> None:
    """Link a Slack user to a signoff user, replacing whatever that Slack user was linked to."""
    row = session.get(SlackUserRow, slack_user_id, with_for_update=True)
    if row is None:
        session.add(
            SlackUserRow(
                slack_user_id=slack_user_id, user_id=user_id, source=source.value, created_at=at
            )
        )
    else:
        row.user_id, row.source, row.created_at = user_id, source.value, at
    session.flush()


def unlink(session: Session, slack_user_id: str) -> None:
    session.execute(delete(SlackUserRow).where(SlackUserRow.slack_user_id == slack_user_id))


def unlink_user(session: Session, user_id: str) -> list[str]:
    """Remove every link of a signoff user; the Slack user ids that were linked."""
    removed = [slack_user_id for slack_user_id, _ in links_of(session, user_id)]
    session.execute(delete(SlackUserRow).where(SlackUserRow.user_id == user_id))
    return removed
