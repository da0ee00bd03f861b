"""People: who has an account, with what role, whether they may sign in; invitations.

An invitation's link is shown to the admin once, on the page that answers the invitation,
when this server sends no email (as the API returns it): it is the only way it reaches the
invitee then. With email set up, the invitee gets it by email and the admin gets a notice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff import errors
from signoff.domain.accounts import Invitation
from signoff.domain.principals import Role, User
from signoff.services import accounts, invitations, principals
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal import render
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import Visitor, context_of

router = APIRouter()

INVITE_FIELDS = ("email", "role", "teams")


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    return _people_page(request, runtime, visitor)


@router.post("/people/invite", response_class=HTMLResponse)
async def invite(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    form = await pages.posted(request, runtime, visitor)
    email, teams = pages.text(form, "email"), [str(team) for team in form.getlist("teams")]
    posted: dict[str, object] = {"email": email, "role": pages.text(form, "role"), "teams": teams}
    try:
        invitation, token = await run_in_threadpool(
            lambda: invitations.invite(
                runtime.db,
                context_of(request, visitor),
                email=email,
                teams=teams,
                role=_role(pages.text(form, "role")),
                ttl=timedelta(seconds=runtime.settings.invitation_ttl_seconds),
                secret_key=runtime.keys.secret_key,
            )
        )
    except errors.TeamNotFound as exc:
        return await _people_again(request, runtime, visitor, exc, {"teams": exc.detail}, posted)
    except errors.Conflict as exc:  # an account or a pending invitation has this address
        return await _people_again(request, runtime, visitor, exc, {"email": exc.detail}, posted)
    except errors.InvalidInput as exc:
        problems = pages.problems_of(exc, INVITE_FIELDS)
        return await _people_again(request, runtime, visitor, exc, problems, posted)
    return await run_in_threadpool(_sent, request, runtime, visitor, invitation, token, "invited")


@router.post("/invitations/{invitation_id}/resend", response_class=HTMLResponse)
async def resend(
    invitation_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    try:
        invitation, token = await run_in_threadpool(
            lambda: invitations.resend(
                runtime.db,
                context_of(request, visitor),
                invitation_id,
                ttl=timedelta(seconds=runtime.settings.invitation_ttl_seconds),
                secret_key=runtime.keys.secret_key,
            )
        )
    except errors.Conflict as exc:
        return await _people_again(request, runtime, visitor, exc, {"": exc.detail})
    return await run_in_threadpool(_sent, request, runtime, visitor, invitation, token, "resent")


@router.post("/invitations/{invitation_id}/revoke", response_class=HTMLResponse)
async def revoke(
    invitation_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    try:
        await run_in_threadpool(
            invitations.revoke, runtime.db, context_of(request, visitor), invitation_id
        )
    except errors.Conflict as exc:
        return await _people_again(request, runtime, visitor, exc, {"": exc.detail})
    return pages.done("/admin/people", "invitation-revoked")


@router.get("/people/{user_id}", response_class=HTMLResponse)
def person_page(
    user_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    return _person_page(request, runtime, visitor, user_id)


@router.post("/people/{user_id}/role", response_class=HTMLResponse)
async def change_role(
    user_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    form = await pages.posted(request, runtime, visitor)
    return await _update(
        request, runtime, visitor, user_id, "role-changed", role=_role(pages.text(form, "role"))
    )


@router.post("/people/{user_id}/disable", response_class=HTMLResponse)
async def disable(
    user_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    return await _update(request, runtime, visitor, user_id, "disabled", is_active=False)


@router.post("/people/{user_id}/enable", response_class=HTMLResponse)
async def enable(
    user_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    return await _update(request, runtime, visitor, user_id, "enabled", is_active=True)


async def _update(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    user_id: str,
    notice: str,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
) -> Response:
    try:
        await run_in_threadpool(
            lambda: principals.update_user(
                runtime.db, context_of(request, visitor), user_id, role=role, is_active=is_active
            )
        )
    except (errors.Conflict, errors.InvalidInput) as exc:
        return await run_in_threadpool(
            _person_page, request, runtime, visitor, user_id, exc.status, exc.detail
        )
    if _is_me(visitor, user_id):
        return render.redirect("/login")  # a new role or access ends one's own sessions too
    return pages.done(f"/admin/people/{user_id}", notice)


async def _people_again(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    exc: errors.SignoffError,
    problems: dict[str, str],
    posted: dict[str, object] | None = None,
) -> HTMLResponse:
    """The people page again, saying why the form was refused."""
    return await run_in_threadpool(
        _people_page, request, runtime, visitor, exc.status, problems, posted
    )


def _is_me(visitor: Visitor, user_id: str) -> bool:
    user = visitor.principal.user if visitor.principal else None
    return user is not None and user.id == user_id


def _role(value: str) -> Role:
    try:
        return Role(value or Role.MEMBER.value)
    except ValueError as exc:
        raise errors.InvalidInput(
            f"a role is admin or member, not {value!r}", field="role"
        ) from exc


def _sent(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    invitation: Invitation,
    token: str,
    notice: str,
) -> Response:
    if runtime.settings.email_enabled:
        return pages.done("/admin/people", notice)
    link = f"{runtime.settings.public_url.rstrip('/')}/invite/{token}"
    return pages.show(
        request,
        runtime,
        visitor,
        "invited.html",
        section="people",
        invitation=invitation,
        link=link,
    )


def _people_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    status_code: int = 200,
    problems: dict[str, str] | None = None,
    posted: dict[str, object] | None = None,
) -> HTMLResponse:
    ctx = context_of(request, visitor)
    users = principals.list_users(runtime.db, ctx)
    facts = accounts.sign_in_facts(runtime.db, ctx)
    now = datetime.now(UTC)
    pending = [
        i for i in invitations.list_invitations(runtime.db, ctx) if i.status(now) != "accepted"
    ]
    return pages.show(
        request,
        runtime,
        visitor,
        "people.html",
        section="people",
        status_code=status_code,
        people=sorted(users, key=lambda user: (user.kind.value, user.email)),
        facts=facts,
        invitations=sorted(pending, key=lambda i: i.created_at, reverse=True),
        now=now,
        teams=principals.list_teams(runtime.db, ctx),
        email_enabled=runtime.settings.email_enabled,
        problems=problems or {},
        posted=posted or {},
    )


def _person_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    user_id: str,
    status_code: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    ctx = context_of(request, visitor)
    person = _find(principals.list_users(runtime.db, ctx), user_id)
    teams = [t for t in principals.list_teams(runtime.db, ctx) if person.id in t.member_ids]
    keys = [k for k in principals.list_api_keys(runtime.db, ctx) if k.user_id == person.id]
    return pages.show(
        request,
        runtime,
        visitor,
        "person.html",
        section="people",
        status_code=status_code,
        person=person,
        facts=accounts.sign_in_facts(runtime.db, ctx).get(person.id),
        teams=teams,
        keys=sorted(keys, key=lambda key: key.created_at, reverse=True),
        now=datetime.now(UTC),
        is_me=_is_me(visitor, person.id),
        error=error,
    )


def _find(users: list[User], user_id: str) -> User:
    for user in users:
        if user.id == user_id:
            return user
    raise errors.UserNotFound(f"no user {user_id!r}")
