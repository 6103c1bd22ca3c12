"""Misspelt query words, corrected towards the network's words (matcher.spelling): typing
mistakes of every kind are undone, and French text written correctly, place names and
acronyms are never touched, on texts written by other hands than the network's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.territories.referential import REFERENTIAL_FILE, place_name_words
from matcher.evaluation import hurried
from matcher.spelling import Speller, edits1, french_speller, word_counts
from matcher.text import fold
from tests.conftest import FIXTURES


def _texts(path: Path) -> list[str]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return [s["text"] for r in records for s in r["statements"]] + [
        r["description"] for r in records if r.get("description")
    ]


DEMO = _texts(FIXTURES / "demo" / "organisations.json")
EVAL = _texts(FIXTURES / "eval" / "organisations.json")
QUERIES = [q["text"] for q in json.loads((FIXTURES / "eval" / "queries.json").read_text("utf-8"))]


@pytest.fixture(scope="module")
def speller() -> Speller:
    return french_speller().with_known(place_name_words(FIXTURES / REFERENTIAL_FILE))


def test_word_counts_fold_words_and_skip_numbers() -> None:
    assert word_counts(["Jardins partagés", "80 JARDINS, 2e étage"]) == {
        "jardins": 2,
        "partages": 1,
        "etage": 1,
    }


def test_edits_are_one_deletion_swap_insertion_or_neighbouring_key() -> None:
    edits = edits1("abcd")
    assert {"acd", "acbd", "abxd", "abcde", "axbcd", "abcf", "abce"} <= edits  # f, e: next to d
    assert "abcm" not in edits  # m is far from d on AZERTY
    assert not {"bcd", "bacd", "zbcd", "xabcd"} & edits  # the first letter stays as typed


class TestTyposAreUndone:
    VOCABULARY = word_counts(
        ["Accueil des locataires dans nos résidences", "Jardins partagés au pied des bâtiments"]
        + ["Écopâturage et plusieurs ruchers", "Accompagnement des locataires"]
    )

    @pytest.mark.parametrize(
        ("typed", "read"),
        [
            ("acceuil", "accueil"),  # two letters swapped
            ("batments", "bâtiments"),  # one dropped (written with its accent)
            ("locattaires", "locataires"),  # one doubled
            ("residencrs", "résidences"),  # one replaced by a neighbouring key
            ("ecopaturge", "ecopaturage"),  # a word of the field, absent from French lists
        ],
    )
    def test_each_kind_of_typo_becomes_the_network_word(
        self, speller: Speller, typed: str, read: str
    ) -> None:
        assert speller.correct(f"un {typed} pour tous", self.VOCABULARY) == f"un {read} pour tous"

    def test_a_typo_at_the_start_of_a_sentence_is_corrected_too(self, speller: Speller) -> None:
        assert speller.correct("Pulsieurs locataires", self.VOCABULARY) == "plusieurs locataires"

    def test_the_rest_of_the_text_is_kept_as_written(self, speller: Speller) -> None:
        text = "Un lieu d’acceuil, à Aix : 3 résidences ?"
        assert speller.correct(text, self.VOCABULARY) == "Un lieu d’accueil, à Aix : 3 résidences ?"

    def test_a_shouted_query_is_corrected_word_by_word(self, speller: Speller) -> None:
        assert speller.correct("ACCEUIL DES LOCATIRES", self.VOCABULARY) == (
            "accueil DES locataires"
        )

    def test_most_typos_of_the_demo_statements_are_undone(self, speller: Speller) -> None:
        vocabulary = word_counts(DEMO)
        typed = [(hurried(t, typo_rate=0), hurried(t, typo_rate=1)) for t in DEMO]
        typed = [(clean, dirty) for clean, dirty in typed if clean != dirty]
        undone = sum(
            fold(speller.correct(dirty, vocabulary)) == fold(clean) for clean, dirty in typed
        )
        # What is left: typos that made another word ("chantier" → "chanter", "quartiers"
        # → "quarters"), which no speller can tell from what was meant.
        assert undone >= 0.85 * len(typed), (undone, len(typed))


class TestCorrectTextIsLeftAlone:
    @pytest.mark.parametrize(
        ("texts", "network"),
        [(QUERIES, EVAL), (QUERIES + EVAL, DEMO), (DEMO, EVAL)],
        ids=["eval-queries-on-their-network", "eval-texts-on-the-demo", "demo-on-the-eval"],
    )
    def test_french_written_by_other_hands_reads_as_written(
        self, speller: Speller, texts: list[str], network: list[str]
    ) -> None:
        vocabulary = word_counts(network)
        for text in texts:
            for written in (text, hurried(text, typo_rate=0)):  # also without accents or capitals
                assert speller.correct(written, vocabulary) == written

    def test_place_names_acronyms_and_names_in_capitals_are_kept(self, speller: Speller) -> None:
        vocabulary = word_counts(["les grands besoins du secteur", "le besoin", "la ccapes"])
        bare = Speller(speller.lexicon)
        guarded = bare.with_known(["CCAPEX", "Grans", "Bédoin"])
        for text in ("jardins a grans", "jardins a bedoin", "la ccapex"):
            assert bare.correct(text, vocabulary) != text  # a slip of a network word...
            assert guarded.correct(text, vocabulary) == text  # ...but a known word
        # The referential's place names are known to the query speller.
        assert speller.correct("jardins a grans et bedoin", vocabulary) == (
            "jardins a grans et bedoin"
        )
        # A capital inside a sentence marks a name, at the start it does not.
        assert bare.correct("jardins à Bedoin", vocabulary) == "jardins à Bedoin"
        assert bare.correct("Bedoin urgent", vocabulary) == "besoin urgent"

    def test_a_plural_or_feminine_of_a_french_word_is_kept(self, speller: Speller) -> None:
        # "canicules" is not in the lexicon but "canicule" is, and it is one slip away.
        assert "canicules" not in speller.lexicon
        assert "canicule" in speller.lexicon
        assert speller.correct("les canicules", word_counts(["la canicule"])) == "les canicules"

    @pytest.mark.parametrize(
        ("word", "near"),
        [
            ("délogement", "relogement"),  # a slip there would be at the first letter
            ("dévitalisation", "revitalisation"),
            ("îlotage", "pilotage"),
            ("athermique", "thermique"),  # "a" + a French word
            ("déconditionnement", "conditionnement"),  # "dé" + a French word
        ],
    )
    def test_words_one_slip_from_a_network_word_but_french_are_kept(
        self, speller: Speller, word: str, near: str
    ) -> None:
        vocabulary = word_counts([f"le {near} des quartiers"])
        assert speller.correct(f"le {word} des quartiers", vocabulary) == (
            f"le {word} des quartiers"
        )

    def test_short_long_and_foreign_words_are_kept(self, speller: Speller) -> None:
        vocabulary = word_counts(["bati", "accueil"])
        for text in ("bato", "acceuilя", "acceuil" * 300):
            assert speller.correct(text, vocabulary) == text
