"""The ASGI application: ``create_app()`` wires settings, database, routes and background tasks.

Everything a process holds lives in the ``Runtime`` made in the lifespan; nothing is created at
import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signoff import errors
from signoff.__about__ import __version__
from signoff.services import accounts, approvals, oidc, principals, server
from signoff.settings import Settings
from signoff.web import problems, slack
from signoff.web.api import approvals as approvals_api
from signoff.web.api import audit as audit_api
from signoff.web.api import deliveries as deliveries_api
from signoff.web.api import metrics as metrics_api
from signoff.web.api import people as people_api
from signoff.web.api import policies as policies_api
from signoff.web.api import subscriptions as subscriptions_api
from signoff.web.api import system as system_api
from signoff.web.deps import Runtime, is_client_in
from signoff.web.portal import admin, decision_links, links, render, security, signin
from signoff.web.portal import approvals as approval_pages
from signoff.web.portal import oidc as oidc_pages
from signoff.web.throttle import Throttle
from signoff.web.waiters import Waiters
from signoff.worker.runner import Worker

log = logging.getLogger(__name__)

# The largest valid approval (64 KiB body, 256 KiB context) with room for JSON escaping.
MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="signoff",
        version=__version__,
        description="Human-in-the-loop approvals for ML and data pipelines.",
        lifespan=lambda app: _lifespan(app, settings),
    )
    problems.install(app, html_errors=_html_error)
    pages = (signin, oidc_pages, links, decision_links, approval_pages, admin)
    api = (approvals_api, policies_api, subscriptions_api, deliveries_api, people_api)
    for module in (*api, audit_api, system_api, metrics_api, slack, *pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[("signoff.web", "static")]), name="static")
    app.add_exception_handler(render.SignInRequired, _sign_in_first)  # type: ignore[arg-type]
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    app.add_middleware(security.SecurityHeadersMiddleware)
    if settings.allowed_networks:
        app.add_middleware(AllowedNetworksMiddleware, networks=settings.allowed_networks)
    app.add_middleware(RequestIdMiddleware)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    db, keys = await run_in_threadpool(server.open_database, settings)
    waiters = Waiters()
    waiters.attach(asyncio.get_running_loop())
    worker = Worker(db, settings, keys) if settings.run_worker else None
    auth = principals.Authenticator(db, secret_key=keys.secret_key, ttl=settings.auth_cache_seconds)
    app.state.runtime = Runtime(
        settings=settings,
        db=db,
        keys=keys,
        auth=auth,
        rules=accounts.Rules.from_settings(settings, keys.secret_key),
        throttle=Throttle(settings.login_attempts_per_minute),
        oidc=oidc.OidcClient(settings) if settings.oidc_enabled else None,
        waiters=waiters,
        worker=worker,
    )

    def on_notification(topic: str, key: str) -> None:
        auth.on_notification(topic, key)
        waiters.on_notification(topic, key)
        if worker is not None:
            worker.on_notification(topic, key)

    async def settled_among(ids: list[str]) -> list[str]:
        return await run_in_threadpool(approvals.settled_among, db, ids)

    tasks = [
        asyncio.create_task(db.listen(on_notification)),
        asyncio.create_task(
            waiters.sweep_forever(settled_among, settings.worker_max_sleep_seconds)
        ),
    ]
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run()))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        db.dispose()


async def _sign_in_first(_request: Request, exc: render.SignInRequired) -> Response:
    return render.sign_in_redirect(exc.next_url)


async def _html_error(request: Request, exc: errors.SignoffError) -> Response:
    runtime = request.app.state.runtime
    visitor = await render.error_visitor(request, runtime, exc)
    return render.error_page(request, runtime, exc, visitor)


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes before anything parses them.

    Not FastAPI's ``max_body_size``: that answers in plain text, and every error here is
    problem+json with a code.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = errors.PayloadTooLarge(f"the body is over {self.limit} bytes")
        refusal = problems.problem(413, too_large.code, too_large.title, too_large.detail)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await refusal(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise too_large
            return message

        async def send_or_refuse(message: Message) -> None:
            # The framework turns a failed body read into its own 400; answer 413 instead.
            if seen <= self.limit:
                await send(message)
            elif message["type"] == "http.response.start":
                await refusal(scope, receive, send)

        await self.app(scope, counting_receive, send_or_refuse)


class AllowedNetworksMiddleware:
    """Refuse clients outside ``networks`` (``SIGNOFF_ALLOWED_NETWORKS``) before anything else
    runs, as a Ground Truth private workforce's IP allow-list does. ``/healthz`` stays open for
    load balancers. Behind a reverse proxy, the client address is the one uvicorn takes from
    ``X-Forwarded-For`` when the proxy is in ``FORWARDED_ALLOW_IPS``."""

    def __init__(self, app: ASGIApp, networks: list[IPv4Network | IPv6Network]) -> None:
        self.app = app
        self.networks = networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] == "/healthz"
            or is_client_in(scope.get("client"), self.networks)
        ):
            await self.app(scope, receive, send)
            return
        refused = errors.AddressNotAllowed(
            "this server accepts requests only from its allowed networks"
        )
        await problems.problem(403, refused.code, refused.title, refused.detail)(
            scope, receive, send
        )


class RequestIdMiddleware:
    """Give every request an id (or keep the caller's ``X-Request-Id``) for logs and audit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
