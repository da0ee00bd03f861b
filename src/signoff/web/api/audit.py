"""/v1/audit: the audit log, for admins."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from signoff import schemas
from signoff.services import audit
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=schemas.Page[schemas.AuditEntryPublic])
def list_audit(
    ctx: ContextDep,
    runtime: RuntimeDep,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^\d+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.Page[schemas.AuditEntryPublic]:
    """Newest first."""
    entries, next_seq = audit.list_entries(
        runtime.db,
        ctx,
        audit.Filters(object_type=object_type, object_id=object_id, actor=actor, action=action),
        before_seq=int(cursor) if cursor else None,
        limit=limit,
    )
    return schemas.Page(
        items=[schemas.AuditEntryPublic.model_validate(asdict(e)) for e in entries],
        next_cursor=str(next_seq) if next_seq is not None else None,
    )


@router.get("/verify", response_model=schemas.AuditVerification)
def verify(ctx: ContextDep, runtime: RuntimeDep) -> schemas.AuditVerification:
    """Recompute the hash chain; report the first broken link."""
    checked, broken = audit.verify(runtime.db, ctx)
    return schemas.AuditVerification(
        ok=broken is None,
        checked=checked,
        first_break=schemas.AuditBreak(seq=broken.seq, reason=broken.reason) if broken else None,
    )
