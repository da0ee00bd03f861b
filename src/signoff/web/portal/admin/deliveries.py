"""Deliveries: every event on its way to a subscription, a callback or an inbox; each
attempt; and redriving dead letters, one or all that match a filter (after a confirmation)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff import errors
from signoff.domain import destinations
from signoff.domain.deliveries import DeliveryRecord, DeliveryStatus, TargetKind
from signoff.domain.principals import Context
from signoff.services import deliveries, subscriptions
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import context_of

router = APIRouter()

PAGE_SIZE = 50
COUNT_LIMIT = 1000  # the confirmation counts dead letters up to this many


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    ctx = context_of(request, visitor)
    chosen, filters = _filters(request)
    cursor = request.query_params.get("cursor") or None
    found, next_cursor = deliveries.list_deliveries(
        runtime.db, ctx, filters, cursor=cursor, limit=PAGE_SIZE
    )
    return pages.show(
        request,
        runtime,
        visitor,
        "deliveries.html",
        section="deliveries",
        deliveries=found,
        chosen=chosen,
        query=urlencode({k: v for k, v in chosen.items() if v}),
        next_url=_url("/admin/deliveries", chosen | {"cursor": next_cursor or ""})
        if next_cursor
        else None,
        subscriptions=_subscriptions(runtime, ctx),
        statuses=[status.value for status in DeliveryStatus],
        kinds=[kind.value for kind in TargetKind],
        shown=shown_target,
    )


@router.get("/deliveries/redrive", response_class=HTMLResponse)
def confirm_redrive_all(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    ctx = context_of(request, visitor)
    chosen, filters = _filters(request, dead=True)
    found, more = deliveries.list_deliveries(runtime.db, ctx, filters, limit=COUNT_LIMIT)
    count = f"more than {COUNT_LIMIT}" if more else str(len(found))
    names = {sub_id: name for name, sub_id in _subscriptions(runtime, ctx)}
    details = [("Dead deliveries", count)]
    if chosen["kind"]:
        details.append(("Kind", chosen["kind"]))
    if chosen["subscription"]:
        details.append(("Subscription", names.get(chosen["subscription"], chosen["subscription"])))
    back = _url("/admin/deliveries", chosen)
    return pages.show(
        request,
        runtime,
        visitor,
        "confirm.html",
        section="deliveries",
        heading="Redrive the dead deliveries that match?",
        explanation="Each becomes pending and is tried again at once, with a fresh maximum "
        "age. Receivers get each event again with the same webhook-id, so they can tell a "
        "repeat.",
        details=details,
        action="/admin/deliveries/redrive",
        fields={"kind": chosen["kind"], "subscription": chosen["subscription"]},
        button="Redrive them",
        style="primary",
        back=back,
    )


@router.post("/deliveries/redrive", response_class=HTMLResponse)
async def redrive_all(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    form = await pages.posted(request, runtime, visitor)
    chosen = {
        "status": "dead",
        "kind": pages.text(form, "kind"),
        "subscription": pages.text(form, "subscription"),
    }
    _, filters = _read_filters(chosen, dead=True)
    count = await run_in_threadpool(
        deliveries.redrive_all, runtime.db, context_of(request, visitor), filters
    )
    return pages.done(_url("/admin/deliveries", chosen), "redriven-all", count)


@router.get("/deliveries/{delivery_id}", response_class=HTMLResponse)
def delivery_page(
    delivery_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    found = deliveries.get(runtime.db, context_of(request, visitor), delivery_id)
    return pages.show(
        request,
        runtime,
        visitor,
        "delivery.html",
        section="deliveries",
        delivery=found.record,
        attempts=found.attempts,
        target=shown_target(found.record),
    )


@router.post("/deliveries/{delivery_id}/redrive", response_class=HTMLResponse)
async def redrive(
    delivery_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    ctx = context_of(request, visitor)
    try:
        await run_in_threadpool(deliveries.redrive, runtime.db, ctx, delivery_id)
    except errors.DeliveryNotDead as exc:
        found = await run_in_threadpool(deliveries.get, runtime.db, ctx, delivery_id)
        return pages.show(
            request,
            runtime,
            visitor,
            "delivery.html",
            section="deliveries",
            status_code=exc.status,
            delivery=found.record,
            attempts=found.attempts,
            target=shown_target(found.record),
            error=exc.detail,
        )
    return pages.done(f"/admin/deliveries/{delivery_id}", "redriven")


def shown_target(delivery: DeliveryRecord) -> str:
    """Where it goes, with URLs redacted (they may carry tokens); addresses and channels as
    they are."""
    if delivery.target.startswith(("http://", "https://")) or "://" in delivery.target:
        return destinations.redacted(delivery.target)
    return delivery.target


def _filters(request: Request, *, dead: bool = False) -> tuple[dict[str, str], deliveries.Filters]:
    chosen = {key: request.query_params.get(key, "") for key in ("status", "kind", "subscription")}
    return _read_filters(chosen, dead=dead)


def _read_filters(
    chosen: dict[str, str], *, dead: bool = False
) -> tuple[dict[str, str], deliveries.Filters]:
    """The filters a person chose, with what is not a known value left out."""
    status = "dead" if dead else chosen.get("status", "")
    kind = chosen.get("kind", "")
    chosen = {
        "status": status if status in tuple(DeliveryStatus) else "",
        "kind": kind if kind in tuple(TargetKind) else "",
        "subscription": chosen.get("subscription", "")[:40],
    }
    return chosen, deliveries.Filters(
        status=DeliveryStatus(chosen["status"]) if chosen["status"] else None,
        target_kind=chosen["kind"] or None,
        subscription_id=chosen["subscription"] or None,
    )


def _subscriptions(runtime: Runtime, ctx: Context) -> list[tuple[str, str]]:
    """(name, id) of every subscription, for the filter."""
    found: list[tuple[str, str]] = []
    cursor = None
    while True:
        page, cursor = subscriptions.list_subscriptions(runtime.db, ctx, cursor=cursor, limit=200)
        found.extend((sub.name, sub.id) for sub in page)
        if cursor is None:
            return found


def _url(path: str, chosen: dict[str, str]) -> str:
    query = urlencode({key: value for key, value in chosen.items() if value})
    return f"{path}?{query}" if query else path
