"""Who may answer a call: perimeter overlap, kinds and Hlm legal forms (no database)."""

from __future__ import annotations

import pytest

from matcher.eligibility import (
    COOPERATIVE_HLM,
    ESH,
    OPH,
    SEM,
    CallRules,
    eligible_mask,
    hlm_legal_form,
    legal_form_key,
    refusals,
)
from matcher.territory import make_place

MARSEILLE = make_place("commune", "13055", epci="200054807", departement="13", region="93")
AIX_METROPOLE = make_place("epci", "200054807", departement="13", region="93")
BDR = make_place("departement", "13", region="93")
VAUCLUSE = make_place("departement", "84", region="93")
AVIGNON = make_place("commune", "84007", epci="248400251", departement="84", region="93")
PACA = make_place("region", "93")
CORSE = make_place("region", "94")
# An EPCI across two départements (no département of its own), touching both.
SPANNING = make_place(
    "epci", "200040715", region="84", touches=[("departement", "01"), ("departement", "38")]
)
AIN = make_place("departement", "01", region="84")


def rules(*perimeter, **kw) -> CallRules:  # type: ignore[no-untyped-def]
    return CallRules(perimeter=tuple(perimeter), **kw)


class TestLegalForms:
    @pytest.mark.parametrize(
        ("written", "form"),
        [
            ("OPH", OPH),
            ("Office public de l'habitat", OPH),
            ("office  PUBLIC de l’Habitat", OPH),
            ("OPAC", OPH),
            ("ESH", ESH),
            ("SA d'HLM", ESH),
            ("Entreprise sociale pour l'habitat", ESH),
            ("Société anonyme d'habitations à loyer modéré", ESH),
            ("Coopérative Hlm", COOPERATIVE_HLM),
            ("cooperative HLM", COOPERATIVE_HLM),
            ("SCIC HLM", COOPERATIVE_HLM),
            ("SCP d'HLM", COOPERATIVE_HLM),
            ("SEM", SEM),
            ("SEML", SEM),
            ("Société d'économie mixte", SEM),
            ("EPL", SEM),
        ],
    )
    def test_every_spelling_of_an_hlm_form_reads_as_the_form(self, written: str, form: str) -> None:
        assert hlm_legal_form(written) == form

    @pytest.mark.parametrize("written", ["Association loi 1901", "SAS", "", None, "Université"])
    def test_other_forms_are_not_hlm_forms(self, written: str | None) -> None:
        assert hlm_legal_form(written) is None

    def test_other_forms_compare_folded(self) -> None:
        assert legal_form_key("Association Loi 1901") == legal_form_key("association loi 1901")
        assert legal_form_key("SA d'HLM") == legal_form_key("ESH")


class TestTerritory:
    def test_a_commune_inside_the_perimeter_is_eligible(self) -> None:
        assert refusals(rules(BDR), "association", None, [MARSEILLE]) == []

    def test_a_territory_containing_the_perimeter_is_eligible(self) -> None:
        assert refusals(rules(MARSEILLE), "association", None, [PACA]) == []
        assert refusals(rules(AIX_METROPOLE), "association", None, [BDR]) == []

    def test_an_organisation_elsewhere_is_refused_in_french(self) -> None:
        reasons = refusals(
            CallRules(perimeter=(BDR,), perimeter_names=("Bouches-du-Rhône",)),
            "association",
            None,
            [AVIGNON],
        )
        assert len(reasons) == 1
        assert "périmètre" in reasons[0]
        assert "Bouches-du-Rhône" in reasons[0]
        assert refusals(rules(BDR), "association", None, [CORSE, VAUCLUSE]) != []

    def test_an_epci_spanning_departements_overlaps_each(self) -> None:
        assert refusals(rules(AIN), "association", None, [SPANNING]) == []
        assert refusals(rules(SPANNING), "association", None, [AIN]) == []
        assert refusals(rules(BDR), "association", None, [SPANNING]) != []

    def test_nationwide_or_no_perimeter_is_everywhere(self) -> None:
        assert refusals(CallRules(nationwide=True), "association", None, [CORSE]) == []
        assert refusals(CallRules(), "association", None, [CORSE]) == []
        assert refusals(CallRules(perimeter=(BDR,), nationwide=True), "company", None, []) == []

    def test_an_organisation_without_territory_is_outside_any_perimeter(self) -> None:
        assert refusals(rules(BDR), "association", None, []) != []


class TestKindsAndForms:
    def test_no_list_accepts_everyone(self) -> None:
        assert refusals(rules(BDR), "company", "SAS", [MARSEILLE]) == []

    def test_a_kind_not_listed_is_refused_with_the_kinds_in_french(self) -> None:
        reasons = refusals(
            rules(BDR, kinds=frozenset({"landlord", "association"})), "company", "SAS", [MARSEILLE]
        )
        assert len(reasons) == 1
        assert "bailleur social" in reasons[0]
        assert "entreprise" in reasons[0]

    def test_hlm_forms_narrow_the_landlords(self) -> None:
        call = rules(BDR, kinds=frozenset({"landlord"}), legal_forms=("OPH", "ESH", "SEM"))
        assert refusals(call, "landlord", "SA d'HLM", [MARSEILLE]) == []
        assert refusals(call, "landlord", "Office public de l'habitat", [MARSEILLE]) == []
        refused = refusals(call, "landlord", "Coopérative Hlm", [MARSEILLE])
        assert len(refused) == 1
        assert "OPH, ESH, SEM" in refused[0]
        assert "non renseignée" in refusals(call, "landlord", None, [MARSEILLE])[0]

    def test_a_listed_form_is_accepted_whatever_the_kind(self) -> None:
        call = rules(BDR, legal_forms=("sem",))
        assert refusals(call, "company", "Société d'économie mixte locale", [MARSEILLE]) == []
        assert refusals(call, "company", "SAS", [MARSEILLE]) != []

    def test_both_reasons_are_given(self) -> None:
        call = CallRules(perimeter=(BDR,), kinds=frozenset({"association"}))
        assert len(refusals(call, "company", None, [AVIGNON])) == 2


def test_the_mask_decides_as_the_reasons() -> None:
    orgs = [
        ("landlord", "OPH", [MARSEILLE]),
        ("landlord", "Coopérative Hlm", [MARSEILLE]),
        ("association", None, [AVIGNON]),
        ("association", None, [PACA]),
        ("company", "SAS", [BDR]),
        ("landlord", "ESH", [SPANNING]),
    ]
    for call in (
        rules(BDR),
        rules(BDR, kinds=frozenset({"landlord", "association"}), legal_forms=("OPH",)),
        rules(AIN, kinds=frozenset({"landlord"})),
        CallRules(nationwide=True, legal_forms=("SAS",)),
    ):
        mask = eligible_mask(call, [o[0] for o in orgs], [o[1] for o in orgs], [o[2] for o in orgs])
        assert mask.tolist() == [not refusals(call, *o) for o in orgs]
