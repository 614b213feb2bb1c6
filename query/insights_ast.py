"""The Logs Insights AST: frozen dataclasses, one per language construct.

Every node carries ``span`` (a :class:`~query.errors.Span` into the query text), excluded from
equality so that tests and the parse → render → parse round trip compare shape and content.
Nothing here knows about SQL or DuckDB; :mod:`query.insights_compile` depends on this module,
never the reverse.

A query is a pipeline::

    Query(commands=(Filter(...), Stats(...), Sort(...), Limit(...)))

Expressions::

    FieldRef(("a", "b"))            a.b  (each part is one dot-separated segment; a back-ticked
                                    segment may itself contain dots: a.`b.c` -> ("a", "b.c"))
    Number(5) String("x") Regex("(?i)err") Period(5, "m")
    FuncCall("count", (Star(),))    count(*)
    Unary("-" | "not", operand)     Binary(op, left, right)  (+ - * / % ^ = != < <= > >= and or)
    Like(operand, String | Regex, negated)    (=~ /re/ is Like with a Regex)
    In(operand, (Number | String, ...), negated)
    Member(base, name)  Index(base, position)   postfix access on an expression (jsonParse(x).a)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from query.errors import Span


def _span() -> Span:
    return field(default=Span(0, 0), compare=False, repr=False)


# ------------------------------------------------------------------------------------------
# Expressions
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldRef:
    """A field: a system field (``@timestamp``), a discovered field (``a.b.0``), or one defined
    earlier in the pipeline (by ``fields … as``, ``parse``, ``stats`` …)."""

    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def name(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Number:
    """A numeric literal; ``value`` is an ``int`` when written without a point or exponent."""

    value: Union[int, float]
    span: Span = _span()


@dataclass(frozen=True)
class String:
    """A quoted string (single or double quotes), escapes already resolved."""

    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Regex:
    """``/…/``: ``source`` is the text between the slashes (``\\/`` kept as written)."""

    source: str
    span: Span = _span()


PeriodUnit = Literal["ms", "s", "m", "h", "d", "w", "mo", "q", "y"]


@dataclass(frozen=True)
class Period:
    """A time period such as ``5m`` or ``1h``; ``unit`` is canonical (``min`` → ``m``)."""

    amount: int
    unit: PeriodUnit
    span: Span = _span()


@dataclass(frozen=True)
class Star:
    """The ``*`` of ``count(*)``."""

    span: Span = _span()


@dataclass(frozen=True)
class FuncCall:
    """``name(args…)``; ``name`` is lower-cased (function names are case-insensitive)."""

    name: str
    args: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Unary:
    """``-x`` or ``not x``."""

    op: Literal["-", "not"]
    operand: "Expr"
    span: Span = _span()


BinaryOperator = Literal["+", "-", "*", "/", "%", "^",
                         "=", "!=", "<", "<=", ">", ">=", "and", "or"]


@dataclass(frozen=True)
class Binary:
    """Arithmetic, comparison or boolean operator between two expressions."""

    op: BinaryOperator
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Like:
    """``x like "sub"`` (case-sensitive substring), ``x like /re/`` or ``x =~ /re/``
    (unanchored regex search); ``negated`` for ``not like``."""

    operand: "Expr"
    pattern: Union[String, Regex]
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class In:
    """``x in [..]`` / ``x not in [..]``: whole-value equality with any listed literal."""

    operand: "Expr"
    items: tuple[Union[Number, String], ...]
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class Member:
    """``base.name`` where ``base`` is not a plain field (``jsonParse(x).userId``)."""

    base: "Expr"
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Index:
    """``base[n]``: element ``n`` (0-based) of a list."""

    base: "Expr"
    position: int
    span: Span = _span()


Expr = Union[FieldRef, Number, String, Regex, Period, Star, FuncCall, Unary, Binary, Like, In,
             Member, Index]


# ------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One ``expr [as alias]`` of ``fields``, ``display`` or ``stats`` (and its ``by``)."""

    expr: Expr
    alias: Optional[str] = None
    span: Span = _span()


@dataclass(frozen=True)
class Fields:
    """``fields a, f(b) as c``: define fields and choose what is displayed."""

    items: tuple[Item, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Display:
    """``display a, b``: the fields returned (the last ``display`` wins)."""

    items: tuple[Item, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Filter:
    """``filter expr`` (``where`` is the same command)."""

    condition: Expr
    span: Span = _span()


@dataclass(frozen=True)
class FilterIndex:
    """``filterIndex field = "v"`` / ``filterIndex field in [..]``."""

    condition: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Stats:
    """``stats agg(x) [as a], … [by expr [as b], …] [offset period]``."""

    items: tuple[Item, ...]
    by: tuple[Item, ...] = ()
    offset: Optional[Period] = None
    span: Span = _span()


@dataclass(frozen=True)
class SortKey:
    """One key of ``sort``; ``descending`` is None when neither asc nor desc is written."""

    expr: Expr
    descending: Optional[bool] = None
    span: Span = _span()


@dataclass(frozen=True)
class Sort:
    """``sort a desc, b``: AWS's natural sort order."""

    keys: tuple[SortKey, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Limit:
    """``limit n``; ``count`` is None for ``limit any``."""

    count: Optional[int]
    span: Span = _span()


ParseMode = Literal["glob", "regex", "logfmt", "csv"]


@dataclass(frozen=True)
class Parse:
    """``parse [field] "glob*" as a``, ``parse [field] /(?<a>re)/ [multi]``,
    ``parse [field] logfmt as m``, ``parse [field] csv as a, b``.

    ``source`` is None for the default ``@message``; ``pattern`` is the glob String or the
    Regex (None for logfmt and csv)."""

    mode: ParseMode
    source: Optional[FieldRef] = None
    pattern: Optional[Union[String, Regex]] = None
    aliases: tuple[str, ...] = ()
    multi: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class Dedup:
    """``dedup a, b``: keep the first row (in the current order) of each value combination."""

    fields: tuple[FieldRef, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Unnest:
    """``unnest expr into name``: one row per item of a list."""

    source: Expr
    into: str
    span: Span = _span()


@dataclass(frozen=True)
class Unmask:
    """``unmask``: show content masked by a data protection policy."""

    span: Span = _span()


@dataclass(frozen=True)
class OtherCommand:
    """A command the language has but this engine cannot run (``pattern``, ``diff``,
    ``lookup``, ``SOURCE`` …).  ``name`` is lower-cased; ``text`` is the rest, verbatim."""

    name: str
    text: str = ""
    span: Span = _span()


Command = Union[Fields, Display, Filter, FilterIndex, Stats, Sort, Limit, Parse, Dedup, Unnest,
                Unmask, OtherCommand]


@dataclass(frozen=True)
class Query:
    """A whole query.  ``text`` is the source (used for error excerpts and to name
    unaliased result columns after their expression text, as AWS does)."""

    commands: tuple[Command, ...]
    text: str = field(default="", compare=False, repr=False)
    span: Span = _span()


def source_text(query: Query, node) -> Optional[str]:
    """The text ``node`` was parsed from, or None when ``query`` carries no text for it."""
    span = getattr(node, "span", None)
    if not query.text or span is None or span.end <= span.start or span.end > len(query.text):
        return None
    return query.text[span.start:span.end]
