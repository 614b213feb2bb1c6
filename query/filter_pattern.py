"""CloudWatch Logs filter patterns → one DuckDB boolean predicate.

The language of FilterLogEvents, PutMetricFilter, PutSubscriptionFilter and
TestMetricFilter (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html).
The rules, and the ambiguities we decided, are in ``/work/shared/reference/filter-patterns.md``.
Four forms, chosen by the first token::

    ERROR "a phrase" ?WARN -DEBUG                    Terms
    %^start|^stop%                                   RegexPattern
    { $.a = "x*" && ($.n > 5 || $.m IS NULL) }       JsonPattern
    [ip, user, ..., status = 4* && status != 403]    SpaceDelimitedPattern

Pipeline: ``filter_pattern.lark`` (LALR) → ``_ToAst`` → frozen dataclasses with spans →
``_Compiler`` (one ``compile_<node>`` per class) → ``(sql, params)``.  The SQL uses positional
``?`` parameters; every piece of user text (terms, values, JSON paths, regexes, names) is a
parameter, never SQL text.  Only :func:`matches`, :func:`extracted_values` and
:func:`test_metric_filter` touch DuckDB, and they import it lazily.

Public surface::

    parse(pattern) -> Pattern
    compile_predicate(pattern, message_sql="message") -> (sql, params)   # BOOLEAN, never NULL
    compile_metric_value(pattern, spec, message_sql) -> (sql, params)    # DOUBLE or NULL
    compile_dimension(pattern, spec, message_sql) -> (sql, params)       # VARCHAR or NULL
    compile_extracted_values(pattern, message_sql) -> (sql, params)      # STRUCT(name, value)[]
    matches(pattern, message) -> bool
    extracted_values(pattern, message) -> dict[str, str]
    test_metric_filter(pattern, messages) -> list[dict]   # TestMetricFilter's "matches"
    render(pattern) -> str                                # canonical text; parse(render(p)) == p
"""
from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Union

from lark import Token, Transformer, v_args

from query.errors import QueryError, QuerySyntaxError, Span, UnknownFieldError, UnsupportedError

__all__ = [
    "parse", "compile_predicate", "compile_metric_value", "compile_dimension",
    "compile_extracted_values", "matches", "extracted_values", "test_metric_filter", "render",
    "Terms", "Term", "RegexPattern", "Regex", "JsonPattern", "SpaceDelimitedPattern", "Field",
    "AnyFields", "And", "Or", "Comparison", "Check", "Selector", "Member", "Index", "Wildcard",
    "FieldName", "Text", "Number", "Pattern",
]

# AWS limits (reference §0, §3).
MAX_REGEXES = 2
MAX_WILDCARDS_PER_SELECTOR = 1
MAX_ARRAY_INDEX = 2**63 - 1   # the JSON path engine's bound; a larger index is refused
MAX_WILDCARDS_PER_PATTERN = 3


# ------------------------------------------------------------------------------------------
# AST.  ``span`` is excluded from equality so that tests (and the round trip) compare shape
# and content; spans are still on every node for error reporting.
# ------------------------------------------------------------------------------------------

def _span() -> Span:
    return field(default=Span(0, 0), compare=False, repr=False)


@dataclass(frozen=True)
class Term:
    """One unstructured term: a bare word or a "quoted phrase", matched as a substring.

    ``kind`` is ``required`` (plain), ``optional`` (``?term``) or ``excluded`` (``-term``)."""

    text: str
    quoted: bool
    kind: Literal["required", "optional", "excluded"]
    span: Span = _span()


@dataclass(frozen=True)
class Terms:
    """A list of terms.  No terms at all (the empty pattern) matches every event."""

    terms: tuple[Term, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Regex:
    """``%…%``: ``source`` is the text between the percent signs, already validated
    against the subset AWS supports."""

    source: str
    span: Span = _span()


@dataclass(frozen=True)
class RegexPattern:
    """A whole pattern that is one regular expression, searched in the raw message."""

    regex: Regex
    span: Span = _span()


@dataclass(frozen=True)
class Text:
    """A string value (quoted or not).  ``*`` at the start and/or end is a wildcard; a ``*``
    in the middle is literal (docs2019)."""

    value: str
    quoted: bool
    span: Span = _span()


@dataclass(frozen=True)
class Number:
    """An unquoted numeric literal: ``404``, ``-5``, ``55.5``, ``1e+3``."""

    text: str
    span: Span = _span()

    @property
    def value(self) -> float:
        return float(self.text)


Value = Union[Text, Number, Regex]


@dataclass(frozen=True)
class Member:
    """``.name`` or ``.['name.with.dots']``."""

    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Index:
    """``[n]``, zero-based."""

    position: int
    span: Span = _span()


@dataclass(frozen=True)
class Wildcard:
    """``.*`` (any member, ``kind="member"``) or ``[*]`` (any element, ``kind="element"``)."""

    kind: Literal["member", "element"]
    span: Span = _span()


Step = Union[Member, Index, Wildcard]


@dataclass(frozen=True)
class Selector:
    """A JSON property selector such as ``$.users[0].email``."""

    steps: tuple[Step, ...]
    span: Span = _span()

    @property
    def has_wildcard(self) -> bool:
        return any(isinstance(s, Wildcard) for s in self.steps)


@dataclass(frozen=True)
class FieldName:
    """The name of a space-delimited field, as it appears in a condition."""

    name: str
    span: Span = _span()


Comparator = Literal["=", "!=", "<", ">", "<=", ">="]


@dataclass(frozen=True)
class Comparison:
    """``subject op value``: a JSON selector or a space-delimited field compared to a value."""

    subject: Union[Selector, FieldName]
    op: Comparator
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class Check:
    """``$.x IS NULL`` / ``IS TRUE`` / ``IS FALSE`` / ``NOT EXISTS``."""

    selector: Selector
    check: Literal["IS NULL", "IS TRUE", "IS FALSE", "NOT EXISTS"]
    span: Span = _span()


@dataclass(frozen=True)
class And:
    """``a && b && …`` (JSON conditions, or conditions on one space-delimited field)."""

    operands: tuple["Condition", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Or:
    """``a || b || …``; binds looser than ``&&``."""

    operands: tuple["Condition", ...]
    span: Span = _span()


Condition = Union[Comparison, Check, And, Or]


@dataclass(frozen=True)
class JsonPattern:
    """``{ … }``: matches only events whose message is a JSON object."""

    condition: Condition
    span: Span = _span()


@dataclass(frozen=True)
class Field:
    """A named slot of a space-delimited pattern, with its optional condition."""

    name: str
    condition: Condition | None
    span: Span = _span()


@dataclass(frozen=True)
class AnyFields:
    """``...``: any number (zero or more) of unnamed fields."""

    span: Span = _span()


@dataclass(frozen=True)
class SpaceDelimitedPattern:
    """``[ … ]``: the event is split into fields (quoted and bracketed groups are one field)."""

    fields: tuple[Union[Field, AnyFields], ...]
    span: Span = _span()

    @property
    def named(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if isinstance(f, Field))


Pattern = Union[Terms, RegexPattern, JsonPattern, SpaceDelimitedPattern]


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------

@functools.cache
def _parser():
    from lark import Lark

    return Lark.open("filter_pattern.lark", rel_to=__file__, parser="lalr",
                     lexer="contextual", propagate_positions=True, maybe_placeholders=True)


def parse(pattern: str) -> Pattern:
    """Parse a filter pattern.  Raises :class:`QuerySyntaxError` (or :class:`UnsupportedError`
    for constructs AWS documents as unsupported), positioned in ``pattern``."""
    from lark.exceptions import LarkError

    if not isinstance(pattern, str):
        raise TypeError("filter pattern must be a str")
    try:
        tree = _parser().parse(pattern)
        ast = _ToAst(pattern).transform(tree)
    except QueryError as exc:
        raise exc.with_text(pattern)
    except LarkError as exc:
        raise _syntax_error(exc, pattern) from None
    _check_limits(ast, pattern)
    return ast


_FRIENDLY = {
    "SELECTOR": "a property selector such as $.status",
    "COMPARATOR": "a comparison (=, !=, <, >, <=, >=)",
    "_IS": "IS", "_NOT": "NOT", "_EXISTS": "EXISTS", "IS_OPERAND": "NULL, TRUE or FALSE",
    "_AND": "&&", "_OR": "||", "ELLIPSIS": "...", "FIELD_NAME": "a field name",
    "STRING": "a quoted string", "REGEX": "a %regex%", "JSON_VALUE": "a value",
    "FIELD_VALUE": "a value", "BARE_TERM": "a term", "LBRACE": "{", "RBRACE": "}",
    "LSQB": "[", "RSQB": "]", "LPAR": "(", "RPAR": ")", "COMMA": ",", "QMARK": "?",
    "MINUS": "-", "$END": "end of pattern",
}


def _expected(names) -> str:
    words = sorted({_FRIENDLY.get(n, n) for n in names or ()})
    return f"; expected {', '.join(words)}" if words else ""


def _syntax_error(exc, text: str) -> QueryError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken, VisitError

    if isinstance(exc, VisitError) and isinstance(exc.orig_exc, QueryError):
        return exc.orig_exc.with_text(text)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        char = text[pos:pos + 1]
        if char == '"':
            return QuerySyntaxError("unterminated quoted string; close it with \"",
                                    Span(pos, len(text)), text)
        if char == "%":
            return QuerySyntaxError("unterminated regular expression; close it with %",
                                    Span(pos, len(text)), text)
        if char in "{[" and pos > 0 and text.lstrip()[:1] not in ("{", "["):
            return _misplaced_opener(char, pos, text)
        return QuerySyntaxError(f"unexpected character '{char}'{_expected(exc.allowed)}",
                                Span(pos, pos + 1), text)
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            pos = len(text)
            return QuerySyntaxError(f"unexpected end of pattern{_expected(exc.expected)}",
                                    Span(pos, pos + 1), text)
        pos = exc.token.start_pos or 0
        value = str(exc.token)
        if value in ("{", "[") and pos > 0 and text.lstrip()[:1] not in ("{", "["):
            return _misplaced_opener(value, pos, text)
        return QuerySyntaxError(f"unexpected '{value}'{_expected(exc.expected)}",
                                Span(pos, pos + max(1, len(value))), text)
    from query.errors import from_lark

    return from_lark(exc, text)


def _misplaced_opener(char: str, pos: int, text: str) -> QueryError:
    return QuerySyntaxError(f"'{char}' can only open a JSON or space-delimited pattern; to "
                            f"search for it, put it in double quotes", Span(pos, pos + 1), text)


def _tok_span(tok) -> Span:
    return Span(tok.start_pos, tok.end_pos)


def _meta_span(meta) -> Span:
    return Span(meta.start_pos, meta.end_pos) if not meta.empty else Span(0, 0)


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_WORD = re.compile(r"\w+\Z")


def _unquote(token) -> str:
    """``"…"`` → its text: ``\\"`` and ``\\\\`` are escapes, any other backslash is kept."""
    body = str(token)[1:-1]
    return re.sub(r'\\(["\\])', r"\1", body)


def _value(tok) -> Value:
    span = _tok_span(tok)
    if tok.type == "STRING":
        return Text(_unquote(tok), True, span)
    if tok.type == "REGEX":
        return _regex(tok)
    text = str(tok)
    if _NUMBER.match(text):
        return Number(text, span)
    return Text(text, False, span)


def _regex(tok) -> Regex:
    source = str(tok)[1:-1]
    translate_regex(source, tok.start_pos + 1)  # validate now: errors are parse errors
    return Regex(source, _tok_span(tok))


def _comparison(subject, op_tok, value: Value, span: Span) -> Comparison:
    op = str(op_tok)
    if op in ("<", ">", "<=", ">=") and not isinstance(value, Number):
        raise QuerySyntaxError(f"'{op}' compares numbers; the value here is not a number",
                               value.span)
    return Comparison(subject, op, value, span)  # type: ignore[arg-type]


def _parse_selector(tok) -> Selector:
    """Split a SELECTOR token into steps, with positioned errors for misplaced parts."""
    text, base = str(tok), tok.start_pos
    steps: list[Step] = []
    i = 1
    while i < len(text):
        start = i
        if text.startswith(".*", i):
            steps.append(Wildcard("member", Span(base + i, base + i + 2)))
            i += 2
            continue
        dotted = text[i] == "."
        if dotted and (i + 1 >= len(text) or text[i + 1] != "["):
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            steps.append(Member(text[i + 1:j], Span(base + i, base + j)))
            i = j
            continue
        # [ … ] or .[ … ]
        open_at = i + 1 if dotted else i
        j = open_at + 1
        while j < len(text) and text[j] != "]":
            if text[j] in "\"'":
                q = text[j]
                j += 1
                while j < len(text) and text[j] != q:
                    j += 2 if text[j] == "\\" else 1
            j += 1
        inner = text[open_at + 1:j].strip()
        span = Span(base + start, base + j + 1)
        i = j + 1
        if inner[:1] in ("'", '"') and len(inner) >= 2 and inner[-1] == inner[0]:
            name = re.sub(r"\\(.)", r"\1", inner[1:-1])
            steps.append(Member(name, span))
        elif dotted:
            raise QuerySyntaxError(
                "'.[' must hold a quoted property name, as in $.['cluster.name']", span)
        elif inner == "*" or inner.isdigit():
            if not steps:
                raise QuerySyntaxError(
                    "an array index must follow a property, as in $.users[0]", span)
            if inner == "*":
                steps.append(Wildcard("element", span))
            elif int(inner) > MAX_ARRAY_INDEX:
                raise QuerySyntaxError(
                    f"an array index must be at most {MAX_ARRAY_INDEX}", span)
            else:
                steps.append(Index(int(inner), span))
        else:
            raise QuerySyntaxError(
                "expected [n], [*] or ['name'] in a property selector", span)
    sel_span = _tok_span(tok)
    if not steps:
        raise QuerySyntaxError("a selector needs a property, as in $.status", sel_span)
    wildcards = [s for s in steps if isinstance(s, Wildcard)]
    if len(wildcards) > MAX_WILDCARDS_PER_SELECTOR:
        raise QuerySyntaxError("a property selector can hold at most one wildcard",
                               wildcards[1].span)
    odd = [s for s in steps if isinstance(s, Member) and s.name in ("", "*")]
    if wildcards and odd:
        raise UnsupportedError("a property named '' or '*' cannot be used in a wildcard "
                               "selector", odd[0].span)
    return Selector(tuple(steps), sel_span)


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def start(self, meta, children):
        return children[0]

    # ---- terms
    def _term(self, meta, children, kind):
        (tok,) = children
        span = _meta_span(meta)
        if tok.type == "REGEX":
            return ("regex", kind, _regex(tok), span)
        if tok.type == "STRING":
            return Term(_unquote(tok), True, kind, span)
        text = str(tok)
        if not _WORD.match(text):
            bad = next(k for k, ch in enumerate(text) if not re.match(r"\w", ch))
            at = tok.start_pos + bad
            raise QuerySyntaxError(
                f"'{text[bad]}' is not allowed in an unquoted term; put the term in "
                f"double quotes: \"{text}\"", Span(at, at + 1))
        return Term(text, False, kind, span)

    def required_term(self, meta, children):
        return self._term(meta, children, "required")

    def optional_term(self, meta, children):
        return self._term(meta, children, "optional")

    def excluded_term(self, meta, children):
        return self._term(meta, children, "excluded")

    def terms(self, meta, children):
        span = Span(0, len(self.text))
        regexes = [c for c in children if isinstance(c, tuple)]
        if regexes:
            _, kind, regex, rspan = regexes[0]
            if len(children) > 1 or kind != "required":
                other = next((c for c in children if not isinstance(c, tuple)), None)
                where = other.span if other is not None and kind == "required" else rspan
                raise QuerySyntaxError(
                    "a %regular expression% must be the whole filter pattern", where)
            return RegexPattern(regex, span)
        return Terms(tuple(children), span)

    # ---- JSON
    def json_pattern(self, meta, children):
        return JsonPattern(children[0], _meta_span(meta))

    def json_and(self, meta, children):
        return And(_flatten(And, children), _meta_span(meta))

    def json_or(self, meta, children):
        return Or(_flatten(Or, children), _meta_span(meta))

    def json_comparison(self, meta, children):
        sel, op, value = children
        return _comparison(_parse_selector(sel), op, _value(value), _meta_span(meta))

    def json_is(self, meta, children):
        sel, operand = children
        return Check(_parse_selector(sel), f"IS {str(operand).upper()}", _meta_span(meta))

    def json_not_exists(self, meta, children):
        return Check(_parse_selector(children[0]), "NOT EXISTS", _meta_span(meta))

    def json_is_not(self, meta, children):
        raise UnsupportedError(
            f"IS NOT {str(children[1]).upper()} is not supported by CloudWatch Logs; "
            "use != or NOT EXISTS", _meta_span(meta))

    def json_exists(self, meta, children):
        raise UnsupportedError(
            "EXISTS is not supported by CloudWatch Logs; use NOT EXISTS, or = * to require "
            "a value", _meta_span(meta))

    # ---- space-delimited
    def space_pattern(self, meta, children):
        fields = tuple(c for c in children if c is not None)
        span = _meta_span(meta)
        if not fields:
            raise QuerySyntaxError("a space-delimited pattern needs at least one field",
                                   span)
        seen: set[str] = set()
        for f in fields:
            name = "..." if isinstance(f, AnyFields) else f.name
            if name in seen:
                raise QuerySyntaxError(f"Duplicate field '{name}'", f.span)
            seen.add(name)
        return SpaceDelimitedPattern(fields, span)

    def any_fields(self, meta, children):
        return AnyFields(_tok_span(children[0]))

    def field(self, meta, children):
        (cond,) = children
        span = _meta_span(meta)
        if isinstance(cond, FieldName):
            return Field(cond.name, None, span)
        names = list(_condition_names(cond))
        first = names[0]
        for n in names[1:]:
            if n.name != first.name:
                raise QuerySyntaxError(
                    f"a condition in field '{first.name}' names field '{n.name}'; each "
                    f"field's conditions must name that field", n.span)
        return Field(first.name, cond, span)

    def field_name(self, meta, children):
        return FieldName(str(children[0]), _tok_span(children[0]))

    def field_comparison(self, meta, children):
        name, op, value = children
        return _comparison(FieldName(str(name), _tok_span(name)), op, _value(value),
                           _meta_span(meta))

    def field_and(self, meta, children):
        return And(_flatten(And, self._no_bare(children)), _meta_span(meta))

    def field_or(self, meta, children):
        return Or(_flatten(Or, self._no_bare(children)), _meta_span(meta))

    @staticmethod
    def _no_bare(children):
        for c in children:
            if isinstance(c, FieldName):
                raise QuerySyntaxError(
                    f"'{c.name}' needs a comparison here, as in {c.name} = value", c.span)
        return children


def _flatten(kind, children) -> tuple:
    """``a && (b && c)`` is ``a && b && c``: one n-ary node, so render/parse round-trips."""
    out = []
    for c in children:
        out.extend(c.operands if isinstance(c, kind) else (c,))
    return tuple(out)


def _condition_names(cond):
    if isinstance(cond, FieldName):
        yield cond
    elif isinstance(cond, Comparison):
        yield cond.subject
    elif isinstance(cond, (And, Or)):
        for c in cond.operands:
            yield from _condition_names(c)


def _walk(node):
    yield node
    if isinstance(node, (Terms,)):
        yield from node.terms
    elif isinstance(node, RegexPattern):
        yield node.regex
    elif isinstance(node, JsonPattern):
        yield from _walk(node.condition)
    elif isinstance(node, SpaceDelimitedPattern):
        for f in node.fields:
            yield f
            if isinstance(f, Field) and f.condition is not None:
                yield from _walk(f.condition)
    elif isinstance(node, (And, Or)):
        for c in node.operands:
            yield from _walk(c)
    elif isinstance(node, Comparison):
        yield node.subject
        yield node.value
    elif isinstance(node, Check):
        yield node.selector


def _check_limits(ast: Pattern, text: str) -> None:
    nodes = list(_walk(ast))
    regexes = [n for n in nodes if isinstance(n, Regex)]
    if len(regexes) > MAX_REGEXES:
        raise QuerySyntaxError(f"a filter pattern can hold at most {MAX_REGEXES} regular "
                               f"expressions", regexes[MAX_REGEXES].span, text)
    wild = [n for n in nodes if isinstance(n, Selector) and n.has_wildcard]
    if len(wild) > MAX_WILDCARDS_PER_PATTERN:
        raise QuerySyntaxError(f"a JSON filter pattern can hold at most "
                               f"{MAX_WILDCARDS_PER_PATTERN} wildcard selectors",
                               wild[MAX_WILDCARDS_PER_PATTERN].span, text)


# ------------------------------------------------------------------------------------------
# Regular expressions: AWS's subset → RE2 (DuckDB's regex engine)
# ------------------------------------------------------------------------------------------

_RE_LITERALS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         ":_#=@/;,- ")
_RE_OPERATORS = frozenset("^$?[]{}|\\*+.")
_RE_SHORTHANDS = frozenset("dDsSwW")
_RE2_META = frozenset("\\.+*?()|[]{}^$")
_RE2_CLASS_META = frozenset("\\]^-[")
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")
_RE2_MAX_REPEAT = 1000


def translate_regex(source: str, offset: int = 0) -> str:
    """Validate a filter-pattern regex (the text between ``%`` signs) and return the RE2
    equivalent.  ``offset`` is the position of ``source`` in the pattern, for error spans.

    Supported (per the AWS regex section): letters, digits, ``: _ # = @ / ; , -`` and space;
    the operators ``^ $ ? [ ] { } | \\ * + .``; the escapes ``\\d \\D \\s \\S \\w \\W \\xhh``
    and ``\\`` before any allowed symbol.  No parentheses, no multi-byte characters."""

    def err(msg, i, j=None, cls=QuerySyntaxError):
        return cls(msg, Span(offset + i, offset + (j if j is not None else i + 1)))

    def bad_char(ch, i):
        if ch in "()":
            return err("parentheses (groups) are not supported in filter-pattern regular "
                       f"expressions; match a literal '{ch}' with \\x{ord(ch):02X}", i,
                       cls=UnsupportedError)
        if ord(ch) > 127:
            return err("multi-byte characters are not supported in filter-pattern regular "
                       "expressions", i, cls=UnsupportedError)
        return err(f"'{ch}' is not allowed in a filter-pattern regular expression; match it "
                   f"with \\x{ord(ch):02X}", i)

    def escape(i, in_class):
        """Parse the escape at source[i] == '\\'.  Returns (re2_text, end, literal_char)."""
        if i + 1 >= len(source):
            raise err("a regular expression cannot end with a backslash", i)
        c = source[i + 1]
        if c in _RE_SHORTHANDS:
            return "\\" + c, i + 2, None
        if c == "x":
            hexdigits = source[i + 2:i + 4]
            if len(hexdigits) != 2 or not all(h in "0123456789abcdefABCDEF" for h in hexdigits):
                raise err("\\x needs two hex digits, as in \\x3A", i, i + 2)
            ch = chr(int(hexdigits, 16))
            return "\\x" + hexdigits.upper(), i + 4, ch
        if c.isalnum():
            raise err(f"unsupported escape '\\{c}'; supported: \\d \\D \\s \\S \\w \\W \\xhh",
                      i, i + 2)
        if c not in _RE_LITERALS and c not in _RE_OPERATORS:
            raise bad_char(c, i + 1)
        return lit(c, in_class), i + 2, c

    def lit(ch, in_class):
        meta = _RE2_CLASS_META if in_class else _RE2_META
        return "\\" + ch if ch in meta else ch

    if not source:
        raise err("empty regular expression", -1, 1)
    out: list[str] = []
    prev = "start"  # start | atom | anchor | quant | lazy
    i = 0
    n = len(source)
    while i < n:
        c = source[i]
        if c == "|":
            if prev == "start":
                raise err("empty alternative in regular expression", i)
            out.append("|")
            prev = "start"
            i += 1
        elif c in "*+?" or c == "{":
            if c == "{":
                m = _REPEAT.match(source, i)
                if not m:
                    raise err("'{' must start a repetition such as {2}, {1,3}, {2,} or {,3}; "
                              "match a literal brace with \\x7B", i)
                lo, comma, hi = m.groups()
                if not lo and not hi:
                    raise err("a repetition needs a bound, as in {2} or {1,3}", i, m.end())
                if int(lo or 0) > _RE2_MAX_REPEAT or int(hi or 0) > _RE2_MAX_REPEAT:
                    raise err(f"repetition bounds are limited to {_RE2_MAX_REPEAT}", i, m.end())
                if lo and hi and int(lo) > int(hi):
                    raise err("repetition {m,n} needs m <= n", i, m.end())
                text = "{" + (lo or "0") + comma + hi + "}"
                end = m.end()
            else:
                text, end = c, i + 1
            if prev == "atom":
                prev = "quant"
            elif prev == "quant" and c == "?":
                prev = "lazy"
            elif prev in ("quant", "lazy"):
                raise err(f"'{source[i:end]}' cannot follow another repetition", i, end)
            else:
                raise err(f"'{source[i:end]}' has nothing to repeat", i, end)
            out.append(text)
            i = end
        elif c in "}]":
            raise err(f"unmatched '{c}'; match a literal '{c}' with \\x{ord(c):02X}", i)
        elif c in "^$":
            out.append(c)
            prev = "anchor"
            i += 1
        elif c == ".":
            out.append(".")
            prev = "atom"
            i += 1
        elif c == "\\":
            text, i, _ = escape(i, False)
            out.append(text)
            prev = "atom"
        elif c == "[":
            text, i = _translate_class(source, i, escape, bad_char, err)
            out.append(text)
            prev = "atom"
        elif c in _RE_LITERALS:
            out.append(lit(c, False))
            prev = "atom"
            i += 1
        else:
            raise bad_char(c, i)
    if prev == "start":
        raise err("empty alternative in regular expression", n - 1)
    return "".join(out)


def _translate_class(source, start, escape, bad_char, err):
    i = start + 1
    out = ["["]
    if source[i:i + 1] == "^":
        out.append("^")
        i += 1
    items = 0
    while True:
        if i >= len(source):
            raise err("unterminated character class; close it with ]", start, len(source))
        c = source[i]
        if c == "]":
            if not items:
                raise err("empty character class", start, i + 1)
            out.append("]")
            return "".join(out), i + 1
        # one item: a character (possibly escaped), a shorthand, or a range lo-hi
        if c == "\\":
            text, j, ch = escape(i, True)
        elif c in _RE_LITERALS or c in _RE_OPERATORS:
            ch = c
            text, j = ("\\" + c if c in _RE2_CLASS_META else c), i + 1
        else:
            raise bad_char(c, i)
        if ch is not None and source[j:j + 1] == "-" and source[j + 1:j + 2] not in ("", "]"):
            k = j + 1
            if source[k] == "\\":
                hi_text, end, hi = escape(k, True)
                if hi is None:
                    raise err("a range cannot end with a shorthand class", k, end)
            elif source[k] in _RE_LITERALS or source[k] in _RE_OPERATORS:
                hi = source[k]
                hi_text, end = ("\\" + hi if hi in _RE2_CLASS_META else hi), k + 1
            else:
                raise bad_char(source[k], k)
            if ord(hi) < ord(ch):
                raise err(f"invalid range '{source[i:end]}' in character class", i, end)
            text = f"{text}-{hi_text}"
            j = end
        out.append(text)
        items += 1
        i = j


# ------------------------------------------------------------------------------------------
# Rendering (canonical text; parse(render(p)) == p)
# ------------------------------------------------------------------------------------------

def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(node) -> str:
    """Canonical filter-pattern text for an AST (or a sub-node)."""
    if isinstance(node, Terms):
        return " ".join(render(t) for t in node.terms)
    if isinstance(node, Term):
        prefix = {"required": "", "optional": "?", "excluded": "-"}[node.kind]
        return prefix + (_quote(node.text) if node.quoted else node.text)
    if isinstance(node, RegexPattern):
        return render(node.regex)
    if isinstance(node, Regex):
        return f"%{node.source}%"
    if isinstance(node, Text):
        return _quote(node.value) if node.quoted else node.value
    if isinstance(node, Number):
        return node.text
    if isinstance(node, JsonPattern):
        return "{ " + render(node.condition) + " }"
    if isinstance(node, And):
        return " && ".join(_paren(o, Or) for o in node.operands)
    if isinstance(node, Or):
        return " || ".join(_paren(o, Or) for o in node.operands)
    if isinstance(node, Comparison):
        return f"{render(node.subject)} {node.op} {render(node.value)}"
    if isinstance(node, Check):
        return f"{render(node.selector)} {node.check}"
    if isinstance(node, Selector):
        return "$" + "".join(render(s) for s in node.steps)
    if isinstance(node, Member):
        if re.fullmatch(r"[^\s.\[\]=!<>&|(){}\"'*%,]+", node.name):
            return "." + node.name
        return ".[" + _quote(node.name) + "]"
    if isinstance(node, Index):
        return f"[{node.position}]"
    if isinstance(node, Wildcard):
        return ".*" if node.kind == "member" else "[*]"
    if isinstance(node, FieldName):
        return node.name
    if isinstance(node, SpaceDelimitedPattern):
        return "[" + ", ".join(render(f) for f in node.fields) + "]"
    if isinstance(node, AnyFields):
        return "..."
    if isinstance(node, Field):
        return node.name if node.condition is None else render(node.condition)
    raise TypeError(f"cannot render {type(node).__name__}")


def _paren(node, looser) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, looser) else text


# ------------------------------------------------------------------------------------------
# SQL building: every fragment is (text, params) and params follow the textual order of ?
# ------------------------------------------------------------------------------------------

class Sql(NamedTuple):
    text: str
    params: tuple = ()


class _Bind(NamedTuple):
    value: object


def _sql(template: str, *args) -> Sql:
    """Fill ``{}`` placeholders in order: a :class:`Sql` is spliced (its params follow), a
    :class:`_Bind` becomes ``?``.  Templates are our own constants, never user text."""
    texts, params = [], []
    for a in args:
        if isinstance(a, Sql):
            texts.append(a.text)
            params.extend(a.params)
        elif isinstance(a, _Bind):
            texts.append("?")
            params.append(a.value)
        else:
            raise TypeError(f"cannot splice {type(a).__name__} into SQL")
    return Sql(template.format(*texts), tuple(params))


def _join(sep: str, parts: list[Sql]) -> Sql:
    return Sql(sep.join(p.text for p in parts), tuple(x for p in parts for x in p.params))


TRUE = Sql("TRUE")
FALSE = Sql("FALSE")

# Lambda variable names: unlikely to shadow a column the caller's message_sql refers to.
_DOC, _VAL, _FIELDS, _POS, _TOKEN = "fp_doc", "fp_val", "fp_fields", "fp_pos", "fp_token"
# RE2's \s: space, \t, \n, \f, \r.
_RE2_SPACE = "chr(32) || chr(9) || chr(10) || chr(12) || chr(13)"

_JSON_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"
_JSON_VALUE_TYPES = "('VARCHAR', 'BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"

# Space-delimited tokenizer (RE2).  A field is a "quoted group" or a [bracketed group] that
# ends at whitespace or the end of the line, otherwise a run of non-space characters.  The
# group alternatives swallow one trailing whitespace character, which _STRIP_FIELD removes
# together with the delimiters.  _rest_of_line() uses the same definition anchored.
_FIELD_RE = r'"[^"]*"(?:\s|$)|\[[^\]]*\](?:\s|$)|\S+'
_STRIP_FIELD_RE = r'^"([^"]*)"\s?$|^\[([^\]]*)\]\s?$'
_FIELD_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"

for _const in (_FIELD_RE, _STRIP_FIELD_RE, _FIELD_NUMBER_RE):
    assert "'" not in _const  # these are inlined as SQL string literals


def _strip_field(raw: Sql) -> Sql:
    # Only tokens that start with a quote or bracket can be groups: skip the regex otherwise.
    return _sql("list_transform([{}], lambda " + _TOKEN + ": CASE WHEN left(" + _TOKEN
                + ", 1) IN ('\"', '[') THEN regexp_replace(" + _TOKEN + ", '" + _STRIP_FIELD_RE
                + r"', '\1\2') ELSE " + _TOKEN + " END)[1]", raw)


def _rest_of_line(message: Sql, skip: int) -> Sql:
    """The raw text from field ``skip + 1`` to the end of the line, trailing space trimmed.
    Removing the prefix (no capture group) lets RE2 use its fast matcher."""
    prefix = r'^\s*(?:(?:"[^"]*"|\[[^\]]*\]|\S+)\s+){{' + str(skip) + '}}'
    return _sql("rtrim(regexp_replace({}, '" + prefix + "', ''), " + _RE2_SPACE + ")", message)


def _field_number(v: Sql) -> Sql:
    return _sql("CASE WHEN regexp_matches({}, '" + _FIELD_NUMBER_RE
                + "') THEN TRY_CAST({} AS DOUBLE) END", v, v)


def _glob(text: Sql, value: Text) -> Sql:
    """``*`` at either end of the value is a wildcard; in the middle it is literal."""
    core = value.value
    lead = len(core) - len(core.lstrip("*"))
    if lead == len(core) and core:
        return TRUE
    core = core[lead:]
    trail = len(core) - len(core.rstrip("*"))
    core = core[:len(core) - trail] if trail else core
    if lead and trail:
        return _sql("contains({}, {})", text, _Bind(core))
    if lead:
        return _sql("ends_with({}, {})", text, _Bind(core))
    if trail:
        return _sql("starts_with({}, {})", text, _Bind(core))
    return _sql("({} = {})", text, _Bind(core))


def _json_path(selector: Selector) -> str:
    """The DuckDB path for a selector: JSONPath with every member name quoted, or a JSON
    pointer when a name is empty or ``*`` (DuckDB reads ``$."*"`` as a wildcard)."""
    odd = [s for s in selector.steps if isinstance(s, Member) and s.name in ("", "*")]
    if odd and not selector.has_wildcard:
        return "".join("/" + (s.name if isinstance(s, Member) else str(s.position))
                       .replace("~", "~0").replace("/", "~1") for s in selector.steps)
    if odd:
        raise UnsupportedError("a property named '' or '*' cannot be used in a wildcard "
                               "selector", odd[0].span)
    parts = ["$"]
    for step in selector.steps:
        if isinstance(step, Member):
            parts.append('."' + step.name.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(step, Index):
            parts.append(f"[{step.position}]")
        elif step.kind == "member":
            parts.append(".*")
        else:
            parts.append("[*]")
    return "".join(parts)


def _needs_object_check(cond) -> bool:
    """Whether a JSON condition can hold on a document that is not an object: NOT EXISTS
    holds when a member is absent, and a wildcard selector also reaches into arrays.  Every
    other condition needs the value of a named member, so it implies an object.  (Decided on
    the shape of the pattern only, never on its text.  One corner follows from it: a JSON
    pointer selector, used for names '' and '*', whose first name is a number, such as
    ``$.['0'].['']``, also indexes a top-level array.)"""
    if isinstance(cond, (And, Or)):
        return any(_needs_object_check(c) for c in cond.operands)
    if isinstance(cond, Check):
        return cond.check == "NOT EXISTS" or cond.selector.has_wildcard
    return cond.subject.has_wildcard


def _as_pattern(pattern: Pattern | str) -> Pattern:
    return parse(pattern) if isinstance(pattern, str) else pattern


class _Compiler:
    """One ``compile_<node>`` method per AST class; an unknown node fails loudly."""

    def __init__(self, message_sql: str):
        self.message = Sql(f"({message_sql})")

    def compile(self, node, *args) -> Sql:
        name = "compile_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(node).__name__).lower()
        method = getattr(self, name, None)
        if method is None:
            raise UnsupportedError(f"filter pattern element {type(node).__name__} cannot be "
                                   f"compiled", getattr(node, "span", None))
        return method(node, *args)

    # ---- terms and regex

    def compile_terms(self, node: Terms) -> Sql:
        plain = [t for t in node.terms if t.kind != "optional"]
        if plain:  # ?terms mixed with plain or -terms are ignored (reference §1)
            parts = [p for p in (self.compile(t) for t in plain) if p != TRUE] or [TRUE]
            return _join(" AND ", parts) if len(parts) > 1 else parts[0]
        optional = [self.compile(t) for t in node.terms]
        if not optional:
            return TRUE
        return _sql("({})", _join(" OR ", optional)) if len(optional) > 1 else optional[0]

    def compile_term(self, node: Term) -> Sql:
        if not node.text.strip():  # " " and "" match every event (reference §1)
            hit = TRUE
        else:
            hit = _sql("contains({}, {})", self.message, _Bind(node.text))
        return _sql("(NOT {})", hit) if node.kind == "excluded" else hit

    def compile_regex_pattern(self, node: RegexPattern) -> Sql:
        return self.compile(node.regex, self.message)

    def compile_regex(self, node: Regex, text: Sql) -> Sql:
        return _sql("regexp_matches({}, {})", text, _Bind(translate_regex(node.source)))

    # ---- JSON

    def compile_json_pattern(self, node: JsonPattern) -> Sql:
        body = self.compile(node.condition)
        if _needs_object_check(node.condition):
            return _sql("list_transform([TRY_CAST({} AS JSON)], lambda " + _DOC
                        + ": json_type(" + _DOC + ") = 'OBJECT' AND {})[1]", self.message, body)
        # Every condition here needs a member of the document to exist, which only an object
        # has: the object test (a second parse of the message) is implied.  And a document
        # used once is not worth a lambda: it is cast in place.
        if body.text.count(_DOC) == 1:
            doc = _sql("TRY_CAST({} AS JSON)", self.message)
            before, after = body.text.split(_DOC)
            return Sql(before + doc.text + after, body.params)
        return _sql("list_transform([TRY_CAST({} AS JSON)], lambda " + _DOC + ": {})[1]",
                    self.message, body)

    def compile_and(self, node: And, *args) -> Sql:
        return _sql("({})", _join(" AND ", [self.compile(c, *args) for c in node.operands]))

    def compile_or(self, node: Or, *args) -> Sql:
        return _sql("({})", _join(" OR ", [self.compile(c, *args) for c in node.operands]))

    def _on_selector(self, selector: Selector, condition: Sql) -> Sql:
        """``condition`` (over the JSON value ``fp_val``) for the node(s) ``selector`` reaches:
        any of them, for a wildcard selector."""
        path = _Bind(_json_path(selector))
        if selector.has_wildcard:
            return _sql("COALESCE(list_bool_or(list_transform(json_extract(" + _DOC
                        + ", {}), lambda " + _VAL + ": {})), FALSE)", path, condition)
        return _sql("COALESCE(list_transform([json_extract(" + _DOC + ", {})], lambda " + _VAL
                    + ": {})[1], FALSE)", path, condition)

    def compile_check(self, node: Check) -> Sql:
        v = _VAL
        if node.check == "NOT EXISTS":
            path = _Bind(_json_path(node.selector))
            if node.selector.has_wildcard:
                return _sql("(len(json_extract(" + _DOC + ", {})) = 0)", path)
            return _sql("(json_extract(" + _DOC + ", {}) IS NULL)", path)
        condition = {
            "IS NULL": f"json_type({v}) = 'NULL'",
            "IS TRUE": f"(json_type({v}) = 'BOOLEAN' AND json_extract_string({v}, '$') = 'true')",
            "IS FALSE": f"(json_type({v}) = 'BOOLEAN' AND json_extract_string({v}, '$') = 'false')",
        }[node.check]
        return self._on_selector(node.selector, Sql(condition))

    def compile_comparison(self, node: Comparison, field_value: Sql | None = None) -> Sql:
        if isinstance(node.subject, Selector) and isinstance(node.value, Number) \
                and node.op != "!=" and not node.subject.has_wildcard:
            # A JSON number's text is all a DOUBLE cast accepts: strings keep their quotes,
            # true/false/null/objects/arrays do not parse, so no json_type test is needed.
            return _sql("COALESCE(TRY_CAST(CAST(json_extract(" + _DOC + ", {}) AS VARCHAR) AS "
                        "DOUBLE) " + node.op + " {}, FALSE)",
                        _Bind(_json_path(node.subject)), _Bind(node.value.value))
        if isinstance(node.subject, Selector):
            is_value = Sql(f"json_type({_VAL}) IN {_JSON_VALUE_TYPES}")
            text = Sql(f"json_extract_string({_VAL}, '$')")
            number = Sql(f"CASE WHEN json_type({_VAL}) IN {_JSON_NUMBER_TYPES} "
                         f"THEN TRY_CAST({_VAL} AS DOUBLE) END")
            return self._on_selector(node.subject, self._compare(node, is_value, text, number))
        assert field_value is not None
        return self._compare(node, None, field_value, _field_number(field_value))

    def _compare(self, node: Comparison, is_value: Sql | None, text: Sql, number: Sql) -> Sql:
        value, op = node.value, node.op
        if isinstance(value, Number):
            if op == "!=":
                test = _sql("(NOT COALESCE({} = {}, FALSE))", number, _Bind(value.value))
            else:
                return _sql("COALESCE({} " + op + " {}, FALSE)", number, _Bind(value.value))
        else:
            hit = self.compile(value, text)
            test = _sql("(NOT COALESCE({}, FALSE))", hit) if op == "!=" else hit
        if is_value is None:
            return _sql("COALESCE({}, FALSE)", test) if op != "!=" else test
        return _sql("({} AND {})", is_value, test)

    def compile_text(self, node: Text, text: Sql) -> Sql:
        return _glob(text, node)

    # ---- space-delimited

    def fields_list(self) -> Sql:
        return _sql("regexp_extract_all({}, '" + _FIELD_RE + "')", self.message)

    def field_value(self, pattern: SpaceDelimitedPattern, name: str) -> Sql:
        """The stripped text of the named field inside a ``lambda fp_fields`` body."""
        fields = pattern.fields
        pos = next(i for i, f in enumerate(fields) if isinstance(f, Field) and f.name == name)
        ellipsis = next((i for i, f in enumerate(fields) if isinstance(f, AnyFields)), None)
        if ellipsis is not None:
            index = pos + 1 if pos < ellipsis else pos - len(fields)  # negative: from the end
            return _strip_field(Sql(f"{_FIELDS}[{index}]"))
        if pos < len(fields) - 1:
            return _strip_field(Sql(f"{_FIELDS}[{pos + 1}]"))
        # The last field takes the rest of the line when the line has more fields [L].
        n = len(fields)
        return _sql(f"CASE WHEN len({_FIELDS}) = {n} THEN {{}} ELSE {{}} END",
                    _strip_field(Sql(f"{_FIELDS}[{n}]")), _rest_of_line(self.message, n - 1))

    def binds(self, pattern: SpaceDelimitedPattern) -> Sql:
        return Sql(f"len({_FIELDS}) >= {len(pattern.named)}")

    def over_fields(self, body: Sql) -> Sql:
        return _sql("list_transform([{}], lambda " + _FIELDS + ": {})[1]",
                    self.fields_list(), body)

    def compile_space_delimited_pattern(self, node: SpaceDelimitedPattern) -> Sql:
        parts = [self.binds(node)]
        prefilters = []
        for f in node.named:
            if f.condition is not None:
                cond = self.compile(f.condition, Sql(_VAL))
                parts.append(_sql("list_transform([{}], lambda " + _VAL + ": {})[1]",
                                  self.field_value(node, f.name), cond))
                needed = self.required_text(f.condition)
                if needed is not None:
                    prefilters.append(needed)
        body = self.over_fields(_join(" AND ", parts))
        if not prefilters:
            return body
        # A cheap substring test first: a field value is a substring of the raw line, so a
        # line that lacks the literal cannot match, and tokenising is skipped for it.
        return _sql("({} AND {})", _join(" AND ", prefilters), body)

    def required_text(self, cond) -> Sql | None:
        """A ``contains`` test the raw line must pass for ``cond`` to hold, or None."""
        if isinstance(cond, Comparison):
            value = cond.value
            if cond.op == "=" and isinstance(value, Text) and value.value.strip("*"):
                core = value.value
                core = core[len(core) - len(core.lstrip("*")):]
                core = core[:len(core.rstrip("*"))]
                return _sql("contains({}, {})", self.message, _Bind(core))
            return None
        if isinstance(cond, And):
            parts = [p for p in map(self.required_text, cond.operands) if p is not None]
            return _sql("({})", _join(" AND ", parts)) if parts else None
        if isinstance(cond, Or):
            parts = [self.required_text(c) for c in cond.operands]
            if any(p is None for p in parts):
                return None
            return _sql("({})", _join(" OR ", parts))
        return None


# ------------------------------------------------------------------------------------------
# Public compile entry points
# ------------------------------------------------------------------------------------------

def compile_predicate(pattern: Pattern | str, message_sql: str = "message") -> tuple[str, list]:
    """A DuckDB BOOLEAN expression (never NULL) over ``message_sql`` that is true when the
    event matches, and its positional ``?`` parameters in order.  ``message_sql`` is trusted
    SQL from the caller; user text only ever appears in the parameters."""
    ast = _as_pattern(pattern)
    compiler = _Compiler(message_sql)
    sql = compiler.compile(ast)
    if sql.text == "TRUE":
        return "TRUE", []
    sql = _sql("COALESCE({}, FALSE)", sql)  # NULL messages (and NULL sub-results) never match
    return sql.text, list(sql.params)


_SPEC_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")


def _spec_error(spec: str, message: str, cls=QuerySyntaxError) -> QueryError:
    return cls(message, Span(0, max(1, len(spec))), spec)


def _extraction(pattern: Pattern | str, spec: str, message_sql: str, kind: str) -> Sql:
    """Shared by metric values and dimensions: ``$.selector`` or ``$field``/``$N``.
    Returns SQL of type VARCHAR (the extracted text) or raises."""
    ast = _as_pattern(pattern)
    compiler = _Compiler(message_sql)
    spec = spec.strip()
    if spec.startswith("$."):
        if not isinstance(ast, JsonPattern):
            raise _spec_error(spec, f"a {kind} of the form $.selector needs a JSON filter "
                                    "pattern", UnsupportedError)
        selector = _parse_spec_selector(spec)
        if selector.has_wildcard:
            raise _spec_error(spec, f"a {kind} selector cannot contain a wildcard",
                              UnsupportedError)
        cond = (f"CASE WHEN json_type({_VAL}) IN {_JSON_VALUE_TYPES} OR json_type({_VAL}) = "
                f"'BOOLEAN' THEN json_extract_string({_VAL}, '$') END")
        return _sql("list_transform([TRY_CAST({} AS JSON)], lambda " + _DOC
                    + ": list_transform([json_extract(" + _DOC + ", {})], lambda " + _VAL
                    + ": " + cond + ")[1])[1]", compiler.message, _Bind(_json_path(selector)))
    if spec.startswith("$") and re.fullmatch(r"\$\w[\w\-]*", spec):
        if not isinstance(ast, SpaceDelimitedPattern):
            raise _spec_error(spec, f"a {kind} of the form $field needs a space-delimited "
                                    "filter pattern", UnsupportedError)
        name = spec[1:]
        if any(f.name == name for f in ast.named):
            body = _sql(f"CASE WHEN len({_FIELDS}) >= {len(ast.named)} THEN {{}} END",
                        compiler.field_value(ast, name))
        elif name.isdigit() and int(name) >= 1:
            body = _sql(f"CASE WHEN len({_FIELDS}) >= {len(ast.named)} THEN {{}} END",
                        _strip_field(_sql(f"{_FIELDS}[{{}}]", _Bind(int(name)))))
        else:
            names = ", ".join("$" + f.name for f in ast.named) or "none"
            raise UnknownFieldError(f"{spec} is not a field of the filter pattern (fields: "
                                    f"{names})", Span(0, len(spec)), spec)
        return compiler.over_fields(body)
    raise _spec_error(spec, f"a {kind} must be " + ("a number, " if kind == "metric value"
                                                    else "") + "$.selector or $field")


def _parse_spec_selector(spec: str) -> Selector:
    m = re.match(r"\$(?:\.\*|\.?\[(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\]\"'])*\]"
                 r"|\.[^\s.\[\]=!<>&|(){}\"'*%,]+)*", spec)
    if not m or m.end() != len(spec):
        at = m.end() if m else 0
        raise QuerySyntaxError("invalid property selector", Span(at, at + 1), spec)
    try:
        return _parse_selector(Token("SELECTOR", spec, start_pos=0, end_pos=len(spec)))
    except QueryError as exc:
        raise exc.with_text(spec)


def compile_metric_value(pattern: Pattern | str, value_spec: str,
                         message_sql: str = "message") -> tuple[str, list]:
    """SQL (DOUBLE, NULL when not extractable or not numeric) for a metric filter's
    ``metricValue``: a number (``"1"``), ``$.selector`` (JSON patterns), ``$name`` for a
    named space-delimited field, or ``$N`` for the N-th field of the line (1-based).
    Evaluate it on rows where :func:`compile_predicate` is true."""
    if _SPEC_NUMBER.match(value_spec):
        return "CAST(? AS DOUBLE)", [float(value_spec)]
    text = _extraction(pattern, value_spec, message_sql, "metric value")
    sql = _sql("CASE WHEN regexp_matches(trim({}), '" + _FIELD_NUMBER_RE
               + "') THEN TRY_CAST(trim({}) AS DOUBLE) END", text, text)
    return sql.text, list(sql.params)


def compile_dimension(pattern: Pattern | str, dim_spec: str,
                      message_sql: str = "message") -> tuple[str, list]:
    """SQL (VARCHAR, NULL when absent) for a metric filter dimension value: ``$.selector``
    for JSON patterns (strings, numbers and booleans), ``$name``/``$N`` for space-delimited
    ones."""
    sql = _extraction(pattern, dim_spec, message_sql, "dimension value")
    return sql.text, list(sql.params)


def compile_extracted_values(pattern: Pattern | str,
                             message_sql: str = "message") -> tuple[str, list]:
    """SQL of type ``STRUCT(name VARCHAR, value VARCHAR)[]``: TestMetricFilter's
    ``extractedValues`` for a matching event.  Space-delimited patterns give ``$name`` for
    each named field and ``$<position>`` (1-based) for fields covered by ``...``; every other
    form gives an empty list (reference §5)."""
    ast = _as_pattern(pattern)
    empty = "CAST([] AS STRUCT(name VARCHAR, value VARCHAR)[])"
    if not isinstance(ast, SpaceDelimitedPattern):
        return empty, []
    compiler = _Compiler(message_sql)
    entries = [_sql("{{'name': {}, 'value': {}}}",
                    _Bind("$" + f.name), compiler.field_value(ast, f.name))
               for f in ast.named]
    named = _sql("[{}]", _join(", ", entries)) if entries else Sql(empty)
    ellipsis = next((i for i, f in enumerate(ast.fields) if isinstance(f, AnyFields)), None)
    if ellipsis is not None:
        after = len(ast.fields) - ellipsis - 1
        covered = _sql(
            f"list_transform(range({ellipsis + 1}, len({_FIELDS}) - {after} + 1), lambda {_POS}: "
            f"{{{{'name': '$' || CAST({_POS} AS VARCHAR), 'value': {{}}}}}})",
            _strip_field(Sql(f"{_FIELDS}[{_POS}]")))
        named = _sql("list_concat({}, {})", named, covered)
    body = _sql(f"CASE WHEN len({_FIELDS}) >= {len(ast.named)} THEN {{}} ELSE {empty} END",
                named)
    sql = compiler.over_fields(body)
    return sql.text, list(sql.params)


# ------------------------------------------------------------------------------------------
# Convenience evaluation (TestMetricFilter, tests): runs the compiled SQL in DuckDB
# ------------------------------------------------------------------------------------------

_local = threading.local()


def _connection():
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = _local.con = duckdb.connect(":memory:")
    return con


def matches(pattern: Pattern | str, message: str) -> bool:
    """Whether ``message`` matches, evaluated by DuckDB with :func:`compile_predicate`."""
    sql, params = compile_predicate(pattern, "message")
    row = _connection().execute(
        f"WITH fp_input(message) AS (SELECT CAST(? AS VARCHAR)) SELECT {sql} FROM fp_input",
        [message, *params]).fetchone()
    return bool(row[0])


def extracted_values(pattern: Pattern | str, message: str) -> dict[str, str]:
    """TestMetricFilter's ``extractedValues`` for one message (assumed to match)."""
    sql, params = compile_extracted_values(pattern, "message")
    row = _connection().execute(
        f"WITH fp_input(message) AS (SELECT CAST(? AS VARCHAR)) SELECT {sql} FROM fp_input",
        [message, *params]).fetchone()
    return {e["name"]: e["value"] for e in (row[0] or [])}


def test_metric_filter(pattern: Pattern | str, messages: list[str]) -> list[dict]:
    """TestMetricFilter: ``[{eventNumber, eventMessage, extractedValues}]`` for the matching
    messages, ``eventNumber`` 1-based, duplicates reported separately."""
    ast = _as_pattern(pattern)
    pred, pred_params = compile_predicate(ast, "message")
    values, value_params = compile_extracted_values(ast, "message")
    rows = _connection().execute(
        f"SELECT n, message, {values} FROM (SELECT unnest(?::VARCHAR[]) AS message, "
        f"unnest(range(1, len(?::VARCHAR[]) + 1)) AS n) WHERE {pred} ORDER BY n",
        [*value_params, list(messages), list(messages), *pred_params]).fetchall()
    return [{"eventNumber": n, "eventMessage": m,
             "extractedValues": {e["name"]: e["value"] for e in (ev or [])}}
            for n, m, ev in rows]


test_metric_filter.__test__ = False  # not a pytest test despite the name
