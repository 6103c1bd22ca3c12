"""HTML from catalogues of calls (descriptions, eligibility) turned into clean plain text
by inscriptis, which lays text out as a browser would: paragraphs and line breaks kept,
list items as "* " lines, entities decoded, tags and links' addresses dropped."""

from __future__ import annotations

import re
import unicodedata

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

# "strict": no extra indentation or blank lines a browser's default style sheet would add.
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_images=False)
_BLANK_LINES = re.compile(r"\n{3,}")
# A list item left empty by the markup (a <li> holding only a nested list).
_EMPTY_ITEM = re.compile(r"^\s*[*+•-]\s*$")
_MARKUP = re.compile(r"<[a-zA-Z/!][^>]*>|&[a-zA-Z]+;|&#[0-9]+;|&#x[0-9a-fA-F]+;")


def looks_like_html(text: str) -> bool:
    """True when the text holds a tag or a character entity."""
    return _MARKUP.search(text) is not None


def plain_text(html: str) -> str:
    """The text an HTML fragment shows, tidied: NFC, no trailing spaces, no empty list item,
    at most one blank line in a row, no blank line at either end. Plain text comes back
    tidied the same way (a line break in it is kept)."""
    text = get_text(html, _CONFIG) if looks_like_html(html) else html
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\xa0", " "))
    lines = [line.rstrip() for line in text.split("\n") if not _EMPTY_ITEM.match(line)]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n").strip()
