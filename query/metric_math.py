"""CloudWatch metric math: parser, AST and numpy evaluator.

The language is the one of the ``Expression`` field of a GetMetricData ``MetricDataQuery``
and of metric-math alarms, described in "Using metric math"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html).

Public surface::

    parse(text) -> Expr                         # frozen dataclasses, every node has a Span
    render(expr) -> str                         # Expr back to text (parse(render(e)) == e, spans aside)
    referenced_ids(expr) -> set[str]            # ids the expression names explicitly
    evaluate(expr_or_text, ctx) -> list[Series] | float

The module has two halves that only meet in :data:`FUNCTIONS`, the table of function names,
arities and which arguments take keywords or strings.  The first half (AST, ``ToAst``,
``parse``, ``render``) imports lark only; it validates names and arities so a bad expression is
rejected before any data is read.  The second half (``Series``, ``MathContext``,
``_Evaluator``) is the numpy engine: one ``eval_<Node>`` method per AST class and one
``fn_<name>`` method per function, looked up by name, so a node or function without an
implementation fails loudly instead of being skipped.

Missing data follows the AWS page where it says something, and the brief where it does not:

* arithmetic between two time series keeps only timestamps present in both operands;
* comparison and logical operators between two time series work on the union of timestamps
  and treat a missing value as 0 (the worked example on the AWS page);
* ``AVG`` of an array treats missing values as 0 (AWS: "Missing values are treated as 0"),
  ``MIN``/``MAX``/``SUM``/``STDDEV`` of an array use the values that exist;
* no result contains NaN or infinite values: such points are dropped, as CloudWatch drops
  the point when a division by zero happens.
"""
from __future__ import annotations

import difflib
import functools
import sys
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np
from lark import Lark, v_args
from lark.visitors import Transformer_NonRecursive
from lark.exceptions import (LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken,
                             VisitError)

from query.errors import (EvaluationError, QueryError, QuerySyntaxError, Span,
                          UnknownFieldError, UnknownFunctionError, UnsupportedError,
                          from_lark)

__all__ = [
    "Number", "String", "IdRef", "Keyword", "Array", "FuncCall", "UnaryOp", "BinaryOp", "Expr",
    "FUNCTIONS", "Signature", "Series", "MathContext", "UnknownIdError",
    "parse", "render", "referenced_ids", "evaluate",
]


# --------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A numeric literal: ``5``, ``0.25``, ``1e3``."""

    value: float
    span: Span


@dataclass(frozen=True)
class String:
    """A quoted string (single or double quotes); ``value`` has the quotes removed."""

    value: str
    span: Span


@dataclass(frozen=True)
class IdRef:
    """The Id of another query in the request (``m1``, ``errors``)."""

    name: str
    span: Span


@dataclass(frozen=True)
class Keyword:
    """A bare upper-case word used as a function argument: ``REPEAT``, ``LINEAR``, ``AVG``, ``DESC``."""

    name: str
    span: Span


@dataclass(frozen=True)
class Array:
    """``[e1, e2, …]``: an array of time series."""

    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class FuncCall:
    """``NAME(args…)``; ``name`` is one of :data:`FUNCTIONS` once :func:`parse` returns."""

    name: str
    args: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    """``-x``, ``+x`` or ``NOT x``."""

    op: str
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class BinaryOp:
    """``left op right``; ``op`` is one of ``+ - * / ^ == != < <= > >= AND OR``.

    ``&&`` and ``||`` are stored as ``AND`` and ``OR``.
    """

    op: str
    left: "Expr"
    right: "Expr"
    span: Span


Expr = Union[Number, String, IdRef, Keyword, Array, FuncCall, UnaryOp, BinaryOp]

ARITHMETIC_OPS = ("+", "-", "*", "/", "^")
COMPARISON_OPS = ("==", "!=", "<", "<=", ">", ">=")
LOGICAL_OPS = ("AND", "OR")


# --------------------------------------------------------------------------------------------
# Function table (shared by the parser's checks and the evaluator)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """What :func:`parse` checks about a call before anything is evaluated.

    ``keywords[i]`` is the set of bare words argument ``i`` may be; when ``i`` is also in
    ``keyword_only`` it must be one of them.  ``strings`` are the positions that take a
    quoted string (and only a string).  ``unsupported`` functions parse but raise
    :class:`UnsupportedError` when evaluated.
    """

    min_args: int
    max_args: int
    keywords: dict = field(default_factory=dict)
    keyword_only: frozenset = frozenset()
    strings: frozenset = frozenset()
    unsupported: bool = False
    usage: str = ""


def _sig(min_args, max_args, usage, **kw) -> Signature:
    return Signature(min_args, max_args, usage=usage, **kw)


_SORT_FUNCTIONS = frozenset({"AVG", "MIN", "MAX", "SUM"})

FUNCTIONS: dict[str, Signature] = {
    # element-wise
    "ABS": _sig(1, 1, "ABS(m1)"),
    "CEIL": _sig(1, 1, "CEIL(m1)"),
    "FLOOR": _sig(1, 1, "FLOOR(m1)"),
    "LOG": _sig(1, 1, "LOG(m1)"),
    "LOG10": _sig(1, 1, "LOG10(m1)"),
    "SQRT": _sig(1, 1, "SQRT(m1)"),
    # TS -> scalar, TS[] -> TS
    "AVG": _sig(1, 1, "AVG(m1) or AVG([m1, m2])"),
    "MAX": _sig(1, 1, "MAX(m1) or MAX([m1, m2])"),
    "MIN": _sig(1, 1, "MIN(m1) or MIN([m1, m2])"),
    "SUM": _sig(1, 1, "SUM(m1) or SUM([m1, m2])"),
    "STDDEV": _sig(1, 1, "STDDEV(m1) or STDDEV([m1, m2])"),
    "DATAPOINT_COUNT": _sig(1, 1, "DATAPOINT_COUNT(m1)"),
    "METRIC_COUNT": _sig(1, 1, "METRIC_COUNT(METRICS())"),
    # per series, point to point
    "DIFF": _sig(1, 1, "DIFF(m1)"),
    "DIFF_TIME": _sig(1, 1, "DIFF_TIME(m1)"),
    "RATE": _sig(1, 1, "RATE(m1)"),
    "RUNNING_SUM": _sig(1, 1, "RUNNING_SUM(m1)"),
    "PERIOD": _sig(1, 1, "PERIOD(m1)"),
    "FILL": _sig(2, 2, "FILL(m1, 0), FILL(m1, REPEAT) or FILL(m1, LINEAR)",
                 keywords={1: frozenset({"REPEAT", "LINEAR"})}),
    "IF": _sig(2, 3, "IF(condition, value_if_true[, value_if_false])"),
    "TIME_SERIES": _sig(1, 1, "TIME_SERIES(5)"),
    # calendar values of each timestamp of the series' grid (UTC)
    "MINUTE": _sig(1, 1, "MINUTE(m1)"),
    "HOUR": _sig(1, 1, "HOUR(m1)"),
    "DAY": _sig(1, 1, "DAY(m1)"),
    "DATE": _sig(1, 1, "DATE(m1)"),
    "MONTH": _sig(1, 1, "MONTH(m1)"),
    "YEAR": _sig(1, 1, "YEAR(m1)"),
    "EPOCH": _sig(1, 1, "EPOCH(m1)"),
    # arrays
    "METRICS": _sig(0, 1, 'METRICS() or METRICS("errors")', strings=frozenset({0})),
    "SORT": _sig(3, 4, "SORT(METRICS(), AVG, DESC[, limit])",
                 keywords={1: _SORT_FUNCTIONS, 2: frozenset({"ASC", "DESC"})},
                 keyword_only=frozenset({1, 2})),
    "SLICE": _sig(2, 3, "SLICE(array, start[, end])"),
    "FIRST": _sig(1, 1, "FIRST(SORT(METRICS(), AVG, DESC))"),
    "LAST": _sig(1, 1, "LAST(SORT(METRICS(), AVG, DESC))"),
    "REMOVE_EMPTY": _sig(1, 1, "REMOVE_EMPTY(METRICS())"),
    "SEARCH": _sig(2, 3, "SEARCH('{Namespace,DimensionName} MetricName', 'Average', 300)",
                   strings=frozenset({0, 1})),
    # parsed, not runnable here
    "ANOMALY_DETECTION_BAND": _sig(0, 99, "", unsupported=True),
    "INSIGHT_RULE_METRIC": _sig(0, 99, "", unsupported=True),
    "SERVICE_QUOTA": _sig(0, 99, "", unsupported=True),
    "LAMBDA": _sig(0, 99, "", unsupported=True),
    "DB_PERF_INSIGHTS": _sig(0, 99, "", unsupported=True),
}

_ALL_KEYWORDS = frozenset({"REPEAT", "LINEAR", "ASC", "DESC"})


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_PARSER = Lark.open("metric_math.lark", rel_to=__file__, parser="lalr",
                    propagate_positions=True, maybe_placeholders=True)

_OP_SPELLING = {"&&": "AND", "||": "OR"}


def _span(meta) -> Span:
    return Span(meta.start_pos, meta.end_pos)


def _unquote(raw: str) -> str:
    # Only the delimiter needs escaping; other backslashes belong to the content (a SEARCH
    # expression has its own escaping rules), so they are kept as written.
    quote = raw[0]
    body = raw[1:-1]
    return body.replace("\\" + quote, quote)


class ToAst(Transformer_NonRecursive):
    """lark tree → AST dataclasses (run after parsing: ``v_args(meta=True)`` needs that).

    Non-recursive, so a long chain such as ``m1+m2+…+m600`` cannot exhaust the stack here.
    """

    @v_args(meta=True)
    def number(self, meta, children):
        return Number(float(children[0]), _span(meta))

    @v_args(meta=True)
    def string(self, meta, children):
        return String(_unquote(str(children[0])), _span(meta))

    @v_args(meta=True)
    def ref(self, meta, children):
        return IdRef(str(children[0]), _span(meta))

    @v_args(meta=True)
    def keyword(self, meta, children):
        return Keyword(str(children[0]), _span(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        name, *args = children
        return FuncCall(str(name), tuple(a for a in args if a is not None), _span(meta))

    @v_args(meta=True)
    def array(self, meta, children):
        return Array(tuple(c for c in children if c is not None), _span(meta))

    @v_args(meta=True)
    def unary(self, meta, children):
        op, operand = children
        return UnaryOp(str(op), operand, _span(meta))

    @v_args(meta=True)
    def binary(self, meta, children):
        left, op, right = children
        op = _OP_SPELLING.get(str(op), str(op))
        return BinaryOp(op, left, right, _span(meta))


_TO_AST = ToAst()

_EXPRESSION_START = {"NUMBER", "ID", "NAME", "STRING", "LPAR", "LSQB"}
_CLOSERS = {"RPAR": "')'", "RSQB": "']'", "COMMA": "','"}


def _expected_phrase(expected: set[str]) -> str:
    # LALR reports every token some reduction could accept, so keep the wording broad.
    if expected & _EXPRESSION_START:
        return "expected an expression (a number, an id such as m1, a function call, [ or ()"
    if expected and expected <= set(_CLOSERS):
        return "expected " + " or ".join(_CLOSERS[n] for n in sorted(expected))
    return "expected an operator such as + or AND between two values"


def _syntax_error(exc: UnexpectedInput, text: str) -> QueryError:
    error = from_lark(exc, text)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream:exc.pos_in_stream + 1] or " "
        if char in "'\"":
            error.message = f"unterminated string: add the closing {char}"
        elif char == "=":
            error.message = "unexpected '='; compare with == (or !=, <=, >=)"
        elif char in "&|":
            error.message = f"unexpected '{char}'; write AND or && / OR or ||"
        elif char in "\u201c\u201d\u2018\u2019":
            error.message = f"unexpected typographic quote {char}; quote strings with ' or \""
        else:
            error.message = f"unexpected character '{char}'"
            if exc.allowed:
                error.message += "; " + _expected_phrase(set(exc.allowed))
    elif isinstance(exc, UnexpectedToken):
        if not text.strip():
            error.message = "empty expression"
        elif exc.token.type == "ID" and str(exc.token).upper() in ("AND", "OR", "NOT"):
            error.message += f"; logical operators are upper case: {str(exc.token).upper()}"
        elif exc.expected:
            error.message += "; " + _expected_phrase(set(exc.expected))
    return error


def parse(text: str) -> Expr:
    """Parse a metric math expression.

    Raises :class:`QuerySyntaxError` for text that does not parse or misuses a keyword, a
    string or a function's arity, and :class:`UnknownFunctionError` for a name that is not a
    metric math function.  Every error carries the span of the offending text.
    """
    if not isinstance(text, str):
        raise QuerySyntaxError("the expression must be a string", None, None)
    return _parse(text)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Expr:
    """:func:`parse` of a string, cached: the AST is immutable, and alarms and dashboards
    send the same expressions on every evaluation (errors are raised, never cached)."""
    try:
        tree = _PARSER.parse(text)
        expr = _TO_AST.transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise _too_deep(text) from None
    except LarkError as exc:
        if isinstance(exc, VisitError) and isinstance(exc.orig_exc, RecursionError):
            raise _too_deep(text) from None
        raise from_lark(exc, text) from None
    _allow_depth(expr, text)
    try:
        _check(expr, allowed=None)
    except QueryError as exc:
        raise exc.with_text(text) from None
    except RecursionError:
        raise _too_deep(text) from None
    return expr


# The checker, renderer and evaluator recurse once per nesting level, a few frames each.
# AWS caps an expression at 2,048 characters, which can nest about 2,000 levels deep (-----m1),
# more than Python's default limit of 1,000 frames; the limit is raised (never lowered) to what
# the tree needs, and deeper trees are refused.
MAX_DEPTH = 5000
_FRAMES_PER_LEVEL = 6


def _depth(expr: Expr) -> int:
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def _allow_depth(expr: Expr, text: str | None) -> None:
    depth = _depth(expr)
    if depth > MAX_DEPTH:
        raise _too_deep(text)
    needed = depth * _FRAMES_PER_LEVEL + 1000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def _too_deep(text: str | None) -> QueryError:
    return QuerySyntaxError(f"the expression is nested more than {MAX_DEPTH} levels deep",
                            Span(0, len(text)) if text else None, text)


def _name_span(call: FuncCall) -> Span:
    return Span(call.span.start, call.span.start + len(call.name))


def _unknown_function(call: FuncCall) -> QueryError:
    name = call.name
    if name.upper() in FUNCTIONS:
        hint = f"; function names are upper case: {name.upper()}"
    else:
        close = difflib.get_close_matches(name.upper(), FUNCTIONS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
    return UnknownFunctionError(f"unknown function {name}{hint}", _name_span(call))


def _misplaced_keyword(node: Keyword) -> QueryError:
    name = node.name
    if name in ("AND", "OR", "NOT"):
        message = f"{name} needs an expression on each side" if name != "NOT" else \
            "NOT needs an expression after it"
    elif name in FUNCTIONS:
        message = f"{name} is a function: call it with parentheses, e.g. {FUNCTIONS[name].usage or name + '(m1)'}"
    elif name in ("REPEAT", "LINEAR"):
        message = f"{name} is only valid as the second argument of FILL, e.g. FILL(m1, {name})"
    elif name in ("ASC", "DESC"):
        message = f"{name} is only valid as the sort order of SORT, e.g. SORT(METRICS(), AVG, {name})"
    elif name.upper() in FUNCTIONS or name.upper() in _ALL_KEYWORDS:
        message = f"unknown name {name}; functions and keywords are upper case: {name.upper()}"
    else:
        message = (f"unknown name {name}; ids of metrics and expressions start with a "
                   f"lower-case letter, functions are called with parentheses")
    return QuerySyntaxError(message, node.span)


def _check(node: Expr, allowed) -> None:
    """Semantic checks that need no data: names, arities, where keywords and strings go.

    ``allowed`` is what this position accepts besides an ordinary expression: a frozenset of
    keywords, the string ``"string"``, or None.
    """
    if isinstance(node, Keyword):
        if isinstance(allowed, frozenset) and node.name in allowed:
            return
        raise _misplaced_keyword(node)
    if isinstance(node, String):
        if allowed == "string":
            return
        raise QuerySyntaxError(
            "a string is only valid as an argument of METRICS or SEARCH", node.span)
    if isinstance(node, FuncCall):
        sig = FUNCTIONS.get(node.name)
        if sig is None:
            raise _unknown_function(node)
        if sig.unsupported:
            for arg in node.args:
                if not isinstance(arg, (Keyword, String)):
                    _check(arg, None)
            return
        count = len(node.args)
        if not sig.min_args <= count <= sig.max_args:
            if sig.min_args == sig.max_args:
                wanted = f"{sig.min_args} argument{'s' if sig.min_args != 1 else ''}"
            else:
                wanted = f"{sig.min_args} to {sig.max_args} arguments"
            message = f"{node.name} takes {wanted}, got {count}; usage: {sig.usage}"
            if node.name in ("AVG", "MAX", "MIN", "SUM", "STDDEV") and count > 1:
                message += f" (to combine several series write {node.name}([a, b]))"
            raise QuerySyntaxError(message, node.span)
        for i, arg in enumerate(node.args):
            if i in sig.strings:
                if not isinstance(arg, String):
                    raise QuerySyntaxError(
                        f"argument {i + 1} of {node.name} must be a quoted string; usage: {sig.usage}",
                        arg.span)
                continue
            if i in sig.keyword_only and not isinstance(arg, Keyword):
                choices = ", ".join(sorted(sig.keywords[i]))
                raise QuerySyntaxError(
                    f"argument {i + 1} of {node.name} must be one of {choices}; usage: {sig.usage}",
                    arg.span)
            if isinstance(arg, Keyword) and i in sig.keywords and arg.name not in sig.keywords[i]:
                choices = ", ".join(sorted(sig.keywords[i]))
                raise QuerySyntaxError(
                    f"{arg.name} is not valid here: argument {i + 1} of {node.name} takes "
                    f"{'one of ' + choices if i in sig.keyword_only else 'an expression or ' + choices}",
                    arg.span)
            _check(arg, sig.keywords.get(i))
        return
    if isinstance(node, Array):
        for item in node.items:
            _check(item, None)
        return
    if isinstance(node, UnaryOp):
        _check(node.operand, None)
        return
    if isinstance(node, BinaryOp):
        _check(node.left, None)
        _check(node.right, None)
        return


# --------------------------------------------------------------------------------------------
# Rendering and inspection
# --------------------------------------------------------------------------------------------

_BINARY_PRECEDENCE = {"OR": 1, "AND": 2, **{op: 4 for op in COMPARISON_OPS},
                      "+": 5, "-": 5, "*": 6, "/": 6, "^": 8}
_NOT_PRECEDENCE, _SIGN_PRECEDENCE, _ATOM_PRECEDENCE = 3, 7, 9


def _render_number(value: float) -> str:
    if value == float("inf"):
        return "1e999"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _precedence(node: Expr) -> int:
    if isinstance(node, BinaryOp):
        return _BINARY_PRECEDENCE[node.op]
    if isinstance(node, UnaryOp):
        return _NOT_PRECEDENCE if node.op == "NOT" else _SIGN_PRECEDENCE
    return _ATOM_PRECEDENCE


def render(node: Expr) -> str:
    """Text for an AST, fully parseable again; parentheses only where precedence needs them."""
    if isinstance(node, Number):
        return _render_number(node.value)
    if isinstance(node, String):
        quote = "'" if '"' in node.value and "'" not in node.value else '"'
        return quote + node.value.replace(quote, "\\" + quote) + quote
    if isinstance(node, (IdRef, Keyword)):
        return node.name
    if isinstance(node, Array):
        return "[" + ", ".join(render(i) for i in node.items) + "]"
    if isinstance(node, FuncCall):
        return node.name + "(" + ", ".join(render(a) for a in node.args) + ")"
    if isinstance(node, UnaryOp):
        inner = render(node.operand)
        if _precedence(node.operand) < _precedence(node):
            inner = f"({inner})"
        return f"NOT {inner}" if node.op == "NOT" else f"{node.op}{inner}"
    if isinstance(node, BinaryOp):
        prec = _precedence(node)
        left, right = render(node.left), render(node.right)
        if node.op == "^":  # right-associative; its left operand is an atom in the grammar
            if _precedence(node.left) < _ATOM_PRECEDENCE:
                left = f"({left})"
            if _precedence(node.right) < _SIGN_PRECEDENCE:
                right = f"({right})"
        else:
            if _precedence(node.left) < prec:
                left = f"({left})"
            if _precedence(node.right) <= prec:
                right = f"({right})"
        return f"{left} {node.op} {right}"
    raise TypeError(f"not a metric math node: {node!r}")


def _children(node: Expr):
    if isinstance(node, Array):
        return node.items
    if isinstance(node, FuncCall):
        return node.args
    if isinstance(node, UnaryOp):
        return (node.operand,)
    if isinstance(node, BinaryOp):
        return (node.left, node.right)
    return ()


def referenced_ids(expr: Expr | str) -> set[str]:
    """Ids the expression names explicitly (``m1 + e2`` → ``{"m1", "e2"}``).

    ``METRICS()`` is not expanded: it reads only MetricStat results, which depend on nothing.
    """
    if isinstance(expr, str):
        expr = parse(expr)
    found: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, IdRef):
            found.add(node.name)
        stack.extend(_children(node))
    return found


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class Series:
    """One time series: a query result or a value computed from query results."""

    id: str                    # query Id ("m1", "e1"), or generated for SEARCH results
    label: str
    timestamps: np.ndarray     # int64 epoch seconds, ascending, period-aligned
    values: np.ndarray         # float64, same length
    # metadata for dynamic labels (may be empty): {"namespace","metric_name","dimensions",
    # "stat","period"}; the server sets "expression": True on results of expressions.
    meta: dict = field(default_factory=dict)


@dataclass
class MathContext:
    """Everything an expression can read: the request window and the other queries' results."""

    period: int                         # the query's Period (seconds)
    start: int                          # epoch seconds, inclusive
    end: int                            # epoch seconds, exclusive
    series: dict[str, list[Series] | Series]
    search: Callable[[str, str, int], list[Series]] | None = None


class UnknownIdError(EvaluationError, UnknownFieldError):
    """An id that names no query of the request (catchable as either parent)."""


Value = Union[float, Series, list]

# A grid longer than this is a mistake (AWS returns at most 100,800 points per request).
MAX_GRID_POINTS = 1_000_000

_EMPTY_TS = np.zeros(0, dtype=np.int64)
_EMPTY_VALUES = np.zeros(0, dtype=np.float64)


def _kind(value) -> str:
    if isinstance(value, Series):
        return "TS"
    if isinstance(value, list):
        return "TS[]"
    return "S"


_KIND_WORDS = {"S": "a scalar number", "TS": "a time series", "TS[]": "an array of time series"}


def _describe(kinds) -> str:
    words = [_KIND_WORDS[k] for k in ("S", "TS", "TS[]") if k in kinds]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _make(timestamps, values, like: Series | None = None, *, id: str | None = None,
          label: str | None = None, meta: dict | None = None) -> Series:
    """A result series; NaN and infinite points are dropped (CloudWatch has no such values)."""
    timestamps = np.asarray(timestamps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.all():
        timestamps, values = timestamps[keep], values[keep]
    return Series(
        id=id if id is not None else (like.id if like is not None else ""),
        label=label if label is not None else (like.label if like is not None else ""),
        timestamps=timestamps,
        values=values,
        meta=dict(meta if meta is not None else (like.meta if like is not None else {})),
    )


def _normalise(series: Series) -> Series:
    timestamps = np.asarray(series.timestamps, dtype=np.int64).reshape(-1)
    values = np.asarray(series.values, dtype=np.float64).reshape(-1)
    if len(timestamps) != len(values):
        raise EvaluationError(
            f"series {series.id!r} has {len(timestamps)} timestamps but {len(values)} values")
    if len(timestamps) > 1 and not (np.diff(timestamps) > 0).all():
        order = np.argsort(timestamps, kind="stable")
        timestamps, values = timestamps[order], values[order]
        last = np.ones(len(timestamps), dtype=bool)
        last[:-1] = timestamps[1:] != timestamps[:-1]  # keep the last value of a duplicate
        timestamps, values = timestamps[last], values[last]
    return _make(timestamps, values, series)


def _lookup(series: Series, timestamps: np.ndarray, default: float) -> np.ndarray:
    """Values of ``series`` at ``timestamps``; ``default`` where it has no point."""
    out = np.full(len(timestamps), default, dtype=np.float64)
    if len(series.timestamps) and len(timestamps):
        pos = np.searchsorted(series.timestamps, timestamps)
        pos_ok = pos < len(series.timestamps)
        hit = np.zeros(len(timestamps), dtype=bool)
        hit[pos_ok] = series.timestamps[pos[pos_ok]] == timestamps[pos_ok]
        out[hit] = series.values[pos[hit]]
    return out


def _union(series_list) -> np.ndarray:
    stamps = [s.timestamps for s in series_list if len(s.timestamps)]
    if not stamps:
        return _EMPTY_TS
    return np.unique(np.concatenate(stamps))


def _truth(values: np.ndarray) -> np.ndarray:
    return values != 0


_ARITHMETIC = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "^": np.power,
}
_PREDICATES = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "AND": lambda a, b: _truth(a) & _truth(b),
    "OR": lambda a, b: _truth(a) | _truth(b),
}


def _apply(op: str, a, b):
    if op in _ARITHMETIC:
        return _ARITHMETIC[op](a, b)
    return _PREDICATES[op](a, b).astype(np.float64)


_SCALAR_AGGREGATES = {
    "AVG": lambda v: float(np.mean(v)) if len(v) else float("nan"),
    "MAX": lambda v: float(np.max(v)) if len(v) else float("nan"),
    "MIN": lambda v: float(np.min(v)) if len(v) else float("nan"),
    "SUM": lambda v: float(np.sum(v)) if len(v) else float("nan"),
    "STDDEV": lambda v: float(np.std(v)) if len(v) else float("nan"),
    "DATAPOINT_COUNT": lambda v: float(len(v)),
}


class _Evaluator:
    def __init__(self, ctx: MathContext):
        self.ctx = ctx

    # -- dispatch ------------------------------------------------------------------------

    def eval(self, node: Expr) -> Value:
        method = getattr(self, "eval_" + type(node).__name__, None)
        if method is None:
            raise EvaluationError(f"cannot evaluate {type(node).__name__}", getattr(node, "span", None))
        return method(node)

    def eval_Number(self, node: Number) -> Value:
        return float(node.value)

    def eval_String(self, node: String) -> Value:
        raise EvaluationError("a string is only valid as an argument of METRICS or SEARCH", node.span)

    def eval_Keyword(self, node: Keyword) -> Value:
        raise _misplaced_keyword(node)

    def eval_IdRef(self, node: IdRef) -> Value:
        found = self.ctx.series.get(node.name)
        if found is None:
            close = difflib.get_close_matches(node.name, list(self.ctx.series), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UnknownIdError(
                f"unknown id {node.name}: no metric or expression in the request has this Id{hint}",
                node.span)
        if isinstance(found, Series):
            return _normalise(found)
        return [_normalise(s) for s in found]

    def eval_Array(self, node: Array) -> Value:
        items: list[Series] = []
        for item in node.items:
            value = self.eval(item)
            if isinstance(value, Series):
                items.append(value)
            elif isinstance(value, list):
                items.extend(value)  # [METRICS("4xx"), METRICS("5xx")] is one flat array
            else:
                raise EvaluationError(
                    "an array holds time series, not scalar numbers; use TIME_SERIES(x) "
                    "to turn a number into a time series", item.span)
        return items

    def eval_UnaryOp(self, node: UnaryOp) -> Value:
        value = self.eval(node.operand)
        if node.op == "-":
            fn = np.negative
        elif node.op == "+":
            fn = np.positive
        elif node.op == "NOT":
            fn = lambda v: (~_truth(np.asarray(v, dtype=np.float64))).astype(np.float64)  # noqa: E731
        else:
            raise EvaluationError(f"unknown operator {node.op}", node.span)
        return self._map(value, fn)

    def eval_BinaryOp(self, node: BinaryOp) -> Value:
        left = self.eval(node.left)
        right = self.eval(node.right)
        if node.op not in _ARITHMETIC and node.op not in _PREDICATES:
            raise EvaluationError(f"unknown operator {node.op}", node.span)
        return self._binary(node, left, right)

    def eval_FuncCall(self, node: FuncCall) -> Value:
        sig = FUNCTIONS.get(node.name)
        if sig is None:
            raise _unknown_function(node)
        if sig.unsupported:
            raise UnsupportedError(f"{node.name} is not supported by this server", _name_span(node))
        if not sig.min_args <= len(node.args) <= sig.max_args:
            raise EvaluationError(f"{node.name} takes {sig.min_args} to {sig.max_args} arguments; "
                                  f"usage: {sig.usage}", node.span)
        method = getattr(self, "fn_" + node.name.lower(), None)
        if method is None:
            raise UnsupportedError(f"{node.name} is not implemented", _name_span(node))
        return method(node)

    # -- helpers ---------------------------------------------------------------------------

    def arg(self, call: FuncCall, i: int, kinds) -> Value:
        value = self.eval(call.args[i])
        kind = _kind(value)
        if kind not in kinds:
            raise EvaluationError(
                f"argument {i + 1} of {call.name} must be {_describe(kinds)}, "
                f"got {_KIND_WORDS[kind]}; usage: {FUNCTIONS[call.name].usage}",
                call.args[i].span)
        return value

    def integer_arg(self, call: FuncCall, i: int, what: str, minimum: int = 0) -> int:
        value = self.arg(call, i, {"S"})
        if not np.isfinite(value) or value != int(value) or value < minimum:
            raise EvaluationError(
                f"{what} of {call.name} must be a whole number >= {minimum}, got {_render_number(value)}",
                call.args[i].span)
        return int(value)

    @staticmethod
    def _map(value: Value, fn) -> Value:
        """Apply an element-wise numpy function to a scalar, a series or each series of an array."""
        if isinstance(value, list):
            return [_make(s.timestamps, fn(s.values), s) for s in value]
        if isinstance(value, Series):
            return _make(value.timestamps, fn(value.values), value)
        return float(fn(np.float64(value)))

    def _binary(self, node: BinaryOp, left: Value, right: Value) -> Value:
        op = node.op
        if isinstance(left, list) and isinstance(right, list):
            raise EvaluationError(
                f"cannot apply {op} to two arrays of time series; combine one of them first, "
                f"e.g. SUM([m1, m2]) {op} m3", node.span)
        if isinstance(left, list):
            return [self._binary(node, s, right) for s in left]
        if isinstance(right, list):
            return [self._binary(node, left, s) for s in right]
        if not isinstance(left, Series) and not isinstance(right, Series):
            return float(_apply(op, np.float64(left), np.float64(right)))
        if not isinstance(right, Series):
            return _make(left.timestamps, _apply(op, left.values, np.float64(right)), left)
        if not isinstance(left, Series):
            return _make(right.timestamps, _apply(op, np.float64(left), right.values), right)
        if op in _ARITHMETIC:
            # A timestamp missing from either operand yields no point.
            stamps, li, ri = np.intersect1d(left.timestamps, right.timestamps,
                                            assume_unique=True, return_indices=True)
            return _make(stamps, _apply(op, left.values[li], right.values[ri]), left)
        # Comparison and logical operators: a value missing on one side counts as 0
        # (AWS "Comparison and logical operators", the metric1/metric2 example).
        stamps = _union([left, right])
        return _make(stamps, _apply(op, _lookup(left, stamps, 0.0), _lookup(right, stamps, 0.0)), left)

    def _series_period(self, series: Series | None) -> int:
        period = None
        if series is not None:
            period = series.meta.get("period")
        try:
            period = int(period) if period else int(self.ctx.period)
        except (TypeError, ValueError):
            period = 0
        if period <= 0:
            raise EvaluationError(f"the period must be a positive number of seconds, got {period}")
        return period

    def _grid(self, like: Series | None = None) -> np.ndarray:
        """Every period in [start, end), on the same phase as the data.

        The phase comes from ``like``'s first timestamp, else from any series of the request,
        else from ``start``.
        """
        period = self._series_period(like)
        anchor = None
        if like is not None and len(like.timestamps):
            anchor = int(like.timestamps[0])
        else:
            for value in self.ctx.series.values():
                for s in (value if isinstance(value, list) else [value]):
                    if len(s.timestamps):
                        anchor = int(np.asarray(s.timestamps)[0])
                        break
                if anchor is not None:
                    break
        start, end = int(self.ctx.start), int(self.ctx.end)
        if anchor is None:
            anchor = start
        first = anchor + -((anchor - start) // period) * period  # first grid point >= start
        if end <= first:
            return _EMPTY_TS
        count = (end - 1 - first) // period + 1
        if count > MAX_GRID_POINTS:
            raise EvaluationError(
                f"the time range holds {count} periods of {period}s; narrow the range or raise the period")
        return first + period * np.arange(count, dtype=np.int64)

    # -- functions: element-wise -------------------------------------------------------------

    def _elementwise(self, call: FuncCall, fn) -> Value:
        return self._map(self.arg(call, 0, {"S", "TS", "TS[]"}), fn)

    def fn_abs(self, call):
        return self._elementwise(call, np.abs)

    def fn_ceil(self, call):
        return self._elementwise(call, np.ceil)

    def fn_floor(self, call):
        return self._elementwise(call, np.floor)

    def fn_log(self, call):
        return self._elementwise(call, np.log)

    def fn_log10(self, call):
        return self._elementwise(call, np.log10)

    def fn_sqrt(self, call):
        return self._elementwise(call, np.sqrt)

    # -- functions: aggregates ----------------------------------------------------------------

    def _aggregate(self, call: FuncCall) -> Value:
        value = self.arg(call, 0, {"TS", "TS[]"})
        name = call.name
        if isinstance(value, Series):
            return _SCALAR_AGGREGATES[name](value.values)
        # An array gives one series, point by point across the array.
        stamps = _union(value)
        if not len(stamps):
            return _make(_EMPTY_TS, _EMPTY_VALUES, id="", label="", meta={})
        matrix = np.vstack([_lookup(s, stamps, np.nan) for s in value])
        present = ~np.isnan(matrix)
        if name == "AVG":  # AWS: "Missing values are treated as 0"
            result = np.nansum(matrix, axis=0) / len(value)
        elif name == "SUM":
            result = np.nansum(matrix, axis=0)
        elif name == "MAX":
            result = np.nanmax(matrix, axis=0)
        elif name == "MIN":
            result = np.nanmin(matrix, axis=0)
        elif name == "STDDEV":
            result = np.nanstd(matrix, axis=0)
        else:  # DATAPOINT_COUNT
            result = present.sum(axis=0).astype(np.float64)
        return _make(stamps, result, id="", label="", meta={})

    fn_avg = fn_max = fn_min = fn_sum = fn_stddev = fn_datapoint_count = _aggregate

    def fn_metric_count(self, call):
        return float(len(self.arg(call, 0, {"TS[]"})))

    # -- functions: point to point --------------------------------------------------------------

    def _per_series(self, call: FuncCall, fn) -> Value:
        value = self.arg(call, 0, {"TS", "TS[]"})
        if isinstance(value, list):
            return [fn(s) for s in value]
        return fn(value)

    def fn_diff(self, call):
        return self._per_series(call, lambda s: _make(s.timestamps[1:], np.diff(s.values), s))

    def fn_diff_time(self, call):
        return self._per_series(
            call, lambda s: _make(s.timestamps[1:], np.diff(s.timestamps).astype(np.float64), s))

    def fn_rate(self, call):
        return self._per_series(call, lambda s: _make(
            s.timestamps[1:], np.diff(s.values) / np.diff(s.timestamps).astype(np.float64), s))

    def fn_running_sum(self, call):
        return self._per_series(call, lambda s: _make(s.timestamps, np.cumsum(s.values), s))

    def fn_period(self, call):
        return float(self._series_period(self.arg(call, 0, {"TS"})))

    def fn_fill(self, call):
        target = self.arg(call, 0, {"TS", "TS[]"})
        how = call.args[1]
        if isinstance(how, Keyword):
            filler = how.name
        else:
            filler = self.arg(call, 1, {"S", "TS"})
        if isinstance(target, list):
            return [self._fill(s, filler) for s in target]
        return self._fill(target, filler)

    def _fill(self, series: Series, filler) -> Series:
        stamps = np.union1d(self._grid(series), series.timestamps)
        values = _lookup(series, stamps, np.nan)
        missing = np.isnan(values)
        if not missing.any():
            return _make(stamps, values, series)
        if isinstance(filler, Series):
            values[missing] = _lookup(filler, stamps[missing], np.nan)
        elif filler == "REPEAT":
            # The most recent real value before the gap; nothing before the first value.
            index = np.where(~missing, np.arange(len(values)), -1)
            index = np.maximum.accumulate(index)
            values = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
        elif filler == "LINEAR":
            # A straight line between the values at either end of each gap; gaps at the
            # start or end of the range have only one end and stay empty.
            known = np.flatnonzero(~missing)
            if len(known) >= 2:
                inside = missing.copy()
                inside[: known[0]] = False
                inside[known[-1] + 1:] = False
                values[inside] = np.interp(stamps[inside].astype(np.float64),
                                           stamps[known].astype(np.float64), values[known])
        else:
            values[missing] = float(filler)
        return _make(stamps, values, series)

    def fn_if(self, call):
        condition = self.arg(call, 0, {"S", "TS", "TS[]"})
        if_true = self.arg(call, 1, {"S", "TS", "TS[]"})
        if_false = self.arg(call, 2, {"S", "TS", "TS[]"}) if len(call.args) == 3 else None
        if isinstance(condition, float):
            if condition != 0 and not np.isnan(condition):
                return if_true
            if if_false is not None:
                return if_false
            # "an empty time series, if metric3 is omitted"
            if isinstance(if_true, list):
                return [_make(_EMPTY_TS, _EMPTY_VALUES, s) for s in if_true]
            return _make(_EMPTY_TS, _EMPTY_VALUES, if_true if isinstance(if_true, Series) else None)
        if isinstance(condition, list):
            results = []
            for i, cond in enumerate(condition):
                results.append(self._if_series(call, cond, self._pick(call, 1, if_true, i, len(condition)),
                                               self._pick(call, 2, if_false, i, len(condition))))
            return results
        for position, branch in ((1, if_true), (2, if_false)):
            if isinstance(branch, list):
                raise EvaluationError(
                    f"argument {position + 1} of IF is an array but the condition is a single "
                    "time series", call.args[position].span)
        return self._if_series(call, condition, if_true, if_false)

    @staticmethod
    def _pick(call, position, branch, i, count):
        if not isinstance(branch, list):
            return branch
        if len(branch) != count:
            raise EvaluationError(
                f"argument {position + 1} of IF has {len(branch)} time series but the condition has {count}",
                call.args[position].span)
        return branch[i]

    @staticmethod
    def _if_series(call, condition: Series, if_true, if_false) -> Series:
        stamps = condition.timestamps
        truth = _truth(condition.values)
        if isinstance(if_true, Series):
            # AWS: a true condition with no point in the true-series gives 0.
            true_values = _lookup(if_true, stamps, 0.0)
        else:
            true_values = np.full(len(stamps), if_true, dtype=np.float64)
        if isinstance(if_false, Series):
            false_values = _lookup(if_false, stamps, np.nan)
        elif if_false is None:
            false_values = np.full(len(stamps), np.nan)
        else:
            false_values = np.full(len(stamps), if_false, dtype=np.float64)
        like = next((v for v in (if_true, if_false) if isinstance(v, Series)), condition)
        return _make(stamps, np.where(truth, true_values, false_values), like)

    def fn_time_series(self, call):
        value = self.arg(call, 0, {"S"})
        stamps = self._grid(None)
        return _make(stamps, np.full(len(stamps), value, dtype=np.float64), id="", label="", meta={})

    def _calendar(self, call: FuncCall, fn) -> Value:
        def one(series: Series) -> Series:
            stamps = self._grid(series)
            return _make(stamps, fn(stamps).astype(np.float64), series)
        return self._per_series(call, one)

    def fn_minute(self, call):
        return self._calendar(call, lambda t: (t // 60) % 60)

    def fn_hour(self, call):
        return self._calendar(call, lambda t: (t // 3600) % 24)

    def fn_day(self, call):
        # Day of the week, 1 = Monday … 7 = Sunday; 1970-01-01 was a Thursday.
        return self._calendar(call, lambda t: (t // 86400 + 3) % 7 + 1)

    def fn_date(self, call):
        def day_of_month(t):
            days = t.astype("datetime64[s]").astype("datetime64[D]")
            return (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
        return self._calendar(call, day_of_month)

    def fn_month(self, call):
        return self._calendar(call, lambda t: t.astype("datetime64[s]").astype("datetime64[M]")
                              .astype(np.int64) % 12 + 1)

    def fn_year(self, call):
        return self._calendar(call, lambda t: t.astype("datetime64[s]").astype("datetime64[Y]")
                              .astype(np.int64) + 1970)

    def fn_epoch(self, call):
        return self._calendar(call, lambda t: t)

    # -- functions: arrays ---------------------------------------------------------------------

    def fn_metrics(self, call):
        needle = call.args[0].value if call.args else ""
        found = []
        for query_id in sorted(self.ctx.series):
            if needle not in query_id:  # AWS: metrics that *contain* the string in their Id
                continue
            value = self.ctx.series[query_id]
            for s in (value if isinstance(value, list) else [value]):
                if not s.meta.get("expression"):
                    found.append(_normalise(s))
        return found

    def fn_sort(self, call):
        array = self.arg(call, 0, {"TS[]"})
        statistic = call.args[1].name
        descending = call.args[2].name == "DESC"
        limit = self.integer_arg(call, 3, "the limit") if len(call.args) == 4 else None
        keys = [_SCALAR_AGGREGATES[statistic](s.values) for s in array]
        # Series without data (NaN key) go last in either order; ties keep their order.
        with_data = [i for i, k in enumerate(keys) if not np.isnan(k)]
        without = [i for i, k in enumerate(keys) if np.isnan(k)]
        with_data.sort(key=lambda i: -keys[i] if descending else keys[i])
        result = [array[i] for i in with_data + without]
        return result[:limit] if limit is not None else result

    def fn_slice(self, call):
        array = self.arg(call, 0, {"TS[]"})
        start = self.integer_arg(call, 1, "the start index")
        end = self.integer_arg(call, 2, "the end index") if len(call.args) == 3 else len(array)
        return array[start:end]

    def fn_first(self, call):
        return self._end_of(call, 0)

    def fn_last(self, call):
        return self._end_of(call, -1)

    def _end_of(self, call, index):
        array = self.arg(call, 0, {"TS[]"})
        if not array:
            raise EvaluationError(f"{call.name} was given an empty array of time series", call.args[0].span)
        return array[index]

    def fn_remove_empty(self, call):
        return [s for s in self.arg(call, 0, {"TS[]"}) if len(s.timestamps)]

    def fn_search(self, call):
        if self.ctx.search is None:
            raise UnsupportedError("SEARCH is not available here (an alarm cannot watch a SEARCH)",
                                   _name_span(call))
        expression, statistic = call.args[0].value, call.args[1].value
        period = self.integer_arg(call, 2, "the period", minimum=1) if len(call.args) == 3 \
            else int(self.ctx.period)
        return [_normalise(s) for s in self.ctx.search(expression, statistic, period)]


def evaluate(expr_or_text: Expr | str, ctx: MathContext, *, text: str | None = None
             ) -> list[Series] | float:
    """Evaluate an expression against the other queries' results.

    Returns a list of series (one element for a single time series, several for an array)
    or a float for an expression that yields a scalar; whether a scalar is an acceptable
    final result (AWS says it is not) is for the caller to decide.  Pass ``text`` with a
    pre-parsed expression so errors can show line and column.
    """
    if isinstance(expr_or_text, str):
        text = expr_or_text
        expr = parse(expr_or_text)
    else:
        expr = expr_or_text
        _allow_depth(expr, text)
    try:
        with np.errstate(all="ignore"):
            result = _Evaluator(ctx).eval(expr)
    except QueryError as exc:
        if exc.span is None:
            exc.span = getattr(expr, "span", None)
        raise exc.with_text(text) if text is not None else exc
    except RecursionError:
        raise _too_deep(text) from None
    if isinstance(result, Series):
        return [result]
    return result
