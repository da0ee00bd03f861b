"""/v1/users, /v1/teams and /v1/api-keys."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from signoff import errors, schemas
from signoff.domain import principals as domain
from signoff.services import principals
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1", tags=["people"])


@router.post("/users", status_code=201, response_model=schemas.UserPublic)
def create_user(
    spec: schemas.UserCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.UserPublic:
    user = principals.create_user(
        runtime.db,
        ctx,
        email=spec.email,
        name=spec.name,
        role=domain.Role(spec.role),
        kind=domain.UserKind(spec.kind),
    )
    return schemas.UserPublic.model_validate(asdict(user))


@router.get("/users", response_model=list[schemas.UserPublic])
def list_users(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.UserPublic]:
    return [
        schemas.UserPublic.model_validate(asdict(u)) for u in principals.list_users(runtime.db, ctx)
    ]


@router.get("/users/me", response_model=schemas.UserPublic)
def me(ctx: ContextDep) -> schemas.UserPublic:
    if ctx.principal.user is None:
        raise errors.PermissionDenied("a task token belongs to an approval, not a user")
    return schemas.UserPublic.model_validate(asdict(ctx.principal.user))


@router.post("/teams", status_code=201, response_model=schemas.TeamPublic)
def create_team(
    spec: schemas.TeamCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.TeamPublic:
    return schemas.TeamPublic.model_validate(
        asdict(principals.create_team(runtime.db, ctx, name=spec.name))
    )


@router.get("/teams", response_model=list[schemas.TeamPublic])
def list_teams(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.TeamPublic]:
    return [
        schemas.TeamPublic.model_validate(asdict(t)) for t in principals.list_teams(runtime.db, ctx)
    ]


@router.post("/teams/{team}/members", response_model=schemas.TeamPublic)
def add_member(
    team: str, spec: schemas.TeamMemberAdd, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.TeamPublic:
    found = principals.add_member(runtime.db, ctx, team=team, user=spec.user)
    return schemas.TeamPublic.model_validate(asdict(found))


@router.post("/api-keys", status_code=201, response_model=schemas.ApiKeyCreated)
def create_api_key(
    spec: schemas.ApiKeyCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.ApiKeyCreated:
    """A new key; its secret is in this answer and nowhere else, ever."""
    created = principals.create_api_key(
        runtime.db,
        ctx,
        user=spec.user,
        name=spec.name,
        scopes=spec.scopes,
        expires_in=spec.expires_in,
    )
    return schemas.ApiKeyCreated.model_validate(asdict(created.api_key) | {"key": created.secret})


@router.get("/api-keys", response_model=list[schemas.ApiKeyPublic])
def list_api_keys(ctx: ContextDep, runtime: RuntimeDep) -> list[schemas.ApiKeyPublic]:
    return [
        schemas.ApiKeyPublic.model_validate(asdict(k))
        for k in principals.list_api_keys(runtime.db, ctx)
    ]


@router.post("/api-keys/{key_id}/revoke", response_model=schemas.ApiKeyPublic)
def revoke_api_key(key_id: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.ApiKeyPublic:
    return schemas.ApiKeyPublic.model_validate(
        asdict(principals.revoke_api_key(runtime.db, ctx, key_id))
    )
