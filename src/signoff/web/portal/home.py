"""The page a person lands on after signing in: what waits for their decision."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from signoff.domain.approvals import Status
from signoff.services import approvals
from signoff.web.deps import RuntimeDep
from signoff.web.portal.render import SignedInDep, context_of, page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, runtime: RuntimeDep, visitor: SignedInDep) -> HTMLResponse:
    waiting, _ = await run_in_threadpool(
        lambda: approvals.list_approvals(
            runtime.db,
            context_of(request, visitor),
            status=Status.PENDING,
            decidable_by_me=True,
            limit=50,
        )
    )
    return page(request, runtime, "home.html", visitor=visitor, waiting=waiting)
