"""An admin's paths through the admin pages in headless Chromium: inviting someone, making a
key whose secret shows once, and redriving a dead letter once its receiver listens; every
admin page checked with axe-core in light and dark, and on a phone.

Screenshots named ``docs-admin-*`` are the ones docs/portal.md shows.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from playwright.async_api import Page, expect

from signoff import AsyncClient
from tests.browser.accessibility import assert_accessible
from tests.browser.test_signin import PHONE, join, page_width
from tests.mailbox import link_in
from tests.receivers import Receiver, free_port

SHORT_LIFE = {"delivery_max_age_seconds": 0.5}  # a failing delivery dies at once


async def sign_in_as_admin(admin: AsyncClient, page: Page) -> None:
    sent = await admin.people.invite("ada@example.com", role="admin")
    await join(page, sent.link)


async def dead_webhook(admin: AsyncClient, port: int) -> str:
    """A delivery to ``port``, where nothing listens, that has died; its id."""
    await admin.subscriptions.create(
        "ops-webhook",
        kind="webhook",
        target=f"http://127.0.0.1:{port}/hook",
        filter={"type": ["approval.created"]},
    )
    await admin.approvals.create(
        title="Nightly load: 7% of rows flagged", approvers=["team:data-owners"]
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        dead = await admin.deliveries.list(status="dead", target_kind="webhook")
        if dead.items:
            return dead.items[0].id
        await asyncio.sleep(0.05)
    raise AssertionError("the webhook delivery did not die")


@pytest.mark.parametrize("settings_overrides", [SHORT_LIFE], indirect=True)
async def test_an_admin_invites_someone_creates_a_key_and_redrives_a_dead_letter(
    admin, mailbox, page, screenshot
):
    await admin.people.create_team("data-owners")
    await sign_in_as_admin(admin, page)
    await page.goto("/admin")
    await expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    await page.get_by_role("navigation", name="Admin").get_by_role("link", name="People").click()

    await page.get_by_label("Email").fill("bob@example.com")
    await page.get_by_label("data-owners").check()
    await page.get_by_role("button", name="Invite").click()
    await expect(page.get_by_role("status")).to_have_text("The invitation is sent.")
    [message] = await asyncio.to_thread(mailbox.wait_for, "bob@example.com")
    assert "/invite/" in link_in(message, "/invite/")
    await expect(page.get_by_role("region", name="Invitations")).to_contain_text("bob@example.com")
    await screenshot("docs-admin-people")

    await page.get_by_role("navigation", name="Admin").get_by_role("link", name="API keys").click()
    await page.get_by_label("Address").fill("nightly-etl@pipelines.example.com")
    await page.get_by_role("button", name="Create service account").click()
    await expect(page.get_by_role("status")).to_contain_text("The service account is created.")
    await expect(page.get_by_label("Owner")).to_have_value(re.compile(r"^usr_"))
    await page.get_by_label("Name", exact=True).first.fill("nightly-etl in production")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="API key created")).to_be_visible()
    secret = await page.get_by_label("The key").input_value()
    assert secret.startswith("sok_")
    assert secret not in page.url
    await screenshot("docs-admin-key-created")
    await page.get_by_role("link", name="Done").click()
    await expect(page.get_by_role("region", name="API keys")).to_contain_text(secret[:8])
    assert secret not in await page.content()
    await screenshot("docs-admin-keys")

    port = free_port()
    delivery_id = await dead_webhook(admin, port)
    await page.goto("/admin/deliveries?status=dead&kind=webhook")
    await screenshot("docs-admin-deliveries")
    await page.get_by_role("link", name=delivery_id).click()
    await expect(page.get_by_role("heading", name="Dead letter")).to_be_visible()
    await screenshot("docs-admin-delivery-dead")
    with Receiver(port) as receiver:
        await page.get_by_role("button", name="Redrive").click()
        await expect(page.get_by_role("status")).to_contain_text("pending again")
        await asyncio.to_thread(receiver.wait_for, 1)
        await _reload_until(page, page.locator(".facts .badge"), "delivered")
    await expect(page.get_by_role("region", name="Attempts")).to_contain_text("HTTP 204")
    await screenshot("docs-admin-delivery-redriven")

    await page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit log").click()
    await page.get_by_role("button", name="Verify chain").click()
    await expect(page.get_by_role("status")).to_contain_text("The chain is intact")
    await screenshot("docs-admin-audit")


async def _reload_until(page: Page, locator, wanted: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while await locator.inner_text() != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {await locator.inner_text()!r}, not {wanted!r}")
        await asyncio.sleep(0.1)
        await page.reload()


@pytest.mark.parametrize(
    ("settings_overrides", "context_options"),
    [(SHORT_LIFE, {"color_scheme": "light"}), (SHORT_LIFE, {"color_scheme": "dark"})],
    ids=["light", "dark"],
    indirect=True,
)
async def test_every_admin_page_is_accessible(admin, page, screenshot, context_options):
    scheme = context_options["color_scheme"]
    await admin.people.create_team("data-owners")
    await admin.people.invite("bob@example.com", teams=["data-owners"])
    await admin.policies.create(
        "prod-promotion",
        approvers=["team:data-owners"],
        quorum=2,
        timeout="3d",
        form={"type": "object", "properties": {"ticket": {"type": "string"}}},
    )
    delivery_id = await dead_webhook(admin, free_port())
    await sign_in_as_admin(admin, page)
    users = await admin.people.list_users()
    [ada] = [user for user in users if user.email == "ada@example.com"]
    pages = {
        "overview": "/admin",
        "people": "/admin/people",
        "person": f"/admin/people/{ada.id}",
        "teams": "/admin/teams",
        "team": "/admin/teams/data-owners",
        "team-delete": "/admin/teams/data-owners/delete",
        "keys": "/admin/keys",
        "policies": "/admin/policies",
        "policy": "/admin/policies/prod-promotion",
        "policy-edit": "/admin/policies/prod-promotion/edit",
        "policy-new": "/admin/policies/_new",
        "subscriptions": "/admin/subscriptions",
        "subscription": "/admin/subscriptions/ops-webhook",
        "subscription-new": "/admin/subscriptions/_new",
        "deliveries": "/admin/deliveries",
        "delivery": f"/admin/deliveries/{delivery_id}",
        "redrive-all": "/admin/deliveries/redrive?kind=webhook",
        "audit": "/admin/audit",
    }
    for name, path in pages.items():
        answer = await page.goto(path)
        assert answer is not None
        assert answer.status == 200, path
        await assert_accessible(page)
        if scheme == "light" and name in ("overview", "policy", "subscriptions", "teams"):
            await screenshot(f"docs-admin-{name}")
    await screenshot(f"admin-{scheme}-audit")

    await page.goto("/admin/subscriptions/_new")  # a refused form, its errors by their fields
    await page.get_by_label("Name").fill("Not A Slug")
    await page.get_by_label("Target").fill("https://hooks.example.com/services/T0K3N")
    await page.get_by_label("Filter (JSON)").fill('{"type": ["approval.setled"]}')
    await page.get_by_role("button", name="Create subscription").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)
    await screenshot(f"admin-{scheme}-subscription-refused")


@pytest.mark.parametrize(
    ("settings_overrides", "context_options"), [(SHORT_LIFE, PHONE)], indirect=True
)
async def test_a_phone_shows_the_admin_pages_without_sideways_scrolling(admin, page, screenshot):
    await admin.people.create_team("data-owners")
    await admin.people.invite("bob@example.com", teams=["data-owners"])
    delivery_id = await dead_webhook(admin, free_port())
    await sign_in_as_admin(admin, page)
    for name in (
        "",
        "/people",
        "/keys",
        "/subscriptions",
        "/deliveries",
        f"/deliveries/{delivery_id}",
        "/audit",
        "/policies/_new",
    ):
        await page.goto(f"/admin{name}")
        assert await page_width(page) == {"window": 390, "content": 390}, name
        await assert_accessible(page)
    await screenshot("phone-admin-policy-form")
