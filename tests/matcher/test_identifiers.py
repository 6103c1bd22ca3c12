from __future__ import annotations

import pytest

from matcher.identifiers import luhn_valid, siren_error


class TestSiren:
    @pytest.mark.parametrize(
        "siren", ["732829320", "552100554", "200054807", "356000000", "552 100 554"]
    )
    def test_valid_sirens_pass(self, siren: str) -> None:
        assert siren_error(siren) is None

    @pytest.mark.parametrize("siren", ["732829321", "552100555", "123456789"])
    def test_wrong_check_digit_is_named(self, siren: str) -> None:
        message = siren_error(siren)
        assert message is not None
        assert "Luhn" in message

    @pytest.mark.parametrize("siren", ["", "12345678", "1234567890", "ABCDEFGHI", "55210055A"])
    def test_wrong_shape_says_nine_digits(self, siren: str) -> None:
        message = siren_error(siren)
        assert message is not None
        assert "9 chiffres" in message

    def test_luhn(self) -> None:
        assert luhn_valid("79927398713")
        assert not luhn_valid("79927398710")
