"""The Logs Insights function table: name → arity, argument and result kinds, SQL.

The single source of truth for which functions exist: the parser checks names and arities
against it (unknown function → :class:`~query.errors.UnknownFunctionError` with a "did you
mean"), the compiler turns calls into SQL with it, and the docs can be generated from it.
Functions from the reference (§5) are all listed; the time-series functions of the newest
docs are listed with ``unsupported`` so that they fail with a positioned UnsupportedError
instead of "unknown function".

Kinds (the compiler's static types; every SQL value has one):

=========  =============================================================================
``num``    DOUBLE (or BIGINT): literals, arithmetic, numeric functions, counts
``str``    VARCHAR known to be text (string literals, string functions)
``dyn``    VARCHAR from the log event (discovered or parsed fields): compared numerically
           when it holds a number, as text otherwise
``bool``   BOOLEAN (comparisons, ``ispresent``); rendered ``1`` / ``0``
``time``   BIGINT epoch milliseconds that are rendered as a timestamp (``@timestamp``,
           ``bin``, ``fromMillis`` …)
``json``   JSON (``jsonParse`` results): maps and lists, addressed with ``.key`` / ``[i]``
=========  =============================================================================

Argument kinds add ``any`` (kept as it is), ``period`` (a time period literal such as ``5m``)
and ``literal`` (a string or number literal, used as a constant).

``sql`` is a template over the converted arguments: ``{0}``, ``{1}`` … and ``{args}`` (all of
them, comma-separated), plus ``{const:name}`` for a trusted constant of :data:`CONSTANTS`;
a dict maps an argument count to its template.  Templates are
trusted text; argument SQL carries its own bound parameters.  ``builder`` names a compiler
method (``_fn_<builder>``) for the functions a template cannot express.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

NUM, STR, DYN, BOOL, TIME, JSON = "num", "str", "dyn", "bool", "time", "json"
ANY, PERIOD, LITERAL, SAME = "any", "period", "literal", "same"

KINDS = (NUM, STR, DYN, BOOL, TIME, JSON)


@dataclass(frozen=True)
class FunctionSpec:
    name: str                                   # as AWS spells it (used when rendering)
    category: str
    min_args: int
    max_args: Optional[int]                     # None: any number
    args: tuple[str, ...]                       # kind of each argument; the last one repeats
    result: str                                 # a kind, or SAME (the arguments' common kind)
    sql: Union[str, dict, None] = None
    builder: Optional[str] = None
    aggregate: bool = False
    star: bool = False                          # count(*)
    unsupported: Optional[str] = None
    doc: str = field(default="", compare=False)

    def arg_kind(self, i: int) -> str:
        return self.args[min(i, len(self.args) - 1)] if self.args else ANY

    def template(self, n: int) -> Optional[str]:
        if isinstance(self.sql, dict):
            return self.sql.get(n)
        return self.sql

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' if self.min_args != 1 else ''}"
        if self.min_args == self.max_args:
            n = self.min_args
            return f"{n} argument{'s' if n != 1 else ''}"
        return f"{self.min_args} to {self.max_args} arguments"


def _f(name, category, args, result, sql=None, *, min_args=None, max_args="same", **kw):
    n = len(args)
    lo = n if min_args is None else min_args
    hi = n if max_args == "same" else max_args
    return FunctionSpec(name, category, lo, hi, tuple(args), result, sql, **kw)


# RE2 patterns for IP syntax (trusted constants, written into the SQL text).
_V4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"{_V4_OCTET}(?:\.{_V4_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{IPV4_RE})"
IPV6_RE = "(?:" + "|".join([
    rf"(?:{_H16}:){{6}}{_LS32}",
    rf"::(?:{_H16}:){{5}}{_LS32}",
    rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"

#: Trusted constants a template inserts as SQL string literals with ``{const:name}``.
CONSTANTS = {
    "ipv4": IPV4_RE,
    "ipv6": IPV6_RE,
    "ws_left": r"^\s+",
    "ws_right": r"\s+$",
    "ws_both": r"^\s+|\s+$",
    "blank": r"\s*",
}

FUNCTIONS: dict[str, FunctionSpec] = {spec.name.lower(): spec for spec in [
    # ---- numeric (reference §5.1)
    _f("abs", "numeric", [NUM], NUM, "abs({0})", doc="absolute value"),
    _f("ceil", "numeric", [NUM], NUM, "ceil({0})", doc="smallest integer ≥ a"),
    _f("floor", "numeric", [NUM], NUM, "floor({0})", doc="largest integer ≤ a"),
    _f("greatest", "numeric", [NUM], NUM, "greatest({args})", max_args=None,
       doc="largest argument (missing ones ignored)"),
    _f("least", "numeric", [NUM], NUM, "least({args})", max_args=None,
       doc="smallest argument (missing ones ignored)"),
    _f("log", "numeric", [NUM], NUM, "CASE WHEN {0} > 0 THEN ln({0}) END",
       doc="natural logarithm; empty for a ≤ 0"),
    _f("sqrt", "numeric", [NUM], NUM, "CASE WHEN {0} >= 0 THEN sqrt({0}) END",
       doc="square root; empty for a < 0"),
    # ---- string (§5.2)
    _f("isempty", "string", [STR], NUM,
       "CASE WHEN {0} IS NULL OR {0} = '' THEN 1 ELSE 0 END", doc="1 if missing or empty"),
    _f("isblank", "string", [STR], NUM,
       "CASE WHEN {0} IS NULL OR regexp_full_match({0}, {const:blank}) THEN 1 ELSE 0 END",
       doc="1 if missing, empty or white space"),
    _f("concat", "string", [STR], STR, "concat({args})", max_args=None,
       doc="concatenation (a missing argument counts as empty)"),
    _f("ltrim", "string", [STR, STR], STR,
       {1: "regexp_replace({0}, {const:ws_left}, '')", 2: "ltrim({0}, {1})"}, min_args=1,
       doc="strip white space, or any of the given characters, from the left"),
    _f("rtrim", "string", [STR, STR], STR,
       {1: "regexp_replace({0}, {const:ws_right}, '')", 2: "rtrim({0}, {1})"}, min_args=1,
       doc="strip from the right"),
    _f("trim", "string", [STR, STR], STR,
       {1: "regexp_replace({0}, {const:ws_both}, '', 'g')", 2: "trim({0}, {1})"}, min_args=1,
       doc="strip from both ends"),
    _f("strlen", "string", [STR], NUM, "length({0})", doc="length in code points"),
    _f("toupper", "string", [STR], STR, "upper({0})"),
    _f("tolower", "string", [STR], STR, "lower({0})"),
    _f("substr", "string", [STR, NUM, NUM], STR, builder="substr", min_args=2,
       doc="substring from a 0-based start, optionally of a given length"),
    _f("replace", "string", [STR, STR, STR], STR, "replace({0}, {1}, {2})",
       doc="replace every occurrence (plain text)"),
    _f("strcontains", "string", [STR, STR], NUM, "CAST(contains({0}, {1}) AS INTEGER)",
       doc="1 if the text contains the search string, else 0"),
    # ---- datetime (§5.3, §6)
    _f("bin", "datetime", [PERIOD], TIME, builder="bin",
       doc="@timestamp rounded down to the period"),
    _f("datefloor", "datetime", [TIME, PERIOD], TIME, builder="datefloor",
       doc="timestamp rounded down to the period"),
    _f("dateceil", "datetime", [TIME, PERIOD], TIME, builder="dateceil",
       doc="timestamp rounded up to the period"),
    _f("fromMillis", "datetime", [TIME], TIME, "{0}",
       doc="epoch milliseconds → timestamp (the argument, read as a time)"),
    _f("toMillis", "datetime", [TIME], NUM, "{0}", doc="timestamp → epoch milliseconds"),
    _f("now", "datetime", [], NUM, builder="now",
       doc="query start time in epoch seconds"),
    # ---- JSON (§5.4)
    _f("jsonParse", "json", [STR], JSON,
       "CASE WHEN json_valid({0}) AND json_type({0}) IN ('OBJECT', 'ARRAY') "
       "THEN json({0}) END", doc="parse a JSON object or array (anything else: empty)"),
    _f("jsonStringify", "json", [JSON], STR,
       "CASE WHEN json_type({0}) IN ('OBJECT', 'ARRAY') THEN CAST({0} AS VARCHAR) END",
       doc="map or list → JSON text"),
    # ---- general (§5.5)
    _f("ispresent", "general", [ANY], BOOL, "({0} IS NOT NULL)", doc="the field exists"),
    _f("coalesce", "general", [ANY], SAME, "coalesce({args})", max_args=None,
       doc="first argument that is present"),
    # ---- IP addresses (§5.6)
    _f("isValidIp", "ip", [STR], BOOL,
       "(regexp_full_match({0}, {const:ipv4}) OR regexp_full_match({0}, {const:ipv6}))"),
    _f("isValidIpV4", "ip", [STR], BOOL, "regexp_full_match({0}, {const:ipv4})"),
    _f("isValidIpV6", "ip", [STR], BOOL, "regexp_full_match({0}, {const:ipv6})"),
    _f("isIpInSubnet", "ip", [STR, LITERAL], BOOL, builder="ip_in_subnet",
       doc="address in a v4 or v6 CIDR subnet (the subnet is a string literal)"),
    _f("isIpv4InSubnet", "ip", [STR, LITERAL], BOOL, builder="ipv4_in_subnet"),
    _f("isIpv6InSubnet", "ip", [STR, LITERAL], BOOL, builder="ipv6_in_subnet"),
    # ---- hashing (HASH)
    _f("md5", "hash", [STR], STR, "md5({0})", doc="hex MD5 of the text"),
    _f("sha256", "hash", [STR], STR, "sha256({0})", doc="hex SHA-256 of the text"),
    # ---- stats aggregations (§5.7)
    _f("avg", "aggregation", [NUM], NUM, "avg({0})", aggregate=True),
    _f("count", "aggregation", [ANY], NUM, builder="count", min_args=0, aggregate=True,
       star=True, doc="count() / count(*): events; count(f): events that have f"),
    _f("count_distinct", "aggregation", [STR], NUM, "count(DISTINCT {0})", aggregate=True,
       doc="number of distinct values (exact)"),
    _f("max", "aggregation", [ANY], SAME, builder="max", aggregate=True),
    _f("min", "aggregation", [ANY], SAME, builder="min", aggregate=True),
    _f("pct", "aggregation", [NUM, LITERAL], NUM, builder="pct", aggregate=True,
       doc="percentile (0–100), nearest rank"),
    _f("stddev", "aggregation", [NUM], NUM, "stddev_samp({0})", aggregate=True,
       doc="sample standard deviation"),
    _f("sum", "aggregation", [NUM], NUM, "sum({0})", aggregate=True),
    _f("earliest", "aggregation", [ANY], SAME, builder="earliest", aggregate=True,
       doc="value from the event with the earliest @timestamp"),
    _f("latest", "aggregation", [ANY], SAME, builder="latest", aggregate=True,
       doc="value from the event with the latest @timestamp"),
    _f("sortsFirst", "aggregation", [ANY], SAME, builder="sorts_first", aggregate=True,
       doc="value that sorts first (natural sort)"),
    _f("sortsLast", "aggregation", [ANY], SAME, builder="sorts_last", aggregate=True,
       doc="value that sorts last (natural sort)"),
    # ---- time-series functions (TS): parsed, not runnable
    _f("rate", "time series", [ANY, PERIOD], NUM, aggregate=True,
       unsupported="rate() is not supported"),
    _f("count_over_time", "time series", [ANY], NUM, aggregate=True,
       unsupported="count_over_time() is not supported"),
    _f("sum_over_time", "time series", [ANY], NUM, aggregate=True,
       unsupported="sum_over_time() is not supported"),
    _f("histogram", "time series", [ANY, LITERAL], JSON, aggregate=True,
       unsupported="histogram() is not supported"),
]}


def lookup(name: str) -> Optional[FunctionSpec]:
    """The spec for a function name (any case), or None."""
    return FUNCTIONS.get(name.lower())


def names() -> list[str]:
    return list(FUNCTIONS)
