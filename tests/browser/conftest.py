"""Fixtures for browser tests: one headless Chromium for the session (Debian's package, never a
browser Playwright downloads), a fresh browser context per test, a mailbox the server sends
its email to, and screenshots anyone can look at after a run.

Playwright's async API, not its sync one: the sync API marks its event loop as running on the
main thread for as long as it lives, so every later ``asyncio.run()`` and pytest-asyncio test
in the session would fail (microsoft/playwright-pytest#167). Every test here runs in the
session's event loop instead, which runs only while a browser test does.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from signoff import AsyncClient
from tests.conftest import smtp_settings
from tests.mailbox import Mailbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the sandbox does not start as root, and CI's containers run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "failures"
HERE = Path(__file__).parent
CALL_REPORT = pytest.StashKey[pytest.TestReport]()

Screenshot = Callable[[str], Awaitable[None]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a browser test and runs in the session's event loop, where the
    browser lives."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; its absence fails every browser test (a skipped suite would hide a
    missing install step) unless they are skipped on purpose."""
    if os.environ.get("SIGNOFF_SKIP_BROWSER_TESTS") == "1":
        pytest.skip("browser tests skipped: SIGNOFF_SKIP_BROWSER_TESTS=1")
    if not CHROMIUM.exists():
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium "
            "(or set SIGNOFF_SKIP_BROWSER_TESTS=1 to skip them)",
            pytrace=False,
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@pytest.fixture
def context_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Change a test's browser context (viewport, ...): ``@pytest.mark.parametrize(
    "context_options", [{...}], indirect=True)``."""
    return getattr(request, "param", {})


@pytest_asyncio.fixture(loop_scope="session")
async def page(
    chromium: Browser, server, context_options: dict[str, Any], request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A page in a fresh context (no cookies) on the test server; on failure its screenshot
    and HTML go to test-artifacts/failures/."""
    context: BrowserContext = await chromium.new_context(base_url=server.url, **context_options)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        yield page
        report = request.node.stash.get(CALL_REPORT, None)
        await _keep_failure(page, request.node.name, failed=report is None or report.failed)
    finally:
        await context.close()


async def _keep_failure(page: Page, test_name: str, *, failed: bool) -> None:
    """The page as the test left it, when it failed; a passing rerun removes stale ones."""
    stem = FAILURES / re.sub(r"[^\w.-]+", "-", test_name).strip("-")
    png, html = stem.with_suffix(".png"), stem.with_suffix(".html")
    if not failed:
        png.unlink(missing_ok=True)
        html.unlink(missing_ok=True)
        return
    FAILURES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=png, full_page=True)
    html.write_text(await page.content(), encoding="utf-8")


@pytest.fixture
def screenshot(page: Page) -> Screenshot:
    """``await screenshot("signin-01-invitation")``: the whole page, kept in
    test-artifacts/screenshots/ under that name."""

    async def take(name: str) -> None:
        await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return take


@pytest.fixture
def settings_overrides(mailbox: Mailbox, request: pytest.FixtureRequest) -> dict[str, object]:
    extra = getattr(request, "param", {})
    return smtp_settings(mailbox) | extra


@pytest_asyncio.fixture(loop_scope="session")
async def admin(server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, api_key=server.admin_key) as client:
        yield client
