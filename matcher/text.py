"""Text normalisation shared by search and matching."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_SAINT = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}


def _accent_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0x00C0, 0x0250):
        decomposed = unicodedata.normalize("NFKD", chr(code))
        base = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        if base != chr(code):
            table[code] = base
    table.update({ord(k): v for k, v in _LIGATURES_MAP.items()})
    return table


_LIGATURES_MAP = {"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "’": "'", "ß": "ss"}
_ACCENTS = _accent_table()


def strip_accents(text: str) -> str:
    """Latin letters without their accents ('Sainte-Étienne' -> 'Sainte-Etienne'), fast path
    by table; other scripts go through Unicode decomposition."""
    out = text.translate(_ACCENTS)
    if out.isascii():
        return out
    decomposed = unicodedata.normalize("NFKD", out)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation as single spaces: 'Saint-Étienne' -> 'saint etienne'."""
    return _NON_ALNUM.sub(" ", strip_accents(text).lower()).strip()


def fold_place_name(text: str) -> str:
    """`fold` plus the abbreviations people type in place names ('St-Tropez')."""
    return " ".join(_SAINT.get(token, token) for token in fold(text).split())


def normalise_statement(text: str) -> str:
    """Canonical form of a statement for hashing: NFC, single spaces, trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_statement(text).encode("utf-8")).hexdigest()
