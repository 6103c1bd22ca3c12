"""A small domain thesaurus: acronyms and ways of saying the same thing.

Expansion appends, to a text, the spelled-out form of each acronym it contains and the
canonical label of each concept one of whose variants it contains, so that "QPV" meets
"quartier prioritaire" and "potager collectif" meets "jardin partagé" in both the lexical
and the dense space. The original text is kept whole, first.

Texts are first put in the form matching reads (`normalise`): acronyms are then found
whatever their case ("anru", "Anru", "A.N.R.U." all read "ANRU"), except those that are
also French words ("PLUS", "AMI"), recognised only as written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from matcher.text import acronym_pattern, fold, normalise_for_matching


@dataclass(frozen=True)
class Thesaurus:
    """Acronyms (whole words) and concepts (accent- and case-insensitive).

    `acronyms_also_words` lists the acronyms that are also French words once in lower case
    ("PLUS", "AMI"): those are acronyms only when written as in `acronyms`; every other
    acronym is recognised whatever its case.
    """

    name: str
    acronyms: dict[str, str]
    concepts: dict[str, tuple[str, ...]]
    acronyms_also_words: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_file(cls, path: Path) -> Thesaurus:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            name=f"{data.get('name', path.stem)}-v{data.get('version', 1)}",
            acronyms=dict(data.get("acronyms", {})),
            concepts={
                label: tuple(variants) for label, variants in data.get("concepts", {}).items()
            },
            acronyms_also_words=frozenset(data.get("acronyms_also_words", ())),
        )

    @property
    def fingerprint(self) -> str:
        """Changes whenever the content changes: part of the embedding space's name."""
        payload = json.dumps(
            [self.acronyms, self.concepts, sorted(self.acronyms_also_words)],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:8]

    def __post_init__(self) -> None:
        if self.acronyms:
            alternatives = "|".join(
                re.escape(a) for a in sorted(self.acronyms, key=len, reverse=True)
            )
            acronym_re = re.compile(rf"(?<![\w-])({alternatives})(?![\w-])")
        else:
            acronym_re = None
        # The canonical spelling of each acronym by its lower-case form; the all-capitals
        # spelling when there are several ("Anru" and "ANRU" both read "ANRU").
        spellings: dict[str, str] = {}
        also_words = {w.lower() for w in self.acronyms_also_words}
        for acronym in sorted(self.acronyms, key=lambda a: (not a.isupper(), a)):
            if acronym.lower() not in also_words:
                spellings.setdefault(acronym.lower(), acronym)
        object.__setattr__(self, "_spellings", spellings)
        object.__setattr__(self, "_spellings_re", acronym_pattern(spellings))
        # Concept variants by their folded word sequence: matching a text is then a walk
        # over its words, whatever the number of variants.
        phrases: dict[tuple[str, ...], str] = {}
        for label, variants in self.concepts.items():
            for variant in (label, *variants):
                words = tuple(fold(variant).split())
                if words:
                    phrases.setdefault(words, label)
        object.__setattr__(self, "_acronym_re", acronym_re)
        sizes: dict[str, set[int]] = {}
        for words in phrases:
            sizes.setdefault(words[0], set()).add(len(words))
        object.__setattr__(self, "_phrases", phrases)
        object.__setattr__(self, "_sizes", {w: tuple(sorted(n)) for w, n in sizes.items()})

    def normalise(self, text: str) -> str:
        """`text` as matching reads it (`normalise_for_matching`), with this thesaurus's
        acronyms in their canonical spelling whatever case they were typed in."""
        spellings: dict[str, str] = getattr(self, "_spellings")  # noqa: B009
        pattern: re.Pattern[str] | None = getattr(self, "_spellings_re")  # noqa: B009
        return normalise_for_matching(
            text, spellings, as_written=self.acronyms_also_words, pattern=pattern
        )

    def annotations(self, text: str) -> list[str]:
        """Expansions and concept labels found in `text` (normalised: acronyms are read as
        written), in order, without repeats."""
        found: list[str] = []
        acronym_re: re.Pattern[str] | None = getattr(self, "_acronym_re")  # noqa: B009
        if acronym_re is not None:
            for match in acronym_re.finditer(text):
                found.append(self.acronyms[match.group(1)])
        phrases: dict[tuple[str, ...], str] = getattr(self, "_phrases")  # noqa: B009
        sizes: dict[str, tuple[int, ...]] = getattr(self, "_sizes")  # noqa: B009
        words = fold(text).split()
        for start, word in enumerate(words):
            for size in sizes.get(word, ()):
                label = phrases.get(tuple(words[start : start + size]))
                if label is not None:
                    found.append(label)
        return list(dict.fromkeys(found))

    def expand(self, text: str) -> str:
        """`text` (normalised) followed by what the thesaurus recognises in it."""
        extra = [a for a in self.annotations(text) if fold(a) not in fold(text)]
        return f"{text} ({'; '.join(extra)})" if extra else text


def acronyms_also_words(acronyms: Iterable[str], lexicon: Iterable[str]) -> list[str]:
    """The acronyms whose lower-case form, accents aside, is a word of `lexicon` ("PLUS",
    "AME" for "âme"): the list a thesaurus file keeps under "acronyms_also_words"."""
    words = {fold(word) for word in lexicon}
    return sorted(a for a in acronyms if fold(a) in words)
