"""/v1/subscriptions: where matching events go (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from signoff import schemas
from signoff.domain.subscriptions import Subscription
from signoff.services import subscriptions
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


def to_public(subscription: Subscription) -> schemas.SubscriptionPublic:
    return schemas.SubscriptionPublic.model_validate(subscription.as_json())


@router.post("", status_code=201, response_model=schemas.SubscriptionPublic)
def create_subscription(
    spec: schemas.SubscriptionCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.SubscriptionPublic:
    """Matching events are delivered from the next one written. A URL at a private address
    is ``422 invalid_input`` unless ``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS`` allows it."""
    networks = runtime.settings.webhook_allowed_networks
    return to_public(subscriptions.create(runtime.db, ctx, spec, allowed_networks=networks))


@router.get("", response_model=schemas.Page[schemas.SubscriptionPublic])
def list_subscriptions(
    ctx: ContextDep,
    runtime: RuntimeDep,
    cursor: Annotated[str | None, Query(description="The name to continue after.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.Page[schemas.SubscriptionPublic]:
    """In name order."""
    found, next_cursor = subscriptions.list_subscriptions(
        runtime.db, ctx, cursor=cursor, limit=limit
    )
    return schemas.Page(items=[to_public(s) for s in found], next_cursor=next_cursor)


@router.get("/{name}", response_model=schemas.SubscriptionPublic)
def get_subscription(name: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.SubscriptionPublic:
    return to_public(subscriptions.get(runtime.db, ctx, name))


@router.put("/{name}", response_model=schemas.SubscriptionPublic)
def replace_subscription(
    name: str, spec: schemas.SubscriptionReplace, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.SubscriptionPublic:
    """Replaces everything the subscription holds (what the body leaves out takes its
    default). Deliveries already made keep their target."""
    networks = runtime.settings.webhook_allowed_networks
    replaced = subscriptions.replace(runtime.db, ctx, name, spec, allowed_networks=networks)
    return to_public(replaced)


@router.patch("/{name}", response_model=schemas.SubscriptionPublic)
def update_subscription(
    name: str, spec: schemas.SubscriptionUpdate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.SubscriptionPublic:
    """Changes only the fields given, e.g. ``{"enabled": false}``."""
    networks = runtime.settings.webhook_allowed_networks
    updated = subscriptions.update(runtime.db, ctx, name, spec, allowed_networks=networks)
    return to_public(updated)


@router.delete("/{name}", status_code=204, response_class=Response)
def delete_subscription(name: str, ctx: ContextDep, runtime: RuntimeDep) -> Response:
    """Deliveries it already made are still sent."""
    subscriptions.delete(runtime.db, ctx, name)
    return Response(status_code=204)
