"""/v1/approvals: create, list, read, decide, cancel, heartbeat, and long-poll wait."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.concurrency import run_in_threadpool

from signoff import schemas
from signoff.domain import approvals as domain
from signoff.domain.deliveries import Purpose
from signoff.services import approval_notifications, approval_settlement, approvals
from signoff.web.api import deliveries as deliveries_api
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])


def to_public(approval: domain.Approval, public_url: str) -> schemas.ApprovalPublic:
    url = f"{public_url.rstrip('/')}/approvals/{approval.id}"
    return schemas.ApprovalPublic.model_validate(domain.as_json(approval) | {"url": url})


@router.post("", status_code=201, response_model=schemas.ApprovalCreated)
def create_approval(
    spec: schemas.ApprovalCreate,
    ctx: ContextDep,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> schemas.ApprovalCreated:
    """Open an approval. With an ``Idempotency-Key``, a retry of the same request answers
    200 with the same approval and token; the same key with a different body is a 409."""
    created = approvals.create(
        runtime.db,
        ctx,
        spec,
        secret_key=runtime.keys.secret_key,
        idempotency_key=idempotency_key,
        allowed_networks=runtime.settings.webhook_allowed_networks,
        email_approvers=runtime.settings.email_enabled,
    )
    if created.replayed:
        response.status_code = 200
    public = to_public(created.approval, runtime.settings.public_url)
    return schemas.ApprovalCreated(**public.model_dump(), token=created.token)


@router.get("", response_model=schemas.Page[schemas.ApprovalPublic])
def list_approvals(
    ctx: ContextDep,
    runtime: RuntimeDep,
    status: schemas.Status | None = None,
    label: str | None = None,
    requester: Annotated[str | None, Query(description="Email or id of the requester.")] = None,
    decidable: Annotated[
        bool, Query(description="Only pending approvals the caller can decide now.")
    ] = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.Page[schemas.ApprovalPublic]:
    items, next_cursor = approvals.list_approvals(
        runtime.db,
        ctx,
        status=domain.Status(status) if status else None,
        label=label,
        requester=requester,
        decidable_by_me=decidable,
        cursor=cursor,
        limit=limit,
    )
    public_url = runtime.settings.public_url
    return schemas.Page(items=[to_public(a, public_url) for a in items], next_cursor=next_cursor)


@router.get("/{approval_id}", response_model=schemas.ApprovalPublic)
def get_approval(approval_id: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.ApprovalPublic:
    """The approval, with ``notifications``: where its notifications are failing."""
    approval, failing = approval_notifications.get_with_notifications(runtime.db, ctx, approval_id)
    public = to_public(approval, runtime.settings.public_url)
    public.notifications = [schemas.NotificationStatus.model_validate(asdict(f)) for f in failing]
    return public


@router.post("/{approval_id}/decisions", response_model=schemas.ApprovalPublic)
def decide(
    approval_id: str, spec: schemas.DecisionCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.ApprovalPublic:
    """Approve or reject. A decision after settlement gets ``409 already_decided`` with the
    outcome."""
    approval = approval_settlement.decide(runtime.db, ctx, approval_id, spec)
    return to_public(approval, runtime.settings.public_url)


@router.post("/{approval_id}/cancel", response_model=schemas.ApprovalPublic)
def cancel(
    approval_id: str,
    ctx: ContextDep,
    runtime: RuntimeDep,
    reason: Annotated[str, Body(embed=True, max_length=1000)] = "",
) -> schemas.ApprovalPublic:
    approval = approval_settlement.cancel(runtime.db, ctx, approval_id, reason=reason)
    return to_public(approval, runtime.settings.public_url)


@router.post("/{approval_id}/heartbeat", response_model=schemas.ApprovalPublic)
def heartbeat(approval_id: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.ApprovalPublic:
    approval = approval_settlement.heartbeat(runtime.db, ctx, approval_id)
    return to_public(approval, runtime.settings.public_url)


@router.get("/{approval_id}/wait", response_model=schemas.ApprovalPublic)
async def wait(
    approval_id: str,
    ctx: ContextDep,
    runtime: RuntimeDep,
    timeout: Annotated[float, Query(ge=0, description="Seconds to wait at most.")] = 60,
) -> schemas.ApprovalPublic:
    """Answer as soon as the approval settles, or with it still pending after ``timeout``."""
    seen: list[domain.Approval] = []

    async def still_pending() -> bool:
        seen.append(await run_in_threadpool(approvals.get, runtime.db, ctx, approval_id))
        return seen[-1].is_pending

    limit = min(timeout, runtime.settings.wait_max_seconds)
    if await runtime.waiters.wait(approval_id, limit, still_pending):
        await still_pending()
    return to_public(seen[-1], runtime.settings.public_url)


@router.get("/{approval_id}/deliveries", response_model=list[schemas.DeliveryPublic])
def list_deliveries(
    approval_id: str,
    ctx: ContextDep,
    runtime: RuntimeDep,
    purpose: Annotated[
        schemas.DeliveryPurpose | None,
        Query(description="Only these: e.g. callback for the approval's own callback."),
    ] = None,
) -> list[schemas.DeliveryPublic]:
    """Where this approval's events were sent, and how that is going: its callback, the
    email to each approver, and what subscriptions matched (deleted ones too), oldest first,
    each with ``failing_since``, ``attempts``, ``last_error`` and ``next_attempt_at``.
    Approvers' addresses are shown to admins and the requester, masked to others;
    subscriptions' targets to admins, redacted to others."""
    wanted = None if purpose is None else Purpose(purpose)
    found = approval_notifications.deliveries_of(runtime.db, ctx, approval_id, purpose=wanted)
    return [deliveries_api.to_public(d) for d in found]
