"""Logs Insights AST → one DuckDB SELECT with positional ``?`` parameters.

The executor hands :func:`compile_query` a :class:`Source`: the SQL text of a relation with
the store's columns (``ts, ingest, seq, message, log_stream, log_group, ptr``) already cut
to the time range and log groups, and a resolver for discovered fields.  The result is a
:class:`Compiled`: the SQL, its parameters, the result field names in order, and what the
formatter (:mod:`query.insights_format`) needs to turn rows into AWS's strings.

The query becomes a chain of CTEs, one per command that changes rows or adds fields::

    WITH "base" AS (SELECT ts, …, ptr, <discovered fields> FROM (<relation>)),
         "s1"   AS (SELECT * FROM "base" WHERE …),                  -- filter
         "s2"   AS (SELECT <by>, <aggregates> FROM "s1" GROUP BY …) -- stats
    SELECT <displayed fields> FROM "s2" ORDER BY … LIMIT ?

Safety: user text never becomes SQL text.  Literals, regexes, JSON paths, glob patterns and
numbers are bound parameters; user field names only ever become *result* names in
``Compiled.columns``.  SQL identifiers are generated (``c1``, ``s2`` …) and written by the one
quoting helper, :func:`quote_ident`.

Every value has a static *kind* (:mod:`query.insights_functions`): a discovered field is
``dyn`` text that compares numerically when it holds a number (``latency > 400``), timestamps
are ``time`` (epoch ms, rendered ``YYYY-MM-DD HH:MM:SS.mmm``), and so on.  The compiler has
one ``compile_<node>`` method per AST class; a node without one fails loudly.

Where the reference (/work/shared/reference/logs-insights.md) leaves behaviour open, this
module decides:

* a comparison, ``like``, ``in`` and their negations are false when an operand is missing
  (``filter level != "x"`` drops events without ``level``); ``not (x = 1)`` likewise;
* text compares numerically when both sides read as numbers, a number with text numerically
  (text that is no number never equals it), a non-numeric string literal as plain text;
* ``sort`` without ``asc``/``desc`` is ascending; missing values sort last both ways; ties
  keep the newest-first order; "numbers" for the natural sort are decimal literals
  (``-1.5e3`` included);
* without ``sort``, events come newest first (``@timestamp``, then ingestion sequence) and
  ``stats`` rows by their group keys, time keys newest first;
* stats over no events gives one row (``count`` 0) without ``by`` and none with ``by``;
  events missing a ``by`` field form their own group; ``stddev`` is the sample standard
  deviation, ``pct`` the nearest rank, ``count_distinct`` exact; ``min``/``max`` of text
  compare numerically when any value is a number; ``earliest``/``latest``/``sortsFirst``/
  ``sortsLast`` skip missing values;
* weeks start on Monday, months/quarters/years are calendar periods (UTC);
  ``dateceil`` of a boundary is the boundary; s/m/h/ms periods are capped as AWS documents;
* discovered fields are the scalars of a JSON message (objects and arrays are not fields;
  ``a.0`` is an array element or the key "0"); ``jsonParse(x)[i]`` is 0-based;
* result fields without ``display``: the ``fields`` commands' fields (or ``@timestamp`` and
  ``@message``), then fields made by ``parse``/``unnest``; after ``stats`` its fields, then
  those of later ``fields`` commands; unaliased columns are named by their source text;
* ``parse`` glob ``*`` is lazy except a trailing one, crosses lines, and is unanchored;
  ``multi`` keeps one row (without the fields) for an event with no match;
* ``unnest`` of a missing value gives no row, of a non-list one row;
* division by zero, ``log``/``sqrt`` out of domain and invalid numbers give no value.
"""
from __future__ import annotations

import contextvars
import ipaddress
import itertools
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from query import insights_functions as fn
from query.errors import QueryError, QuerySyntaxError, UnknownFieldError, UnsupportedError
from query.insights_ast import (Binary, Dedup, Display, Expr, FieldRef, Fields, Filter,
                                FilterIndex, FuncCall, In, Index, Item, Like, Limit, Member,
                                Number, OtherCommand, Parse, Period, Query, Regex, Sort, Star,
                                Stats, String, Unary, Unmask, Unnest, source_text)
from query.insights_format import format_number
from query.insights_functions import BOOL, DYN, JSON, NUM, STR, TIME
from query.insights_parser import UNSUPPORTED_COMMANDS, check_regex, render

__all__ = ["Source", "FieldSql", "Compiled", "compile_query", "quote_ident", "default_field_sql",
           "SYSTEM_FIELDS", "json_pointer"]

#: System fields → (store column, kind).
SYSTEM_FIELDS = {
    "@timestamp": ("ts", TIME),
    "@ingestionTime": ("ingest", TIME),
    "@message": ("message", STR),
    "@logStream": ("log_stream", STR),
    "@log": ("log_group", STR),
    "@ptr": ("ptr", STR),
}
_BASE_COLUMNS = ("ts", "ingest", "seq", "message", "log_stream", "log_group", "ptr")

# Timestamps are kept within ±1e15 ms (±31,000 years) so that every timestamp computation,
# and the conversion to a DuckDB TIMESTAMP, stays in range.
_TIME_BOUND = "1e15"

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000}
_UNIT_MONTHS = {"mo": 1, "q": 3, "y": 12}
# "it caps 60 as the maximum value for any request that uses s … bin(300s) … is 60 seconds"
# (reference §1, time-period literals).
_UNIT_CAP = {"ms": 1000, "s": 60, "m": 60, "h": 24}
# Weeks start on Monday (ISO); 1969-12-29 is the Monday before the epoch.
_MONDAY_MS = -3 * 86_400_000

#: A value the natural sort (and ``sort``) reads as a number, matched whole (RE2).
NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def quote_ident(name: str) -> str:
    """The one way an identifier reaches SQL.  Only generated names are passed here."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A trusted constant (ours, never user text) as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_pointer(parts: Sequence[str]) -> str:
    """RFC 6901 pointer for a dotted field path: ``("items", "0", "id")`` → ``/items/0/id``.
    A numeric segment addresses an array element or an object key, as AWS's flattened names
    (``items.0.id``) do."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def default_field_sql(parts: Sequence[str], doc_sql: str = "TRY_CAST(message AS JSON)"):
    """The SQL for a discovered field when the executor's resolver returns None: the scalar
    at that path of a JSON message (objects and arrays are not fields: AWS flattens them to
    ``a.b`` / ``a.0``).  Returns ``(sql, params)``."""
    pointer = json_pointer(parts)
    return (f"CASE WHEN json_type({doc_sql}, CAST(? AS VARCHAR)) NOT IN ('OBJECT', 'ARRAY') "
            f"THEN json_extract_string({doc_sql}, CAST(? AS VARCHAR)) END", [pointer, pointer])


@dataclass(frozen=True)
class FieldSql:
    """A discovered field's value as ``Source.field_sql`` gives it: ``text`` (VARCHAR SQL over
    the relation's columns) and its ``params``.  ``doc_below``: the SQL also reads column
    ``"doc"``, the message parsed as JSON, for rows with ``seq < doc_below`` only (a column
    filled from ``seq`` doc_below on, the rest extracted): the message is then parsed once
    for all fields, below the highest such value (everywhere when some field takes the
    default).  ``numbers_from``: on rows with ``seq >= numbers_from`` the value is a number
    (:data:`NUMBER_RE`) or missing, so that ``sort`` need not test it (None: not known)."""

    text: str
    params: tuple = ()
    doc_below: int = 0
    numbers_from: Optional[int] = None


@dataclass(frozen=True)
class Source:
    """The events a query runs over.

    ``relation``: trusted SQL text of a relation with columns ``ts BIGINT`` (ms), ``ingest
    BIGINT`` (ms), ``seq BIGINT``, ``message VARCHAR``, ``log_stream VARCHAR``, ``log_group
    VARCHAR`` (``account:name``), ``ptr VARCHAR``.
    ``field_sql``: discovered field name (``"latency"``, ``"a.b.c"``) → :class:`FieldSql`, or
    None for the default (:func:`default_field_sql`).
    ``system_sql``: when given, the relation has no ``log_stream``, ``log_group`` and ``ptr``
    columns; this maps each of them to trusted SQL over the relation's columns, computed
    only when the query uses it (``ptr`` for the returned rows only).  ``carried``: the
    relation's columns those expressions need besides ``seq``, kept through every step.
    """

    relation: str
    field_sql: Callable[[str], Optional[FieldSql]] = lambda name: None
    relation_params: tuple = ()
    system_sql: Optional[dict] = None
    carried: tuple = ()


@dataclass(frozen=True)
class Compiled:
    """A compiled query.

    ``sql`` / ``params``: one SELECT.  Its result has one column per entry of ``columns``
    (the field names AWS shows, in order), then, when ``has_ptr``, the event's ``@ptr``.
    ``kinds``: the kind of each result column (see :mod:`query.insights_format`).
    ``count_sql`` / ``count_params``: the number of events that matched the query's filters
    (GetQueryResults' ``recordsMatched``), before stats, dedup and limit.  Two shortcuts
    spare running it: ``matched_all`` (nothing before that point drops or adds rows, so it
    is the number of events of the relation), and ``matched_column`` (the result has one
    more column, last, holding it on every row; when the result is empty, use
    ``count_sql``).
    ``limit``: the row cap written into ``sql``.  ``unmask``: the query asked for unmasked
    content (``unmask``).
    """

    sql: str
    params: list
    columns: list[str]
    kinds: list[str]
    is_aggregate: bool
    has_ptr: bool
    limit: int
    count_sql: str = ""
    count_params: list = field(default_factory=list)
    unmask: bool = False
    matched_all: bool = False
    matched_column: bool = False


def compile_query(q: Query, source: Source, *, limit_default: int = 1000,
                  limit_max: int = 10000, now_ms: Optional[int] = None) -> Compiled:
    """Compile a parsed query against ``source``.  ``now_ms`` is the query start time (for
    ``now()``); without it the SQL uses the database's clock.  Raises positioned
    :class:`QueryError` subclasses."""
    token = _LAMBDAS.set(itertools.count(1))
    try:
        return _Compiler(q, source, limit_default, limit_max, now_ms).run()
    except QueryError as exc:
        if q.text:
            exc.with_text(q.text)
        raise
    except RecursionError:
        raise QuerySyntaxError("the query is nested too deeply", q.span,
                               q.text or None) from None
    finally:
        _LAMBDAS.reset(token)


# ------------------------------------------------------------------------------------------
# SQL fragments
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sql:
    """SQL text, the parameters for its ``?`` in order, and the kind of its value."""

    text: str
    params: tuple = ()
    kind: str = DYN
    literal: object = field(default=None, compare=False)   # the value of a literal

    def __str__(self) -> str:  # pragma: no cover - debugging aid
        return self.text


_PLACEHOLDER = re.compile(r"\{(\d+|args|const:\w+)\}")
_PARAM = re.compile(r"CAST\(\? AS \w+\)")
_SIMPLE = re.compile(r'"\w+"|CAST\(\? AS \w+\)|bnd\d+\.a\d+|\d+|NULL|TRUE|FALSE')


def _cheap(e: Sql) -> bool:
    """Cheap enough to compute twice: a column, a parameter, or a short expression without
    lambdas (repeating those cannot grow the SQL much: a long one is bound)."""
    return bool(_SIMPLE.fullmatch(e.text)) or (len(e.text) <= 80 and "lambda" not in e.text)
# Lambda parameter names: numbered per compile_query call (deterministic SQL), and unique so
# that a lambda inside another never shadows the outer one's parameter.
_LAMBDAS: contextvars.ContextVar = contextvars.ContextVar("insights_lambdas", default=None)


def _lambda_name() -> str:
    counter = _LAMBDAS.get()
    if counter is None:
        counter = itertools.count(1)
        _LAMBDAS.set(counter)
    return f"bnd{next(counter)}"


def fill(template: str, args: Sequence[Sql], kind: str, bind: bool = True) -> Sql:
    """Substitute ``{0}``, ``{args}`` and ``{const:name}`` in a trusted template; parameters
    follow their placeholders' order.

    An argument the template uses more than once is computed once: unless it is a column, a
    parameter or a constant, it is bound to a lambda parameter (``list_transform([{'a0': x}],
    lambda bnd1: …)[1]``), so nested calls cannot grow the SQL exponentially.  Templates that
    aggregate a repeated argument pass ``bind=False`` (an aggregate cannot sit in a lambda).
    """
    if bind:
        uses: dict[int, int] = {}
        for m in _PLACEHOLDER.finditer(template):
            key = m.group(1)
            for i in (range(len(args)) if key == "args" else
                      () if key.startswith("const:") else (int(key),)):
                uses[i] = uses.get(i, 0) + 1
        heavy = [i for i, n in sorted(uses.items()) if n > 1 and not _cheap(args[i])]
        if heavy:
            name = _lambda_name()
            inner = list(args)
            for i in heavy:
                inner[i] = Sql(f"{name}.a{i}", (), args[i].kind)
            body = fill(template, inner, kind, bind=False)
            fields = ", ".join(f"'a{i}': {args[i].text}" for i in heavy)
            params = tuple(p for i in heavy for p in args[i].params) + body.params
            return Sql(f"list_transform([{{{fields}}}], lambda {name}: {body.text})[1]", params,
                       kind)
    out: list[str] = []
    params: list = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        out.append(template[pos:m.start()])
        key = m.group(1)
        if key == "args":
            for i, a in enumerate(args):
                if i:
                    out.append(", ")
                out.append(a.text)
                params.extend(a.params)
        elif key.startswith("const:"):
            out.append(_literal(fn.CONSTANTS[key[6:]]))
        else:
            a = args[int(key)]
            out.append(a.text)
            params.extend(a.params)
        pos = m.end()
    out.append(template[pos:])
    return Sql("".join(out), tuple(params), kind)


def sql(template: str, *args: Sql, kind: str = DYN, bind: bool = True) -> Sql:
    return fill(template, args, kind, bind)


def let(e: Sql, build: Callable[[Sql], Sql]) -> Sql:
    """``build(e)`` with ``e`` computed once: a complex ``e`` is bound to a lambda parameter
    (see :func:`fill`) when ``build`` may use it several times, through several arguments."""
    if _cheap(e):
        return build(e)
    name = _lambda_name()
    body = build(Sql(f"{name}.a0", (), e.kind))
    return Sql(f"list_transform([{{'a0': {e.text}}}], lambda {name}: {body.text})[1]",
               e.params + body.params, body.kind)


def param(value, sql_type: str, kind: str) -> Sql:
    return Sql(f"CAST(? AS {sql_type})", (value,), kind)


def col(ident: str, kind: str) -> Sql:
    return Sql(quote_ident(ident), (), kind)


NULL_DYN = Sql("CAST(NULL AS VARCHAR)", (), DYN)

# ---- kind conversions


def to_num(e: Sql) -> Sql:
    if e.kind == NUM:
        return e
    if e.kind in (TIME, BOOL):
        return sql("CAST({0} AS DOUBLE)", e, kind=NUM)
    return sql("TRY_CAST({0} AS DOUBLE)", scalar(e), kind=NUM)


def scalar(e: Sql) -> Sql:
    """A JSON value as text (maps and lists are null for string and number functions)."""
    if e.kind != JSON:
        return e
    return sql("CASE WHEN json_type({0}) IN ('OBJECT', 'ARRAY') THEN NULL ELSE {0} ->> '$' END",
               e, kind=DYN)


def to_text(e: Sql) -> Sql:
    if e.kind in (STR, DYN):
        return e
    if e.kind == JSON:
        return scalar(e)
    if e.kind == NUM and isinstance(e.literal, float):
        return Sql("CAST(? AS VARCHAR)", (format_number(e.literal),), STR, format_number(e.literal))
    if e.kind == NUM:
        return sql("CASE WHEN {0} = floor({0}) AND abs({0}) < 1e15 "
                   "THEN CAST(CAST({0} AS BIGINT) AS VARCHAR) ELSE CAST({0} AS VARCHAR) END",
                   e, kind=STR)
    if e.kind == TIME:
        return sql("strftime(make_timestamp({0} * 1000), '%Y-%m-%d %H:%M:%S.%g')", e, kind=STR)
    return sql("CAST(CAST({0} AS INTEGER) AS VARCHAR)", e, kind=STR)  # BOOL


def to_time(e: Sql) -> Sql:
    if e.kind == TIME:
        return e
    n = to_num(e)
    return sql(f"CASE WHEN {{0}} BETWEEN -{_TIME_BOUND} AND {_TIME_BOUND} "
               "THEN CAST(floor({0}) AS BIGINT) END", n, kind=TIME)


def to_bool(e: Sql) -> Sql:
    if e.kind == BOOL:
        return e
    if e.kind in (NUM, TIME):
        return sql("({0} <> 0)", e, kind=BOOL)
    t = scalar(e)
    return sql("(TRY_CAST({0} AS DOUBLE) <> 0 OR lower({0}) = 'true')", t, kind=BOOL)


def to_json(e: Sql) -> Sql:
    return e if e.kind == JSON else Sql("CAST(NULL AS JSON)", (), JSON)


def output(e: Sql) -> Sql:
    """A value as the result column the formatter expects (see insights_format)."""
    if e.kind == TIME:
        return sql("make_timestamp({0} * 1000)", e, kind=TIME)
    if e.kind == JSON:
        return sql("CASE WHEN json_type({0}) IN ('OBJECT', 'ARRAY') THEN CAST({0} AS VARCHAR) "
                   "ELSE {0} ->> '$' END", e, kind=JSON)
    return e


def _numeric(kind: str) -> bool:
    return kind in (NUM, TIME, BOOL)


def _is_number(t: Sql) -> Sql:
    return sql(f"regexp_full_match({{0}}, {_literal(NUMBER_RE)})", t, kind=BOOL)


def _natural_parts(e: Sql, isnum: Optional[Sql] = None) -> tuple[Sql, Sql, Sql]:
    """(is a number, its value, the text key) for AWS's natural sort (reference §3.5);
    ``isnum``: the first, when already computed."""
    t = scalar(e)
    isnum = isnum or _is_number(t)
    numval = sql("CASE WHEN {0} THEN TRY_CAST({1} AS DOUBLE) END", isnum, t, kind=NUM)
    # The value is cut into runs of digits and runs of other characters, compared run by
    # run.  A digit run becomes '0' + its 6-digit length + the digits, so two digit runs
    # compare by length, then value, and a digit run against other text as its first digit
    # would; any other run is followed by chr(1), so a run that is a prefix of another sorts
    # first ("a" + "5" before "a!").
    natkey = sql("CASE WHEN NOT {0} THEN array_to_string(list_transform("
                 r"regexp_extract_all({1}, '\d+|\D+'), lambda nat_run: "
                 r"CASE WHEN regexp_full_match(nat_run, '\d+') "
                 "THEN '0' || lpad(CAST(length(nat_run) AS VARCHAR), 6, '0') || nat_run "
                 "ELSE nat_run || chr(1) END), '') END", isnum, t, kind=STR)
    return isnum, numval, natkey


def _order_items(e: Sql, descending: bool, isnum: Optional[Sql] = None) -> Sql:
    """ORDER BY items for AWS's natural sort: non-numbers before numbers; numbers by value;
    other text by runs, digit runs by length then value.  Descending is the exact reverse;
    missing values come last either way.  ``isnum``: see :func:`_natural_parts`."""
    direction = "DESC" if descending else "ASC"
    if _numeric(e.kind):
        return sql(f"{{0}} {direction} NULLS LAST", e)
    parts = _natural_parts(e, isnum)
    return fill(", ".join(f"{{{i}}} {direction} NULLS LAST" for i in range(3)), parts, STR)


def _struct_key(e: Sql) -> Sql:
    """One comparable value that orders like ``_order_items`` ascending (for arg_min)."""
    return fill("{'n': {0}, 'v': {1}, 's': {2}}", _natural_parts(e), STR)


# ------------------------------------------------------------------------------------------
# The compiler
# ------------------------------------------------------------------------------------------

@dataclass
class _Col:
    ident: str
    kind: str


@dataclass
class _Agg:
    """Compiling a stats item: earlier aliases of the same stats, the group keys, and
    whether we are inside an aggregation's arguments."""

    aliases: dict
    groups: dict
    inside: bool = False


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Compiler:
    def __init__(self, q: Query, source: Source, limit_default: int, limit_max: int,
                 now_ms: Optional[int]):
        self.q = q
        self.source = source
        self.limit_default = limit_default
        self.limit_max = limit_max
        self.now_ms = now_ms
        self.ctes: list[tuple[str, Sql]] = []
        self.current = "base"
        self.counter = 0
        self.defined: dict[str, _Col] = {}
        self.discovered: dict[str, tuple[_Col, Sql]] = {}
        self.numbers_from: dict[str, int] = {}     # discovered column -> FieldSql.numbers_from
        self.uses_doc = False
        self.doc_below = 0                         # doc needed where seq < this
        self.row_mode = True
        self.stats_count = 0
        self.expr_cols: dict = {}
        self.order: list[Sql] = []
        self.pending_limit: Optional[int] = None
        self.visible: dict[str, _Col] = {}       # from fields commands (and after stats)
        self.extracted: dict[str, _Col] = {}     # from parse / unnest
        self.display: Optional[dict[str, _Col]] = None
        self.local: dict[str, Sql] = {}          # aliases of the command being compiled
        self.agg: Optional[_Agg] = None
        self.match_cte: Optional[str] = None
        self.unmask = False
        self._stats_order: list[Sql] = []        # a stats result's order without sort
        self.system_used: set[str] = set()       # log_stream, log_group, ptr (system_sql)
        self.row_changing: set[str] = set()      # CTEs that drop or add rows
        self.matched_alive = False               # the "m_matched" column (first stats) is kept

    # ---- plumbing
    def fresh(self, prefix: str = "c") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def add_cte(self, body: Sql, changes_rows: bool = False) -> str:
        name = self.fresh("s")
        self.ctes.append((name, body))
        self.current = name
        if changes_rows:
            self.row_changing.add(name)
        return name

    def materialize(self) -> None:
        """Apply a pending ``limit`` before a command that works on rows."""
        if self.pending_limit is None:
            return
        n = self.pending_limit
        self.pending_limit = None
        self.add_cte(self.ordered(Sql(f"SELECT * FROM {quote_ident(self.current)}"),
                                  limit=n), changes_rows=True)

    def ordered(self, body: Sql, limit: Optional[int] = None) -> Sql:
        order = self.order_sql()
        text, params = body.text, list(body.params)
        if order.text:
            text += " ORDER BY " + order.text
            params += order.params
        if limit is not None:
            text += " LIMIT ?"
            params.append(limit)
        return Sql(text, tuple(params))

    def order_sql(self) -> Sql:
        items = self.order or self.default_order()
        texts, params = [], []
        for item in items:
            texts.append(item.text)
            params.extend(item.params)
        return Sql(", ".join(texts), tuple(params))

    def default_order(self) -> list[Sql]:
        if self.row_mode:
            return [Sql('"ts" DESC'), Sql('"seq" DESC')]
        return list(self._stats_order)

    def mark_match(self) -> None:
        if self.match_cte is None:
            self.match_cte = self.current

    # ---- entry
    def run(self) -> Compiled:
        commands = self.q.commands
        self.check_pipeline(commands)
        for command in commands:
            self.dispatch(command)
        return self.finish()

    def dispatch(self, node):
        method = getattr(self, "compile_" + _snake(type(node).__name__), None)
        if method is None:
            raise UnsupportedError(f"{type(node).__name__} cannot be compiled",
                                   getattr(node, "span", None))
        return method(node)

    def check_pipeline(self, commands) -> None:
        stats = [i for i, c in enumerate(commands) if isinstance(c, Stats)]
        if len(stats) > 2:
            raise QuerySyntaxError("a query can have at most two stats commands",
                                   commands[stats[2]].span)
        if len(stats) == 2:
            for c in commands[:stats[1]]:
                if isinstance(c, (Sort, Limit)):
                    raise QuerySyntaxError("with two stats commands, sort and limit must come "
                                           "after the second stats", c.span)
        dedups = [i for i, c in enumerate(commands) if isinstance(c, Dedup)]
        if dedups:
            for c in commands[dedups[0] + 1:]:
                if not isinstance(c, Limit):
                    raise QuerySyntaxError("only limit can follow dedup", c.span)

    def finish(self) -> Compiled:
        if self.match_cte is None:
            self.match_cte = self.current
        if self.display is not None:
            shown = self.display
        elif not self.row_mode:
            shown = dict(self.visible)
        else:
            shown = dict(self.visible) if self.visible else {
                "@timestamp": _Col("ts", TIME), "@message": _Col("message", STR)}
            for name, c in self.extracted.items():
                shown.setdefault(name, c)
        columns, kinds, selects, params = [], [], [], []
        for i, (name, c) in enumerate(shown.items()):
            e = output(col(c.ident, c.kind))
            selects.append(f"{e.text} AS {quote_ident(f'r{i}')}")
            params.extend(e.params)
            columns.append(name)
            kinds.append(c.kind)
        has_ptr = self.row_mode
        system = self.source.system_sql
        late_ptr = has_ptr and system is not None   # built after the limit, see below
        if late_ptr:
            selects += [quote_ident(c) for c in (*self.source.carried, "seq")]
        elif has_ptr:
            selects.append(f"{quote_ident('ptr')} AS {quote_ident('r_ptr')}")
        matched_column = self.matched_alive and not self.row_mode
        if matched_column:
            selects.append(quote_ident("m_matched"))
        limit = self.pending_limit if self.pending_limit is not None else self.limit_default
        final = self.ordered(Sql(f"SELECT {', '.join(selects) or 'NULL'} "
                                 f"FROM {quote_ident(self.current)}", tuple(params)),
                             limit=limit)
        if late_ptr:
            # @ptr of the returned rows only (the outer SELECT keeps the inner one's order)
            hidden = ", ".join(quote_ident(c) for c in (*self.source.carried, "seq"))
            final = Sql(f"SELECT * EXCLUDE ({hidden}), {system['ptr']} AS "
                        f"{quote_ident('r_ptr')} FROM ({final.text}) AS {quote_ident('top')}",
                        final.params)
        with_sql, with_params = self.with_clause(len(self.ctes))
        count_n = 0 if self.match_cte == "base" else \
            [n for n, _ in self.ctes].index(self.match_cte) + 1
        count_with, count_params = self.with_clause(count_n)
        return Compiled(
            sql=with_sql + final.text, params=with_params + list(final.params),
            columns=columns, kinds=kinds, is_aggregate=not self.row_mode, has_ptr=has_ptr,
            limit=limit, count_sql=count_with + f"SELECT count(*) FROM "
                                               f"{quote_ident(self.match_cte)}",
            count_params=count_params, unmask=self.unmask,
            matched_all=not any(n in self.row_changing for n, _ in self.ctes[:count_n]),
            matched_column=matched_column)

    def with_clause(self, n: int) -> tuple[str, list]:
        parts, params = [], []
        base = self.base_cte()
        parts.append(f"{quote_ident('base')} AS ({base.text})")
        params.extend(base.params)
        for name, body in self.ctes[:n]:
            parts.append(f"{quote_ident(name)} AS ({body.text})")
            params.extend(body.params)
        return "WITH " + ",\n".join(parts) + "\n", params

    def base_cte(self) -> Sql:
        system = self.source.system_sql
        if system is None:
            cols = [quote_ident(c) for c in _BASE_COLUMNS]
        else:
            cols = [quote_ident(c) for c in (*_BASE_COLUMNS[:4], *self.source.carried)]
            cols += [f"{system[c]} AS {quote_ident(c)}" for c in _BASE_COLUMNS[4:]
                     if c in self.system_used]
        params: list = []
        for c, e in self.discovered.values():
            cols.append(f"{e.text} AS {quote_ident(c.ident)}")
            params.extend(e.params)
        relation = f"({self.source.relation})"
        if self.uses_doc:  # the message parsed once for all default discovered fields
            relation = (f"(SELECT *, TRY_CAST(message AS JSON) AS {quote_ident('doc')} "
                        f"FROM {relation} AS {quote_ident('rel')})")
        elif self.doc_below:  # ... or only where some column is not filled yet
            relation = (f"(SELECT *, CASE WHEN seq < CAST(? AS BIGINT) THEN TRY_CAST(message AS"
                        f" JSON) END AS {quote_ident('doc')} FROM {relation} AS"
                        f" {quote_ident('rel')})")
            params.append(self.doc_below)
        params.extend(self.source.relation_params)  # the relation comes after, in the text
        return Sql(f"SELECT {', '.join(cols)} FROM {relation} AS {quote_ident('src')}",
                   tuple(params))

    # ---- names
    def display_name(self, item_or_expr, alias: Optional[str] = None) -> str:
        if alias is not None:
            return alias
        expr = item_or_expr
        if isinstance(expr, FieldRef):
            return expr.name
        return source_text(self.q, expr) or render(expr)

    # ---- field resolution
    def resolve(self, ref: FieldRef) -> Sql:
        name = ref.name
        if name in self.local:
            return self.local[name]
        if self.agg is not None and not self.agg.inside:
            if name in self.agg.aliases:
                return self.agg.aliases[name]
            if name in self.agg.groups:
                g = self.agg.groups[name]
                return sql("any_value({0})", g, kind=g.kind)
            raise QuerySyntaxError(f"`{name}` is not an aggregation here; wrap it in one (such "
                                   f"as max({name})) or add it to `by`", ref.span)
        if name in self.defined:
            c = self.defined[name]
            return col(c.ident, c.kind)
        for k in range(len(ref.parts) - 1, 0, -1):
            prefix = ".".join(ref.parts[:k])
            base = self.local.get(prefix) or (col(self.defined[prefix].ident,
                                                  self.defined[prefix].kind)
                                              if prefix in self.defined else None)
            if base is not None:
                if base.kind != JSON:
                    return NULL_DYN  # dot notation does not descend into JSON text (§2.2)
                return self.json_path(base, ref.parts[k:])
        if not self.row_mode:
            known = ", ".join(sorted(self.defined)) or "none"
            raise UnknownFieldError(f"unknown field `{name}`: after stats only the fields it "
                                    f"produced exist ({known})", ref.span)
        if name in SYSTEM_FIELDS:
            column, kind = SYSTEM_FIELDS[name]
            self.system_used.add(column)
            return col(column, kind)
        return self.discover(ref)

    def discover(self, ref: FieldRef) -> Sql:
        name = ref.name
        if name not in self.discovered:
            # the resolver knows names by their dotted text, which is ambiguous when a part
            # holds a dot (`a.b` back-ticked): those always take the default
            resolved = self.source.field_sql(name) \
                if not any("." in p for p in ref.parts) else None
            ident = self.fresh("d")
            if resolved is not None:
                self.doc_below = max(self.doc_below, int(resolved.doc_below))
                if resolved.numbers_from is not None:
                    self.numbers_from[ident] = int(resolved.numbers_from)
                e = Sql(f"({resolved.text})", tuple(resolved.params), DYN)
            elif name.startswith("@") and not name.startswith("@@"):
                e = NULL_DYN  # a generated field this store does not produce (@requestId …)
            else:
                parts = list(ref.parts)
                if parts[0].startswith("@@"):
                    parts[0] = parts[0][1:]  # a JSON key "@x" is shown as @@x (§1)
                self.uses_doc = True
                text, params = default_field_sql(parts, quote_ident("doc"))
                e = Sql(text, tuple(params), DYN)
            self.discovered[name] = (_Col(ident, DYN), e)
        c, _ = self.discovered[name]
        return col(c.ident, c.kind)

    def json_path(self, base: Sql, parts: Sequence[str]) -> Sql:
        return sql("json_extract({0}, {1})", base,
                   param(json_pointer(parts), "VARCHAR", STR), kind=JSON)

    # ---- expressions
    def expr(self, node: Expr) -> Sql:
        if self.agg is None or self.agg.inside:
            hit = self.expr_cols.get(node)
            if hit is not None and not isinstance(node, FieldRef):
                return col(hit.ident, hit.kind)
        return self.dispatch(node)

    def compile_field_ref(self, node: FieldRef) -> Sql:
        return self.resolve(node)

    def compile_number(self, node: Number) -> Sql:
        e = param(float(node.value), "DOUBLE", NUM)
        return Sql(e.text, e.params, NUM, float(node.value))

    def compile_string(self, node: String) -> Sql:
        e = param(node.value, "VARCHAR", STR)
        return Sql(e.text, e.params, STR, node.value)

    def compile_regex(self, node: Regex) -> Sql:
        raise QuerySyntaxError("a /regex/ can only follow like, not like or =~", node.span)

    def compile_period(self, node: Period) -> Sql:
        raise QuerySyntaxError("a time period such as 5m is only an argument of bin, "
                               "datefloor or dateceil", node.span)

    def compile_star(self, node: Star) -> Sql:
        raise QuerySyntaxError("`*` is only an argument of count(*)", node.span)

    def compile_unary(self, node: Unary) -> Sql:
        operand = self.expr(node.operand)
        if node.op == "not":
            return sql("(NOT {0})", to_bool(operand), kind=BOOL)
        return sql("(- {0})", to_num(operand), kind=NUM)

    def compile_binary(self, node: Binary) -> Sql:
        left, right = self.expr(node.left), self.expr(node.right)
        op = node.op
        if op in ("and", "or"):
            return sql(f"({{0}} {op.upper()} {{1}})", to_bool(left), to_bool(right), kind=BOOL)
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return self.comparison(op, left, right)
        a, b = to_num(left), to_num(right)
        if op == "/":
            return sql("({0} / NULLIF({1}, 0))", a, b, kind=NUM)
        if op == "^":
            return sql("pow({0}, {1})", a, b, kind=NUM)
        return sql(f"({{0}} {op} {{1}})", a, b, kind=NUM)

    def comparison(self, op: str, left: Sql, right: Sql) -> Sql:
        """AWS compares numbers numerically and text as text; a field's text that holds a
        number compares numerically.  A missing operand makes the comparison (and its
        negation) false."""
        sql_op = "<>" if op == "!=" else op
        if _numeric(left.kind) and _numeric(right.kind):
            return sql(f"({{0}} {sql_op} {{1}})", to_num(left), to_num(right), kind=BOOL)
        a, b = scalar(left), scalar(right)
        missing = " OR ".join(f"{{{i}}} IS NULL" for i, e in enumerate((a, b))
                              if not _PARAM.fullmatch(e.text)) or "FALSE"
        if _numeric(a.kind) or _numeric(b.kind):
            default = "TRUE" if op == "!=" else "FALSE"
            na = "{0}" if a.kind == NUM else ("CAST({0} AS DOUBLE)" if _numeric(a.kind)
                                              else "TRY_CAST({0} AS DOUBLE)")
            nb = "{1}" if b.kind == NUM else ("CAST({1} AS DOUBLE)" if _numeric(b.kind)
                                              else "TRY_CAST({1} AS DOUBLE)")
            return sql(f"CASE WHEN {missing} THEN NULL "
                       f"ELSE COALESCE({na} {sql_op} {nb}, {default}) END", a, b, kind=BOOL)
        if _text_literal(a) or _text_literal(b):  # "abc" is no number: compare as text
            return sql(f"({{0}} {sql_op} {{1}})", a, b, kind=BOOL)
        return sql(f"CASE WHEN {missing} THEN NULL "
                   f"WHEN TRY_CAST({{0}} AS DOUBLE) IS NOT NULL AND TRY_CAST({{1}} AS DOUBLE) "
                   f"IS NOT NULL THEN TRY_CAST({{0}} AS DOUBLE) {sql_op} TRY_CAST({{1}} AS DOUBLE)"
                   f" ELSE {{0}} {sql_op} {{1}} END", a, b, kind=BOOL)

    def compile_like(self, node: Like) -> Sql:
        operand = to_text(self.expr(node.operand))
        if isinstance(node.pattern, Regex):
            info = check_regex(node.pattern.source)
            test = sql("regexp_matches({0}, {1})", operand,
                       param(info.sql_source, "VARCHAR", STR), kind=BOOL)
        else:
            test = sql("contains({0}, {1})", operand, param(node.pattern.value, "VARCHAR", STR),
                       kind=BOOL)
        return sql("(NOT {0})", test, kind=BOOL) if node.negated else test

    def compile_in(self, node: In) -> Sql:
        operand = self.expr(node.operand)
        numbers = [param(float(i.value), "DOUBLE", NUM) for i in node.items
                   if isinstance(i, Number)]
        strings = [param(i.value, "VARCHAR", STR) for i in node.items if isinstance(i, String)]
        if _numeric(operand.kind):
            values = numbers + [sql("TRY_CAST({0} AS DOUBLE)", s, kind=NUM) for s in strings]
            if values:
                test = sql("CASE WHEN {0} IS NULL THEN NULL ELSE COALESCE({0} IN ({1}), FALSE) "
                           "END", to_num(operand), fill("{args}", values, NUM), kind=BOOL)
            else:
                test = sql("CASE WHEN {0} IS NULL THEN NULL ELSE FALSE END", operand, kind=BOOL)
        else:
            # a listed number matches a field's number numerically; a listed string only the
            # complete value
            parts, lists = [], []
            if numbers:
                parts.append("COALESCE(TRY_CAST({0} AS DOUBLE) IN ({%d}), FALSE)"
                             % (len(lists) + 1))
                lists.append(fill("{args}", numbers, NUM))
            if strings:
                parts.append("COALESCE({0} IN ({%d}), FALSE)" % (len(lists) + 1))
                lists.append(fill("{args}", strings, STR))
            test = fill("CASE WHEN {0} IS NULL THEN NULL ELSE (%s) END"
                        % (" OR ".join(parts) or "FALSE"), [scalar(operand)] + lists, BOOL)
        return sql("(NOT {0})", test, kind=BOOL) if node.negated else test

    def compile_member(self, node: Member) -> Sql:
        base = self.expr(node.base)
        if base.kind != JSON:
            return NULL_DYN
        return self.json_path(base, [node.name])

    def compile_index(self, node: Index) -> Sql:
        base = self.expr(node.base)
        if base.kind != JSON:
            return NULL_DYN
        return self.json_path(base, [str(node.position)])

    def compile_func_call(self, node: FuncCall) -> Sql:
        spec = fn.lookup(node.name)
        if spec is None:  # parse() checks names; a hand-built AST may not have been
            from query.errors import UnknownFunctionError
            raise UnknownFunctionError(f"unknown function `{node.name}`", node.span)
        if spec.unsupported:
            raise UnsupportedError(spec.unsupported, node.span)
        if spec.aggregate:
            if self.agg is None:
                raise QuerySyntaxError(f"`{spec.name}` is an aggregation; use it in stats",
                                       node.span)
            if self.agg.inside:
                raise QuerySyntaxError("aggregations cannot be nested", node.span)
            self.agg.inside = True
            try:
                return self.call(spec, node)
            finally:
                self.agg.inside = False
        return self.call(spec, node)

    def call(self, spec: fn.FunctionSpec, node: FuncCall) -> Sql:
        args = self.args(spec, node)
        result = spec.result
        if result == fn.SAME:
            kinds = {a.kind for a in args}
            result = kinds.pop() if len(kinds) == 1 else DYN
            if result == DYN and len(args) > 1:
                args = [to_text(a) for a in args]
        if spec.builder:
            return getattr(self, "_fn_" + spec.builder)(node, args, result)
        template = spec.template(len(args))
        assert template is not None, spec.name
        return fill(template, args, result)

    def args(self, spec: fn.FunctionSpec, node: FuncCall) -> list:
        out = []
        for i, arg in enumerate(node.args):
            kind = spec.arg_kind(i)
            if isinstance(arg, Star):
                out.append(arg)
                continue
            if kind == fn.PERIOD:
                if not isinstance(arg, Period):
                    raise QuerySyntaxError(f"`{spec.name}` expects a time period such as 5m "
                                           "here", arg.span)
                out.append(arg)
                continue
            if kind == fn.LITERAL:
                if not isinstance(arg, (String, Number)):
                    raise UnsupportedError(f"`{spec.name}` needs a literal (a quoted string or "
                                           "a number) here", arg.span)
                out.append(arg)
                continue
            e = self.expr(arg)
            out.append({fn.NUM: to_num, fn.STR: to_text, fn.TIME: to_time, fn.BOOL: to_bool,
                        fn.JSON: to_json}.get(kind, lambda x: x)(e))
        return out

    # ---- builders for functions a template cannot express
    def _fn_count(self, node, args, result):
        if not args or isinstance(args[0], Star):
            return Sql("count(*)", (), NUM)
        return sql("count({0})", args[0], kind=NUM)

    def _minmax(self, args, agg: str, arg_agg: str):
        (e,) = args
        if _numeric(e.kind):
            return sql(f"{agg}({{0}})", e, kind=e.kind)
        t = scalar(e)
        # numbers compare as numbers; when no value is a number, as text
        return sql(f"COALESCE({arg_agg}({{0}}, TRY_CAST({{0}} AS DOUBLE)), {agg}({{0}}))", t,
                   kind=DYN, bind=False)

    def _fn_max(self, node, args, result):
        return self._minmax(args, "max", "arg_max")

    def _fn_min(self, node, args, result):
        return self._minmax(args, "min", "arg_min")

    def _fn_pct(self, node, args, result):
        value, p = args
        if not isinstance(p, Number) or not 0 <= p.value <= 100:
            raise QuerySyntaxError("the percentile is a number from 0 to 100", p.span)
        return sql("quantile_disc({0}, {1})", value, param(p.value / 100, "DOUBLE", NUM),
                   kind=NUM)

    def time_column(self, node) -> Sql:
        """@timestamp as a time: the event's, or one a previous stats carried through."""
        if self.agg is not None and not self.agg.inside:
            raise QuerySyntaxError(f"`{node.name}` reads @timestamp of each event; in stats "
                                   "use it in `by` or inside an aggregation", node.span)
        if self.row_mode:
            return col("ts", TIME)
        c = self.defined.get("@timestamp")
        if c is not None and c.kind == TIME:
            return col(c.ident, TIME)
        raise QuerySyntaxError(f"`{node.name}` needs @timestamp, which the previous stats did "
                               "not keep; carry it with e.g. max(@timestamp) as @timestamp",
                               node.span)

    def _earliest(self, node, args, agg: str):
        (e,) = args
        t = self.time_column(node)
        key = sql("[{0}, {1}]", t, col("seq", NUM)) if self.row_mode else t
        return sql(f"{agg}({{0}}, {{1}}) FILTER (WHERE {{0}} IS NOT NULL)", e, key, kind=e.kind,
                   bind=False)

    def _fn_earliest(self, node, args, result):
        return self._earliest(node, args, "arg_min")

    def _fn_latest(self, node, args, result):
        return self._earliest(node, args, "arg_max")

    def _sorts(self, args, agg: str, num_agg: str):
        (e,) = args
        if _numeric(e.kind):
            return sql(f"{num_agg}({{0}})", e, kind=e.kind)
        return sql(f"{agg}({{0}}, {{1}}) FILTER (WHERE {{0}} IS NOT NULL)", e, _struct_key(e),
                   kind=e.kind, bind=False)

    def _fn_sorts_first(self, node, args, result):
        return self._sorts(args, "arg_min", "min")

    def _fn_sorts_last(self, node, args, result):
        return self._sorts(args, "arg_max", "max")

    def _fn_now(self, node, args, result):
        if self.now_ms is None:
            return Sql("CAST(epoch(get_current_timestamp()) AS BIGINT)", (), NUM)
        return param(int(self.now_ms) // 1000, "BIGINT", NUM)

    def _fn_substr(self, node, args, result):
        s, start = args[0], args[1]
        first = sql("TRY_CAST(floor({0}) + 1 AS BIGINT)", start, kind=NUM)
        if len(args) == 2:
            return sql("CASE WHEN {0} < 0 THEN NULL ELSE substring({1}, {2}) END", start, s,
                       first, kind=STR)
        length = sql("TRY_CAST(floor({0}) AS BIGINT)", args[2], kind=NUM)
        return sql("CASE WHEN {0} < 0 OR {1} < 0 THEN NULL ELSE substring({2}, {3}, {4}) END",
                   start, args[2], s, first, length, kind=STR)

    # -- datetime
    def _floor(self, t: Sql, period: Period) -> Sql:
        if period.unit in _UNIT_MONTHS:
            n = period.amount * _UNIT_MONTHS[period.unit]
            return self._month_floor(t, n, ceil=False)
        size = min(period.amount, _UNIT_CAP.get(period.unit, period.amount)) \
            * _UNIT_MS[period.unit]
        p = param(size, "BIGINT", NUM)
        if period.unit == "w":
            o = param(_MONDAY_MS, "BIGINT", NUM)
            return sql("({0} - ((({0} - {1}) % {2}) + {2}) % {2})", t, o, p, kind=TIME)
        return sql("({0} - (({0} % {1}) + {1}) % {1})", t, p, kind=TIME)

    def _month_floor(self, t: Sql, n: int, ceil: bool) -> Sql:
        unit = {1: "month", 3: "quarter", 12: "year"}.get(n)
        if unit is not None and not ceil:
            return sql(f"epoch_ms(date_trunc('{unit}', make_timestamp({{0}} * 1000)))", t,
                       kind=TIME)

        def build(t: Sql) -> Sql:
            ts = sql("make_timestamp({0} * 1000)", t)
            idx = sql("(year({0}) * 12 + month({0}) - 1)", ts)
            k = param(n, "BIGINT", NUM)

            def at(floor_idx: Sql) -> Sql:
                floor_ms = self._month_start(floor_idx)
                if not ceil:
                    return Sql(floor_ms.text, floor_ms.params, TIME)
                next_ms = self._month_start(sql("({0} + {1})", floor_idx, k))
                return sql("CASE WHEN {0} = {1} THEN {1} ELSE {2} END", floor_ms, t, next_ms,
                           kind=TIME)

            return let(sql("({0} - ((({0} % {1}) + {1}) % {1}))", idx, k), at)

        return let(t, build)

    @staticmethod
    def _month_start(idx: Sql) -> Sql:
        return sql("epoch_ms(CAST(make_date(CAST(floor({0} / 12) AS BIGINT), "
                   "CAST({0} - floor({0} / 12) * 12 + 1 AS BIGINT), 1) AS TIMESTAMP))", idx,
                   kind=TIME)

    def _ceil(self, t: Sql, period: Period) -> Sql:
        if period.unit in _UNIT_MONTHS:
            return self._month_floor(t, period.amount * _UNIT_MONTHS[period.unit], ceil=True)
        size = min(period.amount, _UNIT_CAP.get(period.unit, period.amount)) \
            * _UNIT_MS[period.unit]
        return let(t, lambda t: sql("CASE WHEN {0} = {1} THEN {1} ELSE {0} + {2} END",
                                    self._floor(t, period), t, param(size, "BIGINT", NUM),
                                    kind=TIME))

    def _fn_bin(self, node, args, result):
        return self._floor(self.time_column(node), args[0])

    def _fn_datefloor(self, node, args, result):
        return self._floor(args[0], args[1])

    def _fn_dateceil(self, node, args, result):
        return self._ceil(args[0], args[1])

    # -- IP addresses
    def _subnet(self, node, literal, version: Optional[int]):
        if not isinstance(literal, String):
            raise QuerySyntaxError("the subnet is a quoted CIDR such as \"192.0.2.0/24\"",
                                   literal.span)
        try:
            net = ipaddress.ip_network(literal.value, strict=False)
        except ValueError:
            raise QuerySyntaxError(f"{literal.value!r} is not a CIDR subnet such as "
                                   "\"192.0.2.0/24\" or \"2001:db8::/32\"", literal.span)
        if version is not None and net.version != version:
            raise QuerySyntaxError(f"{literal.value!r} is not an IPv{version} subnet",
                                   literal.span)
        return net

    def _v4_in(self, ip: Sql, net) -> Sql:
        shift = 32 - net.prefixlen
        return sql(f"(regexp_full_match({{0}}, {{const:ipv4}}) AND "
                   f"(list_reduce(list_transform(string_split({{0}}, '.'), lambda ip_octet: "
                   f"TRY_CAST(ip_octet AS BIGINT)), lambda ip_a, ip_b: ip_a * 256 + ip_b) "
                   f">> {shift}) = {{1}})", ip,
                   param(int(net.network_address) >> shift, "BIGINT", NUM), kind=BOOL)

    def _v6_in(self, ip: Sql, net) -> Sql:
        """The address expanded to 32 hex digits (``::`` filled in, an embedded IPv4 tail
        turned into two groups), compared with the subnet's on its first prefix bits."""
        hexits = net.network_address.exploded.replace(":", "")
        full, rem = divmod(net.prefixlen, 4)
        tail = "regexp_extract(ip_s, '[0-9.]+$')"
        octet = [f"TRY_CAST(split_part({tail}, '.', {i}) AS INTEGER)" for i in range(1, 5)]
        expanded = sql(
            "list_transform([lower({0})], lambda ip_s: CASE WHEN contains(ip_s, '.') THEN "
            f"regexp_replace(ip_s, '[0-9.]+$', '') || printf('%x:%x', "
            f"{octet[0]} * 256 + {octet[1]}, {octet[2]} * 256 + {octet[3]}) "
            "ELSE ip_s END)[1]", ip)
        groups = sql(
            "list_transform([{0}], lambda ip_t: CASE WHEN contains(ip_t, '::') THEN "
            "list_concat(list_filter(string_split(split_part(ip_t, '::', 1), ':'), "
            "lambda ip_g: ip_g <> ''), list_transform(range(greatest(0, 8 - len(list_filter("
            "string_split(ip_t, ':'), lambda ip_g: ip_g <> '')))), lambda ip_i: '0'), "
            "list_filter(string_split(split_part(ip_t, '::', 2), ':'), "
            "lambda ip_g: ip_g <> '')) ELSE string_split(ip_t, ':') END)[1]", expanded)
        hexes = sql("array_to_string(list_transform({0}, lambda ip_g: lpad(ip_g, 4, '0')), '')",
                    groups)
        prefix = param(hexits[:full], "VARCHAR", STR)
        if not rem:
            test = sql("starts_with({0}, {1})", hexes, prefix)
        else:
            nibble = param(int(hexits[full], 16) >> (4 - rem), "BIGINT", NUM)
            test = sql(f"(starts_with({{0}}, {{1}}) AND (strpos('0123456789abcdef', "
                       f"substr({{0}}, {full + 1}, 1)) - 1) >> {4 - rem} = {{2}})",
                       hexes, prefix, nibble)
        return sql("(regexp_full_match({0}, {const:ipv6}) AND {1})", ip, test, kind=BOOL)

    def _fn_ip_in_subnet(self, node, args, result):
        net = self._subnet(node, args[1], None)
        return self._v4_in(args[0], net) if net.version == 4 else self._v6_in(args[0], net)

    def _fn_ipv4_in_subnet(self, node, args, result):
        return self._v4_in(args[0], self._subnet(node, args[1], 4))

    def _fn_ipv6_in_subnet(self, node, args, result):
        return self._v6_in(args[0], self._subnet(node, args[1], 6))

    # ---- commands
    def project(self, items: Sequence[Item]) -> list[tuple[str, _Col]]:
        """Compile ``expr [as alias]`` items into new columns of one CTE.  Later items may use
        earlier items' names; a plain field reference adds no column."""
        self.local = {}
        out: list[tuple[str, _Col]] = []
        selects: list[Sql] = []
        try:
            for item in items:
                e = self.expr(item.expr)
                name = self.display_name(item.expr, item.alias)
                ident = e.text[1:-1] if _is_column(e) else None
                if ident is None:
                    ident = self.fresh()
                    selects.append(sql(f"{{0}} AS {quote_ident(ident)}", e))
                self.local[name] = col(ident, e.kind)
                out.append((name, _Col(ident, e.kind)))
        finally:
            self.local = {}
        if selects:
            self.materialize()
            body = fill("SELECT *, {args} FROM " + quote_ident(self.current), selects, DYN)
            self.add_cte(body)
        for name, c in out:
            self.defined[name] = c
        return out

    def compile_fields(self, node: Fields) -> None:
        for name, c in self.project(node.items):
            self.visible[name] = c

    def compile_display(self, node: Display) -> None:
        self.display = dict(self.project(node.items))

    def compile_filter(self, node: Filter) -> None:
        self.materialize()
        cond = to_bool(self.expr(node.condition))
        self.add_cte(sql(f"SELECT * FROM {quote_ident(self.current)} WHERE {{0}}", cond),
                     changes_rows=True)

    def compile_filter_index(self, node: FilterIndex) -> None:
        self.compile_filter(Filter(node.condition, node.span))

    def compile_stats(self, node: Stats) -> None:
        if node.offset is not None:
            raise UnsupportedError("`offset` on stats bins is not supported", node.offset.span)
        self.materialize()
        if self.stats_count == 0:
            self.mark_match()
        # recordsMatched folded into the first stats when it reads the matched events
        # directly: the sum of its groups' counts, on every row (a window over the groups)
        fold = self.stats_count == 0 and self.match_cte == self.current
        self.stats_count += 1
        groups: dict[str, Sql] = {}
        group_items: list[tuple[str, Sql, Expr]] = []
        for item in node.by:
            self.agg = None
            e = self.expr(item.expr)
            name = self.display_name(item.expr, item.alias)
            groups[name] = e
            group_items.append((name, e, item.expr))
        aliases: dict[str, Sql] = {}
        agg_items: list[tuple[str, Sql, Expr]] = []
        self.agg = _Agg(aliases, groups)
        try:
            for item in node.items:
                e = self.expr(item.expr)
                name = self.display_name(item.expr, item.alias)
                aliases[name] = e
                agg_items.append((name, e, item.expr))
        finally:
            self.agg = None
        selects: list[Sql] = []
        new_defined: dict[str, _Col] = {}
        expr_cols: dict = {}
        order: list[Sql] = []
        for name, e, expr in group_items + agg_items:
            ident = self.fresh()
            selects.append(sql(f"{{0}} AS {quote_ident(ident)}", e))
            if name not in new_defined:
                new_defined[name] = _Col(ident, e.kind)
            expr_cols.setdefault(expr, _Col(ident, e.kind))
        for name, e, expr in group_items:
            c = new_defined[name]
            order.append(_order_items(col(c.ident, c.kind), descending=c.kind == TIME))
        if fold:
            selects.append(Sql(f"sum(count(*)) OVER () AS {quote_ident('m_matched')}"))
        self.matched_alive = fold
        body = fill("SELECT {args} FROM " + quote_ident(self.current), selects, DYN)
        if group_items:
            body = Sql(body.text + " GROUP BY " + ", ".join(
                str(i + 1) for i in range(len(group_items))), body.params)
        self.add_cte(body, changes_rows=True)
        self.row_mode = False
        self.defined = new_defined
        self.expr_cols = expr_cols
        self.visible = dict(new_defined)
        self.extracted = {}
        self.display = None
        self.order = []
        self._stats_order = order

    def compile_sort(self, node: Sort) -> None:
        self.materialize()
        keys = []
        numbers: list[Sql] = []
        for key in node.keys:
            e = self.expr(key.expr)
            isnum = None
            known = self.numbers_from.get(e.text[1:-1]) \
                if self.row_mode and _is_column(e) else None
            if known is not None and known <= 0:
                # a field whose every value is a number or missing: by value (the natural
                # order of numbers), without testing each value
                direction = "DESC" if key.descending else "ASC"
                keys.append(sql(f"TRY_CAST({{0}} AS DOUBLE) {direction} NULLS LAST", e))
                continue
            if not _numeric(e.kind):
                # "is a number" (a regex) is used by all three ORDER BY items of a text key:
                # computed once per event, in a column of its own
                ident = self.fresh("k")
                test = _is_number(scalar(e))
                if known is not None:        # values from seq `known` on are numbers
                    test = sql('CASE WHEN "seq" >= {0} AND {1} IS NOT NULL THEN TRUE ELSE {2} END',
                               param(known, "BIGINT", NUM), e, test, kind=BOOL)
                numbers.append(sql(f"{{0}} AS {quote_ident(ident)}", test))
                isnum = col(ident, BOOL)
            # Without asc/desc a sort is ascending (the reference leaves it open; SQL's default)
            keys.append(_order_items(e, descending=bool(key.descending), isnum=isnum))
        if numbers:
            self.add_cte(fill("SELECT *, {args} FROM " + quote_ident(self.current), numbers,
                              DYN))
        tiebreak = [Sql('"ts" DESC'), Sql('"seq" DESC')] if self.row_mode else \
            list(self._stats_order)
        self.order = keys + tiebreak

    def compile_limit(self, node: Limit) -> None:
        if self.stats_count == 0:
            self.mark_match()
        if node.count is None:
            return  # `limit any`: stop early once enough rows are found; no cap of its own
        if node.count > self.limit_max:
            raise QuerySyntaxError(f"limit must be between 1 and {self.limit_max}", node.span)
        self.materialize()
        self.pending_limit = node.count

    def compile_dedup(self, node: Dedup) -> None:
        self.materialize()
        if self.stats_count == 0:
            self.mark_match()
        keys = [scalar(self.resolve(f)) for f in node.fields]
        nulls = " OR ".join(k.text + " IS NULL" for k in keys)
        null_params = [p for k in keys for p in k.params]
        partition = fill("{args}", keys, DYN)
        order = self.order_sql()
        text = (f"SELECT * FROM {quote_ident(self.current)} QUALIFY ({nulls}) OR "
                f"row_number() OVER (PARTITION BY {partition.text}"
                + (f" ORDER BY {order.text}" if order.text else "") + ") = 1")
        self.add_cte(Sql(text, tuple(null_params) + partition.params + order.params),
                     changes_rows=True)

    def compile_unmask(self, node: Unmask) -> None:
        self.unmask = True  # nothing is masked in this store: all content is already shown

    def compile_other_command(self, node: OtherCommand) -> None:
        raise UnsupportedError(UNSUPPORTED_COMMANDS.get(node.name,
                                                        f"`{node.name}` is not supported"),
                               node.span)

    def compile_unnest(self, node: Unnest) -> None:
        self.materialize()
        e = self.expr(node.source)
        if e.kind == JSON:
            items = sql("CASE WHEN {0} IS NULL THEN CAST([] AS JSON[]) "
                        "WHEN json_type({0}) = 'ARRAY' THEN json_extract({0}, '$[*]') "
                        "ELSE [{0}] END", e, kind=JSON)
            kind = JSON
        else:
            t = to_text(e) if e.kind in (BOOL,) else e
            items = sql("CASE WHEN {0} IS NULL THEN [] ELSE [{0}] END", t)
            kind = t.kind
        ident = self.fresh()
        self.add_cte(sql(f"SELECT *, unnest({{0}}) AS {quote_ident(ident)} "
                         f"FROM {quote_ident(self.current)}", items), changes_rows=True)
        self.defined[node.into] = _Col(ident, kind)
        self.extracted[node.into] = _Col(ident, kind)

    def compile_parse(self, node: Parse) -> None:
        self.materialize()
        if node.source is None:
            src = col("message", STR) if self.row_mode else self.resolve(
                FieldRef(("@message",), node.span))
        else:
            src = self.resolve(node.source)
        src = to_text(src)
        getattr(self, "_parse_" + node.mode)(node, src)

    def _bind_fields(self, names: Sequence[str], idents: Sequence[str], kind: str = DYN):
        for name, ident in zip(names, idents):
            self.defined[name] = _Col(ident, kind)
            self.extracted[name] = _Col(ident, kind)

    def _parse_groups(self, node: Parse, src: Sql, regex: str, groups: int,
                      wanted: Sequence[tuple[str, int]]):
        """Extract capture groups of ``regex`` (a bound parameter) into fields; ``wanted``
        is (field name, group number)."""
        re_param = param(regex, "VARCHAR", STR)
        if node.multi:
            # one row per match; an event without a match keeps one row without the fields
            lists, list_idents = [], []
            for _, number in wanted:
                ident = self.fresh()
                lists.append(sql(f"regexp_extract_all({{0}}, {{1}}, {number}) AS "
                                 f"{quote_ident(ident)}", src, re_param))
                list_idents.append(quote_ident(ident))
            self.add_cte(fill("SELECT *, {args} FROM " + quote_ident(self.current), lists, DYN))
            selects, idents = [], []
            for list_ident in list_idents:
                ident = self.fresh()
                selects.append(Sql(f"unnest(CASE WHEN len({list_ident}) = 0 THEN [NULL] "
                                   f"ELSE {list_ident} END) AS {quote_ident(ident)}"))
                idents.append(ident)
            self.add_cte(fill("SELECT *, {args} FROM " + quote_ident(self.current), selects,
                              DYN), changes_rows=True)
            self._bind_fields([n for n, _ in wanted], idents)
            return
        struct = quote_ident(self.fresh())
        names = ", ".join(_literal(f"g{i}") for i in range(1, groups + 1))
        self.add_cte(sql(f"SELECT *, CASE WHEN regexp_matches({{0}}, {{1}}) THEN "
                         f"regexp_extract({{0}}, {{1}}, [{names}]) END AS {struct} "
                         f"FROM {quote_ident(self.current)}", src, re_param))
        selects, idents = [], []
        for _, number in wanted:
            ident = self.fresh()
            selects.append(Sql(f"struct_extract({struct}, {_literal(f'g{number}')}) AS "
                               f"{quote_ident(ident)}"))
            idents.append(ident)
        self.add_cte(fill("SELECT *, {args} FROM " + quote_ident(self.current), selects, DYN))
        self._bind_fields([n for n, _ in wanted], idents)

    def _parse_glob(self, node: Parse, src: Sql) -> None:
        regex = glob_regex(node.pattern.value)
        wanted = [(alias, i + 1) for i, alias in enumerate(node.aliases)]
        self._parse_groups(node, src, regex, len(node.aliases), wanted)

    def _parse_regex(self, node: Parse, src: Sql) -> None:
        info = check_regex(node.pattern.source)
        if node.aliases:
            wanted = [(alias, i + 1) for i, alias in enumerate(node.aliases)]
        else:
            wanted = list(info.names)
        self._parse_groups(node, src, info.sql_source, info.groups, wanted)

    def _parse_logfmt(self, node: Parse, src: Sql) -> None:
        # key=value pairs (values bare or "quoted" with \" escapes) → one JSON object
        ident = self.fresh()
        pair = _literal(r'(?:^|\s)([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
        value = (r"""CASE WHEN starts_with(lf_v, '"') THEN regexp_replace(lf_v[2:-2], """
                 r"""'\\(.)', '\1', 'g') ELSE lf_v END""")
        template = (
            "SELECT *, CASE WHEN {0} IS NULL THEN NULL ELSE CAST('{' || array_to_string("
            f"list_transform(list_zip(regexp_extract_all({{0}}, {pair}, 1), "
            f"regexp_extract_all({{0}}, {pair}, 2)), lambda lf_kv: "
            f"list_transform([lf_kv[2]], lambda lf_v: to_json(lf_kv[1]) || ':' || "
            f"to_json({value}))[1]), ',') || '}}' AS JSON) END AS {quote_ident(ident)} "
            f"FROM {quote_ident(self.current)}")
        self.add_cte(sql(template, src))
        self._bind_fields(node.aliases, [ident], JSON)

    def _parse_csv(self, node: Parse, src: Sql) -> None:
        lst = self.fresh()
        self.add_cte(sql(f"SELECT *, regexp_extract_all({{0}}, "
                         f"{_literal(_CSV_FIELD)}, 1) AS {quote_ident(lst)} "
                         f"FROM {quote_ident(self.current)}", src))
        selects, idents = [], []
        for i, _ in enumerate(node.aliases):
            ident = self.fresh()
            v = f"{quote_ident(lst)}[{i + 1}]"
            selects.append(Sql(f"CASE WHEN starts_with({v}, '\"') AND length({v}) >= 2 THEN "
                               f"replace({v}[2:-2], '\"\"', '\"') ELSE {v} END AS "
                               f"{quote_ident(ident)}"))
            idents.append(ident)
        self.add_cte(fill("SELECT *, {args} FROM " + quote_ident(self.current), selects, DYN))
        self._bind_fields(node.aliases, idents)


_CSV_FIELD = r'(?:^|,)("(?:[^"]|"")*"|[^,]*)'


def _text_literal(e: Sql) -> bool:
    """A string literal that cannot be read as a number."""
    if not isinstance(e.literal, str):
        return False
    try:
        float(e.literal)
    except ValueError:
        return True
    return False


def _is_column(e: Sql) -> bool:
    return not e.params and re.fullmatch(r'"[A-Za-z_][A-Za-z0-9_]*"', e.text) is not None


def _re2_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\^$.|?*+()[]{}" else c for c in text)


def glob_regex(pattern: str) -> str:
    """The RE2 regex for a ``parse`` glob: each ``*`` captures as little as possible, a
    trailing ``*`` the rest of the value; the match is unanchored and ``*`` crosses lines."""
    pieces = pattern.split("*")
    out = ["(?s)"]
    for i, piece in enumerate(pieces):
        out.append(_re2_escape(piece))
        if i < len(pieces) - 1:
            out.append("(.*)" if i == len(pieces) - 2 and pieces[-1] == "" else "(.*?)")
    return "".join(out)
