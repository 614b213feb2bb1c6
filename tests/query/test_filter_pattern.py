"""CloudWatch Logs filter patterns: parse table, AWS-doc match table, golden SQL, extraction,
injection and fuzz tests.  Spec: /work/shared/reference/filter-patterns.md.

Regenerate the golden SQL after an intended compiler change with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/query/test_filter_pattern.py -k golden``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.errors import QueryError, QuerySyntaxError, UnknownFieldError, UnsupportedError
from query.filter_pattern import (
    And, AnyFields, Check, Comparison, Field, FieldName, Index, JsonPattern, Member, Number, Or,
    Regex, RegexPattern, Selector, SpaceDelimitedPattern, Term, Terms, Text, Wildcard,
    compile_dimension, compile_extracted_values, compile_metric_value, compile_predicate,
    extracted_values, matches, parse, render, test_metric_filter as run_test_metric_filter,
    translate_regex,
)

FIXTURES = Path(__file__).parent / "fixtures"


def sel(*steps) -> Selector:
    out = []
    for s in steps:
        if isinstance(s, int):
            out.append(Index(s))
        elif s == "*":
            out.append(Wildcard("member"))
        elif s == "[*]":
            out.append(Wildcard("element"))
        else:
            out.append(Member(s))
    return Selector(tuple(out))


def req(text, quoted=False):
    return Term(text, quoted, "required")


def cmp(subject, op, value):
    if isinstance(subject, str):
        subject = FieldName(subject)
    return Comparison(subject, op, value)


# ------------------------------------------------------------------------------------------
# Parse table: pattern -> AST, or -> (error class, line, column, message fragment)
# ------------------------------------------------------------------------------------------

PARSE_CASES = [
    # unstructured terms
    ("", Terms(())),
    ("   ", Terms(())),
    ("ERROR", Terms((req("ERROR"),))),
    ("ERROR ARGUMENTS", Terms((req("ERROR"), req("ARGUMENTS")))),
    ('"ERROR" "Exception"', Terms((req("ERROR", True), req("Exception", True)))),
    ('"INTERNAL SERVER ERROR"', Terms((req("INTERNAL SERVER ERROR", True),))),
    ("?ERROR ?WARN", Terms((Term("ERROR", False, "optional"), Term("WARN", False, "optional")))),
    ('?"connection refused"', Terms((Term("connection refused", True, "optional"),))),
    ("ERROR -ARGUMENTS", Terms((req("ERROR"), Term("ARGUMENTS", False, "excluded")))),
    ('"ERROR" - "Exiting"', Terms((req("ERROR", True), Term("Exiting", True, "excluded")))),
    ('" "', Terms((req(" ", True),))),
    (r'"say \"hi\" \\ \n"', Terms((req('say "hi" \\ \\n', True),))),
    ("user_42 é", Terms((req("user_42"), req("é")))),
    # regex
    ("%AUTHORIZED%", RegexPattern(Regex("AUTHORIZED"))),
    ("  %^starting|^initializing|^shutting down%  ",
     RegexPattern(Regex("^starting|^initializing|^shutting down"))),
    # JSON
    ('{ $.eventType = "UpdateTrail" }',
     JsonPattern(cmp(sel("eventType"), "=", Text("UpdateTrail", True)))),
    ("{$.foo = bar}", JsonPattern(cmp(sel("foo"), "=", Text("bar", False)))),
    ("{ $.sourceIPAddress != 123.123.* }",
     JsonPattern(cmp(sel("sourceIPAddress"), "!=", Text("123.123.*", False)))),
    ("{ $.bandwidth > 75 }", JsonPattern(cmp(sel("bandwidth"), ">", Number("75")))),
    ("{ $.n <= -5.5 }", JsonPattern(cmp(sel("n"), "<=", Number("-5.5")))),
    ("{ $.n = 1e+3 }", JsonPattern(cmp(sel("n"), "=", Number("1e+3")))),
    ('{ $.n = "404" }', JsonPattern(cmp(sel("n"), "=", Text("404", True)))),
    ("{ $.users[0].email = x }",
     JsonPattern(cmp(sel("users", 0, "email"), "=", Text("x", False)))),
    ("{ $.coordinates[0][1] = 1 }", JsonPattern(cmp(sel("coordinates", 0, 1), "=", Number("1")))),
    ("{ $.user-agent = x }", JsonPattern(cmp(sel("user-agent"), "=", Text("x", False)))),
    ("{ $.['cluster.name'] = c }", JsonPattern(cmp(sel("cluster.name"), "=", Text("c", False)))),
    ('{ $.a.["b c"] = c }', JsonPattern(cmp(sel("a", "b c"), "=", Text("c", False)))),
    ("{ $.arrayKey[*] = %val.{2}% }",
     JsonPattern(cmp(sel("arrayKey", "[*]"), "=", Regex("val.{2}")))),
    ("{ $.* = * }", JsonPattern(cmp(sel("*"), "=", Text("*", False)))),
    ("{ $.SomeObject IS NULL }", JsonPattern(Check(sel("SomeObject"), "IS NULL"))),
    ("{ $.flag is true }", JsonPattern(Check(sel("flag"), "IS TRUE"))),
    ("{ $.flag IS FALSE }", JsonPattern(Check(sel("flag"), "IS FALSE"))),
    ("{ $.x NOT EXISTS }", JsonPattern(Check(sel("x"), "NOT EXISTS"))),
    ("{ $.a = 1 && $.b = 2 || $.c = 3 }",
     JsonPattern(Or((And((cmp(sel("a"), "=", Number("1")), cmp(sel("b"), "=", Number("2")))),
                     cmp(sel("c"), "=", Number("3")))))),
    ("{ $.a = 1 && ($.b = 2 || $.c = 3) }",
     JsonPattern(And((cmp(sel("a"), "=", Number("1")),
                      Or((cmp(sel("b"), "=", Number("2")), cmp(sel("c"), "=", Number("3")))))))),
    ("{$.a=1&&$.b!=x}",
     JsonPattern(And((cmp(sel("a"), "=", Number("1")), cmp(sel("b"), "!=", Text("x", False)))))),
    # space-delimited
    ("[ip, user, username, timestamp, request, status_code, bytes]",
     SpaceDelimitedPattern(tuple(Field(n, None) for n in
                                 "ip user username timestamp request status_code bytes".split()))),
    ("[..., status_code, bytes]",
     SpaceDelimitedPattern((AnyFields(), Field("status_code", None), Field("bytes", None)))),
    ("[ip, user, ..., status_code = 4*, bytes > 1000]",
     SpaceDelimitedPattern((Field("ip", None), Field("user", None), AnyFields(),
                            Field("status_code", cmp("status_code", "=", Text("4*", False))),
                            Field("bytes", cmp("bytes", ">", Number("1000")))))),
    ("[w1=ERROR || w1=%WARN%, w2]",
     SpaceDelimitedPattern((Field("w1", Or((cmp("w1", "=", Text("ERROR", False)),
                                            cmp("w1", "=", Regex("WARN"))))),
                            Field("w2", None)))),
    ("[s = 4* && s != 403]",
     SpaceDelimitedPattern((Field("s", And((cmp("s", "=", Text("4*", False)),
                                            cmp("s", "!=", Number("403"))))),))),
    ('[timestamp=*Z, request_id="*-*", event]',
     SpaceDelimitedPattern((Field("timestamp", cmp("timestamp", "=", Text("*Z", False))),
                            Field("request_id", cmp("request_id", "=", Text("*-*", True))),
                            Field("event", None)))),
    # errors: (class, line, column, message fragment)
    ("ERROR:", (QuerySyntaxError, 1, 6, "put the term in double quotes")),
    ("user@example.com", (QuerySyntaxError, 1, 5, "'@' is not allowed in an unquoted term")),
    ('"unterminated', (QuerySyntaxError, 1, 1, "unterminated quoted string")),
    ("%abc", (QuerySyntaxError, 1, 1, "unterminated regular expression")),
    ("ERROR %abc%", (QuerySyntaxError, 1, 1, "must be the whole filter pattern")),
    ("-%abc%", (QuerySyntaxError, 1, 1, "must be the whole filter pattern")),
    ("ERROR {", (QuerySyntaxError, 1, 7, "put it in double quotes")),
    ("?", (QuerySyntaxError, 1, 2, "unexpected end of pattern")),
    ("%%", (QuerySyntaxError, 1, 1, "empty regular expression")),
    ("%(a|b)%", (UnsupportedError, 1, 2, "parentheses")),
    ("%something!%", (QuerySyntaxError, 1, 11, "'!' is not allowed")),
    ("%a**%", (QuerySyntaxError, 1, 4, "cannot follow another repetition")),
    ("%*a%", (QuerySyntaxError, 1, 2, "nothing to repeat")),
    ("%a{x}%", (QuerySyntaxError, 1, 3, "must start a repetition")),
    ("%a{3,1}%", (QuerySyntaxError, 1, 3, "m <= n")),
    ("%[z-a]%", (QuerySyntaxError, 1, 3, "invalid range")),
    ("%[abc%", (QuerySyntaxError, 1, 2, "unterminated character class")),
    ("%\\b%", (QuerySyntaxError, 1, 2, "unsupported escape")),
    ("%a|%", (QuerySyntaxError, 1, 3, "empty alternative")),
    ("%é%", (UnsupportedError, 1, 2, "multi-byte")),
    ("%a% ", RegexPattern(Regex("a"))),
    ("{ $.a = 1", (QuerySyntaxError, 1, 10, "unexpected end of pattern")),
    ("{ $.a 1 }", (QuerySyntaxError, 1, 7, "a comparison")),
    ("{ $.a > abc }", (QuerySyntaxError, 1, 9, "compares numbers")),
    ("{ $.a IS NOT NULL }", (UnsupportedError, 1, 3, "IS NOT NULL is not supported")),
    ("{ $.a EXISTS }", (UnsupportedError, 1, 3, "EXISTS is not supported")),
    ("{ $[0] = 1 }", (QuerySyntaxError, 1, 4, "must follow a property")),
    ("{ $ = 1 }", (QuerySyntaxError, 1, 3, "needs a property")),
    ("{ $.a[*].b[*] = 1 }", (QuerySyntaxError, 1, 11, "at most one wildcard")),
    ("{ $.a[*] = 1 || $.b[*] = 1 || $.c[*] = 1 || $.d[*] = 1 }",
     (QuerySyntaxError, 1, 45, "at most 3 wildcard selectors")),
    ("{ $.a = %a% || $.b = %b% || $.c = %c% }", (QuerySyntaxError, 1, 35, "at most 2 regular")),
    ("{ $.a = 1 } trailing", (QuerySyntaxError, 1, 13, "unexpected 'trailing'")),
    ("{\n  $.a = 1 &&\n}", (QuerySyntaxError, 3, 1, "unexpected '}'")),
    ("[]", (QuerySyntaxError, 1, 1, "at least one field")),
    ("[a, ..., ...]", (QuerySyntaxError, 1, 10, "Duplicate field '...'")),
    ("[a, b, a]", (QuerySyntaxError, 1, 8, "Duplicate field 'a'")),
    ("[status_code = 4* && bytes > 1000]", (QuerySyntaxError, 1, 22, "names field 'bytes'")),
    ("[a && a = 1]", (QuerySyntaxError, 1, 2, "needs a comparison")),
    ("[a, b,]", (QuerySyntaxError, 1, 7, "unexpected ']'")),
    ("[a = ]", (QuerySyntaxError, 1, 6, "unexpected ']'")),
]


@pytest.mark.parametrize("pattern,expected", PARSE_CASES,
                         ids=[c[0] or "<empty>" for c in PARSE_CASES])
def test_parse(pattern, expected):
    if isinstance(expected, tuple):
        cls, line, column, fragment = expected
        with pytest.raises(cls) as info:
            parse(pattern)
        err = info.value
        assert fragment in err.message
        assert (err.line, err.column) == (line, column), err.render()
        assert err.text == pattern and "^" in err.render()
    else:
        assert parse(pattern) == expected


@pytest.mark.parametrize("pattern", [c[0] for c in PARSE_CASES if not isinstance(c[1], tuple)])
def test_render_round_trip(pattern):
    ast = parse(pattern)
    assert parse(render(ast)) == ast


def test_spans_point_into_the_pattern():
    pattern = '{ $.a = "x" && $.b[0] > 5 }'
    ast = parse(pattern)
    first, second = ast.condition.operands
    assert pattern[first.span.start:first.span.end] == '$.a = "x"'
    assert pattern[second.subject.span.start:second.subject.span.end] == "$.b[0]"
    assert pattern[second.value.span.start:second.value.span.end] == "5"
    assert pattern[ast.span.start:ast.span.end] == pattern


# ------------------------------------------------------------------------------------------
# Matching: examples from the AWS documentation (reference "syntax", "unstructured", "json",
# "space", "metricfilters", docs2019) and our decisions for the ambiguous cases.
# ------------------------------------------------------------------------------------------

UNSTRUCTURED_EVENTS = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
]

CLOUDTRAIL = json.dumps({
    "eventType": "UpdateTrail", "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None, "ThisFlag": True, "ThatFlag": False, "cluster.name": "c",
})
COMPOUND = json.dumps({
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"},
              {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
})
NUMBERS = json.dumps({"bandwidth": 75.5, "latency": 50, "refreshRate": 60, "errorCode": 400,
                      "big": 1000, "neg": -5, "users": [1, 2, 3], "code": "404"})
APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534'
APACHE_404 = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.1" 404 2326'
LAMBDA = "2023-11-02T12:00:00.123Z\t7b1c-4ad2\tINFO\tprocessing order 42\n"

MATCH_CASES = [
    # --- unstructured: case-sensitive substring terms
    *[("ERROR", e, True) for e in UNSTRUCTURED_EVENTS],
    *[("ERROR ARGUMENTS", e, "ARGUMENTS" in e) for e in UNSTRUCTURED_EVENTS],
    *[("?ERROR ?ARGUMENTS", e, True) for e in UNSTRUCTURED_EVENTS],
    *[("ERROR -ARGUMENTS", e, "ARGUMENTS" not in e) for e in UNSTRUCTURED_EVENTS],
    *[('" "', e, True) for e in UNSTRUCTURED_EVENTS],
    *[("%AUTHORIZED%", e, "AUTHORIZED" in e) for e in UNSTRUCTURED_EVENTS],
    ('"INTERNAL SERVER ERROR"', "[ERROR 500] INTERNAL SERVER ERROR", True),
    ('"INTERNAL SERVER ERROR"', "[ERROR 500] INTERNAL  SERVER ERROR", False),
    ("ERROR", "Exiting with ERRORCODE: -1", True),
    ("ERROR Exception", "[ERROR] Caught IllegalArgumentException", True),
    ("ERROR", "ERRORNEOUS PROGRAM", True),
    ("ERROR", "error: lower case", False),
    ("error", '{"error": "x"}', True),
    ('"ERROR" "Exception"', "Exception ... ERROR", True),
    ('"ERROR Exception"', "Exception ... ERROR", False),
    ('?"connection refused" ?"timed out"', "upstream timed out", True),
    ('?"connection refused" ?"timed out"', "upstream ok", False),
    ("?ERROR ?ARGUMENTS REQUEST", "BAD REQUEST", True),        # ?terms ignored when mixed
    ("?ERROR ?ARGUMENTS REQUEST", "[ERROR 419] ARGUMENTS", False),
    ("-DEBUG", "INFO started", True),
    ("-DEBUG", "DEBUG details", False),
    ('"ERROR" - "Exiting"', "ERROR Exiting now", False),
    ('"ERROR" - "Exiting"', "ERROR staying", True),
    ('"[ERROR][grpc]"', "[ERROR][grpc] boom", True),
    ('"[ERROR][grpc]"', "[ERROR] [grpc] boom", False),
    ("", "anything at all", True),
    ('""', "anything at all", True),
    (r'"say \"hi\""', 'they say "hi" loudly', True),
    # --- regex
    ("%^starting|^initializing|^shutting down%", "shutting down cleanly", True),
    ("%^starting|^initializing|^shutting down%", "now starting", False),
    (r"%\x3A%", "key:value", True),
    (r"%\x3A%", "key=value", False),
    (r"%\d{3}%", "code 404", True),
    (r"%\d{3}%", "code 44", False),
    (r"%^a{,2}b$%", "aab", True),
    (r"%^a{,2}b$%", "aaab", False),
    (r"%^[^0-9]+$%", "letters only", True),
    (r"%ERROR%", "error", False),
    (r"%user\.name%", "user.name=x", True),
    (r"%user\.name%", "username=x", False),
    (r"%[.]%", "a.b", True),
    (r"%[.]%", "ab", False),
    # --- JSON (the json page's CloudTrail-like event)
    ('{ $.eventType = "UpdateTrail" }', CLOUDTRAIL, True),
    ('{ $.eventType = "updatetrail" }', CLOUDTRAIL, False),
    ("{ $.eventType = UpdateTrail }", CLOUDTRAIL, True),
    ('{ $.eventType = "Update*" }', CLOUDTRAIL, True),
    ('{ $.eventType = "*Trail" }', CLOUDTRAIL, True),
    ('{ $.eventType = "*date*" }', CLOUDTRAIL, True),
    ('{ $.eventType = "Upd*ail" }', CLOUDTRAIL, False),   # a middle * is literal
    ('{ $.eventType = "Upd*ail" }', '{"eventType": "Upd*ail"}', True),
    ("{ $.sourceIPAddress != 123.123.* }", CLOUDTRAIL, True),
    ("{ $.sourceIPAddress != 111.111.* }", CLOUDTRAIL, False),
    ("{ $.sourceIPAddress = 111.111.* }", CLOUDTRAIL, True),
    ('{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }', CLOUDTRAIL, True),
    ('{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }', '{"eventType": "x"}', False),
    ('{ $.arrayKey[0] = "value" }', CLOUDTRAIL, True),
    ('{ $.arrayKey[1] = "value" }', CLOUDTRAIL, False),
    ('{ $.arrayKey[5] = "value" }', CLOUDTRAIL, False),
    ("{ $.objectList[1].id = 2 }", CLOUDTRAIL, True),
    ("{ $.objectList[1].id = 1 }", CLOUDTRAIL, False),
    ("{ $.arrayKey[*] = %val.{2}% }", CLOUDTRAIL, True),
    ("{ $.arrayKey[*] = %^other% }", CLOUDTRAIL, False),
    ("{ $.objectList[*].name = b }", CLOUDTRAIL, True),
    ("{ $.objectList[*].name = z }", CLOUDTRAIL, False),
    (r"{ $.* = %111\.111\.111\.1[0-9]{1,2}% }", CLOUDTRAIL, True),
    (r"{ $.* = %222\.% }", CLOUDTRAIL, False),
    ("{ $.['cluster.name'] = c }", CLOUDTRAIL, True),
    ("{ $.cluster.name = c }", CLOUDTRAIL, False),
    ("{ $.SomeObject IS NULL }", CLOUDTRAIL, True),
    ("{ $.eventType IS NULL }", CLOUDTRAIL, False),
    ("{ $.Missing IS NULL }", CLOUDTRAIL, False),       # IS NULL needs an explicit null
    ("{ $.Missing NOT EXISTS }", CLOUDTRAIL, True),
    ("{ $.SomeObject NOT EXISTS }", CLOUDTRAIL, False),  # null counts as existing
    ("{ $.arrayKey[9] NOT EXISTS }", CLOUDTRAIL, True),
    ("{ $.ThisFlag IS TRUE }", CLOUDTRAIL, True),
    ("{ $.ThatFlag IS TRUE }", CLOUDTRAIL, False),
    ("{ $.ThatFlag IS FALSE }", CLOUDTRAIL, True),
    ("{ $.eventType IS TRUE }", CLOUDTRAIL, False),
    ("{ $.ThisFlag = true }", CLOUDTRAIL, False),        # booleans are not value nodes
    # compound examples from the json page, verbatim, then variants that flip them
    ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', COMPOUND, True),
    ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }',
     COMPOUND, False),
    ('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && '
     '$.actions[2] = nomatch }', COMPOUND, True),
    ('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && '
     '$.actions[2] = nonmatch }', COMPOUND, False),
    ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "DELETE" }',
     COMPOUND, True),
    ('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && '
     '$.actions[2] = DELETE }', COMPOUND, True),
    ("{ $.coordinates[2][0] = 7 }", COMPOUND, True),
    ("{ $.user = 1 }", COMPOUND, False),                   # objects are not value nodes
    # numbers
    ("{ $.bandwidth > 75 }", NUMBERS, True),
    ("{ $.latency > 50 }", NUMBERS, False),
    ("{ $.latency < 50.1 }", NUMBERS, True),
    ("{ $.refreshRate >= 60 }", NUMBERS, True),
    ("{ $.refreshRate <= 59 }", NUMBERS, False),
    ("{ $.errorCode = 400 }", NUMBERS, True),
    ("{ $.errorCode = 400.0 }", NUMBERS, True),
    ("{ $.errorCode != 500 }", NUMBERS, True),
    ("{ $.errorCode != 400 }", NUMBERS, False),
    ("{ $.big = 1e+3 }", NUMBERS, True),
    ("{ $.big = +1000 }", NUMBERS, True),
    ("{ $.neg = -5 }", NUMBERS, True),
    ("{ $.neg < -4.5 }", NUMBERS, True),
    ("{ $.users = 1 }", NUMBERS, False),                   # arrays: both = and != are false
    ("{ $.users != 1 }", NUMBERS, False),
    ("{ $.missing != 1 }", NUMBERS, False),                # != on a missing property
    ("{ $.code = 404 }", NUMBERS, False),                  # number vs JSON string: no
    ('{ $.code = "404" }', NUMBERS, True),
    ('{ $.errorCode = "400" }', NUMBERS, True),            # string vs number: by its text
    ("{ $.errorCode = 4* }", NUMBERS, True),
    ("{ $.code > 100 }", NUMBERS, False),
    ("{ $.latency = * }", NUMBERS, True),                  # documented metric-filter pattern
    ("{ $.nothing = * }", NUMBERS, False),
    # non-JSON and non-object messages never match
    ('{ $.eventType = "UpdateTrail" }', 'prefix {"eventType": "UpdateTrail"}', False),
    ("{ $.a NOT EXISTS }", "plain text", False),
    ("{ $.a NOT EXISTS }", "[1, 2]", False),
    ("{ $.a NOT EXISTS }", "{}", True),
    ('{ $.a = "x" }', '  {"a": "x"}  ', True),
    # --- space-delimited (Apache access line)
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE, True),
    ("[ip, user, username, timestamp, request, status_code, bytes, extra]", APACHE, False),
    ("[..., status_code, bytes]", APACHE, True),
    ("[ip, user, ...]", APACHE, True),
    ("[ip, user, ..., status_code, bytes]", APACHE, True),
    ("[...]", "", True),
    ("[a]", "", False),
    ("[ip, user, ..., status_code = 200, bytes]", APACHE, True),
    ("[ip, user, ..., status_code = 404, bytes]", APACHE, False),
    ("[ip, user, ..., status_code = 4*, bytes]", APACHE_404, True),
    ("[ip, user, ..., status_code = 4*, bytes]", APACHE, False),
    ("[ip, user, ..., status_code = 4* && status_code != 403, bytes]", APACHE_404, True),
    ("[ip, user, ..., status_code = 4* && status_code != 404, bytes]", APACHE_404, False),
    ("[..., status_code = 404 || status_code = 410, bytes]", APACHE_404, True),
    ("[..., status_code = 403 || status_code = 410, bytes]", APACHE_404, False),
    ("[ip, user, username, timestamp, request = *html*, status_code, bytes]", APACHE_404, True),
    ("[ip, user, username, timestamp, request = *html*, status_code, bytes]", APACHE, False),
    ('[ip, user, username, timestamp, request = "GET /apache_pb.gif HTTP/1.0", status_code, '
     'bytes]', APACHE, True),
    ('[ip, user, username, timestamp = "10/Oct/2000:13:25:15 -0700", request, status_code, '
     'bytes]', APACHE, True),
    ("[ip, user, username, timestamp, request, status_code, bytes > 1000]", APACHE, True),
    ("[ip, user, username, timestamp, request, status_code, bytes > 2000]", APACHE, False),
    ("[ip, user, username, timestamp, request, status_code, bytes >= 1534]", APACHE, True),
    ("[ip, user, username, timestamp, request, status_code, bytes != 1534]", APACHE, False),
    (r"[ip=%127\.0\.0\.[1-9]%, user, ...]", APACHE, True),
    (r"[ip=%^10\.%, user, ...]", APACHE, False),
    ("[ip != 127.0.0.1, ...]", APACHE, False),
    ("[ip = 127.0.0.*, ...]", APACHE, True),
    ("[ip, user = -, ...]", APACHE, True),
    # metric-filters page: the last field takes the rest of the line [L]
    ("[w1=ERROR, w2]", "ERROR Exiting with code 1", True),
    ("[w1=ERROR, w2]", "WARN disk almost full", False),
    ("[w1=ERROR || w1=%WARN%, w2]", "WARN disk almost full", True),
    ("[w1=ERROR, w2 = *code*]", "ERROR Exiting with code 1", True),
    ("[w1=ERROR, w2]", "ERROR", False),                    # fewer fields: no match
    ("[w1, w2]", "a b", True),
    # the Lambda pattern (tab-separated, trailing newline)
    ('[timestamp=*Z, request_id="*-*", event]', LAMBDA, True),
    ('[timestamp=*Z, request_id="*-*", event = *order*]', LAMBDA, True),
    ('[timestamp=*Z, request_id="*-*", event]', "START RequestId: 7b1c Version: $LATEST", False),
    # tokenising: quotes and brackets group, and only at the start of a field
    ('[a, b = "x y", c]', 'q "x y" z', True),
    ('[a, b = x, c]', 'q "x"y z', False),
    ('[a, b = "\\"x\\"y", c]', 'q "x"y z', True),
    ("[a, b = \"x y\", c]", "q [x y] z", True),
    ("[a, b, c = z]", 'q "unterminated z', True),
    ("[a, b = 12]", "a 12.0", True),
    ("[a, b > 1]", "a NaN", False),
    ("[a, b > 1]", "a inf", False),
    ("[a, b > 1]", "a 1_000", False),
]


def _ids(cases):
    return [f"{i}:{c[0][:40]}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("pattern,message,expected", MATCH_CASES, ids=_ids(MATCH_CASES))
def test_matches(pattern, message, expected):
    assert matches(pattern, message) is expected


def test_predicate_over_a_table_is_never_null():
    """The compiled SQL works as a WHERE clause and as a projection, with NULL messages."""
    con = duckdb.connect()
    con.execute("CREATE TABLE events(msg VARCHAR)")
    con.executemany("INSERT INTO events VALUES (?)",
                    [[CLOUDTRAIL], [APACHE], ["ERROR x"], [None], ["{not json"]])
    for pattern in ["ERROR", "-ERROR", '{ $.eventType = "UpdateTrail" }', "{ $.x NOT EXISTS }",
                    "[ip, ..., bytes > 1000]", "[a, b = *x*]", "[a, b != x]", "%^ERR%"]:
        sql, params = compile_predicate(pattern, "msg")
        rows = con.execute(f"SELECT {sql} FROM events", params).fetchall()
        assert all(r[0] in (True, False) for r in rows), (pattern, rows)
        where = con.execute(f"SELECT count(*) FROM events WHERE {sql}", params).fetchone()[0]
        assert where == sum(r[0] for r in rows)


def test_empty_pattern_is_true():
    assert compile_predicate("") == ("TRUE", [])
    assert compile_predicate("   ") == ("TRUE", [])


# ------------------------------------------------------------------------------------------
# Golden SQL: tests/query/fixtures/filter_pattern.sql
# ------------------------------------------------------------------------------------------

def load_golden(path: Path):
    """Blocks separated by blank lines: ``-- comment`` lines, ``# pattern: …``, the SQL,
    ``# params: <json>``."""
    cases = []
    for block in path.read_text().split("\n\n"):
        lines = [ln for ln in block.strip().splitlines() if not ln.startswith("--")]
        if not lines:
            continue
        meta = {ln[2:].split(":", 1)[0]: ln.split(":", 1)[1].strip()
                for ln in lines if ln.startswith("# ")}
        sql = "\n".join(ln for ln in lines if not ln.startswith("# "))
        cases.append((meta["pattern"], sql, json.loads(meta["params"])))
    return cases


def _write_golden(path: Path):
    out = []
    for block in path.read_text().split("\n\n"):
        comments = [ln for ln in block.strip().splitlines() if ln.startswith("--")]
        pattern = next((ln.split(":", 1)[1].strip() for ln in block.strip().splitlines()
                        if ln.startswith("# pattern:")), None)
        if pattern is None:
            if comments:
                out.append("\n".join(comments))
            continue
        sql, params = compile_predicate(pattern)
        out.append("\n".join([*comments, f"# pattern: {pattern}", sql,
                              f"# params: {json.dumps(params)}"]))
    path.write_text("\n\n".join(out) + "\n")


GOLDEN = FIXTURES / "filter_pattern.sql"
if os.environ.get("UPDATE_GOLDEN"):
    _write_golden(GOLDEN)


@pytest.mark.parametrize("pattern,sql,params", load_golden(GOLDEN),
                         ids=[c[0] for c in load_golden(GOLDEN)])
def test_golden_sql(pattern, sql, params):
    assert compile_predicate(pattern) == (sql, params)
    duckdb.connect().execute(f"SELECT {sql} FROM (SELECT 'x' AS message)", params)


# ------------------------------------------------------------------------------------------
# Metric values, dimensions, TestMetricFilter
# ------------------------------------------------------------------------------------------

APACHE_PATTERN = "[ip, id, user, timestamp, request, status_code, size]"

EXTRACT_CASES = [
    # (pattern, spec, message, metric value, dimension value)
    ("ERROR", "1", "ERROR x", 1.0, None),
    ("ERROR", "2.5", "ERROR x", 2.5, None),
    ("{ $.latency = * }", "$.latency", '{"latency": 12.5}', 12.5, "12.5"),
    ("{ $.latency = * }", "$.latency", '{"latency": "12"}', 12.0, "12"),
    ("{ $.latency = * }", "$.latency", '{"latency": "fast"}', None, "fast"),
    ("{ $.latency = * }", "$.latency", '{"latency": {"p50": 1}}', None, None),
    ("{ $.latency = * }", "$.missing", '{"latency": 1}', None, None),
    ("{ $.a = * }", "$.user.name", '{"a": 1, "user": {"name": "ana"}}', None, "ana"),
    ("{ $.a = * }", "$.['odd.key']", '{"a": 1, "odd.key": 7}', 7.0, "7"),
    ("{ $.a = * }", "$.flag", '{"a": 1, "flag": true}', None, "true"),
    (APACHE_PATTERN, "$size", APACHE, 1534.0, "1534"),
    (APACHE_PATTERN, "$7", APACHE, 1534.0, "1534"),
    (APACHE_PATTERN, "$request", APACHE, None, "GET /apache_pb.gif HTTP/1.0"),
    (APACHE_PATTERN, "$timestamp", APACHE, None, "10/Oct/2000:13:25:15 -0700"),
    ("[ip, ..., status, size]", "$ip", APACHE, None, "127.0.0.1"),
    ("[ip, ..., status, size]", "$status", APACHE, 200.0, "200"),
    ("[ip, ..., status, size]", "$2", APACHE, None, "-"),
    ("[w1, w2]", "$w2", "ERROR Exiting with code 1", None, "Exiting with code 1"),
    ("[a, b]", "$b", "x -3e2", -300.0, "-3e2"),
]


@pytest.mark.parametrize("pattern,spec,message,value,dimension", EXTRACT_CASES,
                         ids=_ids(EXTRACT_CASES))
def test_metric_value_and_dimension(pattern, spec, message, value, dimension):
    con = duckdb.connect()
    sql, params = compile_metric_value(pattern, spec, "m")
    assert con.execute(f"SELECT {sql} FROM (SELECT ? AS m)", [*params, message]).fetchone()[0] \
        == value
    if spec.startswith("$"):
        sql, params = compile_dimension(pattern, spec, "m")
        got = con.execute(f"SELECT {sql} FROM (SELECT ? AS m)", [*params, message]).fetchone()[0]
        assert got == dimension


@pytest.mark.parametrize("pattern,spec,error", [
    ("ERROR", "$.latency", UnsupportedError),
    ("ERROR", "$size", UnsupportedError),
    ("{ $.a = 1 }", "$size", UnsupportedError),
    ("[a, b]", "$.a", UnsupportedError),
    ("[a, b]", "$c", UnknownFieldError),
    ("{ $.a = 1 }", "$.a[*]", UnsupportedError),
    ("{ $.a = 1 }", "$.a b", QuerySyntaxError),
    ("{ $.a = 1 }", "latency", QuerySyntaxError),
])
def test_extraction_errors(pattern, spec, error):
    with pytest.raises(error) as info:
        compile_metric_value(pattern, spec)
    assert info.value.text == spec.strip()


def test_extracted_values_for_test_metric_filter():
    assert extracted_values(APACHE_PATTERN, APACHE) == {
        "$ip": "127.0.0.1", "$id": "-", "$user": "frank",
        "$timestamp": "10/Oct/2000:13:25:15 -0700", "$request": "GET /apache_pb.gif HTTP/1.0",
        "$status_code": "200", "$size": "1534"}
    # fields covered by ... are reported by 1-based position
    assert extracted_values("[ip, ..., size]", APACHE) == {
        "$ip": "127.0.0.1", "$2": "-", "$3": "frank", "$4": "10/Oct/2000:13:25:15 -0700",
        "$5": "GET /apache_pb.gif HTTP/1.0", "$6": "200", "$size": "1534"}
    assert extracted_values("ERROR", "ERROR x") == {}
    assert extracted_values("{ $.a = 1 }", '{"a": 1}') == {}


def test_test_metric_filter_shape():
    messages = [APACHE, "garbage", APACHE_404, APACHE]
    got = run_test_metric_filter("[ip, user, username, timestamp, request, status_code, bytes]",
                                 messages)
    assert [m["eventNumber"] for m in got] == [1, 3, 4]          # 1-based, duplicates kept
    assert got[1]["eventMessage"] == APACHE_404
    assert got[1]["extractedValues"]["$status_code"] == "404"
    assert run_test_metric_filter("ERROR", ["ERROR a", "ok"]) == [
        {"eventNumber": 1, "eventMessage": "ERROR a", "extractedValues": {}}]


# ------------------------------------------------------------------------------------------
# SQL injection: user text only ever travels as parameters
# ------------------------------------------------------------------------------------------

NASTY = ["'; DROP TABLE events; --", "$1", "?", "\\'", "a' OR '1'='1", "/* x */", "--",
         "); SELECT 1; --", "\\\\", '\\"']


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shapes(s: str):
    q = _q(s)
    single = s.replace("'", "").replace("\\", "")   # usable inside $.['…']
    double = s.replace('"', "").replace("\\", "")   # usable inside $.["…"]
    return [
        q, f"?{q} ?other", f"-{q}",
        f"{{ $.a = {q} }}", f"{{ $.a != {_q(s + '*')} }}", f"{{ $.['{single}'] = 1 }}",
        f'{{ $.["{double}"][0] = x }}',
        f"[a, b = {q}, ...]", f"[a = {_q('*' + s + '*')}, b]",
    ]


@pytest.mark.parametrize("nasty", NASTY)
def test_user_text_never_reaches_sql_text(nasty):
    for pattern, benign in zip(_shapes(nasty), _shapes("benign")):
        sql, params = compile_predicate(pattern)
        benign_sql, _ = compile_predicate(benign)
        assert sql == benign_sql, pattern           # same shape, same SQL: only params differ
        if len(nasty) > 2:
            assert nasty not in sql
    # and the nasty text is matched literally
    assert matches(_q(nasty), f"xx{nasty}yy")
    assert not matches(_q(nasty), "xxyy")
    assert matches(f"{{ $.a = {_q(nasty)} }}", json.dumps({"a": nasty}))


def test_regex_text_is_a_parameter():
    sql, params = compile_predicate(r"%;--/@=#,a%")
    assert ";--" not in sql and params == [r";--/@=#,a"]


# ------------------------------------------------------------------------------------------
# Regex translation (AWS subset -> RE2)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source,re2", [
    ("abc", "abc"),
    (r"\x3a", r"\x3A"),
    ("a{,3}", "a{0,3}"),
    ("a{2,}", "a{2,}"),
    ("a+?", "a+?"),
    (r"\.\*\$", r"\.\*\$"),
    ("[^a-z.*]", r"[^a-z.*]"),
    (r"[\d\-\]]", r"[\d\-\]]"),
    ("[-a]", r"[\-a]"),
    ("^GET /a;b,c=d@e#f:g_h-i j$", "^GET /a;b,c=d@e#f:g_h-i j$"),
])
def test_translate_regex(source, re2):
    assert translate_regex(source) == re2
    duckdb.connect().execute("SELECT regexp_matches('x', ?)", [re2])


# ------------------------------------------------------------------------------------------
# Fuzz: any text either parses (and compiles to SQL DuckDB runs) or raises QueryError
# ------------------------------------------------------------------------------------------

FRAGMENTS = ["{", "}", "[", "]", "(", ")", "$", "$.a", "$.b[0]", "[*]", ".*", ".['x.y']", " = ",
             "!=", "<", ">=", "&&", "||", "IS", "NULL", "TRUE", "NOT", "EXISTS", '"x y"', '"',
             "%", "%a.b%", "%[0-9]{2}%", "...", ",", "4*", "*", "12", "-3.5e2", "ERROR", "?",
             "-", " ", "\\", "'", ";", "a", "é", "\n", "\t", "{,2}", "|", "^", "\\x3A", "\\d"]

FUZZ_MESSAGES = [CLOUDTRAIL, APACHE, "ERROR 12 x.y", "", "{", '{"a": [1, {"b": null}]}']

_fuzz_con = duckdb.connect()


def _run_everywhere(pattern: str) -> None:
    try:
        ast = parse(pattern)
    except QueryError as exc:
        assert exc.text == pattern
        exc.render()
        return
    sql, params = compile_predicate(ast)
    rows = _fuzz_con.execute(
        f"SELECT {sql} FROM (SELECT unnest(?::VARCHAR[]) AS message)",
        [*params, FUZZ_MESSAGES]).fetchall()
    assert all(r[0] in (True, False) for r in rows)
    assert parse(render(ast)) == ast
    values, vparams = compile_extracted_values(ast)
    _fuzz_con.execute(f"SELECT {values} FROM (SELECT unnest(?::VARCHAR[]) AS message)",
                      [*vparams, FUZZ_MESSAGES]).fetchall()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join))
def test_fuzz_fragments(pattern):
    _run_everywhere(pattern)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_fuzz_text(pattern):
    _run_everywhere(pattern)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab01 .^$?[]{}|\\*+-,:x3Ad()!", max_size=12))
def test_fuzz_regex(source):
    """Whatever the regex validator accepts, RE2 must accept too."""
    try:
        re2 = translate_regex(source)
    except QueryError:
        return
    _fuzz_con.execute("SELECT regexp_matches('ab 01', ?)", [re2]).fetchall()
    assert re.compile(re2)  # and it is plain regex syntax


# JSON patterns skip the object test when every condition needs a member value (a cheaper
# predicate); documents that are not objects must still never match.
@pytest.mark.parametrize("pattern,message,expected", [
    ("{ $.a > 1 }", '{"a": 5}', True),
    ("{ $.a > 1 }", '  {"a": 5}', True),
    ("{ $.a > 1 }", '[{"a": 5}]', False),
    ("{ $.a > 1 }", '{"a": "5"}', False),          # a JSON string is not a number
    ("{ $.a = 5 }", '{"a": true}', False),
    ("{ $.a = 5 }", '{"a": 5.0}', True),
    ("{ $.a <= 1e3 }", '{"a": 1000}', True),
    ("{ $.a < 0 }", "not json -1", False),
    ("{ $.a = \"x\" }", '[{"a": "x"}]', False),
    ("{ $.a IS NULL }", "[null]", False),
    ("{ $.a NOT EXISTS }", "[1]", False),
    ("{ $.a NOT EXISTS }", "{}", True),
    ("{ $.* = 1 }", "[1]", False),
    ("{ $.a > 1 && $.b NOT EXISTS }", '{"a": 2}', True),
    ("{ $.a > 1 && $.b NOT EXISTS }", '[{"a": 2}]', False),
])
def test_json_patterns_match_objects_only(pattern, message, expected):
    assert matches(pattern, message) is expected
