"""Logs Insights result formatting: every value becomes the string AWS returns (reference §7:
timestamps ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC, a count is ``"6"``), absent values are left
out of the row, and event rows end with ``@ptr``."""
from __future__ import annotations

import decimal
from datetime import date, datetime, timedelta, timezone

import pytest

from query.insights_compile import Compiled
from query.insights_format import format_number, format_rows, format_timestamp, format_value


@pytest.mark.parametrize("value,expected", [
    (6, "6"), (0, "0"), (-3, "-3"), (6.0, "6"), (-0.0, "0"), (2.5, "2.5"),
    (0.1 + 0.2, "0.30000000000000004"),
    (1 / 3, "0.3333333333333333"), (1e-7, "0.0000001"), (1.5e-10, "0.00000000015"),
    (1e20, "100000000000000000000"), (123456789.125, "123456789.125"),
    (12345678901234567890, "12345678901234567890"),
    (decimal.Decimal("1.50"), "1.5"), (decimal.Decimal("7.000"), "7"),
    (True, "1"), (False, "0"),
    (float("nan"), None), (float("inf"), None), (float("-inf"), None),
])
def test_format_number(value, expected):
    assert format_number(value) == expected


@pytest.mark.parametrize("value,expected", [
    (datetime(2024, 11, 20, 15, 45), "2024-11-20 15:45:00.000"),
    (datetime(2024, 5, 19, 6, 10, 35, 743999), "2024-05-19 06:10:35.743"),
    (datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))), "2024-01-01 00:00:00.000"),
    (datetime(1, 1, 1), "0001-01-01 00:00:00.000"),
])
def test_format_timestamp(value, expected):
    assert format_timestamp(value) == expected


@pytest.mark.parametrize("value,expected", [
    (None, None), ("955512908", "955512908"), ("", ""), ("ü 😀", "ü 😀"),
    (datetime(2024, 1, 2, 3, 4, 5, 6000), "2024-01-02 03:04:05.006"),
    (date(2024, 1, 2), "2024-01-02 00:00:00.000"),
    (42, "42"), (4.25, "4.25"), (True, "1"),
    ([1, "a"], '[1,"a"]'), ({"k": 1}, '{"k":1}'), (b"raw", "raw"),
])
def test_format_value(value, expected):
    assert format_value(value) == expected


def _compiled(columns, has_ptr):
    return Compiled(sql="", params=[], columns=columns, kinds=["dyn"] * len(columns),
                    is_aggregate=not has_ptr, has_ptr=has_ptr, limit=10)


def test_format_rows_event_rows_carry_ptr_and_skip_missing_values():
    rows = [(datetime(2024, 1, 1), "hello", None, "p1"), (None, "x", 3.0, "p2")]
    assert format_rows(_compiled(["@timestamp", "@message", "n"], True), rows) == [
        [{"field": "@timestamp", "value": "2024-01-01 00:00:00.000"},
         {"field": "@message", "value": "hello"}, {"field": "@ptr", "value": "p1"}],
        [{"field": "@message", "value": "x"}, {"field": "n", "value": "3"},
         {"field": "@ptr", "value": "p2"}],
    ]


def test_format_rows_stats_rows_have_no_ptr():
    rows = [("api", 6), (None, 2)]
    assert format_rows(_compiled(["service", "count(*)"], False), rows) == [
        [{"field": "service", "value": "api"}, {"field": "count(*)", "value": "6"}],
        [{"field": "count(*)", "value": "2"}],
    ]


def test_format_rows_does_not_repeat_an_explicit_ptr():
    rows = [("p9", "p9")]
    assert format_rows(_compiled(["@ptr"], True), rows) == [[{"field": "@ptr", "value": "p9"}]]
