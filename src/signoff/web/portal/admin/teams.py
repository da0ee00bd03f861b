"""Teams: named groups of people that approvals and policies name as approvers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from signoff import errors, schemas
from signoff.domain.principals import Context, Team
from signoff.services import principals
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import Visitor, context_of

router = APIRouter()

_TEAM_NAME_RULE = (
    "a team name starts with a letter or digit, holds only letters, digits, '.', '_' and '-', "
    "and is at most 100 long"
)


@router.get("/teams", response_class=HTMLResponse)
def teams_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    return _teams_page(request, runtime, visitor)


@router.post("/teams", response_class=HTMLResponse)
async def create_team(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    form = await pages.posted(request, runtime, visitor)
    name = pages.text(form, "name")
    try:
        spec = schemas.TeamCreate(name=name)
    except ValidationError:
        problems = {"name": _TEAM_NAME_RULE}
        return await run_in_threadpool(_teams_page, request, runtime, visitor, 422, problems, name)
    try:
        await run_in_threadpool(
            lambda: principals.create_team(runtime.db, context_of(request, visitor), name=spec.name)
        )
    except errors.Conflict as exc:
        return await run_in_threadpool(
            _teams_page, request, runtime, visitor, exc.status, {"name": exc.detail}, name
        )
    return pages.done(f"/admin/teams/{name}", "team-created")


@router.get("/teams/{name}", response_class=HTMLResponse)
def team_page(name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    return _team_page(request, runtime, visitor, name)


@router.post("/teams/{name}/members", response_class=HTMLResponse)
async def add_member(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    form = await pages.posted(request, runtime, visitor)
    user = pages.text(form, "user")
    try:
        if not user:
            raise errors.InvalidInput("choose who to add", field="user")
        await run_in_threadpool(
            lambda: principals.add_member(
                runtime.db, context_of(request, visitor), team=name, user=user
            )
        )
    except (errors.InvalidInput, errors.UserNotFound) as exc:
        return await run_in_threadpool(
            _team_page, request, runtime, visitor, name, exc.status, {"user": exc.detail}
        )
    return pages.done(f"/admin/teams/{name}", "member-added")


@router.post("/teams/{name}/members/{user_id}/remove", response_class=HTMLResponse)
async def remove_member(
    name: str, user_id: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    await run_in_threadpool(
        lambda: principals.remove_member(
            runtime.db, context_of(request, visitor), team=name, user=user_id
        )
    )
    return pages.done(f"/admin/teams/{name}", "member-removed")


@router.get("/teams/{name}/delete", response_class=HTMLResponse)
def confirm_delete(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    team = _team(runtime, context_of(request, visitor), name)
    return pages.show(
        request,
        runtime,
        visitor,
        "confirm.html",
        section="teams",
        heading=f"Delete team {team.name}?",
        explanation="Policies and approvals that name this team lose it as an approver. A team "
        "that pending approvals wait on cannot be deleted.",
        action=f"/admin/teams/{team.name}/delete",
        button="Delete team",
        back=f"/admin/teams/{team.name}",
    )


@router.post("/teams/{name}/delete", response_class=HTMLResponse)
async def delete_team(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    try:
        await run_in_threadpool(
            principals.delete_team, runtime.db, context_of(request, visitor), name
        )
    except errors.Conflict as exc:
        return await run_in_threadpool(
            _team_page, request, runtime, visitor, name, exc.status, {"": exc.detail}
        )
    return pages.done("/admin/teams", "team-deleted")


def _team(runtime: Runtime, ctx: Context, name: str) -> Team:
    for team in principals.list_teams(runtime.db, ctx):
        if team.name == name or team.id == name:
            return team
    raise errors.TeamNotFound(f"no team {name!r}")


def _teams_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    status_code: int = 200,
    problems: dict[str, str] | None = None,
    name: str = "",
) -> HTMLResponse:
    ctx = context_of(request, visitor)
    return pages.show(
        request,
        runtime,
        visitor,
        "teams.html",
        section="teams",
        status_code=status_code,
        teams=sorted(principals.list_teams(runtime.db, ctx), key=lambda team: team.name),
        problems=problems or {},
        name=name,
    )


def _team_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    name: str,
    status_code: int = 200,
    problems: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = context_of(request, visitor)
    team = _team(runtime, ctx, name)
    users = principals.list_users(runtime.db, ctx)
    members = [user for user in users if user.id in team.member_ids]
    others = [user for user in users if user.id not in team.member_ids and user.is_active]
    return pages.show(
        request,
        runtime,
        visitor,
        "team.html",
        section="teams",
        status_code=status_code,
        team=team,
        members=sorted(members, key=lambda user: user.email),
        others=sorted(others, key=lambda user: user.email),
        problems=problems or {},
    )
