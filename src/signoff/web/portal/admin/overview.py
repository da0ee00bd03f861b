"""``/admin``: where the admin pages start, with a few counts that say what needs a look."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from signoff.domain.deliveries import DeliveryStatus
from signoff.services import deliveries, inbox, invitations, principals
from signoff.web.deps import RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import context_of

router = APIRouter()

COUNT_LIMIT = 999  # beyond this a count shows as "999+"


@router.get("", response_class=HTMLResponse)
def overview(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    ctx = context_of(request, visitor)
    now = datetime.now(UTC)
    people = principals.list_users(runtime.db, ctx)
    pending_invitations = [
        i for i in invitations.list_invitations(runtime.db, ctx) if i.status(now) == "pending"
    ]
    dead, more_dead = deliveries.list_deliveries(
        runtime.db, ctx, deliveries.Filters(status=DeliveryStatus.DEAD), limit=COUNT_LIMIT
    )
    waiting = inbox.count_pending(runtime.db, ctx, cap=COUNT_LIMIT)
    return pages.show(
        request,
        runtime,
        visitor,
        "overview.html",
        section="overview",
        people=sum(1 for user in people if user.is_active and user.kind.value == "person"),
        disabled=sum(1 for user in people if not user.is_active),
        invitations=len(pending_invitations),
        dead=_count(len(dead), more_dead),
        pending=f"{COUNT_LIMIT}+" if waiting > COUNT_LIMIT else str(waiting),
    )


def _count(found: int, more: str | None) -> str:
    return f"{found}+" if more else str(found)
