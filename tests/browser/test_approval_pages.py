"""An approver's path through the inbox and an approval's page in headless Chromium: signing
in with MFA, finding the approval, a form sent with mistakes, approving with a comment, the
settled page and its history; a phone and the dark scheme; and a hostile requester whose
title, body, context, labels and form schema try to run script.

Every page is checked with axe-core (``assert_accessible``). Screenshots named ``docs-*`` are
the ones docs/portal.md shows (``scripts/screenshots`` copies them to docs/images/).
tests/integration/test_approval_pages.py has the same paths over plain HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import ConsoleMessage, Dialog, Page, expect

from signoff import AsyncClient
from tests.browser.accessibility import assert_accessible
from tests.browser.test_signin import PHONE, join, page_width
from tests.conftest import RunningServer
from tests.mailbox import Mailbox, link_in

DARK = {"color_scheme": "dark"}
FORM = {
    "type": "object",
    "required": ["ticket", "risk"],
    "properties": {
        "ticket": {"type": "string", "title": "Change ticket", "description": "Like CHG-1234."},
        "risk": {"enum": ["low", "medium", "high"], "title": "Risk"},
        "regions": {
            "type": "array",
            "items": {"enum": ["eu-west", "us-east", "ap-south"]},
            "title": "Regions to load",
        },
        "rollback_tested": {"type": "boolean", "title": "Rollback tested"},
        "rows": {"type": "integer", "minimum": 0, "title": "Rows affected"},
    },
}
HOSTILE = '<script>window.__ran=1;alert("x")</script><img src=x onerror="window.__ran=1">'


@pytest.fixture
def script_watch(page: Page) -> list[str]:
    """Every dialog the page opens and every console error it logs (none may appear), but
    an answer's status (422 for a form with mistakes, 404 for the favicon)."""
    seen: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        seen.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.append(f"console: {message.text}")

    page.on("dialog", dismiss)
    page.on("console", console)
    return seen


@pytest_asyncio.fixture(loop_scope="session")
async def pipeline(server: RunningServer, admin: AsyncClient) -> AsyncIterator[AsyncClient]:
    """A pipeline's client; its approvals ask team data-owners."""
    await admin.people.create_team("data-owners")
    await admin.people.create_user("pipeline@example.com", name="Nightly pipeline")
    key = (await admin.people.create_key(user="pipeline@example.com")).key
    async with AsyncClient(server.url, api_key=key) as client:
        yield client


async def joined(page: Page, admin: AsyncClient, mailbox: Mailbox) -> None:
    """Dana, a member of data-owners, accepts her invitation and sets up MFA."""
    await admin.people.invite("dana@example.com", teams=["data-owners"])
    [message] = await asyncio.to_thread(mailbox.wait_for, "dana@example.com")
    await join(page, link_in(message, "/invite/"))


async def some_approvals(pipeline: AsyncClient) -> Any:
    """A few approvals, one of them the one the test decides."""
    await pipeline.approvals.create(
        title="Promote churn-model v14 to prod",
        body="AUC 0.91 on the holdout set (v13: 0.89).",
        labels=["ml", "prod"],
        approvers=["team:data-owners"],
        timeout="3d",
    )
    await pipeline.approvals.create(
        title="Refund batch for customer 7",
        labels=["finance"],
        approvers=["team:data-owners"],
        timeout="2h",
    )
    return await pipeline.approvals.create(
        title="Apply batch 2026-11-22 for customer 42?",
        body=(
            "## What happened\n\n6.4% of rows were **flagged** as anomalies; the threshold is"
            " 6%.\n\n- upstream backfill on Nov 21\n- see the [dashboard](https://grafana.example.com/d/42)"
        ),
        context={
            "customer": 42,
            "flagged_ratio": 0.064,
            "run": {"id": "run-8812", "url": "https://ci.example.com/runs/8812", "retries": 0},
            "tables": ["orders", "refunds"],
        },
        labels=["etl"],
        approvers=["team:data-owners"],
        policy={"comment_required": True, "form": FORM},
        timeout="26h",
    )


async def test_an_approver_finds_decides_and_sees_the_outcome_and_history(
    admin, pipeline, mailbox, page, screenshot, script_watch
):
    await joined(page, admin, mailbox)
    approval = await some_approvals(pipeline)
    await page.get_by_role("link", name="Inbox").click()
    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()
    rows = page.get_by_role("region", name="Approvals waiting for your decision").get_by_role("row")
    await expect(rows).to_have_count(4)  # the header and three approvals
    await assert_accessible(page)
    await screenshot("docs-inbox")

    await page.get_by_label("Title contains").fill("customer 42")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(2)
    await page.get_by_role("link", name="Apply batch 2026-11-22 for customer 42?").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text(approval.title)
    await expect(page.get_by_role("heading", name="What happened")).to_be_visible()
    await expect(page.get_by_role("link", name="https://ci.example.com/runs/8812")).to_be_visible()
    await expect(page.get_by_text("Every decision needs a comment.")).to_be_visible()
    await assert_accessible(page)
    await screenshot("docs-approval")

    await page.get_by_label("Rows affected").fill("-5")
    await page.get_by_role("button", name="Approve").click()
    summary = page.get_by_role("alert")
    await expect(summary).to_contain_text("Your decision was not recorded. Fix these first:")
    await expect(summary.get_by_role("link")).to_have_count(4)
    comment = page.get_by_label("Comment (required)")
    await expect(comment).to_have_attribute("aria-invalid", "true")
    await expect(comment).to_have_accessible_description("A comment is required.")
    await expect(page.get_by_label("Change ticket (required)")).to_have_accessible_description(
        "Like CHG-1234. This field is required."
    )
    await expect(page.get_by_label("Rows affected")).to_have_value("-5")
    await assert_accessible(page)
    await screenshot("docs-approval-errors")

    await summary.get_by_role("link", name="Comment: A comment is required.").click()
    await expect(comment).to_be_focused()
    await comment.fill("Checked the flagged rows: a known upstream backfill.")
    await page.get_by_label("Change ticket (required)").fill("CHG-1234")
    await page.get_by_label("Risk (required)").select_option("low")
    await page.get_by_label("eu-west").check()
    await page.get_by_label("Rollback tested").check()
    await page.get_by_label("Rows affected").fill("120000")
    await page.get_by_role("button", name="Approve").focus()
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("status")).to_contain_text("Approved by Dana Scully at")
    await expect(page.get_by_role("status")).to_contain_text("Your decision is recorded.")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    history = page.get_by_role("list").filter(has_text="opened it")
    await expect(history).to_contain_text("Nightly pipeline opened it")
    await expect(history).to_contain_text(
        "Dana Scully approved: “Checked the flagged rows: a known upstream backfill.”"
    )
    await expect(history).to_contain_text("settled it as approved (decision)")
    await assert_accessible(page)
    await screenshot("docs-approval-settled")
    assert (await pipeline.approvals.get(approval.id)).status == "approved"
    assert script_watch == []


@pytest.mark.parametrize(
    ("context_options", "name"),
    [(PHONE, "phone"), (DARK, "dark"), (PHONE | DARK, "phone-dark")],
    indirect=["context_options"],
)
async def test_the_inbox_and_an_approval_fit_a_phone_and_the_dark_scheme(
    admin, pipeline, mailbox, page, screenshot, name
):
    await joined(page, admin, mailbox)
    approval = await some_approvals(pipeline)
    await page.goto("/approvals")
    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()
    await assert_accessible(page)
    assert await page_width(page) == {"window": page.viewport_size["width"]} | {
        "content": page.viewport_size["width"]
    }
    await screenshot(f"docs-inbox-{name}")

    await page.goto(f"/approvals/{approval.id}")
    await expect(page.get_by_role("button", name="Reject")).to_be_visible()
    await assert_accessible(page)
    assert (await page_width(page))["content"] == page.viewport_size["width"]
    await screenshot(f"docs-approval-{name}")


async def test_a_hostile_request_shows_as_text_and_runs_nothing(
    admin, pipeline, mailbox, page, screenshot, script_watch
):
    await joined(page, admin, mailbox)
    form: dict[str, Any] = {
        "type": "object",
        "properties": {
            HOSTILE: {"type": "string", "title": HOSTILE, "description": HOSTILE},
            "pick": {"enum": [HOSTILE, "ok"], "title": "Pick"},
        },
    }
    await pipeline.approvals.create(
        title=HOSTILE,
        body=(
            f"{HOSTILE}\n\n[click me](javascript:window.__ran=1) "
            '<a href="javascript:alert(1)">raw</a> ![x](javascript:alert(1))'
        ),
        context={HOSTILE: HOSTILE, "link": "javascript:alert(1)", "nested": {HOSTILE: [HOSTILE]}},
        labels=[HOSTILE[:100]],
        approvers=["team:data-owners"],
        policy={"form": form},
    )
    await page.goto("/approvals")
    await expect(page.get_by_role("link", name=HOSTILE, exact=True)).to_have_count(2)
    title_link, label_link = await page.get_by_role("link", name=HOSTILE, exact=True).all()
    await expect(label_link).to_have_class("tag")
    await title_link.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    await expect(page.locator(".markdown")).to_contain_text(HOSTILE)
    await expect(page.locator(".markdown")).to_contain_text("[click me](javascript:window.__ran=1)")
    await expect(page.get_by_role("rowheader", name=HOSTILE).first).to_be_visible()
    await expect(page.get_by_text("javascript:alert(1)", exact=True)).to_be_visible()
    await expect(page.get_by_label(HOSTILE)).to_have_accessible_description(HOSTILE)
    assert await page.locator("main script, main img, main [onerror]").count() == 0
    assert await page.locator('a[href^="javascript:"]').count() == 0
    await screenshot("security-hostile-approval")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("Approved by")
    assert await page.evaluate("() => window.__ran === undefined")
    assert script_watch == []


async def test_every_portal_page_answers_with_a_strict_content_security_policy(
    admin, pipeline, mailbox, page
):
    await joined(page, admin, mailbox)
    approval = await some_approvals(pipeline)
    for path in ("/", "/approvals?status=any", f"/approvals/{approval.id}", "/approvals/ap_nope"):
        answer = await page.goto(path)
        assert answer is not None
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
    assert answer.status == 404
    await expect(page.get_by_role("heading", name="No such approval")).to_be_visible()
    await assert_accessible(page)


async def test_an_error_page_keeps_the_navigation_while_signed_in(
    admin, pipeline, mailbox, page, screenshot
):
    await joined(page, admin, mailbox)
    answer = await page.goto("/no/such/page")
    assert answer is not None
    assert answer.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    main_nav = page.get_by_role("navigation", name="Main")
    await expect(main_nav.get_by_role("link", name="Inbox")).to_be_visible()
    await assert_accessible(page)
    await screenshot("error-404-signed-in")

    await page.get_by_role("button", name="Sign out").click()  # from the error page itself
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    answer = await page.goto("/no/such/page")
    assert answer is not None
    assert answer.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(page.get_by_role("navigation")).to_have_count(0)
    await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
