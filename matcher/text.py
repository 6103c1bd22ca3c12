"""Text normalisation shared by search and matching."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Mapping

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


_PLACE_WORDS = {
    **_SAINT,
    "arr": "arrondissement",
    "arrt": "arrondissement",
    "arrdt": "arrondissement",
    "ardt": "arrondissement",
}
# Ordinals as people write them ('1ère', '1re', '2ème', '2eme', '2nd'), as the referential
# does ('1er', '2e'): 'Marseille 1ère arr.' finds 'Marseille 1er Arrondissement'.
_FIRST = re.compile(r"^1(?:er|re|ere|e)$")
_ORDINAL = re.compile(r"^([0-9]+)(?:e|eme|em|ieme|nd|nde|d)$")


def _place_word(token: str) -> str:
    if _FIRST.match(token):
        return "1er"
    match = _ORDINAL.match(token)
    if match:
        return match.group(1) + "e"
    return _PLACE_WORDS.get(token, token)


def fold_place_name(text: str) -> str:
    """`fold` plus the abbreviations people type in place names ('St-Tropez', '1ère arr.')."""
    return " ".join(_place_word(token) for token in fold(text).split())


_NON_WORD = re.compile(r"[\W_]+")


def name_key(text: str) -> str:
    """The key names are searched and sorted by, the French way: Unicode NFKC, accents and
    case ignored, any punctuation or apostrophe style a single space ("L’Établi" and
    "l'etabli" -> "l etabli"). Letters of other scripts are kept (where `fold` drops
    them), so that every name has a key its own words find."""
    out = strip_accents(unicodedata.normalize("NFKC", text)).casefold()
    return " ".join(_NON_WORD.sub(" ", out).split())


def normalise_statement(text: str) -> str:
    """Canonical form of a statement for hashing: NFC, single spaces, trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_statement(text).encode("utf-8")).hexdigest()


# --- the text every matching signal reads ---------------------------------------------

# Bumped whenever `normalise_for_matching` changes what it returns: it is part of the name
# of the embedding space, so vectors of texts normalised differently never mix.
NORMALISATION_VERSION = 1

_APOSTROPHES = str.maketrans(dict.fromkeys("\u2019\u2018\u02bc\u00b4\u0060\u2032", "'"))
# Capital letters separated by dots, at least two, the last dot optional: "A.N.R.U.".
_DOTTED = re.compile(r"(?<![\w.])((?:[A-ZÀ-Ý]\.)+[A-ZÀ-Ý])\.?(?!\w)")
_TOKEN = re.compile(r"[^\W_]+")
# A word as acronyms are written: parts joined by hyphens, maybe a final "+" ("REP+").
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*\+?")
_VOWELS = frozenset("aeiouyàâäéèêëîïôöùûüÿæœ")
# Shouting: most letters in capitals, over enough letters that it is not one acronym.
SHOUTING_SHARE = 0.6
SHOUTING_MIN_LETTERS = 6


def _undot(match: re.Match[str]) -> str:
    return match.group(1).replace(".", "")


def _shouting(text: str, acronyms: Mapping[str, str]) -> bool:
    """Whether most letters are capitals, acronyms (known, or words without a vowel) aside."""
    if sum(map(str.isupper, text)) <= SHOUTING_SHARE * SHOUTING_MIN_LETTERS:
        return False
    upper = total = 0
    for token in _TOKEN.findall(text):
        lower = token.lower()
        if lower in acronyms or _VOWELS.isdisjoint(lower):
            continue
        total += len(token)
        upper += len(token) if token.isupper() else sum(map(str.isupper, token))
    return total >= SHOUTING_MIN_LETTERS and upper > SHOUTING_SHARE * total


def _case_part(match: re.Match[str]) -> str:
    token = match.group(0)
    # "HLM", "Hlm", "SNCF": a word without a vowel written with a capital is an acronym.
    if not token.islower() and _VOWELS.isdisjoint(token.lower()):
        if sum(map(str.isalpha, token)) >= 2:
            return token.upper()
    return token.lower()


def acronym_pattern(spellings: Mapping[str, str]) -> re.Pattern[str] | None:
    """Case-insensitive pattern of the acronyms of `spellings` (by lower case) that are not
    one word ("AR Hlm"); the others are looked up word by word."""
    several = [a for a in spellings if not _WORD.fullmatch(a)]
    if not several:
        return None
    alternatives = "|".join(re.escape(a) for a in sorted(several, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives})(?![\w-])", re.IGNORECASE)


def normalise_for_matching(
    text: str,
    acronyms: Mapping[str, str] | None = None,
    *,
    as_written: Collection[str] = (),
    pattern: re.Pattern[str] | None = None,
) -> str:
    """The form of a text that every matching signal reads (dense encoder, character
    n-grams, word stems, thesaurus), so that case, dots and typography change no match.

    Casing is canonical, not the writer's: words in lower case, acronyms in capitals (in
    their thesaurus spelling). A text written normally, in capitals or in a hurry thus
    reads the same. Names lose their capitals too: when they kept them, 20 of the 181 demo
    competencies ranked other organisations once typed in capitals, and lower-casing them
    cost nothing measurable on the evaluation set.

    Parameters
    ----------
    text : a statement, a profile or a query, as written.
    acronyms : the canonical spelling of each acronym recognised whatever its case, keyed
        by its lower-case form ("anru" -> "ANRU"); acronyms that are also French words
        ("plus", "ami") are left out, and given in `as_written`.
    as_written : acronyms kept when written exactly so in a text that is not shouted
        ("PLUS" in a sentence is the loan; in a shouted text it is the word "plus").
    pattern : `acronym_pattern(acronyms)`, when the caller keeps it compiled.

    Returns
    -------
    The text in Unicode NFC, typographic apostrophes as "'", dotted acronyms undotted
    ("A.N.R.U." -> "ANRU"), in lower case but for acronyms: those of the thesaurus in
    their canonical spelling ("anru", "Anru" -> "ANRU"), words without a vowel written
    with a capital in capitals ("Hlm" -> "HLM").
    """
    acronyms = acronyms or {}
    out = text if text.isascii() else unicodedata.normalize("NFC", text)
    out = out.translate(_APOSTROPHES)
    if "." in out:
        out = _DOTTED.sub(_undot, out)
    shouted = _shouting(out, acronyms)

    def case(match: re.Match[str]) -> str:
        word = match.group(0)
        lower = word.lower()
        if lower in acronyms:
            return acronyms[lower]
        if lower[-1] == "+" and lower[:-1] in acronyms:
            return acronyms[lower[:-1]] + "+"
        if not shouted and word in as_written:
            return word  # "PLUS" written so in a sentence is the loan, not the word
        return lower if word.islower() else _TOKEN.sub(_case_part, word)

    out = _WORD.sub(case, out)
    if pattern is None:
        pattern = acronym_pattern(acronyms)
    if pattern is not None:
        out = pattern.sub(lambda m: acronyms.get(m.group(1).lower(), m.group(1)), out)
    return out
