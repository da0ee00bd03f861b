"""The documentation's links to files in the repository lead somewhere: images the portal's
screenshots script writes, and other documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_names_a_file_that_exists(document: Path):
    targets = [t for t in LINK.findall(document.read_text()) if "://" not in t]
    missing = [
        t for t in targets if not t.startswith("mailto:") and not (document.parent / t).exists()
    ]
    assert missing == [], f"{document.name} links to files that do not exist: {missing}"
