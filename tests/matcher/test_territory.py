from __future__ import annotations

import pytest

from matcher.territory import (
    AmbiguousTerritoryRef,
    TerritoryRef,
    TerritoryRefError,
    level_at_least_as_fine,
    make_place,
    parse_territory_ref,
    shared_level,
    shared_territory,
)

AIX = make_place("commune", "13001", epci="200054807", departement="13", region="93")
MARSEILLE = make_place("commune", "13055", epci="200054807", departement="13", region="93")
MARSEILLE_1 = make_place(
    "arrondissement", "13201", commune="13055", epci="200054807", departement="13", region="93"
)
ARLES = make_place("commune", "13004", epci="241300417", departement="13", region="93")
AJACCIO = make_place("commune", "2A004", epci="242010056", departement="2A", region="94")
BASTIA = make_place("commune", "2B033", epci="242000354", departement="2B", region="94")
SEIN = make_place("commune", "29083", departement="29", region="53")  # in no EPCI
DEP_13 = make_place("departement", "13", region="93")
REGION_93 = make_place("region", "93")


class TestParseReference:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("commune:13001", TerritoryRef("commune", "13001")),
            ("13001", TerritoryRef("commune", "13001")),
            ("2a004", TerritoryRef("commune", "2A004")),
            (" epci:200054807 ", TerritoryRef("epci", "200054807")),
            ("200054807", TerritoryRef("epci", "200054807")),
            ("departement:2A", TerritoryRef("departement", "2A")),
            ("département:13", TerritoryRef("departement", "13")),
            ("region:93", TerritoryRef("region", "93")),
            ("departement:974", TerritoryRef("departement", "974")),
        ],
    )
    def test_reads_typed_and_bare_codes(self, raw: str, expected: TerritoryRef) -> None:
        assert parse_territory_ref(raw) == expected

    @pytest.mark.parametrize("raw", ["93", "13", "2A", "974"])
    def test_bare_short_code_is_refused_as_ambiguous(self, raw: str) -> None:
        with pytest.raises(AmbiguousTerritoryRef, match="departement:"):
            parse_territory_ref(raw)

    @pytest.mark.parametrize(
        "raw",
        ["", "   ", "quartier:1", "commune:1300", "epci:12345", "region:ABC", "Aix", "1234567"],
    )
    def test_unreadable_reference_says_what_was_expected(self, raw: str) -> None:
        with pytest.raises(TerritoryRefError) as info:
            parse_territory_ref(raw)
        assert str(info.value)  # a French sentence, never empty


class TestContainment:
    def test_marseille_arrondissement_is_inside_marseille_its_epci_and_departement(self) -> None:
        assert MARSEILLE_1.within("commune", "13055")
        assert MARSEILLE_1.within("epci", "200054807")
        assert MARSEILLE_1.within("departement", "13")
        assert MARSEILLE_1.within("region", "93")
        assert not MARSEILLE_1.within("commune", "13001")

    def test_corsica_communes_belong_to_their_own_departement(self) -> None:
        assert AJACCIO.within("departement", "2A")
        assert not AJACCIO.within("departement", "2B")
        assert BASTIA.within("departement", "2B")
        assert AJACCIO.within("region", "94")
        assert BASTIA.within("region", "94")
        assert not AJACCIO.within("region", "93")

    def test_commune_in_no_epci_is_still_in_its_departement(self) -> None:
        assert SEIN.within("departement", "29")
        assert not any(level == "epci" for level, _ in SEIN.ancestors)


class TestSharedLevel:
    @pytest.mark.parametrize(
        ("a", "b", "level"),
        [
            ([AIX], [AIX], "commune"),
            ([AIX], [MARSEILLE], "epci"),
            ([MARSEILLE_1], [MARSEILLE], "commune"),
            ([AIX], [ARLES], "departement"),
            ([AIX], [DEP_13], "departement"),
            ([AIX], [REGION_93], "region"),
            ([AJACCIO], [BASTIA], "region"),
            ([AIX], [AJACCIO], None),
            ([SEIN], [AIX], None),
            ([], [AIX], None),
        ],
    )
    def test_finest_level_shared(self, a: list, b: list, level: str | None) -> None:
        assert shared_level(a, b) == level
        assert shared_level(b, a) == level

    def test_several_territories_take_the_finest_pair(self) -> None:
        assert shared_territory([AJACCIO, ARLES], [MARSEILLE, BASTIA]) == ("departement", "13")

    def test_filter_bounds(self) -> None:
        assert level_at_least_as_fine("commune", "epci")
        assert level_at_least_as_fine("epci", "epci")
        assert not level_at_least_as_fine("region", "departement")
        assert not level_at_least_as_fine(None, "region")
