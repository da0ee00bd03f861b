"""A requester's Markdown and links as the portal shows them: nothing runs, nothing loads."""

from __future__ import annotations

import pytest

from signoff.web.portal import markup, timing


def test_raw_html_in_markdown_is_text():
    html = markup.markdown('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">')
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,<b>x</b>", "vbscript:x"],
)
def test_only_web_and_mail_links_become_links(link):
    html = markup.markdown(f"[click]({link}) <{link}>")
    assert "<a " not in html


def test_web_links_open_without_the_opener_or_a_referrer_and_images_stay_text():
    html = markup.markdown("[docs](https://example.com/a) ![chart](https://example.com/c.png)")
    assert '<a href="https://example.com/a" rel="noopener nofollow noreferrer">docs</a>' in html
    assert "<img" not in html


def test_headings_start_under_the_pages_own():
    assert markup.markdown("# Why\n\n###### Deep").startswith("<h3>Why</h3>\n<h6>Deep</h6>")


@pytest.mark.parametrize(
    ("value", "is_link"),
    [
        ("https://ci.example.com/runs/1", True),
        ("http://example.com", True),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://a.example.com/ x", False),
        ("ftp://example.com/f", False),
        (42, False),
    ],
)
def test_only_http_and_https_urls_in_the_context_are_links(value, is_link):
    assert markup.is_web_link(value) is is_link


def test_time_left_reads_as_words():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 25, tzinfo=UTC)
    assert timing.time_left(now + timedelta(days=1, hours=3, minutes=5), now) == (
        "1 day 3 hours left"
    )
    assert timing.time_left(now + timedelta(minutes=40), now) == "40 minutes left"
    assert timing.time_left(now + timedelta(seconds=30), now) == "less than a minute left"
    assert timing.time_left(now - timedelta(hours=5), now) == "5 hours ago"
