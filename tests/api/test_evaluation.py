"""`maillage eval` scores the configured model: its unprefixed methods, search and partner
suggestions alike, are what the API serves (stand-in encoders: only the wiring is tested)."""

from __future__ import annotations

from typing import Any

import pytest

from api.kit.settings import Settings
from api.matching import engine as matching_engine
from api.tools import evaluation
from api.tools.evaluation import (
    METHODS,
    MethodResult,
    PartnerResult,
    all_methods,
    partner_methods,
    run_evaluation,
    speed_encoders,
)
from matcher.encoders import DEFAULT_MODEL, USE_MULTILINGUAL
from tests.fakes import FakeEncoder


def test_unprefixed_methods_are_the_configured_model_and_it_is_not_measured_twice() -> None:
    names = [m.name for m in all_methods("e5+use@0.7")]
    assert [m.name for m in METHODS] == names[: len(METHODS)]
    assert all(m.encoder is None for m in METHODS)
    assert not any(n.startswith("e5+use@0.7/") for n in names)
    assert {"use/default", "e5/default", "e5+use@0.6/default"} <= set(names)
    # Spelled otherwise, the same model is still the configured one.
    assert not any(n.startswith("use/") for n in (m.name for m in all_methods("use")))
    assert len(names) == len(set(names))


def test_partners_are_scored_for_the_configured_model_and_beside_it_use() -> None:
    assert partner_methods("e5+use@0.7") == ("default", "use/default")
    assert partner_methods("use-multilingual-v3") == ("default",)


def test_speed_is_measured_once_per_set_of_models() -> None:
    encoders = speed_encoders(all_methods(DEFAULT_MODEL), DEFAULT_MODEL)
    assert encoders == [DEFAULT_MODEL, USE_MULTILINGUAL, "multilingual-e5-small"]


@pytest.mark.slow
def test_partner_section_scores_the_model_maillage_model_names(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr(
        matching_engine, "dense_encoder", lambda model: FakeEncoder(model, 16, role_aware=True)
    )
    scored_with: list[tuple[str, str]] = []
    original = evaluation.evaluate_partners

    def recording(session: Any, matching: Any, method: Any, *args: Any) -> PartnerResult:
        scored_with.append((method.name, matching.encoder.name))
        return original(session, matching, method, *args)

    monkeypatch.setattr(evaluation, "evaluate_partners", recording)
    searched: list[MethodResult] = []
    partnered: list[PartnerResult] = []
    methods = tuple(m for m in all_methods("fake-configured") if m.name.endswith("default"))
    run_evaluation(
        settings.model_copy(update={"model": "fake-configured"}),
        methods=methods[:2],
        on_method=searched.append,
        on_partners=partnered.append,
    )
    assert [r.method.name for r in searched] == ["default", "use/default"]
    assert scored_with == [("default", "fake-configured"), ("use/default", USE_MULTILINGUAL)]
    assert all(r.endpoint.queries > 0 for r in partnered)
