"""The speller a search query goes through first (`matcher.spelling`), with what this
deployment knows besides French: its thesaurus's acronyms and its territory referential's
place names."""

from __future__ import annotations

from pathlib import Path

from api.territories.referential import REFERENTIAL_FILE, place_name_words
from matcher.spelling import Speller, french_speller
from matcher.thesaurus import Thesaurus


def query_speller(fixtures_dir: Path, thesaurus: Thesaurus | None) -> Speller:
    """The French speller (`matcher.spelling.french_speller`) that also leaves as written
    the thesaurus's acronyms and every word of the referential's place names
    (`fixtures_dir`/territories), so that "Grans" or "Bédoin" is never taken for a typo of
    "grands" or "besoin". Reads the referential (about 0.3 s): call it once per process."""
    places = fixtures_dir / REFERENTIAL_FILE
    return french_speller().with_known(
        [
            *(thesaurus.acronyms if thesaurus else ()),
            *(place_name_words(places) if places.exists() else ()),
        ]
    )
