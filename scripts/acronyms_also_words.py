"""List the thesaurus acronyms that are also French words once in lower case.

Those are recognised only as written ("PLUS" is a loan, "plus" a word); every other acronym
is recognised whatever its case. The lexicon is Debian's French word list (package
wfrench, /usr/share/dict/french). Prints the list for "acronyms_also_words"; with --check,
fails when the thesaurus file's list differs.

    python scripts/acronyms_also_words.py [--check] [THESAURUS] [LEXICON]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher.thesaurus import acronyms_also_words  # noqa: E402


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    thesaurus = Path(args[0]) if args else ROOT / "fixtures/thesaurus/habitat-social-fr.json"
    lexicon = Path(args[1]) if len(args) > 1 else Path("/usr/share/dict/french")
    if not lexicon.exists():
        print(f"{lexicon} is missing: apt-get install wfrench", file=sys.stderr)
        return 2
    data = json.loads(thesaurus.read_text(encoding="utf-8"))
    found = acronyms_also_words(data["acronyms"], lexicon.read_text(encoding="utf-8").split())
    print(json.dumps(found, ensure_ascii=False))
    if check and sorted(data.get("acronyms_also_words", [])) != found:
        print("the thesaurus file's acronyms_also_words differs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
