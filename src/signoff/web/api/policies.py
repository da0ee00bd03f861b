"""/v1/policies: named, reusable approval policies that approvals refer to by name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from signoff import schemas
from signoff.domain.policies import NamedPolicy
from signoff.services import policies
from signoff.web.deps import ContextDep, RuntimeDep

router = APIRouter(prefix="/v1/policies", tags=["policies"])


def to_public(policy: NamedPolicy) -> schemas.PolicyPublic:
    return schemas.PolicyPublic.model_validate(policy.as_json())


@router.post("", status_code=201, response_model=schemas.PolicyPublic)
def create_policy(
    spec: schemas.PolicyCreate, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.PolicyPublic:
    """Admins only. Approvers are checked now: an unknown one is ``422 unknown_approver``."""
    return to_public(policies.create(runtime.db, ctx, spec))


@router.get("", response_model=schemas.Page[schemas.PolicyPublic])
def list_policies(
    ctx: ContextDep,
    runtime: RuntimeDep,
    cursor: Annotated[str | None, Query(description="The name to continue after.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.Page[schemas.PolicyPublic]:
    """In name order."""
    found, next_cursor = policies.list_policies(runtime.db, ctx, cursor=cursor, limit=limit)
    return schemas.Page(items=[to_public(p) for p in found], next_cursor=next_cursor)


@router.get("/{name}", response_model=schemas.PolicyPublic)
def get_policy(name: str, ctx: ContextDep, runtime: RuntimeDep) -> schemas.PolicyPublic:
    return to_public(policies.get(runtime.db, ctx, name))


@router.put("/{name}", response_model=schemas.PolicyPublic)
def replace_policy(
    name: str, spec: schemas.PolicyReplace, ctx: ContextDep, runtime: RuntimeDep
) -> schemas.PolicyPublic:
    """Admins only. Replaces everything the policy holds (what the body leaves out takes its
    default); approvals already made from it keep what they copied."""
    return to_public(policies.replace(runtime.db, ctx, name, spec))


@router.delete("/{name}", status_code=204, response_class=Response)
def delete_policy(name: str, ctx: ContextDep, runtime: RuntimeDep) -> Response:
    """Admins only. Approvals already made from it keep what they copied."""
    policies.delete(runtime.db, ctx, name)
    return Response(status_code=204)
