"""/v1/deliveries: the outbox for admins: what was sent where, every attempt, and redriving
dead letters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Query

from signoff import schemas
from signoff.domain.deliveries import DeliveryRecord, DeliveryStatus
from signoff.services import deliveries
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


def to_public(record: DeliveryRecord) -> schemas.DeliveryPublic:
    return schemas.DeliveryPublic.model_validate(asdict(record))


@router.get("", response_model=schemas.Page[schemas.DeliveryPublic])
def list_deliveries(
    ctx: ContextDep,
    runtime: RuntimeDep,
    status: schemas.DeliveryStatus | None = None,
    target_kind: schemas.TargetKind | None = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[str | None, Query(max_length=64, description="e.g. an approval id.")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_]{1,40}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.Page[schemas.DeliveryPublic]:
    """Admins only. Newest first."""
    filters = deliveries.Filters(
        status=DeliveryStatus(status) if status else None,
        target_kind=target_kind,
        event_type=event_type,
        subject=subject,
    )
    found, next_cursor = deliveries.list_deliveries(
        runtime.db, ctx, filters, cursor=cursor, limit=limit
    )
    return schemas.Page(items=[to_public(d) for d in found], next_cursor=next_cursor)


@router.post("/redrive", response_model=schemas.DeliveriesRedriven)
def redrive_all(
    ctx: ContextDep,
    runtime: RuntimeDep,
    spec: Annotated[schemas.DeliveryRedrive | None, Body()] = None,
) -> schemas.DeliveriesRedriven:
    """Admins only. Redrive every dead delivery that matches the filters (no body: every dead
    delivery), as ``POST /v1/deliveries/{id}/redrive`` does one."""
    spec = spec or schemas.DeliveryRedrive()
    filters = deliveries.Filters(
        status=DeliveryStatus(spec.status),
        target_kind=spec.target_kind,
        event_type=spec.event_type,
        subject=spec.subject,
    )
    return schemas.DeliveriesRedriven(redriven=deliveries.redrive_all(runtime.db, ctx, filters))


@router.get("/{delivery_id}", response_model=schemas.DeliveryDetail)
def get_delivery(delivery_id: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.DeliveryDetail:
    """Admins only. The delivery and every attempt, oldest first."""
    found = deliveries.get(runtime.db, ctx, delivery_id)
    return schemas.DeliveryDetail.model_validate(
        asdict(found.record) | {"attempt_log": [asdict(a) for a in found.attempts]}
    )


@router.post("/{delivery_id}/redrive", response_model=schemas.DeliveryPublic)
def redrive(delivery_id: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.DeliveryPublic:
    """Admins only. A dead delivery becomes pending, due at once, with a fresh maximum-age
    window; a pending or delivered one is ``409 delivery_not_dead``."""
    return to_public(deliveries.redrive(runtime.db, ctx, delivery_id))
