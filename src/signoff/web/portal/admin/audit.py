"""The audit log: who did what to which object, filtered and paged newest first, and a check
of its hash chain (a POST: it reads every entry)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff.domain.audit import AuditEntry
from signoff.services import audit
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import Visitor, context_of

router = APIRouter()

PAGE_SIZE = 50
_TEXT_FILTERS = ("actor", "action", "object_type", "object_id")
_TIME_FILTERS = ("since", "until")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    return _audit_page(request, runtime, visitor)


@router.post("/audit/verify", response_class=HTMLResponse)
async def verify(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    await pages.posted(request, runtime, visitor)
    checked, broken = await run_in_threadpool(
        audit.verify, runtime.db, context_of(request, visitor)
    )
    verdict = {"ok": broken is None, "checked": checked, "broken": broken}
    return await run_in_threadpool(_audit_page, request, runtime, visitor, verdict)


def changes_of(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """(field, before, after) for every field either side holds, before's order first."""
    before, after = entry.before or {}, entry.after or {}
    keys = list(before) + [key for key in after if key not in before]
    return [(key, _shown(before, key), _shown(after, key)) for key in keys]


def _shown(values: dict[str, Any], key: str) -> str:
    if key not in values:
        return ""
    value = values[key]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _audit_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    verdict: dict[str, Any] | None = None,
) -> HTMLResponse:
    chosen, filters, problems = _filters(request)
    cursor = request.query_params.get("before", "")
    entries, next_seq = audit.list_entries(
        runtime.db,
        context_of(request, visitor),
        filters,
        before_seq=int(cursor) if cursor.isdigit() and len(cursor) < 19 else None,
        limit=PAGE_SIZE,
    )
    query = {key: value for key, value in chosen.items() if value}
    return pages.show(
        request,
        runtime,
        visitor,
        "audit.html",
        section="audit",
        entries=entries,
        chosen=chosen,
        filtered=bool(query),
        problems=problems,
        changes_of=changes_of,
        verdict=verdict,
        next_url=f"/admin/audit?{urlencode(query | {'before': next_seq})}" if next_seq else None,
    )


def _filters(request: Request) -> tuple[dict[str, str], audit.Filters, dict[str, str]]:
    """What was asked for, the filters, and why a time could not be read."""
    chosen = {key: request.query_params.get(key, "").strip()[:200] for key in _TEXT_FILTERS}
    times: dict[str, datetime | None] = {}
    problems: dict[str, str] = {}
    for key in _TIME_FILTERS:
        chosen[key] = request.query_params.get(key, "").strip()[:40]
        try:
            times[key] = _utc(chosen[key]) if chosen[key] else None
        except (ValueError, OverflowError):  # OverflowError: out of range once in UTC
            times[key] = None
            problems[key] = f"{chosen[key]!r} is not a time such as 2026-01-31T09:00"
    return (
        chosen,
        audit.Filters(
            **{key: chosen[key] or None for key in _TEXT_FILTERS},
            since=times["since"],
            until=times["until"],
        ),
        problems,
    )


def _utc(text: str) -> datetime:
    """A time from a ``datetime-local`` field, read as UTC (as the page shows times)."""
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
