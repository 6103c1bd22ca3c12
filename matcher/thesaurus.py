"""A small domain thesaurus: acronyms and ways of saying the same thing.

Expansion appends, to a text, the spelled-out form of each acronym it contains and the
canonical label of each concept one of whose variants it contains, so that "QPV" meets
"quartier prioritaire" and "potager collectif" meets "jardin partagé" in both the lexical
and the dense space. The original text is kept whole, first.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from matcher.text import fold


@dataclass(frozen=True)
class Thesaurus:
    """Acronyms (case-sensitive, whole words) and concepts (accent- and case-insensitive)."""

    name: str
    acronyms: dict[str, str]
    concepts: dict[str, tuple[str, ...]]

    @classmethod
    def from_file(cls, path: Path) -> Thesaurus:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            name=f"{data.get('name', path.stem)}-v{data.get('version', 1)}",
            acronyms=dict(data.get("acronyms", {})),
            concepts={
                label: tuple(variants) for label, variants in data.get("concepts", {}).items()
            },
        )

    @property
    def fingerprint(self) -> str:
        """Changes whenever the content changes: part of the embedding space's name."""
        payload = json.dumps([self.acronyms, self.concepts], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:8]

    def __post_init__(self) -> None:
        if self.acronyms:
            alternatives = "|".join(
                re.escape(a) for a in sorted(self.acronyms, key=len, reverse=True)
            )
            acronym_re = re.compile(rf"(?<![\w-])({alternatives})(?![\w-])")
        else:
            acronym_re = None
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

    def annotations(self, text: str) -> list[str]:
        """Expansions and concept labels found in `text`, in order, without repeats."""
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
        """`text` followed by what the thesaurus recognises in it."""
        extra = [a for a in self.annotations(text) if fold(a) not in fold(text)]
        return f"{text} ({'; '.join(extra)})" if extra else text
