"""A person's sign-in paths through the portal in headless Chromium: the emailed invitation, a
password, the authenticator app, recovery codes, signing out and in, a forgotten password.

Fields and buttons are found by their labels and roles, as a person (or a screen reader) finds
them, so an unlabelled field fails here too. tests/integration/test_portal.py has the same
paths over plain HTTP; this adds what only a browser shows.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import update

from signoff.store.tables import InvitationRow
from tests.browser.accessibility import assert_accessible
from tests.mailbox import link_in

PASSWORD = "correct horse battery"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def wrong_code(secret: str) -> str:
    """Six digits that are not the code of any step the server might accept now."""
    totp, now = pyotp.TOTP(secret), time.time()
    near = {totp.at(now + seconds) for seconds in (-60, -30, 0, 30, 60)}
    return next(code for code in (str(digit) * 6 for digit in range(10)) if code not in near)


def next_code(secret: str) -> str:
    """The code of the next time step: a step's code works once, and enrolment used this one."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def join(page: Page, link: str) -> str:
    """Accept an invitation and set up the authenticator, ending on the home page; the key."""
    await page.goto(link)
    await page.get_by_label("Your name").fill("Dana Scully")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("The password again").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account").click()
    secret = await manual_key(page)
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Confirm").click()
    await page.get_by_role("link", name="I have saved them, continue").click()
    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()
    return secret


async def manual_key(page: Page) -> str:
    key = page.get_by_text("Cannot scan?").locator("code")
    await expect(key).to_have_text(re.compile(r"^[A-Z2-7]{16,}$"))
    return await key.inner_text()


async def sign_in(page: Page, email: str, password: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_an_invitee_joins_with_mfa_signs_out_and_in_again(admin, mailbox, page, screenshot):
    await admin.people.create_team("data-owners")
    await admin.people.invite("dana@example.com", teams=["data-owners"])
    [message] = await asyncio.to_thread(mailbox.wait_for, "dana@example.com")

    await page.goto(link_in(message, "/invite/"))
    await expect(page.get_by_role("heading", name="Join signoff")).to_be_visible()
    await expect(page.get_by_text("You were invited as dana@example.com")).to_be_visible()
    await screenshot("signin-01-invitation")
    await page.get_by_label("Your name").fill("Dana Scully")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("The password again").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account").click()

    await expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = await manual_key(page)
    await screenshot("signin-02-authenticator")
    await page.get_by_label("Code from the app").fill(wrong_code(secret))
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("alert")).to_contain_text("The code is not right")
    assert await manual_key(page) == secret  # the app scanned it already: it must still work
    await screenshot("signin-03-authenticator-wrong-code")
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Confirm").click()

    await expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    await expect(codes).to_have_count(10)
    await expect(codes.first).to_have_text(re.compile(r"^[a-z0-9]{5}-[a-z0-9]{5}$"))
    await screenshot("signin-04-recovery-codes")
    await page.get_by_role("link", name="I have saved them, continue").click()

    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Account")).to_contain_text("Dana Scully")
    await screenshot("signin-05-home")
    await page.get_by_role("button", name="Sign out").click()

    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await screenshot("signin-06-signed-out")
    await sign_in(page, "dana@example.com", PASSWORD)

    await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    await page.get_by_label("Code").fill(wrong_code(secret))
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert")).to_contain_text("The code is not right")
    await screenshot("signin-07-code-wrong")
    await page.get_by_label("Code").fill(next_code(secret))
    await page.get_by_role("button", name="Continue").click()

    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Account")).to_contain_text("Dana Scully")
    await screenshot("signin-08-home-again")


async def test_an_expired_invitation_link_says_it_expired(admin, db, page, screenshot):
    sent = await admin.people.invite("dana@example.com")
    with db.write() as session:
        session.execute(
            update(InvitationRow)
            .where(InvitationRow.id == sent.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    answer = await page.goto(sent.link)
    assert answer is not None
    assert answer.status == 410
    await expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()
    await expect(page.get_by_text("This invitation expired")).to_be_visible()
    await expect(page.get_by_role("textbox")).to_have_count(0)
    await screenshot("expired-01-invitation")


async def test_an_accepted_invitation_link_says_so_when_opened_again(admin, page, screenshot):
    sent = await admin.people.invite("dana@example.com")
    await join(page, sent.link)

    answer = await page.goto(sent.link)
    assert answer is not None
    assert answer.status == 410
    await expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()
    await expect(page.get_by_text("already accepted; sign in instead")).to_be_visible()
    await screenshot("reused-01-invitation")


async def test_signing_in_works_with_the_keyboard_alone_and_focus_shows(admin, page, screenshot):
    sent = await admin.people.invite("dana@example.com")
    secret = await join(page, sent.link)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    await expect(page.get_by_label("Email")).to_be_focused()
    await page.keyboard.type("dana@example.com")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Sign in")
    await expect(button).to_be_focused()
    assert await focus_ring_of(page) != "none"
    await screenshot("keyboard-01-sign-in-button-focused")
    await page.keyboard.press("Enter")

    await expect(page.get_by_label("Code")).to_be_focused()
    assert await focus_ring_of(page) != "none"
    await page.keyboard.type(next_code(secret))
    await screenshot("keyboard-02-code")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()


async def focus_ring_of(page: Page) -> str:
    """The focused element's outline as drawn ("none" when it has none)."""
    return await page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement);
            return style.outlineStyle === "none" || parseFloat(style.outlineWidth) === 0
                ? "none" : `${style.outlineWidth} ${style.outlineStyle}`;
        }"""
    )


async def test_a_forgotten_password_is_reset_from_the_emailed_link(
    admin, mailbox, page, screenshot
):
    sent = await admin.people.invite("dana@example.com")
    secret = await join(page, sent.link)
    await page.get_by_role("button", name="Sign out").click()

    await page.get_by_role("link", name="Forgot your password?").click()
    await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    await screenshot("reset-01-request")
    await page.get_by_label("Email").fill("dana@example.com")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await screenshot("reset-02-sent")

    [_, message] = await asyncio.to_thread(mailbox.wait_for, "dana@example.com", count=2)
    assert message["Subject"] == "Reset your signoff password"
    await page.goto(link_in(message, "/reset/"))
    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    await screenshot("reset-03-new-password")
    await page.get_by_label("New password", exact=True).fill("new horse battery")
    await page.get_by_label("The new password again").fill("new horse battery")
    await page.get_by_role("button", name="Change my password").click()

    await expect(page.get_by_role("status")).to_have_text(
        "Your password is changed. Sign in with it."
    )
    await screenshot("reset-04-changed")
    await sign_in(page, "dana@example.com", PASSWORD)
    await expect(page.get_by_role("alert")).to_be_visible()
    await sign_in(page, "dana@example.com", "new horse battery")
    await page.get_by_label("Code").fill(next_code(secret))
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()


@pytest.mark.parametrize("context_options", [PHONE], indirect=True)
async def test_a_phone_shows_the_sign_in_pages_without_sideways_scrolling(admin, page, screenshot):
    await page.goto("/login")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await screenshot("phone-01-sign-in")
    await assert_accessible(page)
    assert await page_width(page) == {"window": 390, "content": 390}

    sent = await admin.people.invite("dana@example.com")
    await page.goto(sent.link)
    await expect(page.get_by_role("heading", name="Join signoff")).to_be_visible()
    assert await page_width(page) == {"window": 390, "content": 390}
    await assert_accessible(page)
    await page.get_by_label("Your name").fill("Dana Scully")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("The password again").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account").click()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    await screenshot("phone-02-authenticator")
    assert await page_width(page) == {"window": 390, "content": 390}
    await assert_accessible(page)


async def page_width(page: Page) -> dict[str, int]:
    """The window's width in CSS pixels, and the content's (wider: it scrolls sideways). A
    phone zooms out to fit content wider than the screen, so the window must stay 390 too."""
    return await page.evaluate(
        "() => ({window: window.innerWidth, content: document.documentElement.scrollWidth})"
    )
