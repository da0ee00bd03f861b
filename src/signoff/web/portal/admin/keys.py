"""API keys and service accounts: what pipelines use to call signoff.

A new key's secret is shown once, on the page that answers the form that made it: never in a
URL, never logged, never cached (every page is ``Cache-Control: no-store``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from signoff import errors, schemas
from signoff.domain.principals import Role, Scope, UserKind
from signoff.services import principals
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import Visitor, context_of

router = APIRouter()

KEY_FIELDS = ("user", "name", "scopes", "expires_in")
ACCOUNT_FIELDS = ("email", "name", "role")


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    posted: dict[str, object] = {"user": request.query_params.get("user", "")}
    return _keys_page(request, runtime, visitor, key_posted=posted)


@router.post("/keys", response_class=HTMLResponse)
async def create_key(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    form = await pages.posted(request, runtime, visitor)
    scopes = [str(scope) for scope in form.getlist("scopes")]
    posted = {key: pages.text(form, key) for key in ("user", "name", "expires_in")}
    try:
        if not posted["user"]:
            raise errors.InvalidInput("choose whose key it is", field="user")
        created = await run_in_threadpool(
            lambda: principals.create_api_key(
                runtime.db,
                context_of(request, visitor),
                user=posted["user"],
                name=posted["name"],
                scopes=scopes,
                expires_in=posted["expires_in"] or None,
            )
        )
    except (errors.InvalidInput, errors.UserNotFound) as exc:
        status, problems = (
            exc.status,
            (
                {"user": exc.detail}
                if isinstance(exc, errors.UserNotFound)
                else pages.problems_of(exc, KEY_FIELDS)
            ),
        )
        again: dict[str, object] = {**posted, "scopes": scopes}
        return await run_in_threadpool(
            lambda: _keys_page(
                request, runtime, visitor, status, key_problems=problems, key_posted=again
            )
        )
    return pages.show(
        request,
        runtime,
        visitor,
        "key_created.html",
        section="keys",
        key=created.api_key,
        secret=created.secret,
    )


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(
    key_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    await run_in_threadpool(
        principals.revoke_api_key, runtime.db, context_of(request, visitor), key_id
    )
    return pages.done("/admin/keys", "key-revoked")


@router.post("/service-accounts", response_class=HTMLResponse)
async def create_service_account(
    request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    form = await pages.posted(request, runtime, visitor)
    posted = {key: pages.text(form, key) for key in ACCOUNT_FIELDS}
    try:
        spec = schemas.UserCreate(**(posted | {"role": posted["role"] or "member"}), kind="service")
        account = await run_in_threadpool(
            lambda: principals.create_user(
                runtime.db,
                context_of(request, visitor),
                email=spec.email,
                name=spec.name,
                role=Role(spec.role),
                kind=UserKind.SERVICE,
            )
        )
    except ValidationError as exc:
        return await _account_refused(request, runtime, visitor, 422, exc.errors(), posted)
    except errors.Conflict as exc:
        return await _account_refused(
            request, runtime, visitor, exc.status, {"email": exc.detail}, posted
        )
    return pages.done(f"/admin/keys?user={account.id}", "service-account-created")


async def _account_refused(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    status_code: int,
    problems: dict[str, str] | list[Any],
    posted: dict[str, str],
) -> HTMLResponse:
    if isinstance(problems, list):
        problems = {
            str(error["loc"][0]): _ACCOUNT_RULES.get(str(error["loc"][0]), error["msg"])
            for error in problems
        }
    return await run_in_threadpool(
        lambda: _keys_page(
            request,
            runtime,
            visitor,
            status_code,
            account_problems=problems,
            account_posted=posted,
        )
    )


_ACCOUNT_RULES = {
    "email": "a service account is named by an address, e.g. nightly-etl@pipelines.example.com",
    "name": "a name is at most 200 characters",
    "role": "a role is admin or member",
}


def _keys_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    status_code: int = 200,
    *,
    key_problems: dict[str, str] | None = None,
    key_posted: dict[str, object] | None = None,
    account_problems: dict[str, str] | None = None,
    account_posted: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = context_of(request, visitor)
    users = {user.id: user for user in principals.list_users(runtime.db, ctx)}
    keys = principals.list_api_keys(runtime.db, ctx)
    return pages.show(
        request,
        runtime,
        visitor,
        "keys.html",
        section="keys",
        status_code=status_code,
        keys=sorted(keys, key=lambda key: (key.is_revoked, key.created_at), reverse=False),
        users=users,
        owners=sorted((u for u in users.values() if u.is_active), key=lambda u: u.email),
        scopes=[scope.value for scope in Scope],
        now=datetime.now(UTC),
        key_problems=key_problems or {},
        key_posted=key_posted or {},
        account_problems=account_problems or {},
        account_posted=account_posted or {},
    )
