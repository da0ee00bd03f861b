"""Subscriptions: where matching events go (a webhook, email, Slack, an apprise URL).

Targets are shown redacted (URLs may carry tokens), also on the edit form: an empty target
there keeps the current one. The filter is JSON in a textarea; the service names the path of
what is wrong in it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from signoff import errors, schemas
from signoff.domain import json_text
from signoff.domain import subscriptions as domain
from signoff.domain.subscriptions import Subscription
from signoff.services import subscriptions
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import Visitor, context_of

router = APIRouter()

FIELDS = ("name", "kind", "target", "filter", "enabled")


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    cursor = request.query_params.get("after") or None
    found, next_cursor = subscriptions.list_subscriptions(
        runtime.db, context_of(request, visitor), cursor=cursor, limit=50
    )
    return pages.show(
        request,
        runtime,
        visitor,
        "subscriptions.html",
        section="subscriptions",
        subscriptions=found,
        shown=shown_target,
        next_url=f"/admin/subscriptions?after={next_cursor}" if next_cursor else None,
    )


@router.get("/subscriptions/_new", response_class=HTMLResponse)
def new_subscription(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    values = {"kind": "webhook", "filter": "{}", "enabled": "on"}
    return _form(request, runtime, visitor, None, values)


@router.post("/subscriptions", response_class=HTMLResponse)
async def create_subscription(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    posted = _posted(await pages.posted(request, runtime, visitor))
    try:
        domain.check_name(posted["name"])  # in its own words, not the schema's pattern
        if not posted["target"]:
            raise errors.InvalidInput("say where the events go", field="target")
        spec = schemas.SubscriptionCreate.model_validate(_body(posted))
        await run_in_threadpool(
            lambda: subscriptions.create(
                runtime.db,
                context_of(request, visitor),
                spec,
                allowed_networks=runtime.settings.webhook_allowed_networks,
            )
        )
    except (ValidationError, errors.InvalidInput) as exc:
        return _form(request, runtime, visitor, None, posted, pages.problems_of(exc, FIELDS))
    except errors.Conflict as exc:
        return _form(request, runtime, visitor, None, posted, {"name": exc.detail}, exc.status)
    return pages.done("/admin/subscriptions", "subscription-created")


@router.get("/subscriptions/{name}", response_class=HTMLResponse)
def edit_subscription(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    found = subscriptions.get(runtime.db, context_of(request, visitor), name)
    values = {
        "kind": found.kind.value,
        "target": "",
        "filter": json.dumps(found.filter, indent=2),
        "enabled": "on" if found.enabled else "",
    }
    return _form(request, runtime, visitor, found, values)


@router.post("/subscriptions/{name}", response_class=HTMLResponse)
async def update_subscription(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    posted = _posted(await pages.posted(request, runtime, visitor))
    ctx = context_of(request, visitor)
    try:
        body = _body(posted)
        body.pop("name")
        if not posted["target"]:
            body.pop("target")  # empty: keep the current target
        spec = schemas.SubscriptionUpdate.model_validate(body)
        await run_in_threadpool(
            lambda: subscriptions.update(
                runtime.db,
                ctx,
                name,
                spec,
                allowed_networks=runtime.settings.webhook_allowed_networks,
            )
        )
    except (ValidationError, errors.InvalidInput) as exc:
        found = await run_in_threadpool(subscriptions.get, runtime.db, ctx, name)
        return _form(request, runtime, visitor, found, posted, pages.problems_of(exc, FIELDS))
    return pages.done("/admin/subscriptions", "subscription-saved")


@router.post("/subscriptions/{name}/enable", response_class=HTMLResponse)
async def enable(name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    return await _switch(request, runtime, visitor, name, enabled=True)


@router.post("/subscriptions/{name}/disable", response_class=HTMLResponse)
async def disable(name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    return await _switch(request, runtime, visitor, name, enabled=False)


@router.get("/subscriptions/{name}/delete", response_class=HTMLResponse)
def confirm_delete(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    found = subscriptions.get(runtime.db, context_of(request, visitor), name)
    return pages.show(
        request,
        runtime,
        visitor,
        "confirm.html",
        section="subscriptions",
        heading=f"Delete subscription {found.name}?",
        explanation="Matching events are no longer sent to it. Deliveries it already made are "
        "still sent, and stay listed under Deliveries.",
        details=[("Kind", found.kind.value), ("Target", _joined(shown_target(found)))],
        action=f"/admin/subscriptions/{found.name}/delete",
        button="Delete subscription",
        back=f"/admin/subscriptions/{found.name}",
    )


@router.post("/subscriptions/{name}/delete", response_class=HTMLResponse)
async def delete_subscription(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    await run_in_threadpool(subscriptions.delete, runtime.db, context_of(request, visitor), name)
    return pages.done("/admin/subscriptions", "subscription-deleted")


def shown_target(subscription: Subscription) -> str | list[str]:
    return domain.shown_target(subscription.kind, subscription.target)


async def _switch(
    request: Request, runtime: Runtime, visitor: Visitor, name: str, *, enabled: bool
) -> Response:
    await pages.posted(request, runtime, visitor)
    spec = schemas.SubscriptionUpdate(enabled=enabled)
    await run_in_threadpool(
        lambda: subscriptions.update(
            runtime.db,
            context_of(request, visitor),
            name,
            spec,
            allowed_networks=runtime.settings.webhook_allowed_networks,
        )
    )
    return pages.done(
        "/admin/subscriptions", "subscription-enabled" if enabled else "subscription-disabled"
    )


def _posted(form: FormData) -> dict[str, str]:
    posted = {field: pages.text(form, field) for field in FIELDS if field != "enabled"}
    return posted | {"enabled": "on" if form.get("enabled") == "on" else ""}


def _body(posted: dict[str, str]) -> dict[str, Any]:
    """The form as the API's JSON body; ``InvalidInput`` when the filter is not JSON."""
    try:
        pattern = json_text.loads(posted["filter"]) if posted["filter"] else {}
    except json_text.NotJson as exc:
        raise errors.InvalidInput(f"the filter is not JSON: {exc}", field="filter") from exc
    target: str | list[str] = posted["target"]
    if posted["kind"] == "email":
        target = [part.strip() for part in posted["target"].replace(",", "\n").splitlines()]
        target = [address for address in target if address]
    return {
        "name": posted["name"],
        "kind": posted["kind"],
        "target": target,
        "filter": pattern,
        "enabled": bool(posted["enabled"]),
    }


def _joined(target: str | list[str]) -> str:
    return target if isinstance(target, str) else ", ".join(target)


def _form(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    subscription: Subscription | None,
    values: dict[str, str],
    problems: dict[str, str] | None = None,
    status_code: int = 422,
) -> HTMLResponse:
    return pages.show(
        request,
        runtime,
        visitor,
        "subscription_form.html",
        section="subscriptions",
        status_code=status_code if problems else 200,
        subscription=subscription,
        current_target=_joined(shown_target(subscription)) if subscription else "",
        values=values,
        problems=problems or {},
    )
