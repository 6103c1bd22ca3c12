"""French company identifiers."""

from __future__ import annotations

import re

_SIREN = re.compile(r"^\d{9}$")


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


def normalise_siren(raw: str) -> str:
    """Remove the spaces people write inside a SIREN ('552 100 554')."""
    return re.sub(r"[\s.\u00a0\u202f]", "", raw)


def siren_error(raw: str) -> str | None:
    """None when `raw` is a valid SIREN, else a French message saying why not."""
    siren = normalise_siren(raw)
    if not _SIREN.match(siren):
        return f"« {raw} » n'est pas un SIREN : il faut exactement 9 chiffres."
    if not luhn_valid(siren):
        return f"SIREN {siren} invalide : la clé de contrôle (formule de Luhn) ne correspond pas."
    return None
