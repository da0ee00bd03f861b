"""FastAPI dependencies: the runtime, and who is calling."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signoff import errors
from signoff.domain.principals import Context
from signoff.services import accounts, oidc, principals
from signoff.services.server_secrets import Keys
from signoff.settings import Settings
from signoff.store.engine import Database
from signoff.web.throttle import Throttle
from signoff.web.waiters import Waiters
from signoff.worker.runner import Worker


@dataclass
class Runtime:
    """Everything one server process holds, created in ``create_app``'s lifespan."""

    settings: Settings
    db: Database
    keys: Keys
    auth: principals.Authenticator
    rules: accounts.Rules
    throttle: Throttle
    oidc: oidc.OidcClient | None
    waiters: Waiters
    worker: Worker | None


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


_bearer = HTTPBearer(auto_error=False, description="An API key (sok_...) or a task token (sot_...)")


async def get_context(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Context:
    if credentials is None:
        raise errors.Unauthenticated("send an API key or task token as 'Authorization: Bearer ...'")
    # A remembered key costs no thread hop; only a lookup goes to the threadpool.
    principal = runtime.auth.remembered(credentials.credentials)
    if principal is None:
        principal = await run_in_threadpool(runtime.auth.authenticate, credentials.credentials)
    return Context(
        principal=principal,
        request_id=request.scope.get("state", {}).get("request_id"),
        client_addr=request.client.host if request.client else None,
    )


def is_client_in(
    client: tuple[str, int] | None, networks: Collection[IPv4Network | IPv6Network]
) -> bool:
    """Whether the client address (the one uvicorn took from ``X-Forwarded-For`` when the
    proxy is trusted) is in one of ``networks``."""
    if not client:
        return False
    try:
        address = ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener's view of an IPv4 client
    return any(address in network for network in networks)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ContextDep = Annotated[Context, Depends(get_context)]
