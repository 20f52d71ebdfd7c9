"""Cursor values in the state file keep their type through a round trip."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from exporter.collection.state import (
    decode_value,
    encode_value,
)


class TestCursorValues:
    @pytest.mark.parametrize(
        "value",
        [
            0,
            2**62,
            1.5,
            Decimal("12.3400"),
            "abc",
            None,
            dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC),
            dt.date(2026, 1, 2),
        ],
    )
    def test_round_trip_keeps_type(self, value: object) -> None:
        back = decode_value(encode_value(value))
        assert back == value and type(back) is type(value)
