"""An approver's path from the emailed Approve link to a recorded decision, in headless
Chromium: the confirmation page, a required comment left empty, the decided page, the link
opened again once the approval settled, and a request whose title, body (raw HTML,
``javascript:`` links), context and label try to run script, before and after it settled.

tests/integration/test_decision_links.py has the same paths over plain HTTP; this adds what
only a browser shows: nothing a requester wrote runs, and the page works with the keyboard.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Dialog, Page, expect

from signoff import AsyncClient
from tests.browser.accessibility import assert_accessible
from tests.browser.test_signin import PHONE, page_width
from tests.conftest import RunningServer
from tests.mailbox import Mailbox, text_of

HOSTILE = '<script>window.__ran=1;alert("x")</script><img src=x onerror="window.__ran=1">'
LINK = re.compile(r"https?://\S+/decide/\S+")


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Every alert, confirm or prompt the page opens (none must ever open)."""
    opened: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        opened.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


async def approve_link(
    server: RunningServer, admin: AsyncClient, mailbox: Mailbox, **fields: object
) -> str:
    """Alice's Approve link from the email an approval made by a pipeline sends her."""
    await admin.people.create_user("alice@example.com", name="Alice Liddell")
    await admin.people.create_user("pipeline@example.com")
    key = (await admin.people.create_key(user="pipeline@example.com")).key
    async with AsyncClient(server.url, api_key=key) as pipeline:
        await pipeline.approvals.create(approvers=["alice@example.com"], **fields)  # type: ignore[arg-type]
    [message] = await asyncio.to_thread(mailbox.wait_for, "alice@example.com")
    return str(LINK.findall(text_of(message))[0])


async def test_an_approver_confirms_from_the_email_link_with_the_comment_the_policy_asks_for(
    server, admin, mailbox, page, screenshot, dialogs
):
    link = await approve_link(
        server,
        admin,
        mailbox,
        title="Apply batch 2026-11-22 for customer 42?",
        body="6.4% of rows were flagged as anomalies.\nThe threshold is 6%.",
        context={"customer": 42, "flagged_ratio": 0.064, "tables": ["orders", "refunds"]},
        policy={"comment_required": True},
    )
    answer = await page.goto(link)
    assert answer is not None
    assert answer.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Apply batch 2026-11-22 for customer 42?"
    )
    await expect(page.get_by_text("The threshold is 6%.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Approve as Alice Liddell")).to_be_visible()
    await screenshot("docs-decide")
    await assert_accessible(page)

    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("alert")).to_contain_text("needs a change")
    comment = page.get_by_label("Comment (required)")
    await expect(comment).to_have_attribute("aria-invalid", "true")
    await expect(comment).to_have_accessible_description("A comment is required.")
    await screenshot("decide-02-comment-required")
    await assert_accessible(page)

    await comment.fill("Checked the flagged rows: a known upstream backfill.")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Approve")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="You approved")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^\s*Approved by Alice Liddell at \d{4}-\d\d-\d\d \d\d:\d\d UTC\.\s*$")
    )
    await screenshot("decide-03-decided")

    again = await page.goto(link)
    assert again is not None
    assert again.status == 409
    await expect(page.get_by_role("alert")).to_have_text(
        re.compile(
            r"^You already decided on this approval\. Already decided by you at .*approved it"
        )
    )
    await expect(page.locator("#outcome")).to_contain_text("Approved by Alice Liddell at")
    await expect(page.get_by_text("The threshold is 6%.")).to_be_visible()  # the request, still
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await screenshot("docs-decide-settled")
    await assert_accessible(page)
    assert dialogs == []


async def test_a_link_opened_after_the_deadline_says_what_became_of_the_approval(
    server, admin, mailbox, page, screenshot
):
    link = await approve_link(
        server, admin, mailbox, title="Ship it?", timeout="1s", on_timeout="reject"
    )
    [approval] = (await admin.approvals.list()).items
    assert (await admin.approvals.wait(approval.id, timeout=15)).status == "rejected"
    answer = await page.goto(link)
    assert answer is not None
    assert answer.status == 410
    await expect(page.get_by_text("This link is no longer valid")).to_be_visible()
    await expect(page.get_by_text("nobody decided in time, so it was rejected")).to_be_visible()
    await expect(page.locator("#outcome")).to_contain_text("Rejected by the deadline passing at")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await screenshot("decide-05-expired")
    await assert_accessible(page)


async def test_a_hostile_request_is_shown_as_text_and_runs_nothing(
    server, admin, mailbox, page, screenshot, dialogs
):
    link = await approve_link(
        server,
        admin,
        mailbox,
        title=HOSTILE,
        body=(
            f"{HOSTILE}\n\n[click me](javascript:window.__ran=1) "
            '<a href="javascript:alert(1)">raw</a> ![x](javascript:alert(1))'
        ),
        context={HOSTILE: HOSTILE, "link": "javascript:alert(1)", "nested": {HOSTILE: [HOSTILE]}},
        labels=[HOSTILE[:100]],
    )
    await page.goto(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    await expect(page.locator(".markdown")).to_contain_text(HOSTILE)
    await expect(page.locator(".markdown")).to_contain_text("[click me](javascript:window.__ran=1)")
    await expect(page.get_by_role("rowheader", name=HOSTILE).first).to_be_visible()
    await expect(page.get_by_text("javascript:alert(1)", exact=True)).to_be_visible()
    await expect_nothing_ran(page, dialogs)
    await screenshot("decide-05-hostile-request")

    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("heading", name="You approved")).to_be_visible()
    await expect(page.get_by_text(HOSTILE)).to_be_visible()
    await expect_nothing_ran(page, dialogs)

    again = await page.goto(link)  # the settled approval's page shows it all again
    assert again is not None
    assert again.status == 409
    await expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    await expect(page.locator(".markdown")).to_contain_text(HOSTILE)
    await expect(page.get_by_role("rowheader", name=HOSTILE).first).to_be_visible()
    await expect_nothing_ran(page, dialogs)


async def expect_nothing_ran(page: Page, dialogs: list[str]) -> None:
    """No element a requester wrote became markup, no script link exists, nothing ran."""
    assert await page.locator("main script, main img, main [onerror]").count() == 0
    assert await page.locator('a[href^="javascript:"]').count() == 0
    assert await page.evaluate("() => window.__ran === undefined")
    assert dialogs == []


@pytest.mark.parametrize("context_options", [PHONE], indirect=True)
async def test_a_phone_shows_the_confirmation_page_without_sideways_scrolling(
    server, admin, mailbox, page, screenshot
):
    long_key = "upstream_partition_" * 3
    context = {long_key: "s3://bucket/" + "very-long-path-segment/" * 8, "rows": 120000}
    link = await approve_link(server, admin, mailbox, title="Apply batch 7?", context=context)
    await page.goto(link)
    await expect(page.get_by_role("button", name="Approve")).to_be_visible()
    await screenshot("decide-06-phone")
    assert await page_width(page) == {"window": 390, "content": 390}
