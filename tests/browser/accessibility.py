"""An automated accessibility check of the page a browser test is on: axe-core (installed
from PyPI with axe-playwright-python, never committed) run in the page, WCAG 2.1 A and AA
rules, and every violation listed in the failure."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

_AXE = Axe()
_OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
}


async def assert_accessible(page: Page) -> None:
    """Fail with axe's report when the page breaks a WCAG 2.1 A/AA rule axe can check."""
    results = await _AXE.run(page, options=_OPTIONS)
    if results.violations_count:
        raise AssertionError(f"{page.url} is not accessible:\n{results.generate_report()}")
