"""The admin pages (``/admin``): people and teams, API keys and service accounts, named
policies, subscriptions, deliveries and the audit log.

Server-rendered forms that work without JavaScript. Each page calls the services with the
signed-in admin's context (never the HTTP API), so permissions and the audit log are the
services'; ``pages.AdminDep`` turns away anyone else before a page shows anything.
"""

from __future__ import annotations

from fastapi import APIRouter

from signoff.web.portal.admin import (
    audit,
    deliveries,
    keys,
    overview,
    people,
    policies,
    subscriptions,
    teams,
)

MODULES = (overview, people, teams, keys, policies, subscriptions, deliveries, audit)

router = APIRouter(include_in_schema=False)
for _module in MODULES:
    router.include_router(_module.router, prefix="/admin")
