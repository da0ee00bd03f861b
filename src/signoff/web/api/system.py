"""Health and server-wide settings a client needs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from signoff import schemas
from signoff.services import approval_settlement
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def health(runtime: RuntimeDep) -> dict[str, object]:
    """200 when the database answers; 503 (store_unavailable) when it does not."""
    await run_in_threadpool(approval_settlement.next_due_at, runtime.db)
    return {"status": "ok", "database": runtime.db.dialect, "waiters": len(runtime.waiters)}


@router.get("/v1/webhook-secret", response_model=schemas.WebhookSecret)
def webhook_secret(ctx: ContextDep, runtime: RuntimeDep) -> schemas.WebhookSecret:
    """The secret that signs callbacks, for receivers to verify them, and during a rotation
    the previous ones that sign them too (admins only)."""
    ctx.principal.require_admin()
    current, *previous = runtime.keys.webhook_signing_secrets
    return schemas.WebhookSecret(secret=current, previous=previous)
