"""Logs Insights safety: no user text ever becomes SQL text, and every query either runs in
DuckDB or fails with a positioned QueryError — never another statement, a database error,
a crash or a hang.

* a hostile corpus (quotes, back-ticks, semicolons, comments, ``$1`` / ``?`` placeholders,
  huge regexes) compiled and run against a small table;
* the RE2 check agrees with DuckDB: every regex it accepts compiles in DuckDB;
* a grammar-driven fuzz: random well-formed queries over every command and function compile
  and run, or raise QueryError.
"""
from __future__ import annotations

import json
import re

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query import insights_functions as fn
from query.errors import QueryError
from query.insights_ast import (FieldRef, Item, OtherCommand, Parse, Regex, String, Unnest)
from query.insights_compile import Source, compile_query
from query.insights_format import format_rows
from query.insights_parser import check_regex, parse, walk

MESSAGES = [
    json.dumps({"latency": 120, "service": "api", "user": {"id": "u1"}, "items": [{"id": 1}],
                "ip": "10.0.0.1", "note": "'; DROP TABLE events; --"}),
    json.dumps({"latency": "abc", "service": None, "items": [], "big": 1e308, "neg": -5}),
    json.dumps({"latency": 9.5e18, "ts": 1e30, "ip": "2001:db8::1"}),
    "ERROR user=u2, method:GET, latency := 10 ip=192.168.1.7",
    'CSV,"a ""b"" c",3', "level=info msg=\"x \\\" y\" n=1", "", "   ", "plain text ü 😀",
    '{"not": "closed"', "[1, 2, 3]", "null", "12345",
]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE events (ts BIGINT, ingest BIGINT, seq BIGINT, message VARCHAR, "
              "log_stream VARCHAR, log_group VARCHAR, ptr VARCHAR)")
    c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                  [(1_700_000_000_000 + i * 1000, 1_700_000_000_000 + i * 1000 + 7, i, m,
                    "s'1", "1:/g\"x", f"p{i}") for i, m in enumerate(MESSAGES)])
    yield c
    c.close()


SOURCE = Source("SELECT * FROM events")

# Payloads that would change the statement if they reached SQL text.
PAYLOADS = ["'; DROP TABLE events; --", '"; DROP TABLE events; --', "`) ; DELETE FROM events",
            "/* evil */", "-- evil", "$1", "$name", "\\'", "'' OR 1=1 --",
            "x\" OR \"1\"=\"1", "\x00nul", "ü😀"]

HOSTILE = [
    "filter @message = \"'; DROP TABLE events; --\"",
    "filter @message like '\"; DROP TABLE events; --'",
    "filter `x\"; DROP TABLE events; --` = 1",
    "fields `) ; DELETE FROM events` as `y\"; DROP TABLE events; --`",
    "fields @`a\"b'c`, `back``tick`, `$1`, `?`, `$name`",
    "filter note = '$1' or note = '?' or note = \"$name\"",
    "fields concat(\"/* evil */\", '-- evil', \"\\'\") as c",
    "filter @message like /'; DROP TABLE events; --/",
    "filter @message =~ /\"\\); DELETE FROM events; --/",
    "parse @message \"'; DROP TABLE events; -- *\" as `x'y`",
    "parse @message /(?<evil>'; DROP)/",
    "parse @message csv as `a\"`, `b'`",
    "parse @message logfmt as `l\"f` | fields `l\"f`.`k'ey`",
    "stats count(*) as `c\"; DROP TABLE events; --` by `s'1`",
    "sort `x\"; --` desc | limit 3",
    "dedup `d\"; DROP TABLE events` | limit 2",
    "fields jsonParse(@message) as `j'` | unnest `j'`.items into `i\"; --`",
    "filter isIpInSubnet(ip, \"'; DROP TABLE events; --\")",
    "filter note in ['; DROP TABLE events; --', \"'' OR 1=1 --\", 1]",
    "fields \"x\\\" OR \\\"1\\\"=\\\"1\" as q",
    "fields '\x00nul' as n, 'ü😀' as e",
    "filter @message like /" + "a" * 5000 + "/",
    "filter @message like /(" + "|".join(f"w{i}" for i in range(2000)) + ")/",
    "filter @message like /(?:a{10}){100}/",
    "filter @message like /\\p{L}{60}/",
    "filter @message like /" + "(" * 200 + "a" + ")" * 200 + "/",
    "filter @message like /\\p{L}{1000}/",
    "filter @message like /(a{1000}){2}/",
    "filter @message like /a" + "{1}" * 3 + "/",
    "filter @message like /(?<=x)y/",
    "filter @message like /[/",
    "fields " + ", ".join(f"f{i}" for i in range(120)),
    "filter " + " and ".join(f"f{i} = {i}" for i in range(40)),
    "fields " + "(" * 300 + "1" + ")" * 300,
    "fields " + "-" * 500 + "1",
    "pattern @message; DROP TABLE events",
    "SOURCE logGroups(namePrefix: ['\"; DROP TABLE events; --'])",
    "fields 1; DROP TABLE events",
    "fields fromMillis(9.2e18) as a, fromMillis(-9.2e18) as b, fromMillis(latency) as c, "
    "toMillis(big) as d, datefloor(fromMillis(ts), 1mo) as e, dateceil(fromMillis(1e15), 1y) as f",
    "fields isIpv4InSubnet(note, '10.0.0.0/8') as a, isIpv6InSubnet(note, '::/1') as b, "
    "isIpInSubnet('::ffff:1.2.3', '::/0') as c, isIpInSubnet('1:2:3:4:5:6:7:8:9:1.2.3.4', '::/0')",
    "fields substr(note, 9.2e18, -1) as a, substr(note, -1) as b, log(0) as c, sqrt(-1) as d, "
    "1 / 0 as e, 2 ^ 99999 as f, -(2 ^ 99999) as g, 0 % 0 as h, pct(1, 1) as i",
    "fields a -- comment",
    "fields a /* comment */",
]


def user_texts(query) -> list[str]:
    """Every piece of text in the AST that came from the user (strings, regexes, names)."""
    out = []
    for command in query.commands:
        for value in vars(command).values():
            nodes = value if isinstance(value, tuple) else (value,)
            for node in nodes:
                if isinstance(node, Item):
                    if node.alias:
                        out.append(node.alias)
                    node = node.expr
                if isinstance(node, str):
                    out.append(node)
                elif hasattr(node, "span") and not isinstance(node, (int, float)):
                    try:
                        for sub, _ in walk(node):
                            if isinstance(sub, String):
                                out.append(sub.value)
                            elif isinstance(sub, Regex):
                                out.append(sub.source)
                            elif isinstance(sub, FieldRef):
                                out.extend(sub.parts)
                    except Exception:  # a command-level value that is not an expression
                        pass
        if isinstance(command, Parse):
            out.extend(command.aliases)
            if command.pattern is not None:
                out.append(getattr(command.pattern, "value", None) or command.pattern.source)
        if isinstance(command, Unnest):
            out.append(command.into)
        if isinstance(command, OtherCommand):
            out.append(command.text)
    return [t for t in out if t]


def check_runs(con, text):
    """Parse, compile and run ``text``; assert the SQL holds no user text.  Returns the
    formatted results, or the QueryError."""
    try:
        query = parse(text)
        compiled = compile_query(query, SOURCE, now_ms=1_700_000_000_000)
    except QueryError as exc:
        assert exc.span is not None and exc.render()
        return exc
    sql = compiled.sql
    for piece in user_texts(query):
        if len(piece) >= 4 and not re.fullmatch(r"[A-Za-z_]\w*", piece):
            assert piece not in sql, (piece, sql)
    for payload in PAYLOADS:
        assert payload not in sql, payload
    # Outside its own string constants (regexes such as '\s+$'), the compiler writes no
    # statement separator or comment, and "?" only as a placeholder.
    code = re.sub(r"'(?:[^']|'')*'", "''", sql)
    for token in (";", "--", "/*", "$"):
        assert token not in code, token
    assert code.count("?") == len(compiled.params)
    assert len(con.extract_statements(sql)) == 1
    rows = con.execute(sql, compiled.params).fetchall()
    assert con.execute(compiled.count_sql, compiled.count_params).fetchone()[0] >= 0
    return format_rows(compiled, rows)


@pytest.mark.parametrize("text", HOSTILE, ids=[h[:60] for h in HOSTILE])
def test_hostile_query(con, text):
    check_runs(con, text)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(MESSAGES)


def test_hostile_values_come_back_verbatim(con):
    results = check_runs(con, "filter note = \"'; DROP TABLE events; --\" | fields note, "
                              "'$1 ? $name' as p")
    assert [{d["field"]: d["value"] for d in r if d["field"] != "@ptr"} for r in results] == [
        {"note": "'; DROP TABLE events; --", "p": "$1 ? $name"}]


# ------------------------------------------------------------------------------------------
# The RE2 check never accepts what DuckDB refuses
# ------------------------------------------------------------------------------------------

_RE_TOKENS = ["a", "b", "é", ".", "*", "+", "?", "*?", "|", "(", ")", "(?:", "(?i)", "(?s:",
              "(?<n>", "(?P<m>", "(?=", "[", "]", "[^", "^", "$", "-", "{2}", "{1,3}", "{,2}",
              "{1001}", "{0,}", "\\d", "\\W", "\\b", "\\B", "\\A", "\\z", "\\Z", "\\1", "\\x41",
              "\\x{1F600}", "\\pL", "\\p{Greek}", "\\p{Nope}", "\\Q", "\\E", "\\.", "\\/",
              "\\n", "\\e", "[:alpha:]", "[[:digit:]]", "\\", "{", "}", "(?U)", "(?-i)", "#"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_RE_TOKENS), min_size=1, max_size=10).map("".join))
def test_accepted_regexes_compile_in_duckdb(source):
    try:
        info = check_regex(source)
    except QueryError:
        return
    duckdb.execute("SELECT regexp_matches('abc', ?), regexp_extract('abc', ?, 0)",
                   [info.sql_source, info.sql_source]).fetchall()


@pytest.mark.parametrize("source", [
    "\\p{L}{100}", "(?i)\\p{L}{40}", "[^\\p{L}]{60}", "(?:[^a]{10}){100}", ".{1000}",
    "(?i)[a-z]{1000}", "\\W{1000}", "(?:a|b|c|d|e|f|g|h){1000}", "[\\x{0}-\\x{10FFFF}]{1000}",
    "(?:\\p{L}{30}){3}", "(((a{10}){10}){10})",
])
def test_large_accepted_regexes_compile(source):
    info = check_regex(source)
    duckdb.execute("SELECT regexp_matches('abc', ?)", [info.sql_source]).fetchall()


# ------------------------------------------------------------------------------------------
# Grammar-driven fuzz over every command and function
# ------------------------------------------------------------------------------------------

FIELDS = ["latency", "service", "user.id", "items.0.id", "@message", "@timestamp", "missing",
          "`we\"ird-name`", "@logStream", "@ingestionTime", "ip", "big", "neg", "ts", "note"]
LITERALS = ["0", "1", "-1", "2.5", "1e300", "-9.2e18", "99999999999999999999", "'abc'", "''",
            "\"10.0.0.0/8\"", "'u1'", "\"2001:db8::/32\""]
PERIODS = ["1ms", "300s", "5m", "1h", "2d", "1w", "1mo", "1q", "1y", "1500ms"]
CIDRS = ['"10.0.0.0/8"', '"192.168.1.0/24"', '"2001:db8::/32"', '"::/0"', '"0.0.0.0/0"',
         '"2001:db8:8000::/33"']
SCALAR_FUNCS = [s for s in fn.FUNCTIONS.values() if not s.aggregate]
AGG_FUNCS = [s for s in fn.FUNCTIONS.values() if s.aggregate and not s.unsupported]


def call_of(spec, exprs):
    """A call of ``spec`` with argument strategies drawn from ``exprs``."""
    hi = spec.max_args if spec.max_args is not None else spec.min_args + 2
    counts = st.integers(spec.min_args, max(spec.min_args, hi))

    def args(n):
        parts = []
        for i in range(n):
            kind = spec.arg_kind(i)
            if kind == fn.PERIOD:
                parts.append(st.sampled_from(PERIODS))
            elif kind == fn.LITERAL:
                parts.append(st.sampled_from(CIDRS if "ip" in spec.name.lower()
                                             else ["0", "50", "99.9", "100"]))
            else:
                parts.append(exprs)
        return st.tuples(*parts).map(lambda a: f"{spec.name}({', '.join(a)})")

    if spec.star:
        return st.sampled_from([f"{spec.name}(*)", f"{spec.name}()"]) | counts.flatmap(args)
    return counts.flatmap(args)


def expressions():
    leaves = st.sampled_from(FIELDS) | st.sampled_from(LITERALS)

    def extend(inner):
        ops = st.sampled_from(["+", "-", "*", "/", "%", "^", "=", "!=", "<", ">=", "and", "or"])
        binary = st.tuples(inner, ops, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        unary = st.tuples(st.sampled_from(["-", "not "]), inner).map(lambda t: f"{t[0]}({t[1]})")
        like = st.tuples(inner, st.sampled_from(["like 'a'", "not like /(?i)E.*r/",
                                                 "=~ /^\\d+$/", "in [1, 'api', -2]",
                                                 "not in ['x']"])).map(" ".join)
        calls = st.sampled_from(SCALAR_FUNCS).flatmap(lambda s: call_of(s, inner))
        access = inner.map(lambda e: f"jsonParse({e}).user.id")
        return binary | unary | like | calls | access

    return st.recursive(leaves, extend, max_leaves=4)


EXPR = expressions()
AGG = st.sampled_from(AGG_FUNCS).flatmap(lambda s: call_of(s, EXPR))
NAMES = st.sampled_from(["x", "y", "`z z`", "@t", "latency", "c"])


def aliased(expr):
    return st.tuples(expr, st.none() | NAMES).map(
        lambda t: t[0] if t[1] is None else f"{t[0]} as {t[1]}")


def listed(s, n=2):
    return st.lists(s, min_size=1, max_size=n).map(", ".join)


COMMAND = st.one_of(
    listed(aliased(EXPR)).map("fields {}".format),
    listed(aliased(EXPR)).map("display {}".format),
    EXPR.map("filter {}".format),
    st.tuples(listed(aliased(AGG | st.tuples(AGG, EXPR).map(lambda t: f"{t[0]} + {t[1]}"))),
              st.none() | listed(aliased(EXPR | st.sampled_from(PERIODS).map("bin({})".format))))
    .map(lambda t: f"stats {t[0]}" + (f" by {t[1]}" if t[1] else "")),
    listed(st.tuples(EXPR, st.sampled_from(["", " asc", " desc"])).map("".join), 2)
    .map("sort {}".format),
    st.sampled_from(["limit 1", "limit 3", "limit any", "limit 10000"]),
    st.sampled_from(['parse @message "user=*, method:*" as u, m', "parse @message /(?<n>\\d+)/",
                     "parse @message /(\\d)/ as d multi", "parse @message csv as a, b, c",
                     "parse @message logfmt as lf", "parse u 'u*' as un",
                     "parse missing '*' as q"]),
    listed(st.sampled_from(FIELDS), 2).map("dedup {}".format),
    st.sampled_from(["unnest jsonParse(@message).items into it", "unnest service into s",
                     "unnest x into y", "unmask", "filterIndex service = 'api'"]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(st.lists(COMMAND, min_size=1, max_size=4).map(" | ".join))
def test_fuzz_queries_run_or_fail_cleanly(con, text):
    check_runs(con, text)
