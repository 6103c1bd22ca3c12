"""The text every matching signal reads: case, dots in acronyms and typography change no match."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from matcher.text import content_hash, normalise_for_matching
from matcher.thesaurus import Thesaurus, acronyms_also_words
from tests.conftest import FIXTURES

THESAURUS = Thesaurus(
    name="test",
    acronyms={
        "QPV": "quartier prioritaire de la politique de la ville",
        "ANRU": "agence nationale pour la rénovation urbaine",
        "Anru": "agence nationale pour la rénovation urbaine",
        "OPAH-RU": "opération programmée d'amélioration de l'habitat renouvellement urbain",
        "PLUS": "prêt locatif à usage social",
        "AMI": "appel à manifestation d'intérêt",
        "PUMa": "protection universelle maladie",
        "IAE": "insertion par l'activité économique",
    },
    concepts={"jardin partagé": ("potager collectif",)},
    acronyms_also_words=frozenset({"PLUS", "AMI", "PUMa"}),
)
SHIPPED = FIXTURES / "thesaurus" / "habitat-social-fr.json"
LEXICON = Path("/usr/share/dict/french")


def read(text: str) -> str:
    """What the matcher reads of `text`: normalised, then expanded by the thesaurus."""
    return THESAURUS.expand(THESAURUS.normalise(text))


class TestTypography:
    @pytest.mark.parametrize("apostrophe", ["\u2019", "\u2018", "\u02bc", "\u00b4", "`"])
    def test_typographic_apostrophes_become_plain_ones(self, apostrophe: str) -> None:
        text = f"main d{apostrophe}oeuvre pour l{apostrophe}entretien"
        assert normalise_for_matching(text) == "main d'oeuvre pour l'entretien"

    def test_composed_and_decomposed_input_read_the_same(self) -> None:
        composed = "rénovation énergétique des logements à aix"
        decomposed = unicodedata.normalize("NFD", composed)
        assert decomposed != composed
        assert THESAURUS.normalise(decomposed) == THESAURUS.normalise(composed) == composed
        assert read(decomposed.upper()) == read(composed.upper()) == read(composed)

    def test_content_hash_is_left_as_it_was_defined(self) -> None:
        """Existing rows keep their hashes: case still tells two statements apart."""
        assert content_hash("Animer un jardin") != content_hash("ANIMER UN JARDIN")
        assert content_hash("l’ANRU") != content_hash("l'ANRU")


class TestDottedAcronyms:
    @pytest.mark.parametrize("written", ["A.N.R.U.", "A.N.R.U", "ANRU", "anru", "Anru"])
    def test_every_spelling_reads_as_the_acronym(self, written: str) -> None:
        assert THESAURUS.normalise(f"Dossier {written} en cours") == "dossier ANRU en cours"

    def test_dotted_acronym_at_the_end_of_a_sentence(self) -> None:
        assert THESAURUS.normalise("Financé par l’A.N.R.U.") == "financé par l'ANRU"

    @pytest.mark.parametrize("text", ["m. dupont", "p.ex. un jardin", "c.-à-d. ici", "3.5 m"])
    def test_single_initials_and_abbreviations_are_left_alone(self, text: str) -> None:
        assert normalise_for_matching(text) == text


class TestCase:
    @pytest.mark.parametrize(
        "written",
        [
            "Chantiers d'insertion (IAE) pour l'entretien des espaces verts en QPV, à Aix",
            "Chantiers d’insertion (iae) pour l’entretien des espaces verts en qpv, à Aix",
        ],
    )
    def test_text_in_capitals_reads_like_the_same_text_written_normally(self, written: str) -> None:
        expected = "chantiers d'insertion (IAE) pour l'entretien des espaces verts en QPV, à aix"
        assert THESAURUS.normalise(written) == expected
        assert THESAURUS.normalise(written.upper()) == expected
        assert read(written.upper()) == read(written) == read(expected)

    def test_the_issue_query_in_capitals(self) -> None:
        assert (
            THESAURUS.normalise("MAIN D’OEUVRE EN INSERTION POUR L’ENTRETIEN")
            == THESAURUS.normalise("Main d'oeuvre en insertion pour l'entretien")
            == "main d'oeuvre en insertion pour l'entretien"
        )

    def test_acronyms_keep_their_capitals(self) -> None:
        assert (
            THESAURUS.normalise("ACCOMPAGNEMENT EN QPV ET OPAH-RU. SUIVI DES HLM")
            == "accompagnement en QPV et OPAH-RU. suivi des HLM"
        )

    @pytest.mark.parametrize("written", ["HLM", "Hlm"])
    def test_a_capitalised_word_without_a_vowel_is_an_acronym(self, written: str) -> None:
        assert normalise_for_matching(f"Vente {written} aux locataires") == (
            "vente HLM aux locataires"
        )

    def test_other_lower_case_words_stay_lower_case(self) -> None:
        assert normalise_for_matching("rdv à 3 km") == "rdv à 3 km"


class TestAcronymsWhateverTheirCase:
    @pytest.mark.parametrize("written", ["qpv", "QPV", "Qpv"])
    def test_acronym_typed_in_any_case_is_spelled_out(self, written: str) -> None:
        normalised = THESAURUS.normalise(f"animation en {written}")
        assert normalised == "animation en QPV"
        assert THESAURUS.annotations(normalised) == [
            "quartier prioritaire de la politique de la ville"
        ]

    def test_capitals_spelling_is_preferred(self) -> None:
        assert THESAURUS.normalise("avec l'Anru") == "avec l'ANRU"

    def test_hyphenated_acronym_in_lower_case(self) -> None:
        assert THESAURUS.normalise("une opah-ru") == "une OPAH-RU"

    @pytest.mark.parametrize("text", ["plus de jardins", "un ami", "le puma", "Plus tard"])
    def test_french_words_that_are_also_acronyms_are_not_expanded(self, text: str) -> None:
        assert read(text) == text.lower()

    def test_such_acronyms_are_still_read_as_written_in_a_sentence(self) -> None:
        assert read("Financement en PLUS") == "financement en PLUS (prêt locatif à usage social)"

    def test_in_a_shouted_text_such_acronyms_read_as_words(self) -> None:
        """A text in capitals does not tell "PLUS" the loan from "plus" the word: the word
        is far the likelier."""
        assert read("PLUS DE JARDINS POUR UN AMI") == "plus de jardins pour un ami"

    def test_acronym_inside_a_word_is_left_alone(self) -> None:
        for text in ("aqpvz", "les sqpva", "qpvs", "ex-qpv", "anrus"):
            assert THESAURUS.normalise(text) == text, text

    def test_the_list_of_such_acronyms_is_part_of_the_fingerprint(self) -> None:
        fewer = Thesaurus(
            name="test",
            acronyms=THESAURUS.acronyms,
            concepts=THESAURUS.concepts,
            acronyms_also_words=frozenset(),
        )
        assert fewer.fingerprint != THESAURUS.fingerprint
        assert fewer.normalise("plus") == "PLUS"


class TestShippedThesaurus:
    def test_acronyms_also_words_compares_lower_case_without_accents(self) -> None:
        lexicon = ["âme", "plus", "puma", "jardin"]
        assert acronyms_also_words(["AME", "PLUS", "PUMa", "QPV"], lexicon) == [
            "AME",
            "PLUS",
            "PUMa",
        ]

    def test_every_word_listed_is_an_acronym_of_the_file(self) -> None:
        data = json.loads(SHIPPED.read_text(encoding="utf-8"))
        assert data["acronyms_also_words"]
        assert set(data["acronyms_also_words"]) <= set(data["acronyms"])

    @pytest.mark.skipif(not LEXICON.exists(), reason="the French lexicon (wfrench) is missing")
    def test_the_list_is_every_acronym_that_is_a_french_word(self) -> None:
        data = json.loads(SHIPPED.read_text(encoding="utf-8"))
        lexicon = LEXICON.read_text(encoding="utf-8").split()
        assert sorted(data["acronyms_also_words"]) == acronyms_also_words(data["acronyms"], lexicon)

    @pytest.mark.parametrize(
        ("query", "expected"),
        [("anru", "ANRU"), ("A.N.R.U.", "ANRU"), ("qpv", "QPV"), ("la Caf", "la CAF")],
    )
    def test_hurried_spellings_read_as_the_acronym(self, query: str, expected: str) -> None:
        thesaurus = Thesaurus.from_file(SHIPPED)
        assert thesaurus.normalise(query) == expected
