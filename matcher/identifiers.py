"""French company identifiers."""

from __future__ import annotations

import re
import unicodedata

_SIREN = re.compile(r"^[0-9]{9}$")
_SEPARATORS = re.compile(r"[\s.\u00a0\u202f]")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def ascii_digits(raw: str) -> str:
    """`raw` in Unicode NFKC with every decimal digit of any script written in ASCII:
    fullwidth '１２３' and Arabic-Indic '١٢٣' are the digits 123, stored and compared so
    (one SIREN written two ways must stay one SIREN)."""
    text = unicodedata.normalize("NFKC", raw)
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if unicodedata.category(ch) == "Nd" else ch for ch in text
    )


def normalise_siren(raw: str) -> str:
    """The SIREN as stored: ASCII digits, without the spaces and dots people write inside
    it ('552 100 554', '552.100.554', '５５２１００５５４')."""
    return _SEPARATORS.sub("", ascii_digits(raw))


def siren_placeholder(siren: str) -> bool:
    """A nine-digit number that is no company's SIREN although it may pass the key: one digit
    repeated. INSEE numbers companies from 1 on (the first eight digits are a sequence
    number, the ninth the Luhn key), so 000000000, the only such number whose key is valid,
    is never assigned; the others fail the key but are named for what they are."""
    return len(set(siren)) == 1


def siren_error(raw: str) -> str | None:
    """None when `raw` is a valid SIREN, else a French message saying why not."""
    siren = normalise_siren(raw)
    if not _SIREN.match(siren):
        return f"« {raw} » n'est pas un SIREN : il faut exactement 9 chiffres."
    if siren_placeholder(siren):
        return (
            f"« {siren} » n'est pas un SIREN mais un numéro de remplissage (un seul chiffre "
            "répété) : aucune entreprise ne le porte. Laissez le champ vide si vous ne "
            "connaissez pas le SIREN."
        )
    if not luhn_valid(siren):
        return f"SIREN {siren} invalide : la clé de contrôle (formule de Luhn) ne correspond pas."
    return None
