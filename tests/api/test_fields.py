"""Each pattern the OpenAPI document shows is the rule the server applies: generated text
matches the pattern exactly when the server reads it (api.kit.fields, territory
references, postal codes, searches)."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.kit import fields
from api.kit.errors import InvalidInput
from api.matching.service import SEARCH_TEXT_PATTERN
from api.subscriptions.schemas import MAILBOX_PATTERN, SPECIAL_USE_PATTERN, normalise_email
from api.territories.postal_codes import POSTAL_CODE_PATTERN, read_postal_code
from matcher.identifiers import siren_error
from matcher.territory import TERRITORY_REF_PATTERN, TerritoryRefError, parse_territory_ref

# Text that often lands on the rules' edges: blanks of every kind, digits, '@', '.', ':'.
EDGY = st.text(
    alphabet=st.sampled_from(
        [" ", "\t", "\n", "\x0b", "\x1c", "\x85", "\xa0", "\u2003", "\u3000", "\ufeff"]
        + ["a", "é", "Z", "0", "7", "@", ".", ":", "/", "h", "t", "p", "s", "-", "\x07"]
    ),
    max_size=14,
)
SAMPLES = settings(max_examples=400, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def test_blank_is_what_python_calls_whitespace() -> None:
    blank = re.compile(f"[{fields.BLANK}]")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(blank.fullmatch(char)) == char.isspace(), hex(code)


def accepts(field: Any, value: str) -> bool:
    try:
        TypeAdapter(field).validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("field", "pattern"),
    [
        (fields.Line200, fields.NOT_BLANK_PATTERN),
        (fields.StatementText, fields.STATEMENT_TEXT_PATTERN),
        (fields.Email, fields.EMAIL_PATTERN),
        (fields.Website, fields.WEBSITE_PATTERN),
        (fields.Text80, fields.NO_NUL_PATTERN),
    ],
)
@SAMPLES
@given(text=EDGY)
def test_a_text_field_reads_what_its_pattern_says(field: Any, pattern: str, text: str) -> None:
    assert accepts(field, text) == bool(re.search(pattern, text)), repr(text)


@SAMPLES
@given(text=st.from_regex(fields.SIREN_PATTERN).filter(lambda s: len(s) <= 20) | EDGY)
def test_a_siren_matching_its_pattern_fails_only_on_its_key(text: str) -> None:
    if not re.search(fields.SIREN_PATTERN, text):
        assert not text.strip() or not accepts(fields.Siren, text)
        return
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        assert accepts(fields.Siren, text)  # blank: none
        return
    if not accepts(fields.Siren, text):
        error = siren_error(text) or ""
        assert "clé de contrôle" in error or "remplissage" in error, (text, error)


@SAMPLES
@given(ref=st.from_regex(TERRITORY_REF_PATTERN))
def test_every_reference_of_the_pattern_is_read(ref: str) -> None:
    parsed = parse_territory_ref(ref)
    assert parsed.code.upper() in ref.upper()


@pytest.mark.parametrize("ref", ["13", "93", "abc", "commune:1300", "epci:12", "", "x:13001"])
def test_references_outside_the_pattern_are_refused(ref: str) -> None:
    assert not re.search(TERRITORY_REF_PATTERN, ref)
    with pytest.raises(TerritoryRefError):
        parse_territory_ref(ref)


@SAMPLES
@given(code=st.from_regex(POSTAL_CODE_PATTERN))
def test_every_postal_code_of_the_pattern_is_read(code: str) -> None:
    assert len(read_postal_code(code).code) == 5


@pytest.mark.parametrize("code", ["130", "0150", "13A01", "2A004", "   ", ""])
def test_postal_codes_outside_the_pattern_are_refused(code: str) -> None:
    assert not re.search(POSTAL_CODE_PATTERN, code)
    with pytest.raises(InvalidInput):
        read_postal_code(code)


@SAMPLES
@given(text=EDGY)
def test_a_search_is_blank_exactly_when_its_pattern_says(text: str) -> None:
    assert bool(re.search(SEARCH_TEXT_PATTERN, text)) == bool(text.strip(" \t\r\n"))


@pytest.mark.parametrize("value", [7.0, 2.0**31 - 1])
def test_a_whole_float_is_an_integer(value: float) -> None:
    assert TypeAdapter(fields.RowId).validate_python(value, strict=True) == int(value)


@pytest.mark.parametrize("value", [7.5, "7", True, 0, 2**31])
def test_other_numbers_are_not_ids(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(fields.RowId).validate_python(value, strict=True)


@SAMPLES
@given(address=st.from_regex(MAILBOX_PATTERN, fullmatch=True))
def test_every_address_of_the_pattern_is_read(address: str) -> None:
    if re.search(SPECIAL_USE_PATTERN, address):  # the document's `not`
        with pytest.raises(ValueError, match="adresse"):
            normalise_email(address)
    else:
        assert "@" in normalise_email(address)


@pytest.mark.parametrize("on", ["2026-02-30", "0", "20260101", "2026-1-1", "1"])
def test_dates_are_written_aaaa_mm_jj(on: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(fields.IsoDate).validate_python(on)
