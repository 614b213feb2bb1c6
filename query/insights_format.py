"""Result values → the strings GetQueryResults returns.

AWS returns every value as a string (reference §7):

* timestamps (``@timestamp``, ``bin()``, ``fromMillis`` …) as ``YYYY-MM-DD HH:MM:SS.mmm``
  in UTC;
* integral numbers without a decimal point (a count is ``"6"``), other numbers in their
  shortest round-trip form, never in exponent notation (``"2.5"``, ``"0.0000001"``);
* text from the event as it is (a discovered ``"955512908"`` is echoed unchanged);
* booleans (comparisons, ``ispresent``) as ``"1"`` / ``"0"``, as AWS documents for
  ``ispresent`` in ``fields`` (reference §9 item 2);
* a missing value (SQL NULL, NaN, ±infinity) is not returned at all: the field is left out
  of that row.

The compiler (:mod:`query.insights_compile`) returns typed SQL values: TIMESTAMP for
timestamps, DOUBLE/BIGINT for numbers, BOOLEAN, VARCHAR.  This module only looks at the
Python values DuckDB hands back, so it does not import DuckDB.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
from typing import Any, Optional, Sequence

__all__ = ["format_value", "format_number", "format_timestamp", "format_rows"]


def format_timestamp(value: _dt.datetime) -> str:
    """``2024-11-20 15:45:00.000`` (UTC; a naive datetime is taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}")


def format_number(value) -> Optional[str]:
    """AWS's rendering of a number, or None for NaN and infinities."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    x = float(value)
    if math.isnan(x) or math.isinf(x):
        return None
    if x == int(x) and abs(x) < 1e17:
        return str(int(x))
    text = repr(x)
    if "e" in text or "E" in text:
        text = format(decimal.Decimal(text), "f")
    return text


def format_value(value: Any) -> Optional[str]:
    """One result value as AWS's string, or None when the field is absent from the row."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, decimal.Decimal)):
        return format_number(value)
    if isinstance(value, _dt.datetime):
        return format_timestamp(value)
    if isinstance(value, _dt.date):
        return format_timestamp(_dt.datetime(value.year, value.month, value.day))
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def format_rows(compiled, rows: Sequence[Sequence[Any]]) -> list[list[dict]]:
    """GetQueryResults ``results`` for the rows of ``compiled.sql``: one list of
    ``{"field", "value"}`` per row, absent values left out, ``@ptr`` last on event rows."""
    columns = list(compiled.columns)
    add_ptr = compiled.has_ptr and "@ptr" not in columns
    out = []
    for row in rows:
        fields = []
        for name, value in zip(columns, row):
            text = format_value(value)
            if text is not None:
                fields.append({"field": name, "value": text})
        if compiled.has_ptr and add_ptr and row[len(columns)] is not None:
            fields.append({"field": "@ptr", "value": str(row[len(columns)])})
        out.append(fields)
    return out
