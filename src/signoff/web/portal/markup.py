"""A requester's words as safe HTML: the body's Markdown, and links in the context.

The body is CommonMark rendered by markdown-it-py with raw HTML off (a ``<script>`` in it is
shown as text), links only to http, https and mailto (a ``javascript:`` link stays text),
each with ``rel="noopener nofollow noreferrer"``, and images shown as their alt text (the page
loads nothing from elsewhere: see the Content-Security-Policy in ``security``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

LINK_SCHEMES = ("http", "https", "mailto")


def is_web_link(value: object) -> bool:
    """Whether ``value`` is a URL a page may link to (http or https, with a host)."""
    if not isinstance(value, str) or len(value) > 2048 or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _validate_link(url: str) -> bool:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    return scheme in LINK_SCHEMES


def _link_open(
    renderer: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", "noopener nofollow noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.enable("table")
    md.enable("strikethrough")
    md.validateLink = _validate_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _markdown()


def markdown(text: Any) -> Markup:
    """``text`` (Markdown) as HTML that runs nothing and loads nothing. Its headings start at
    level 3, under the page's own title and sections."""
    env: EnvType = {}
    tokens = _MD.parse(str(text), env)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    html = _MD.renderer.render(tokens, _MD.options, env)
    return Markup(html)  # noqa: S704 - html is off: every tag a requester wrote was escaped
