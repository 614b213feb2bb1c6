"""Logs Insights query text → :class:`~query.insights_ast.Query`, and back (``render``).

Pipeline: ``insights.lark`` (LALR, contextual lexer, ``propagate_positions``) → ``_ToAst``
(a Transformer run after parsing, so every node gets its span) → ``_check`` (function names
and arities against :mod:`query.insights_functions`).  Lark's exceptions are translated at
this boundary into positioned :class:`~query.errors.QuerySyntaxError` /
:class:`~query.errors.UnknownFunctionError`; nothing else escapes ``parse``.

Regular expressions (``/…/``) are checked here against the RE2 dialect DuckDB runs
(:func:`check_regex`): a construct RE2 rejects is a positioned error now, not a database
error later.  The check accepts a conservative subset (no look-around, back-references or
``\\C``; bounded repetition and program size), so whatever it accepts compiles in DuckDB.

This module imports nothing from DuckDB or the compiler.

Public surface::

    parse(text) -> Query
    render(node) -> str            # canonical text; parse(render(q)) == q
    check_regex(source, offset=0) -> RegexInfo
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from lark import Token, Transformer, v_args

from query import insights_functions as functions
from query.errors import (QueryError, QuerySyntaxError, Span, UnknownFunctionError,
                          UnsupportedError)
from query.insights_ast import (Binary, Command, Dedup, Display, Expr, FieldRef, Fields, Filter,
                                FilterIndex, FuncCall, In, Index, Item, Like, Limit, Member,
                                Number, OtherCommand, Parse, Period, Query, Regex, Sort,
                                SortKey, Star, Stats, String, Unary, Unmask, Unnest)

__all__ = ["parse", "render", "check_regex", "RegexInfo", "COMMANDS", "UNSUPPORTED_COMMANDS"]

#: Commands this engine runs (``where`` is ``filter``).
COMMANDS = ("fields", "display", "filter", "where", "filterIndex", "stats", "sort", "limit",
            "parse", "dedup", "unnest", "unmask")

#: Commands AWS documents that parse as :class:`OtherCommand` and fail to compile with
#: :class:`UnsupportedError` (reference §3.11–3.15).
UNSUPPORTED_COMMANDS = {
    "pattern": "`pattern` clusters events with machine learning; it is not supported",
    "anomaly": "`anomaly` needs `pattern`, which is not supported",
    "diff": "`diff` compares with a previous time range; it is not supported",
    "lookup": "`lookup` needs lookup tables, which are not supported",
    "join": "`join` is not supported",
    "subqueries": "subqueries are not supported",
    "logcompare": "`logcompare` is not supported",
    "source": "`SOURCE` in the query text is not supported; pass logGroupNames or "
              "logGroupIdentifiers to StartQuery",
    "addtotals": "`addtotals` is not supported",
    "autoregress": "`autoregress` is not supported",
    "filldown": "`filldown` is not supported",
    "fillmissing": "`fillmissing` is not supported",
    "cidrlookup": "`cidrlookup` is not supported",
    "outlier": "`outlier` is not supported",
    "accum": "`accum` is not supported",
    "appendcols": "`appendcols` is not supported",
    "sessionize": "`sessionize` is not supported",
    "countfrequent": "`countFrequent` is not supported",
    "relevantfields": "`relevantfields` is not supported",
    "expand": "`expand` is not supported",
}

# Canonical unit for every spelling of a time unit (reference §1, time-period literals).
_UNITS = {}
for _canon, _spellings in {
    "ms": ("ms", "msec", "msecs", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "week", "weeks"),
    "mo": ("mo", "mon", "mons", "month", "months"),
    "q": ("q", "qtr", "qtrs", "quarter", "quarters"),
    "y": ("y", "yr", "yrs", "year", "years"),
}.items():
    for _s in _spellings:
        _UNITS[_s] = _canon

#: Deepest expression tree accepted: the SQL it compiles to must stay within DuckDB's
#: expression depth (1,000) and the Python stack, whatever the recursion limit.
MAX_EXPR_DEPTH = 100

# Upper bound on a period literal (ten thousand years, in the longest reading of each unit),
# so that no period overflows the engine's 64-bit millisecond arithmetic.
MAX_PERIOD_DAYS = 3_660_000
_LONGEST_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
              "w": 7 * 86_400_000, "mo": 31 * 86_400_000, "q": 92 * 86_400_000,
              "y": 366 * 86_400_000}


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------

@functools.cache
def _parser():
    from lark import Lark

    return Lark.open("insights.lark", rel_to=__file__, parser="lalr", lexer="contextual",
                     propagate_positions=True, maybe_placeholders=True, cache=False)


def parse(text: str) -> Query:
    """Parse a Logs Insights query.  Raises a positioned :class:`QueryError` subclass."""
    from lark.exceptions import LarkError

    if not isinstance(text, str):
        raise TypeError("query text must be a str")
    if not _has_content(text):
        raise QuerySyntaxError("the query is empty; write at least one command, such as "
                               "`fields @timestamp, @message`", Span(0, max(1, len(text))), text)
    try:
        tree = _parser().parse(text)
        query = _ToAst(text).transform(tree)
    except QueryError as exc:
        raise exc.with_text(text)
    except LarkError as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise QuerySyntaxError("the query is nested too deeply", Span(0, len(text)), text) \
            from None
    try:
        _check(query)
    except QueryError as exc:
        raise exc.with_text(text)
    return query


def _has_content(text: str) -> bool:
    return any(line.split("#", 1)[0].strip() for line in text.splitlines()) if text else False


_FRIENDLY = {
    "FIELD": "a field name", "NUMBER": "a number", "STRING": "a quoted string",
    "REGEX": "a /regex/", "PERIOD": "a time period such as 5m", "COMP_OP": "a comparison",
    "ADD_OP": "+ or -", "MUL_OP": "*, / or %", "POW_OP": "^", "_PIPE": "|", "_AS": "as",
    "_BY": "by", "_AND": "and", "_OR": "or", "_NOT": "not", "_LIKE": "like", "_IN": "in",
    "_MATCH": "=~", "DIRECTION": "asc or desc", "MULTI": "multi", "_INTO": "into",
    "_ANY": "any", "_OFFSET": "offset", "_LOGFMT": "logfmt", "_CSV": "csv",
    "CMD_WORD": "a command", "REST": "arguments", "LPAR": "(", "RPAR": ")", "LSQB": "[",
    "RSQB": "]", "COMMA": ",", "DOT": ".", "MINUS": "-", "STAR": "*", "$END": "end of query",
}
_COMMAND_TERMINALS = {"_FIELDS", "_DISPLAY", "_FILTER", "_WHERE", "_FILTERINDEX", "_STATS",
                      "_SORT", "_LIMIT", "_PARSE", "_DEDUP", "_UNNEST", "_UNMASK"}


def _expected(names) -> str:
    names = set(names or ())
    words = set()
    if names & _COMMAND_TERMINALS or "CMD_WORD" in names:
        words.add("a command")
        names -= _COMMAND_TERMINALS | {"CMD_WORD"}
    words |= {_FRIENDLY.get(n, n.strip("_").lower()) for n in names}
    if not words or len(words) > 8:
        return ""
    return "; expected " + ", ".join(sorted(words))


def _syntax_error(exc, text: str) -> QueryError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken, VisitError

    if isinstance(exc, VisitError):
        if isinstance(exc.orig_exc, QueryError):
            return exc.orig_exc.with_text(text)
        raise exc.orig_exc
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos:pos + 1]
        if char in "\"'":
            return QuerySyntaxError(f"unterminated string; close it with {char}",
                                    Span(pos, len(text)), text)
        if char == "`":
            return QuerySyntaxError("unterminated `back-ticked` name; close it with `",
                                    Span(pos, len(text)), text)
        if char == "/":
            return QuerySyntaxError("unterminated /regex/ (a / inside it is written \\/)",
                                    Span(pos, len(text)), text)
        return QuerySyntaxError(f"unexpected character '{char}'{_expected(exc.allowed)}",
                                Span(pos, pos + 1), text)
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            pos = len(text)
            return QuerySyntaxError(f"unexpected end of query{_expected(exc.expected)}",
                                    Span(pos, pos + 1), text)
        pos = exc.token.start_pos or 0
        value = str(exc.token)
        if exc.token.type == "REST":
            # The contextual lexer's fallback read the rest of the command as one token;
            # report only its first word (or character).
            value = re.match(r"\w+|\S", value).group(0)
        if value == "/" and "REGEX" in (exc.expected or ()):
            return QuerySyntaxError("unterminated /regex/ (a / inside it is written \\/)",
                                    Span(pos, len(text)), text)
        hint = _expected(exc.expected)
        wordy = re.fullmatch(r"[^\W\d]\w*", value) is not None
        if wordy and "_PIPE" in (exc.expected or ()):
            if exc.token.type in _COMMAND_TERMINALS or value.lower() in UNSUPPORTED_COMMANDS:
                hint = f"; is a | missing before `{value}`?"
            else:
                hint = "; is a comma or an operator missing?"
        return QuerySyntaxError(f"unexpected '{value}'{hint}",
                                Span(pos, pos + max(1, len(value))), text)
    from query.errors import from_lark

    return from_lark(exc, text)


def _tok_span(tok: Token) -> Span:
    return Span(tok.start_pos, tok.end_pos)


def _meta_span(meta) -> Span:
    return Span(meta.start_pos, meta.end_pos) if not meta.empty else Span(0, 0)


_SEGMENT = re.compile(r"`((?:[^`]|``)*)`|([^`.]+)")


def _field_parts(tok: Token) -> tuple[str, ...]:
    """Split a FIELD token into its dot-separated segments, un-back-ticking them."""
    text = str(tok)
    parts: list[str] = []
    i = 0
    while i < len(text):
        prefix = ""
        if text[i] == "@" and text[i + 1:i + 2] == "`":
            prefix, i = "@", i + 1
        if text[i] == "`":
            j = i + 1
            while True:
                j = text.index("`", j)
                if text[j + 1:j + 2] == "`":
                    j += 2
                    continue
                break
            parts.append(prefix + text[i + 1:j].replace("``", "`"))
            i = j + 1
        else:
            j = text.find(".", i)
            j = len(text) if j < 0 else j
            parts.append(prefix + text[i:j])
            i = j
        if i < len(text) and text[i] == ".":
            i += 1
    return tuple(parts)


def _unquote(tok: Token) -> str:
    """A quoted string's value: ``\\\\`` and a backslash before the quote character are
    escapes; any other backslash is kept as written."""
    body, quote = str(tok)[1:-1], str(tok)[0]
    return re.sub(r"\\([\\" + quote + "])", r"\1", body)


def _number(tok: Token, negative: bool = False) -> Number:
    text = str(tok)
    if re.fullmatch(r"\d+", text):
        value: int | float = int(text)
    else:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise QuerySyntaxError(f"the number {text} is out of range", _tok_span(tok))
    return Number(-value if negative else value, _tok_span(tok))


def _period(tok: Token) -> Period:
    m = re.fullmatch(r"(\d+)([a-zA-Z]+)", str(tok))
    assert m is not None
    amount = int(m.group(1))
    if amount <= 0:
        raise QuerySyntaxError("a time period must be greater than zero", _tok_span(tok))
    unit = _UNITS[m.group(2).lower()]
    if amount * _LONGEST_MS[unit] > MAX_PERIOD_DAYS * 86_400_000:
        raise QuerySyntaxError(f"a time period must be at most {MAX_PERIOD_DAYS} days",
                               _tok_span(tok))
    return Period(amount, unit, _tok_span(tok))  # type: ignore[arg-type]


def _name(tok: Token) -> str:
    return ".".join(_field_parts(tok))


def _regex(tok: Token) -> Regex:
    source = str(tok)[1:-1]
    check_regex(source, tok.start_pos + 1)
    return Regex(source, _tok_span(tok))


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def start(self, meta, children):
        return Query(tuple(children), self.text, Span(0, len(self.text)))

    # ---- commands
    def item(self, meta, children):
        expr, alias = children
        return Item(expr, _name(alias) if alias is not None else None, _meta_span(meta))

    def fields_cmd(self, meta, children):
        return Fields(tuple(children), _meta_span(meta))

    def display_cmd(self, meta, children):
        return Display(tuple(children), _meta_span(meta))

    def filter_cmd(self, meta, children):
        return Filter(children[0], _meta_span(meta))

    def filter_index_cmd(self, meta, children):
        cond = children[0]
        ok = ((isinstance(cond, Binary) and cond.op == "=" and isinstance(cond.left, FieldRef)
               and isinstance(cond.right, (String, Number)))
              or (isinstance(cond, In) and not cond.negated
                  and isinstance(cond.operand, FieldRef)))
        if not ok:
            raise QuerySyntaxError('filterIndex takes `field = "value"` or `field in [...]`',
                                   _meta_span(meta))
        return FilterIndex(cond, _meta_span(meta))

    def stat_items(self, meta, children):
        return tuple(children)

    def by_clause(self, meta, children):
        return tuple(children)

    def offset_clause(self, meta, children):
        return _period(children[0])

    def stats_cmd(self, meta, children):
        items, by, offset = children
        return Stats(items, by or (), offset, _meta_span(meta))

    def sort_key(self, meta, children):
        expr, direction = children
        desc = None if direction is None else str(direction).lower() == "desc"
        return SortKey(expr, desc, _meta_span(meta))

    def sort_cmd(self, meta, children):
        return Sort(tuple(children), _meta_span(meta))

    def limit_cmd(self, meta, children):
        tok = children[0]
        if not re.fullmatch(r"\d+", str(tok)) or int(str(tok)) < 1:
            raise QuerySyntaxError("limit takes a whole number of rows, at least 1",
                                   _tok_span(tok))
        return Limit(int(str(tok)), _meta_span(meta))

    def limit_any(self, meta, children):
        return Limit(None, _meta_span(meta))

    def aliases(self, meta, children):
        return tuple(_name(t) for t in children)

    def _parse(self, meta, mode, source, pattern, aliases, multi):
        src = FieldRef(_field_parts(source), _tok_span(source)) if source is not None else None
        return Parse(mode, src, pattern, aliases or (), multi is not None, _meta_span(meta))

    def parse_glob(self, meta, children):
        source, pattern, aliases, multi = children
        value = String(_unquote(pattern), _tok_span(pattern))
        stars = value.value.count("*")
        if stars == 0:
            raise QuerySyntaxError("a parse pattern needs at least one * to extract",
                                   value.span)
        if len(aliases or ()) != stars:
            where = _meta_span(meta)
            raise QuerySyntaxError(
                f"the pattern has {stars} * but {len(aliases or ())} field name(s) after `as`;"
                " the numbers must be equal", where)
        return self._parse(meta, "glob", source, value, aliases, multi)

    def parse_regex(self, meta, children):
        source, pattern, aliases, multi = children
        regex = _regex(pattern)
        info = check_regex(regex.source, pattern.start_pos + 1)
        if aliases:
            if len(aliases) != info.groups:
                raise QuerySyntaxError(
                    f"the regex has {info.groups} capture group(s) but {len(aliases)} field "
                    "name(s) after `as`; the numbers must be equal", _meta_span(meta))
        elif not info.names:
            raise QuerySyntaxError("name the fields to extract with (?<name>…) groups or "
                                   "with `as`", regex.span)
        return self._parse(meta, "regex", source, regex, aliases, multi)

    def parse_logfmt(self, meta, children):
        source, aliases = children
        if not aliases or len(aliases) != 1:
            raise UnsupportedError("write `parse … logfmt as name` (one name) and read the "
                                   "keys as name.key", _meta_span(meta))
        return self._parse(meta, "logfmt", source, None, aliases, None)

    def parse_csv(self, meta, children):
        source, aliases = children
        return self._parse(meta, "csv", source, None, aliases, None)

    def dedup_cmd(self, meta, children):
        return Dedup(tuple(FieldRef(_field_parts(t), _tok_span(t)) for t in children),
                     _meta_span(meta))

    def unnest_cmd(self, meta, children):
        expr, into = children
        return Unnest(expr, _name(into), _meta_span(meta))

    def unmask_cmd(self, meta, children):
        return Unmask(_meta_span(meta))

    def other_cmd(self, meta, children):
        word, rest = children[0], children[1:]
        name = str(word).lower()
        if name not in UNSUPPORTED_COMMANDS:
            known = list(COMMANDS) + [n for n in UNSUPPORTED_COMMANDS]
            close = difflib.get_close_matches(name, [k.lower() for k in known], n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise QuerySyntaxError(f"unknown command `{word}`{hint}", _tok_span(word))
        text = "".join(str(t) for t in rest)
        if rest:
            text = self.text[rest[0].start_pos:rest[-1].end_pos]
        return OtherCommand(name, text.strip(), _meta_span(meta))

    # ---- expressions
    def _binary(self, meta, op, left, right):
        return Binary(op, left, right, _meta_span(meta))

    def or_op(self, meta, children):
        return self._binary(meta, "or", *children)

    def and_op(self, meta, children):
        return self._binary(meta, "and", *children)

    def not_op(self, meta, children):
        return Unary("not", children[0], _meta_span(meta))

    def compare(self, meta, children):
        left, op, right = children
        return self._binary(meta, str(op), left, right)

    def binary(self, meta, children):
        left, op, right = children
        return self._binary(meta, str(op), left, right)

    def neg(self, meta, children):
        return Unary("-", children[0], _meta_span(meta))

    def _like_pattern(self, tok):
        if tok.type == "REGEX":
            return _regex(tok)
        return String(_unquote(tok), _tok_span(tok))

    def like(self, meta, children):
        return Like(children[0], self._like_pattern(children[1]), False, _meta_span(meta))

    def not_like(self, meta, children):
        return Like(children[0], self._like_pattern(children[1]), True, _meta_span(meta))

    def match(self, meta, children):
        return Like(children[0], _regex(children[1]), False, _meta_span(meta))

    def list(self, meta, children):
        return tuple(c for c in children if c is not None)

    def in_list(self, meta, children):
        return In(children[0], children[1], False, _meta_span(meta))

    def not_in_list(self, meta, children):
        return In(children[0], children[1], True, _meta_span(meta))

    def index(self, meta, children):
        base, tok = children
        if not re.fullmatch(r"\d+", str(tok)):
            raise QuerySyntaxError("a list index is a whole number, counted from 0",
                                   _tok_span(tok))
        return Index(base, int(str(tok)), _meta_span(meta))

    def member(self, meta, children):
        base, tok = children
        parts = _field_parts(tok)
        if isinstance(base, FieldRef):
            return FieldRef(base.parts + parts, _meta_span(meta))
        node = base
        for part in parts:
            node = Member(node, part, _meta_span(meta))
        return node

    def field(self, meta, children):
        tok = children[0]
        return FieldRef(_field_parts(tok), _tok_span(tok))

    def number(self, meta, children):
        return _number(children[0])

    def negative_number(self, meta, children):
        num = _number(children[0], negative=True)
        return Number(num.value, _meta_span(meta))

    def string(self, meta, children):
        return String(_unquote(children[0]), _tok_span(children[0]))

    def period(self, meta, children):
        return _period(children[0])

    def star(self, meta, children):
        return Star(_meta_span(meta))

    def call(self, meta, children):
        name_tok, args = children[0], children[1:]
        name = str(name_tok)
        if not re.fullmatch(r"[^\W\d]\w*", name):
            raise QuerySyntaxError(f"`{name}` is not a function name", _tok_span(name_tok))
        args = tuple(a for a in args if a is not None)
        return FuncCall(name.lower(), args, _meta_span(meta))


# ------------------------------------------------------------------------------------------
# Checks that need the function table (names, arities, where * may appear)
# ------------------------------------------------------------------------------------------

def _check(query: Query) -> None:
    for command in query.commands:
        for expr in _command_exprs(command):
            _check_expr(expr)


def _command_exprs(command: Command):
    if isinstance(command, (Fields, Display)):
        return [i.expr for i in command.items]
    if isinstance(command, Stats):
        return [i.expr for i in command.items + command.by]
    if isinstance(command, (Filter, FilterIndex)):
        return [command.condition]
    if isinstance(command, Sort):
        return [k.expr for k in command.keys]
    if isinstance(command, Unnest):
        return [command.source]
    return []


def _check_expr(expr: Expr) -> None:
    for node, depth in walk(expr):
        if depth > MAX_EXPR_DEPTH:
            raise QuerySyntaxError(f"an expression may nest at most {MAX_EXPR_DEPTH} levels "
                                   "deep", node.span)
        if isinstance(node, FuncCall):
            spec = functions.lookup(node.name)
            if spec is None:
                close = difflib.get_close_matches(node.name, functions.names(), n=1)
                hint = f"; did you mean `{functions.FUNCTIONS[close[0]].name}`?" if close else ""
                raise UnknownFunctionError(f"unknown function `{node.name}`{hint}",
                                           Span(node.span.start,
                                                node.span.start + len(node.name)))
            n = len(node.args)
            if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
                raise QuerySyntaxError(f"`{spec.name}` takes {spec.arity_text()}, not {n}",
                                       node.span)
            for arg in node.args:
                if isinstance(arg, Star) and not spec.star:
                    raise QuerySyntaxError("`*` is only an argument of count(*)", arg.span)


def walk(expr: Expr):
    """Every node of an expression tree with its depth (the root is 1), parents first."""
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        if isinstance(node, FuncCall):
            children = reversed(node.args)
        elif isinstance(node, Unary):
            children = (node.operand,)
        elif isinstance(node, Binary):
            children = (node.right, node.left)
        elif isinstance(node, (Like, In)):
            children = (node.operand,)
        elif isinstance(node, (Member, Index)):
            children = (node.base,)
        else:
            continue
        stack.extend((child, depth + 1) for child in children)


# ------------------------------------------------------------------------------------------
# RE2 regex check
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegexInfo:
    """What the compiler needs to know about a checked regex.

    ``sql_source`` is the text to hand to RE2 (named groups spelled ``(?P<name>…)``, which the
    DuckDB build of RE2 requires); ``groups`` counts capturing groups; ``names`` maps each
    named group's name to its 1-based group number, in order."""

    sql_source: str
    groups: int
    names: tuple[tuple[str, int], ...]


#: Estimated RE2 program size above which a regex is refused (RE2 fails with "pattern too
#: large" at roughly 3× this for Unicode classes; see test_insights_safety).
MAX_REGEX_COST = 100_000
MAX_REGEX_DEPTH = 100   # nested groups: deeper is refused (positioned), not a RecursionError
MAX_REPEAT = 1000

_POSIX = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print",
          "punct", "space", "upper", "word", "xdigit"}
_UNICODE = {"Any", "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl",
            "No", "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So",
            "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cs", "Greek", "Latin", "Cyrillic",
            "Han", "Arabic", "Hebrew", "Hiragana", "Katakana", "Hangul", "Thai", "Devanagari",
            "Armenian", "Georgian", "Common", "Inherited"}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}
_CLASS_COST = {"d": 2, "s": 6, "w": 5, "D": 20, "S": 20, "W": 20}
_UNICODE_COST = 300


class _RegexChecker:
    """A recursive-descent walk over the RE2 syntax that DuckDB accepts (a conservative
    subset), estimating the compiled program size and rewriting ``(?<name>`` to
    ``(?P<name>``.  Each parse method returns ``(cost, repeat_product)``: the estimated
    instruction count and the product of the counted repetitions ({n,m}) nested inside, which
    RE2 caps at 1000."""

    def __init__(self, source: str, offset: int):
        self.s = source
        self.i = 0
        self.offset = offset
        self.out: list[str] = []
        self.groups = 0
        self.names: list[tuple[str, int]] = []
        self.fold = False
        self.depth = 0      # groups open around the current position

    def fail(self, message: str, start: int, end: int | None = None, unsupported=False):
        cls = UnsupportedError if unsupported else QuerySyntaxError
        end = start + 1 if end is None else max(end, start + 1)
        raise cls(f"regex: {message}", Span(self.offset + start, self.offset + end))

    def peek(self, k: int = 0) -> str:
        return self.s[self.i + k] if self.i + k < len(self.s) else ""

    def take(self, n: int = 1) -> str:
        text = self.s[self.i:self.i + n]
        self.out.append(text)
        self.i += n
        return text

    def run(self) -> RegexInfo:
        cost, _ = self.alternation()
        if self.i < len(self.s):
            self.fail("unmatched )", self.i)
        if cost > MAX_REGEX_COST:
            self.fail("the expression is too large for the regex engine; use fewer or "
                      "smaller repetitions", 0, len(self.s), unsupported=True)
        return RegexInfo("".join(self.out), self.groups, tuple(self.names))

    def alternation(self) -> tuple[int, int]:
        cost, product = self.concat()
        while self.peek() == "|":
            self.take()
            c, p = self.concat()
            cost, product = cost + 1 + c, max(product, p)
        return cost, product

    def concat(self) -> tuple[int, int]:
        cost, product = 0, 1
        while self.i < len(self.s) and self.peek() not in "|)":
            c, p, repeatable = self.atom()
            if self.peek() in ("*", "+", "?") or self._counted():
                if not repeatable:
                    self.fail("missing argument to repetition operator", self.i)
                c, p = self.repetition(c, p)
            cost, product = cost + c, max(product, p)
        return cost, product

    def _counted(self):
        return re.match(r"\{(\d+)(,(\d*))?\}", self.s[self.i:])

    def repetition(self, cost: int, product: int) -> tuple[int, int]:
        m = self._counted()
        if m:
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            span = (self.i, self.i + len(m.group(0)))
            if lo > MAX_REPEAT or (hi is not None and (hi > MAX_REPEAT or hi < lo)):
                self.fail(f"invalid repetition size {m.group(0)} (at most {MAX_REPEAT})", *span)
            count = max(lo, hi or 0, 1)
            if count * product > MAX_REPEAT:
                self.fail(f"nested repetitions multiply to more than {MAX_REPEAT}", *span)
            self.take(len(m.group(0)))
            cost, product = cost * (count + (1 if hi is None else 0)) + 2, count * product
        else:
            self.take()
            cost += 2
        if self.peek() == "?":
            self.take()
        if self.peek() in ("*", "+", "?") or self._counted():
            self.fail("bad repetition operator (two in a row)", self.i)
        return cost, product

    def atom(self) -> tuple[int, int, bool]:
        c = self.peek()
        start = self.i
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class(), 1, True
        if c == "\\":
            cost, repeatable = self.escape(in_class=False)
            return cost, 1, repeatable
        if c in "*+?" or (c == "{" and self._counted()):
            self.fail("missing argument to repetition operator", start)
        if c in "^$":
            self.take()
            return 1, 1, False
        if c == ".":
            self.take()
            return 10, 1, True
        self.take()
        return (2 if self.fold and c.isalpha() else 1), 1, True

    def group(self) -> tuple[int, int, bool]:
        start = self.i
        if self.depth >= MAX_REGEX_DEPTH:
            self.fail(f"groups are nested more than {MAX_REGEX_DEPTH} deep", start,
                      unsupported=True)
        self.depth += 1
        try:
            return self._group(start)
        finally:
            self.depth -= 1

    def _group(self, start: int) -> tuple[int, int, bool]:
        rest = self.s[self.i:]
        saved_fold = self.fold
        if rest.startswith(("(?<=", "(?<!")):
            self.fail("look-ahead and look-behind are not supported", start, start + 4,
                      unsupported=True)
        m_named = re.match(r"\(\?P?<([^>]*)>", rest)
        if m_named:
            name = m_named.group(1)
            span = (start, start + len(m_named.group(0)))
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.fail(f"invalid group name <{name}> (letters, digits and _, not starting "
                          "with a digit)", *span)
            if any(n == name for n, _ in self.names):
                self.fail(f"duplicate group name <{name}>", *span)
            self.groups += 1
            self.names.append((name, self.groups))
            self.out.append(f"(?P<{name}>")
            self.i += len(m_named.group(0))
        elif rest.startswith("(?"):
            m_flags = re.match(r"\(\?([imsU]*)(?:-([imsU]+))?([:)])", rest)
            if not m_flags or not (m_flags.group(1) or m_flags.group(2)) \
                    and m_flags.group(3) == ")":
                if rest.startswith(("(?=", "(?!", "(?<=", "(?<!")):
                    self.fail("look-ahead and look-behind are not supported", start,
                              start + 3, unsupported=True)
                if rest.startswith(("(?P=", "(?P>", "(?&", "(?R", "(?(")) or \
                        re.match(r"\(\?\d", rest):
                    self.fail("back-references and recursion are not supported", start,
                              start + 3, unsupported=True)
                self.fail(f"unsupported group syntax {rest[:3]!r}; the flags are i, m, s "
                          "and U", start, start + 3, unsupported=True)
            on, off, end = m_flags.groups()
            if "i" in on:
                self.fold = True
            if off and "i" in off:
                self.fold = False
            self.take(len(m_flags.group(0)))
            if end == ")":
                return 0, 1, False  # (?flags): applies to the rest of the enclosing group
        else:
            self.groups += 1
            self.take()
        cost, product = self.alternation()
        if self.peek() != ")":
            self.fail("missing )", start)
        self.take()
        self.fold = saved_fold
        return cost + 2, product, True

    def _hex(self, start: int) -> int:
        m = re.match(r"\\x(?:([0-9A-Fa-f]{2})|\{([0-9A-Fa-f]{1,6})\})", self.s[self.i:])
        if not m or int(m.group(1) or m.group(2), 16) > 0x10FFFF:
            self.fail("invalid \\x escape; write \\xHH or \\x{HHHH}", start, start + 2)
        self.take(len(m.group(0)))
        return int(m.group(1) or m.group(2), 16)

    def escape(self, in_class: bool) -> tuple[int, bool]:
        start = self.i
        nxt = self.peek(1)
        if nxt == "":
            self.fail("trailing \\", start)
        if nxt in _SIMPLE_ESCAPES:
            self.take(2)
            return 1, True
        if nxt in _CLASS_COST:
            self.take(2)
            return _CLASS_COST[nxt] * (2 if self.fold else 1), True
        if nxt in "pP":
            m = re.match(r"\\[pP](?:\{\^?([A-Za-z_]+)\}|([A-Za-z]))", self.s[self.i:])
            if not m:
                self.fail("invalid Unicode class; write \\p{Name} or \\pL", start, start + 2)
            name = m.group(1) or m.group(2)
            if name not in _UNICODE:
                self.fail(f"unknown Unicode class {name!r}", start, start + len(m.group(0)),
                          unsupported=True)
            self.take(len(m.group(0)))
            return _UNICODE_COST, True
        if nxt == "x":
            self._hex(start)
            return 1, True
        if not in_class:
            if nxt in "bBAz":
                self.take(2)
                return 1, False
            if nxt == "Q":
                end = self.s.find("\\E", self.i + 2)
                literal = self.s[self.i + 2:] if end < 0 else self.s[self.i + 2:end]
                self.take(len(literal) + 2 + (0 if end < 0 else 2))
                if not literal:
                    return 0, False
                return len(literal) * (2 if self.fold else 1), True
        if nxt.isdigit():
            self.fail("back-references and octal escapes are not supported (use \\x{…} for "
                      "a character code)", start, start + 2, unsupported=True)
        if ord(nxt) < 128 and not nxt.isalnum():
            self.take(2)
            return 1, True
        self.fail(f"invalid escape \\{nxt}", start, start + 2)
        raise AssertionError  # pragma: no cover

    def char_class(self) -> int:
        start = self.i
        self.take()
        if self.peek() == "^":
            self.take()
            cost = 20
        else:
            cost = 2
        first = True
        while True:
            c = self.peek()
            if c == "":
                self.fail("missing ] at the end of a character class", start)
            if c == "]" and not first:
                self.take()
                break
            first = False
            if c == "[" and self.peek(1) == ":":
                m = re.match(r"\[:(\^?)([a-z]+):\]", self.s[self.i:])
                if not m or m.group(2) not in _POSIX:
                    self.fail("invalid [:class:]", self.i, self.i + 2)
                self.take(len(m.group(0)))
                cost += 6
                continue
            lo_start = self.i
            lo = self.class_char()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.take()
                hi = self.class_char()
                if lo is None or hi is None:
                    self.fail("invalid character class range", lo_start, self.i)
                if hi < lo:
                    self.fail("invalid character class range (reversed)", lo_start, self.i)
                cost += 2
            elif lo is None:
                cost += 20
            else:
                cost += 1
        return cost * (2 if self.fold else 1)

    def class_char(self) -> int | None:
        """One class member: its code point, or None for a class escape (\\d, \\p{L} …)."""
        c = self.peek()
        if c != "\\":
            self.take()
            return ord(c)
        nxt = self.peek(1)
        start = self.i
        if nxt in _SIMPLE_ESCAPES:
            self.take(2)
            return _SIMPLE_ESCAPES[nxt]
        if nxt == "x":
            return self._hex(start)
        if nxt in _CLASS_COST or nxt in "pP":
            self.escape(in_class=True)
            return None
        if nxt == "":
            self.fail("trailing \\", start)
        if nxt.isdigit():
            self.fail("octal escapes are not supported (use \\x{…})", start, start + 2,
                      unsupported=True)
        if ord(nxt) < 128 and not nxt.isalnum():
            self.take(2)
            return ord(nxt)
        self.fail(f"invalid escape \\{nxt} in a character class", start, start + 2)
        raise AssertionError  # pragma: no cover


@functools.lru_cache(maxsize=512)
def _check_regex_cached(source: str) -> RegexInfo:
    return _RegexChecker(source, 0).run()


def check_regex(source: str, offset: int = 0) -> RegexInfo:
    """Check ``source`` (the text between ``/…/``) against RE2; ``offset`` positions errors
    in the whole query.  Raises :class:`QuerySyntaxError` or :class:`UnsupportedError`."""
    if offset == 0:
        return _check_regex_cached(source)
    try:
        return _check_regex_cached(source)
    except QueryError as exc:
        if exc.span is not None:
            exc.span = Span(exc.span.start + offset, exc.span.end + offset)
        raise


# ------------------------------------------------------------------------------------------
# Rendering (canonical text; parse(render(q)) == q)
# ------------------------------------------------------------------------------------------

_PLAIN_FIRST = re.compile(r"(?:[^\W\d][\w@]*|@[\w@]+)\Z")
_PLAIN_NEXT = re.compile(r"[\w@]+\Z")
_KEYWORDS = {"fields", "display", "filter", "where", "filterindex", "stats", "sort", "limit",
             "parse", "dedup", "unnest", "unmask", "as", "by", "offset", "any", "logfmt", "csv",
             "multi", "into", "and", "or", "not", "like", "in", "asc", "desc"}


def _quote_segment(seg: str, first: bool) -> str:
    plain = _PLAIN_FIRST if first else _PLAIN_NEXT
    if plain.match(seg) and not (first and seg.lower() in _KEYWORDS):
        return seg
    if first and seg.startswith("@") and len(seg) > 1:
        return "@`" + seg[1:].replace("`", "``") + "`"
    return "`" + seg.replace("`", "``") + "`"


def render_name(parts: tuple[str, ...] | str) -> str:
    """A field name as it must be written in a query (back-ticks where needed)."""
    if isinstance(parts, str):
        parts = (parts,)
    return ".".join(_quote_segment(p, i == 0) for i, p in enumerate(parts))


def _render_alias(name: str) -> str:
    # a name is stored joined with dots (`a.b` and a.b name the same field)
    return render_name(tuple(name.split(".")))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render_number(value) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text


_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
               "neg": 7, "^": 8}


def _prec(node) -> int:
    if isinstance(node, Binary):
        if node.op in ("=", "!=", "<", "<=", ">", ">="):
            return _PRECEDENCE["cmp"]
        return _PRECEDENCE[node.op]
    if isinstance(node, (Like, In)):
        return _PRECEDENCE["cmp"]
    if isinstance(node, Unary):
        return _PRECEDENCE["not" if node.op == "not" else "neg"]
    return 100


def _wrap(node, minimum: int) -> str:
    text = render(node)
    return f"({text})" if _prec(node) < minimum else text


def render(node) -> str:
    """Canonical query text for a :class:`Query`, a command or an expression."""
    if isinstance(node, Query):
        return " | ".join(render(c) for c in node.commands)
    # ---- commands
    if isinstance(node, Item):
        text = render(node.expr)
        return text if node.alias is None else f"{text} as {_render_alias(node.alias)}"
    if isinstance(node, Fields):
        return "fields " + ", ".join(render(i) for i in node.items)
    if isinstance(node, Display):
        return "display " + ", ".join(render(i) for i in node.items)
    if isinstance(node, Filter):
        return "filter " + render(node.condition)
    if isinstance(node, FilterIndex):
        return "filterIndex " + render(node.condition)
    if isinstance(node, Stats):
        text = "stats " + ", ".join(render(i) for i in node.items)
        if node.by:
            text += " by " + ", ".join(render(i) for i in node.by)
        if node.offset is not None:
            text += " offset " + render(node.offset)
        return text
    if isinstance(node, SortKey):
        text = render(node.expr)
        return text if node.descending is None else text + (" desc" if node.descending else " asc")
    if isinstance(node, Sort):
        return "sort " + ", ".join(render(k) for k in node.keys)
    if isinstance(node, Limit):
        return "limit any" if node.count is None else f"limit {node.count}"
    if isinstance(node, Parse):
        words = ["parse"]
        if node.source is not None:
            words.append(render(node.source))
        if node.mode in ("glob", "regex"):
            words.append(render(node.pattern))
        else:
            words.append(node.mode)
        if node.aliases:
            words.append("as " + ", ".join(_render_alias(a) for a in node.aliases))
        if node.multi:
            words.append("multi")
        return " ".join(words)
    if isinstance(node, Dedup):
        return "dedup " + ", ".join(render(f) for f in node.fields)
    if isinstance(node, Unnest):
        return f"unnest {render(node.source)} into {_render_alias(node.into)}"
    if isinstance(node, Unmask):
        return "unmask"
    if isinstance(node, OtherCommand):
        return f"{node.name} {node.text}".rstrip()
    # ---- expressions
    if isinstance(node, FieldRef):
        return render_name(node.parts)
    if isinstance(node, Number):
        return _render_number(node.value)
    if isinstance(node, String):
        return _quote(node.value)
    if isinstance(node, Regex):
        return f"/{node.source}/"
    if isinstance(node, Period):
        return f"{node.amount}{node.unit}"
    if isinstance(node, Star):
        return "*"
    if isinstance(node, FuncCall):
        spec = functions.lookup(node.name)
        name = spec.name if spec is not None else node.name
        return f"{name}({', '.join(render(a) for a in node.args)})"
    if isinstance(node, Unary):
        if node.op == "not":
            return "not " + _wrap(node.operand, _PRECEDENCE["not"])
        return "-" + _wrap(node.operand, _PRECEDENCE["neg"])
    if isinstance(node, Binary):
        p = _prec(node)
        if node.op == "^":
            return f"{_wrap(node.left, p + 1)} ^ {_wrap(node.right, _PRECEDENCE['neg'])}"
        if p == _PRECEDENCE["cmp"]:
            return f"{_wrap(node.left, p + 1)} {node.op} {_wrap(node.right, p + 1)}"
        return f"{_wrap(node.left, p)} {node.op} {_wrap(node.right, p + 1)}"
    if isinstance(node, Like):
        op = "not like" if node.negated else "like"
        return f"{_wrap(node.operand, _PRECEDENCE['cmp'] + 1)} {op} {render(node.pattern)}"
    if isinstance(node, In):
        op = "not in" if node.negated else "in"
        items = ", ".join(render(i) for i in node.items)
        return f"{_wrap(node.operand, _PRECEDENCE['cmp'] + 1)} {op} [{items}]"
    if isinstance(node, Member):
        return f"{_wrap(node.base, 100)}.{_quote_segment(node.name, False)}"
    if isinstance(node, Index):
        return f"{_wrap(node.base, 100)}[{node.position}]"
    raise TypeError(f"cannot render {type(node).__name__}")
