"""Logs Insights parsing: one table of query → AST or error (class, line, column, message),
the parse → render → parse round trip, the RE2 regex check, and fuzzing.

Spec: /work/shared/reference/logs-insights.md.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.errors import QueryError, QuerySyntaxError, Span, UnknownFunctionError, UnsupportedError
from query.insights_ast import (Binary, Dedup, Display, FieldRef, Fields, Filter, FilterIndex,
                                FuncCall, In, Index, Item, Like, Limit, Member, Number,
                                OtherCommand, Parse, Period, Query, Regex, Sort, SortKey, Star,
                                Stats, String, Unary, Unmask, Unnest)
from query.insights_parser import check_regex, parse, render


def f(*parts):
    return FieldRef(tuple(parts))


def call(name, *args):
    return FuncCall(name, tuple(args))


def item(expr, alias=None):
    return Item(expr, alias)


def q(*commands):
    return Query(tuple(commands))


def num(v):
    return Number(v)


# ------------------------------------------------------------------------------------------
# The table: query → Query, or → (error class, line, column, message fragment)
# ------------------------------------------------------------------------------------------

CASES = [
    # fields, display, aliases, system fields, comments
    ("fields @timestamp, @message",
     q(Fields((item(f("@timestamp")), item(f("@message")))))),
    ("FIELDS @timestamp AS t", q(Fields((item(f("@timestamp"), "t"),)))),
    ("fields concat(Operation, '-', StatusCode) as opStatus",
     q(Fields((item(call("concat", f("Operation"), String("-"), f("StatusCode")), "opStatus"),)))),
    ("display loggingMessage, loggingType = \"ERROR\" as isError",
     q(Display((item(f("loggingMessage")),
                item(Binary("=", f("loggingType"), String("ERROR")), "isError"))))),
    ("# a comment line\nfields a # trailing comment\n| display a",
     q(Fields((item(f("a")),)), Display((item(f("a")),)))),
    # field names: dots, array indexes, back-ticks, @ names
    ("fields userIdentity.type, items.0.id",
     q(Fields((item(f("userIdentity", "type")), item(f("items", "0", "id")))))),
    ("fields `foo-bar`, @`aws.tag.a:b`, json_message.`user.id`, `a``b`",
     q(Fields((item(f("foo-bar")), item(f("@aws.tag.a:b")), item(f("json_message", "user.id")),
               item(f("a`b")))))),
    ("fields @@example.com", q(Fields((item(f("@@example", "com")),)))),
    ("fields nothing, notes, android, order",
     q(Fields(tuple(item(f(n)) for n in ("nothing", "notes", "android", "order"))))),
    # filter: comparisons, booleans, like, regex, in
    ("filter latency > 400", q(Filter(Binary(">", f("latency"), num(400))))),
    ("where latency >= 1.5", q(Filter(Binary(">=", f("latency"), num(1.5))))),
    ("filter a = 1 and b != 'x' or not c < 2",
     q(Filter(Binary("or", Binary("and", Binary("=", f("a"), num(1)),
                                  Binary("!=", f("b"), String("x"))),
                     Unary("not", Binary("<", f("c"), num(2))))))),
    ("filter @message like 'Exception'", q(Filter(Like(f("@message"), String("Exception"))))),
    ("filter @message not like /(?i)health/",
     q(Filter(Like(f("@message"), Regex("(?i)health"), negated=True)))),
    ("filter f3 like /E*/", q(Filter(Like(f("f3"), Regex("E*"))))),
    ("filter path =~ /^\\/api\\//", q(Filter(Like(f("path"), Regex("^\\/api\\/"))))),
    ("filter statusCode in [300,400,500]",
     q(Filter(In(f("statusCode"), (num(300), num(400), num(500)))))),
    ("filter Type not in [\"foo\", \"bar\", 1, -2]",
     q(Filter(In(f("Type"), (String("foo"), String("bar"), num(1), num(-2)), negated=True)))),
    ("filter ispresent(errorCode) and not isblank(x)",
     q(Filter(Binary("and", call("ispresent", f("errorCode")),
                     Unary("not", call("isblank", f("x"))))))),
    ("filter isIpv4InSubnet(srcAddr, \"192.0.2.0/24\")",
     q(Filter(call("isipv4insubnet", f("srcAddr"), String("192.0.2.0/24"))))),
    # arithmetic precedence: ^ > unary - > * / % > + -
    ("fields 1 + 2 * 3 ^ 2 - -a % 4 as v",
     q(Fields((item(Binary("-",
                           Binary("+", num(1), Binary("*", num(2), Binary("^", num(3), num(2)))),
                           Binary("%", Unary("-", f("a")), num(4))), "v"),)))),
    ("fields -2 ^ 2", q(Fields((item(Unary("-", Binary("^", num(2), num(2)))),)))),
    ("fields a / b / c", q(Fields((item(Binary("/", Binary("/", f("a"), f("b")), f("c"))),)))),
    ("fields (a + b) * c", q(Fields((item(Binary("*", Binary("+", f("a"), f("b")), f("c"))),)))),
    # strings: both quotes, escapes
    (r"""fields "say \"hi\"", 'it\'s', "a\\b", "c\d" """,
     q(Fields((item(String('say "hi"')), item(String("it's")), item(String("a\\b")),
               item(String("c\\d")))))),
    # stats
    ("stats count(*) by bin(5m)",
     q(Stats((item(call("count", Star())),), (item(call("bin", Period(5, "m"))),)))),
    ("STATS avg(latency) AS a, count() BY service, BIN(1h) as t",
     q(Stats((item(call("avg", f("latency")), "a"), item(call("count"))),
             (item(f("service")), item(call("bin", Period(1, "h")), "t"))))),
    ("stats sum(requests) / count(*) AS avg_session_requests",
     q(Stats((item(Binary("/", call("sum", f("requests")), call("count", Star())),
                   "avg_session_requests"),)))),
    ("stats pct(@duration, 95), count_distinct(x), sortsFirst(y), earliest(z)",
     q(Stats((item(call("pct", f("@duration"), num(95))), item(call("count_distinct", f("x"))),
              item(call("sortsfirst", f("y"))), item(call("earliest", f("z"))))))),
    ("stats count(*) by bin(5m) offset 1h",
     q(Stats((item(call("count", Star())),), (item(call("bin", Period(5, "m"))),),
             Period(1, "h")))),
    ("stats count() as c by x | stats avg(c)",
     q(Stats((item(call("count"), "c"),), (item(f("x")),)), Stats((item(call("avg", f("c"))),)))),
    # time periods: every spelling → canonical unit
    ("fields bin(100ms), bin(30sec), bin(2mins), bin(3hrs), bin(1day), bin(2weeks), "
     "bin(1month), bin(1qtr), bin(1yr), bin(5MO)",
     q(Fields(tuple(item(call("bin", Period(n, u))) for n, u in
                    [(100, "ms"), (30, "s"), (2, "m"), (3, "h"), (1, "d"), (2, "w"), (1, "mo"),
                     (1, "q"), (1, "y"), (5, "mo")])))),
    ("fields datefloor(@timestamp, 1h), dateceil(@t, 10m)",
     q(Fields((item(call("datefloor", f("@timestamp"), Period(1, "h"))),
               item(call("dateceil", f("@t"), Period(10, "m"))))))),
    # sort, limit
    ("sort @timestamp desc, name, x asc | limit 25",
     q(Sort((SortKey(f("@timestamp"), True), SortKey(f("name")), SortKey(f("x"), False))),
       Limit(25))),
    ("limit any", q(Limit(None))),
    # parse: glob, regex, multi, logfmt, csv
    ("parse @message \"user=*, method:*, latency := *\" as @user, @method, @latency",
     q(Parse("glob", f("@message"), String("user=*, method:*, latency := *"),
             ("@user", "@method", "@latency")))),
    ("parse 'url=*' as url", q(Parse("glob", None, String("url=*"), ("url",)))),
    ("parse @message /(?<NetworkInterface>eni-.*?) /",
     q(Parse("regex", f("@message"), Regex("(?<NetworkInterface>eni-.*?) ")))),
    ("parse @message /(\\d+\\.\\d+\\.\\d+\\.\\d+)/ as ip_addr multi",
     q(Parse("regex", f("@message"), Regex("(\\d+\\.\\d+\\.\\d+\\.\\d+)"), ("ip_addr",),
             multi=True))),
    ("parse @message logfmt as lf", q(Parse("logfmt", f("@message"), None, ("lf",)))),
    ("parse line csv as a, b, c", q(Parse("csv", f("line"), None, ("a", "b", "c")))),
    # dedup, unnest, unmask, filterIndex, jsonParse access
    ("dedup server, severity", q(Dedup((f("server"), f("severity"))))),
    ("fields jsonParse(@message) as json_message | unnest json_message.events into event",
     q(Fields((item(call("jsonparse", f("@message")), "json_message"),)),
       Unnest(f("json_message", "events"), "event"))),
    ("fields jsonParse(x).a.b, jsonParse(x)[1], jsonParse(x) . c",
     q(Fields((item(Member(Member(call("jsonparse", f("x")), "a"), "b")),
               item(Index(call("jsonparse", f("x")), 1)),
               item(Member(call("jsonparse", f("x")), "c")))))),
    ("unmask", q(Unmask())),
    ("filterIndex requestId = \"abc\"",
     q(FilterIndex(Binary("=", f("requestId"), String("abc"))))),
    ("filterIndex region in [\"a\", \"b\"]",
     q(FilterIndex(In(f("region"), (String("a"), String("b")))))),
    # newer commands parse as OtherCommand (compiling them is UnsupportedError)
    ("fields @message | pattern @message | anomaly",
     q(Fields((item(f("@message")),)), OtherCommand("pattern", "@message"),
       OtherCommand("anomaly"))),
    ("SOURCE logGroups(namePrefix: ['p1', 'p|2']) | filter a = 1",
     q(OtherCommand("source", "logGroups(namePrefix: ['p1', 'p|2'])"),
       Filter(Binary("=", f("a"), num(1))))),
    ("diff previousDay", q(OtherCommand("diff", "previousDay"))),
    # ---- errors: (class, line, column, message fragment)
    ("", (QuerySyntaxError, 1, 1, "the query is empty")),
    ("  # just a comment", (QuerySyntaxError, 1, 1, "the query is empty")),
    ("fitler x = 1", (QuerySyntaxError, 1, 1, "did you mean `filter`")),
    ("fields a\n| stats coutn(*)", (UnknownFunctionError, 2, 9, "did you mean `count`")),
    ("fields a b", (QuerySyntaxError, 1, 10, "unexpected 'b'")),
    ("filter a = 1 fields b", (QuerySyntaxError, 1, 14, "is a | missing")),
    ("filter a =", (QuerySyntaxError, 1, 11, "unexpected end of query")),
    ("filter a = = 1", (QuerySyntaxError, 1, 12, "unexpected '='")),
    ("fields a |", (QuerySyntaxError, 1, 11, "expected a command")),
    ("| fields a", (QuerySyntaxError, 1, 1, "unexpected '|'")),
    ("fields 'abc", (QuerySyntaxError, 1, 8, "unterminated string")),
    ("fields `abc", (QuerySyntaxError, 1, 8, "unterminated `back-ticked`")),
    ("filter a like /abc", (QuerySyntaxError, 1, 15, "unterminated /regex/")),
    ("filter a < 1 < 2", (QuerySyntaxError, 1, 14, "unexpected '<'")),
    ("filter x like /a(/", (QuerySyntaxError, 1, 17, "missing )")),
    ("filter x like /(?<=a)b/", (UnsupportedError, 1, 16, "look-ahead and look-behind")),
    ("filter x like /a\\1/", (UnsupportedError, 1, 17, "back-references")),
    ("filter x like /a{1001}/", (QuerySyntaxError, 1, 17, "invalid repetition size")),
    ("filter x =~ /(a{100}){100}/", (QuerySyntaxError, 1, 22, "multiply to more than 1000")),
    ("filter x like /\\p{L}{1000}/", (UnsupportedError, 1, 16, "too large")),
    ("fields count(*, 1)", (QuerySyntaxError, 1, 8, "takes 0 to 1 arguments")),
    ("fields abs(*)", (QuerySyntaxError, 1, 12, "only an argument of count(*)")),
    ("fields a.b(1)", (QuerySyntaxError, 1, 8, "is not a function name")),
    ("limit 0", (QuerySyntaxError, 1, 7, "at least 1")),
    ("limit 2.5", (QuerySyntaxError, 1, 7, "whole number")),
    ("fields bin(0m)", (QuerySyntaxError, 1, 12, "greater than zero")),
    ("fields 1e999", (QuerySyntaxError, 1, 8, "out of range")),
    ("parse @message \"a=* b=*\" as a", (QuerySyntaxError, 1, 1, "the numbers must be equal")),
    ("parse @message \"abc\" as a", (QuerySyntaxError, 1, 16, "at least one *")),
    ("parse @message /(\\d+)/", (QuerySyntaxError, 1, 16, "(?<name>")),
    ("parse @message /(a)(b)/ as x", (QuerySyntaxError, 1, 1, "2 capture group(s)")),
    ("parse @message logfmt", (UnsupportedError, 1, 1, "logfmt as name")),
    ("filterIndex a > 1", (QuerySyntaxError, 1, 1, "filterIndex takes")),
    ("sort x up", (QuerySyntaxError, 1, 8, "unexpected 'up'")),
    ("stats count(*) by", (QuerySyntaxError, 1, 18, "unexpected end of query")),
]

_ASTS = [(text, exp) for text, exp in CASES if isinstance(exp, Query)]
_ERRORS = [(text, exp) for text, exp in CASES if not isinstance(exp, Query)]


@pytest.mark.parametrize("text,expected", _ASTS, ids=[t for t, _ in _ASTS])
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text,expected", _ERRORS, ids=[t or "<empty>" for t, _ in _ERRORS])
def test_parse_error(text, expected):
    cls, line, column, fragment = expected
    with pytest.raises(QueryError) as info:
        parse(text)
    err = info.value
    assert type(err) is cls, err.render()
    assert (err.line, err.column) == (line, column), err.render()
    assert fragment in err.message, err.render()
    rendered = err.render()
    assert rendered.startswith(f"line {line}, column {column}: ")
    assert "^" in rendered.splitlines()[-1]


# ------------------------------------------------------------------------------------------
# Spans point at the text of each node
# ------------------------------------------------------------------------------------------

def test_spans_cover_the_source_text():
    text = "filter latency > 400 | stats avg(latency) as a by bin(5m)"
    query = parse(text)
    flt, stats = query.commands
    assert text[flt.span.start:flt.span.end] == "filter latency > 400"
    cond = flt.condition
    assert text[cond.span.start:cond.span.end] == "latency > 400"
    assert text[cond.left.span.start:cond.left.span.end] == "latency"
    by = stats.by[0].expr
    assert text[by.span.start:by.span.end] == "bin(5m)"
    assert text[by.args[0].span.start:by.args[0].span.end] == "5m"
    assert query.text == text


# ------------------------------------------------------------------------------------------
# Round trip: parse(render(parse(q))) == parse(q) for every case, and for render() output
# ------------------------------------------------------------------------------------------

ROUND_TRIP_EXTRA = [
    "fields -(a + b) * -c ^ -2, not (a and b), (a or b) and c, a - (b - c), a / (b * c)",
    "filter not a like 'x' and not (b in [1]) or c =~ /d/",
    "fields `and`, `fields`, `a b`.`c.d`, @`x y`, `1abc`, `@x`",
    "parse @message \"\\\\ \\\" *\" as `weird name`",
    "stats count(*) as `count(*)` by `bin(5m)`",
    "fields 1.5e-07, 12345678901234567890, 0.1",
]


@pytest.mark.parametrize("text", [t for t, _ in _ASTS] + ROUND_TRIP_EXTRA)
def test_round_trip(text):
    first = parse(text)
    printed = render(first)
    again = parse(printed)
    assert again == first, printed
    assert render(again) == printed


# ------------------------------------------------------------------------------------------
# RE2 regex check
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source,groups,names", [
    ("abc", 0, ()),
    ("(?<a>x)(y)(?P<b>z)", 3, (("a", 1), ("b", 3))),
    ("(?i)err(?:or)?", 0, ()),
    ("[[:alpha:]_-]+\\d{2,3}\\p{Greek}\\pL[^\\]a]", 0, ()),
    ("\\Qa.b*\\E+", 0, ()),
    ("a{,3}", 0, ()),          # not a repetition in RE2: literal text
    ("(a{10}){100}", 1, ()),
])
def test_check_regex_accepts(source, groups, names):
    info = check_regex(source)
    assert info.groups == groups
    assert info.names == names
    assert "(?<" not in info.sql_source


def test_check_regex_rewrites_named_groups_for_re2():
    assert check_regex("(?<user>\\w+)=(?P<v>.*)").sql_source == "(?P<user>\\w+)=(?P<v>.*)"


@pytest.mark.parametrize("source", [
    "a**", "a+*", "*a", "a|*", "(?x)a", "(?i-)a", "\\8", "\\e", "\\cA", "\\u0041", "[z-a]",
    "[a-\\d]", "[[:foo:]]", "\\p{Nope}", "\\xZZ", "(?P<1a>x)", "(?<a>x)(?<a>y)", "a\\",
    "[abc", "(?=a)", "(?P=n)", "x{2,1}", "\\Z", "[\\b]",
])
def test_check_regex_rejects(source):
    with pytest.raises((QuerySyntaxError, UnsupportedError)):
        check_regex(source)


# ------------------------------------------------------------------------------------------
# Fuzz: any text parses to a Query or raises QueryError, never anything else
# ------------------------------------------------------------------------------------------

_TOKENS = ["fields", "filter", "stats", "sort", "limit", "parse", "dedup", "display", "unnest",
           "into", "by", "as", "and", "or", "not", "like", "in", "desc", "asc", "multi",
           "logfmt", "csv", "any", "count(*)", "bin(5m)", "avg(", "pct(", "(", ")", "[", "]",
           ",", ".", "|", "=", "!=", "<", ">=", "=~", "+", "-", "*", "/", "%", "^", "@message",
           "@timestamp", "a", "b.c", "`x-y`", "'s'", '"t"', "/re/", "/(?<n>x)/", "5m", "1.5",
           "42", "#c\n", "\n", " ", "pattern", "SOURCE", "\\", "`", "'", '"', "@", "$1", "?",
           ";", "--", "/*"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=14).map(" ".join))
def test_fuzz_token_soup(text):
    try:
        query = parse(text)
    except QueryError as exc:
        assert exc.span is not None and exc.text == text
        exc.render()
        return
    assert parse(render(query)) == query


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_fuzz_any_text(text):
    try:
        parse(text)
    except QueryError as exc:
        exc.render()
