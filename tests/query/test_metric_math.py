"""Metric math: the parse table, evaluation on known data, and fuzzing.

Expected results are worked out here in plain Python (dicts keyed by slot number), or copied
from the examples on the AWS page "Using metric math", never produced by the module under
test.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.errors import (EvaluationError, QueryError, QuerySyntaxError, Span,
                          UnknownFieldError, UnknownFunctionError, UnsupportedError)
from query.metric_math import (Array, BinaryOp, FuncCall, IdRef, Keyword, MathContext, Number,
                               Series, String, UnaryOp, UnknownIdError, evaluate, parse,
                               referenced_ids, render)

# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def num(value, start, end):
    return Number(float(value), Span(start, end))


def ref(name, start):
    return IdRef(name, Span(start, start + len(name)))


def kw(name, start):
    return Keyword(name, Span(start, start + len(name)))


def string(value, start, end):
    return String(value, Span(start, end))


def binop(op, left, right, start, end):
    return BinaryOp(op, left, right, Span(start, end))


def unop(op, operand, start, end):
    return UnaryOp(op, operand, Span(start, end))


def call(name, args, start, end):
    return FuncCall(name, tuple(args), Span(start, end))


def array(items, start, end):
    return Array(tuple(items), Span(start, end))


PARSE_CASES = [
    ("m1", ref("m1", 0)),
    ("42", num(42, 0, 2)),
    ("0.25", num(0.25, 0, 4)),
    ("1e3", num(1000, 0, 3)),
    (".5E-1", num(0.05, 0, 5)),
    ("myMetric_2", ref("myMetric_2", 0)),
    ("m1 + m2 * 3",
     binop("+", ref("m1", 0), binop("*", ref("m2", 5), num(3, 10, 11), 5, 11), 0, 11)),
    ("(m1 + m2) * 3",
     binop("*", binop("+", ref("m1", 1), ref("m2", 6), 1, 8), num(3, 12, 13), 0, 13)),
    ("m1 - m2 - m3",
     binop("-", binop("-", ref("m1", 0), ref("m2", 5), 0, 7), ref("m3", 10), 0, 12)),
    # ^ is right-associative and binds tighter than unary minus
    ("2 ^ 3 ^ 2", binop("^", num(2, 0, 1), binop("^", num(3, 4, 5), num(2, 8, 9), 4, 9), 0, 9)),
    ("-2 ^ 2", unop("-", binop("^", num(2, 1, 2), num(2, 5, 6), 1, 6), 0, 6)),
    ("m1 ^ -1", binop("^", ref("m1", 0), unop("-", num(1, 6, 7), 5, 7), 0, 7)),
    ("-m1", unop("-", ref("m1", 1), 0, 3)),
    ("5 * -m1", binop("*", num(5, 0, 1), unop("-", ref("m1", 5), 4, 7), 0, 7)),
    ("m1 != 0", binop("!=", ref("m1", 0), num(0, 6, 7), 0, 7)),
    ("m1 > 10 AND m2 <= 5 OR NOT m3",
     binop("OR",
           binop("AND",
                 binop(">", ref("m1", 0), num(10, 5, 7), 0, 7),
                 binop("<=", ref("m2", 12), num(5, 18, 19), 12, 19), 0, 19),
           unop("NOT", ref("m3", 27), 23, 29), 0, 29)),
    # && and || are other spellings of AND and OR
    ("m1 && m2 || m3",
     binop("OR", binop("AND", ref("m1", 0), ref("m2", 6), 0, 8), ref("m3", 12), 0, 14)),
    # comparisons bind looser than arithmetic
    ("m1 + 1 == m2", binop("==", binop("+", ref("m1", 0), num(1, 5, 6), 0, 6), ref("m2", 10), 0, 12)),
    ("[m1, m2]", array([ref("m1", 1), ref("m2", 5)], 0, 8)),
    ("FILL(m1, REPEAT)", call("FILL", [ref("m1", 5), kw("REPEAT", 9)], 0, 16)),
    ("FILL(m1, MIN(m1))",
     call("FILL", [ref("m1", 5), call("MIN", [ref("m1", 13)], 9, 16)], 0, 17)),
    ("METRICS()", call("METRICS", [], 0, 9)),
    ("METRICS('errors')", call("METRICS", [string("errors", 8, 16)], 0, 17)),
    ('METRICS("it\\"s")', call("METRICS", [string('it"s', 8, 15)], 0, 16)),
    ("SORT(METRICS(), AVG, DESC, 10)",
     call("SORT", [call("METRICS", [], 5, 14), kw("AVG", 16), kw("DESC", 21), num(10, 27, 29)],
          0, 30)),
    ("IF(m1 > 0, m2)",
     call("IF", [binop(">", ref("m1", 3), num(0, 8, 9), 3, 9), ref("m2", 11)], 0, 14)),
    ("""SEARCH('{AWS/EC2,InstanceId} MetricName="CPUUtilization"', 'Average', 300)""",
     call("SEARCH", [string('{AWS/EC2,InstanceId} MetricName="CPUUtilization"', 7, 57),
                     string("Average", 59, 68), num(300, 70, 73)], 0, 74)),
    ("SUM([METRICS('4xx'), METRICS('5xx')])",
     call("SUM", [array([call("METRICS", [string("4xx", 13, 18)], 5, 19),
                         call("METRICS", [string("5xx", 29, 34)], 21, 35)], 4, 36)], 0, 37)),
    ("m1-MIN(m1)", binop("-", ref("m1", 0), call("MIN", [ref("m1", 7)], 3, 10), 0, 10)),
    ("errors / requests * 100",
     binop("*", binop("/", ref("errors", 0), ref("requests", 9), 0, 17), num(100, 20, 23), 0, 23)),
    ("m1 +\n  m2", binop("+", ref("m1", 0), ref("m2", 7), 0, 9)),
    ("INSIGHT_RULE_METRIC('rule', 'Sum')",
     call("INSIGHT_RULE_METRIC", [string("rule", 20, 26), string("Sum", 28, 33)], 0, 34)),
]


@pytest.mark.parametrize("text, expected", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse(text, expected):
    assert parse(text) == expected


def without_spans(node):
    """The same tree with every span set to (0, 0), to compare trees parsed from other text."""
    if isinstance(node, tuple):
        return tuple(without_spans(n) for n in node)
    if not dataclasses.is_dataclass(node) or isinstance(node, Span):
        return node
    changes = {f.name: without_spans(getattr(node, f.name)) for f in dataclasses.fields(node)}
    changes["span"] = Span(0, 0)
    return dataclasses.replace(node, **changes)


@pytest.mark.parametrize("text", [c[0] for c in PARSE_CASES])
def test_render_round_trip(text):
    tree = parse(text)
    assert without_spans(parse(render(tree))) == without_spans(tree)


# (text, error class, part of the message, line, column)
ERROR_CASES = [
    ("", QuerySyntaxError, "empty expression", 1, 1),
    ("   ", QuerySyntaxError, "empty expression", 1, 4),
    ("m1 +", QuerySyntaxError, "unexpected end of input", 1, 5),
    ("(m1 + m2", QuerySyntaxError, "expected ')'", 1, 9),
    ("m1 m2", QuerySyntaxError, "unexpected 'm2'", 1, 4),
    ("m1 = 2", QuerySyntaxError, "compare with ==", 1, 4),
    ("m1 & m2", QuerySyntaxError, "AND or &&", 1, 4),
    ("'abc", QuerySyntaxError, "unterminated string", 1, 1),
    ("m1 +\n  * m2", QuerySyntaxError, "unexpected '*'", 2, 3),
    ("2m1", QuerySyntaxError, "unexpected 'm1'", 1, 2),
    ("[m1, ]", QuerySyntaxError, "unexpected ']'", 1, 6),
    ("m1 and m2", QuerySyntaxError, "logical operators are upper case: AND", 1, 4),
    ("METRICS(\u201c4xx\u201d)", QuerySyntaxError, "typographic quote", 1, 9),
    ("avg(m1)", UnknownFunctionError, "function names are upper case: AVG", 1, 1),
    ("m1 + FOO(m2)", UnknownFunctionError, "unknown function FOO", 1, 6),
    ("m1 +\n  FOO(m2)", UnknownFunctionError, "unknown function FOO", 2, 3),
    ("AVERAGE(m1)", UnknownFunctionError, "unknown function AVERAGE", 1, 1),
    ("x(m1)", UnknownFunctionError, "unknown function x", 1, 1),
    ("MAX(m1, m2)", QuerySyntaxError, "MAX takes 1 argument, got 2", 1, 1),
    ("FILL(m1)", QuerySyntaxError, "FILL takes 2 arguments, got 1", 1, 1),
    ("IF(m1)", QuerySyntaxError, "IF takes 2 to 3 arguments, got 1", 1, 1),
    ("FILL(m1, NEAREST)", QuerySyntaxError, "NEAREST is not valid here", 1, 10),
    ("SORT(METRICS(), MEDIAN, ASC)", QuerySyntaxError, "one of AVG, MAX, MIN, SUM", 1, 17),
    ("SORT(METRICS(), AVG, UP)", QuerySyntaxError, "one of ASC, DESC", 1, 22),
    ("SORT(METRICS(), m1, ASC)", QuerySyntaxError, "argument 2 of SORT must be one of", 1, 17),
    ("m1 * REPEAT", QuerySyntaxError, "only valid as the second argument of FILL", 1, 6),
    ("SORT(METRICS(), AVG, LINEAR)", QuerySyntaxError, "LINEAR is not valid here", 1, 22),
    ("AVG + 1", QuerySyntaxError, "AVG is a function", 1, 1),
    ("m1 + Metric", QuerySyntaxError, "unknown name Metric", 1, 6),
    ("METRICS(m1)", QuerySyntaxError, "must be a quoted string", 1, 9),
    ("SEARCH(m1, 'Sum', 60)", QuerySyntaxError, "must be a quoted string", 1, 8),
    ("'errors' + 1", QuerySyntaxError, "a string is only valid", 1, 1),
    ("ABS('x')", QuerySyntaxError, "a string is only valid", 1, 5),
]


@pytest.mark.parametrize("text, error, message, line, column", ERROR_CASES,
                         ids=[repr(c[0]) for c in ERROR_CASES])
def test_parse_error(text, error, message, line, column):
    with pytest.raises(error) as info:
        parse(text)
    assert type(info.value) is error
    assert message in info.value.message
    assert (info.value.line, info.value.column) == (line, column)
    assert "^" in info.value.render()


@pytest.mark.parametrize("text, ids", [
    ("m1 + e2 * errors", {"m1", "e2", "errors"}),
    ("FILL(m1, REPEAT) / SUM([m2, METRICS('x')])", {"m1", "m2"}),
    ("TIME_SERIES(5)", set()),
    ("IF(a > 1, b, c)", {"a", "b", "c"}),
])
def test_referenced_ids(text, ids):
    assert referenced_ids(parse(text)) == ids
    assert referenced_ids(text) == ids


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

P = 60
# 2024-02-29 23:57 UTC (a Thursday): six slots cross midnight and the end of February.
T0 = int(datetime(2024, 2, 29, 23, 57, tzinfo=timezone.utc).timestamp())
SLOTS = 6


def series(query_id, points: dict[int, float], **meta) -> Series:
    """A Series from {slot: value}; slot i is at T0 + i*P."""
    slots = sorted(points)
    return Series(query_id, query_id.upper(),
                  np.array([T0 + s * P for s in slots], dtype=np.int64),
                  np.array([points[s] for s in slots], dtype=np.float64), meta)


M1 = {0: 30, 1: 20, 2: 0, 3: 0, 5: 10}
M2 = {0: 20, 2: 20, 4: 5, 5: 4}
M4 = {1: 10, 4: 40}
ERRORS_A = {1: 2, 3: 4}

SEARCH_CALLS = []


def fake_search(expression, stat, period):
    SEARCH_CALLS.append((expression, stat, period))
    return [series("search_0", {0: 1, 1: 2}, metric_name="A"),
            series("search_1", {0: 3}, metric_name="B")]


def make_ctx(search=fake_search) -> MathContext:
    return MathContext(period=P, start=T0, end=T0 + SLOTS * P, search=search, series={
        "m1": series("m1", M1, period=60, metric_name="CPU"),
        "m2": series("m2", M2),
        "m3": series("m3", {}),
        "m4": series("m4", M4),
        "errors_a": series("errors_a", ERRORS_A),
        # results of other expressions: METRICS() leaves them out
        "e1": series("e1", {0: 100}, expression=True),
        "e2": [series("x", {0: 1, 1: 2}, expression=True), series("y", {1: 5}, expression=True)],
    })


# The examples on the AWS page, with the values the page gives.
DOC_CTX = MathContext(period=P, start=T0, end=T0 + 5 * P, series={
    # "Comparison and logical operators": metric1 [30, 20, 0, 0], metric2 [20, -, 20, -]
    "metric1": series("metric1", {0: 30, 1: 20, 2: 0, 3: 0}),
    "metric2": series("metric2", {0: 20, 2: 20}),
    # "Using IF expressions": [1, 1, 0, 0, -], [30, -, 0, 0, 30], [0, 0, 20, -, 20]
    "c1": series("c1", {0: 1, 1: 1, 2: 0, 3: 0}),
    "c2": series("c2", {0: 30, 2: 0, 3: 0, 4: 30}),
    "c3": series("c3", {0: 0, 1: 0, 2: 20, 4: 20}),
})

DOC_CASES = [
    ("(metric1 < metric2)", [{0: 0, 1: 0, 2: 1, 3: 0}]),
    ("(metric1 >= 30)", [{0: 1, 1: 0, 2: 0, 3: 0}]),
    ("(metric1 > 15 AND metric2 > 15)", [{0: 1, 1: 0, 2: 0, 3: 0}]),
    ("IF(c1, c2, c3)", [{0: 30, 1: 0, 2: 20}]),
    ("IF(c1, 5, c3)", [{0: 5, 1: 5, 2: 20}]),
    ("IF(c1, c2, 5)", [{0: 30, 1: 0, 2: 5, 3: 5}]),
]


def pointwise(fn, *operands):
    """fn applied where every operand has a point; results that are not finite are dropped."""
    common = set(operands[0]).intersection(*operands[1:])
    out = {}
    for slot in sorted(common):
        try:
            value = fn(*(o[slot] for o in operands))
        except (ZeroDivisionError, ValueError, OverflowError):
            continue
        if math.isfinite(value):
            out[slot] = value
    return out


def each(fn, points):
    return pointwise(fn, points)


def consecutive(points, fn):
    """fn(previous_slot, previous_value, slot, value) at every point but the first."""
    slots = sorted(points)
    return {b: fn(a, points[a], b, points[b]) for a, b in zip(slots, slots[1:])}


def across(points_list, fn):
    """fn(values present at a slot, number of series) for every slot where any series has a value."""
    slots = sorted(set().union(*points_list))
    return {s: fn([p[s] for p in points_list if s in p], len(points_list)) for s in slots}


def calendar(fn):
    """fn(datetime) at every slot of the window (the non-sparse series of MINUTE() and friends)."""
    return {s: fn(datetime.fromtimestamp(T0 + s * P, tz=timezone.utc)) for s in range(SLOTS)}


def avg_key(points):
    return statistics.fmean(points.values()) if points else None


EVAL_CASES = [
    # arithmetic: series op series keeps timestamps present in both
    ("m1 + m2", [pointwise(lambda a, b: a + b, M1, M2)]),
    ("m1 / m2", [pointwise(lambda a, b: a / b, M1, M2)]),
    ("m2 / m1", [pointwise(lambda a, b: a / b, M2, M1)]),  # 20/0 is dropped
    ("m1 - m2 * 2", [pointwise(lambda a, b: a - b * 2, M1, M2)]),
    ("m1 ^ 2", [each(lambda a: a ** 2, M1)]),
    ("2 ^ 3 ^ 2", 512.0),
    ("-2 ^ 2", -4.0),
    ("-m1", [each(lambda a: -a, M1)]),
    ("5 * m1 - 1", [each(lambda a: 5 * a - 1, M1)]),
    ("1 / 0", math.inf),
    ("m1 / 0", [{}]),
    ("100 / [m1, m2]", [each(lambda a: 100 / a, M1), each(lambda a: 100 / a, M2)]),
    ("SUM(100 / [m1, m2])",
     [across([each(lambda a: 100 / a, M1), each(lambda a: 100 / a, M2)], lambda v, n: sum(v))]),
    ("[m1, m2] - m4", [pointwise(lambda a, b: a - b, M1, M4), pointwise(lambda a, b: a - b, M2, M4)]),
    # comparison and logic between a series and a scalar
    ("m1 > 15", [each(lambda a: float(a > 15), M1)]),
    ("m1 == 0 OR m1 >= 30", [each(lambda a: float(a == 0 or a >= 30), M1)]),
    ("NOT m1", [each(lambda a: float(a == 0), M1)]),
    # between two series a missing value counts as 0
    ("m1 AND m2", [{s: float(M1.get(s, 0) != 0 and M2.get(s, 0) != 0) for s in set(M1) | set(M2)}]),
    ("3 > 2 && 1 != 1", 0.0),
    # single series → scalar
    ("AVG(m1)", statistics.fmean(M1.values())),
    ("MAX(m1)", max(M1.values())),
    ("MIN(m2)", min(M2.values())),
    ("SUM(m2)", sum(M2.values())),
    ("STDDEV(m1)", statistics.pstdev(M1.values())),
    ("DATAPOINT_COUNT(m2)", float(len(M2))),
    ("SUM(m1) / DATAPOINT_COUNT(m1)", sum(M1.values()) / len(M1)),
    ("m1 - AVG(m1)", [each(lambda a: a - statistics.fmean(M1.values()), M1)]),
    ("AVG(m3)", math.nan),
    # array → one series, point by point; AVG counts a missing value as 0
    ("AVG([m1, m2])", [across([M1, M2], lambda v, n: sum(v) / n)]),
    ("SUM([m1, m2])", [across([M1, M2], lambda v, n: sum(v))]),
    ("MAX([m1, m2])", [across([M1, M2], lambda v, n: max(v))]),
    ("MIN([m1, m2, m4])", [across([M1, M2, M4], lambda v, n: min(v))]),
    ("STDDEV([m1, m2])", [across([M1, M2], lambda v, n: statistics.pstdev(v))]),
    ("DATAPOINT_COUNT([m1, m2, m3])", [across([M1, M2, {}], lambda v, n: float(len(v)))]),
    ("METRIC_COUNT(METRICS())", 5.0),
    # element-wise functions
    ("ABS(m1 - m2)", [pointwise(lambda a, b: abs(a - b), M1, M2)]),
    ("CEIL(m2 / 3)", [each(lambda a: float(math.ceil(a / 3)), M2)]),
    ("FLOOR(m2 / 3)", [each(lambda a: float(math.floor(a / 3)), M2)]),
    ("LOG(m2)", [each(math.log, M2)]),
    ("LOG10(m1)", [each(math.log10, M1)]),  # log10(0) is dropped
    ("SQRT(m1 - 15)", [each(lambda a: math.sqrt(a - 15), M1)]),  # negatives are dropped
    ("ABS(-3)", 3.0),
    # point to point
    ("DIFF(m1)", [consecutive(M1, lambda s0, v0, s1, v1: v1 - v0)]),
    ("DIFF_TIME(m1)", [consecutive(M1, lambda s0, v0, s1, v1: float((s1 - s0) * P))]),
    ("RATE(m1)", [consecutive(M1, lambda s0, v0, s1, v1: (v1 - v0) / ((s1 - s0) * P))]),
    ("RUNNING_SUM(m1)", [{s: sum(v for t, v in M1.items() if t <= s) for s in M1}]),
    ("RUNNING_SUM([m1, m4])", [{s: sum(v for t, v in M1.items() if t <= s) for s in M1},
                               {s: sum(v for t, v in M4.items() if t <= s) for s in M4}]),
    ("PERIOD(m1)", 60.0),
    ("m2 / PERIOD(m2)", [each(lambda a: a / P, M2)]),
    # FILL: the grid is every period of [start, end)
    ("FILL(m2, 0)", [{s: M2.get(s, 0) for s in range(SLOTS)}]),
    ("FILL(m3, 7)", [{s: 7 for s in range(SLOTS)}]),
    ("FILL(m2, m1)", [{s: M2.get(s, M1.get(s)) for s in range(SLOTS) if s in M2 or s in M1}]),
    ("FILL(m2, MIN(m2))", [{s: M2.get(s, min(M2.values())) for s in range(SLOTS)}]),
    ("FILL(m2, REPEAT)", [{0: 20, 1: 20, 2: 20, 3: 20, 4: 5, 5: 4}]),
    ("FILL(m4, REPEAT)", [{1: 10, 2: 10, 3: 10, 4: 40, 5: 40}]),  # nothing before the first value
    ("FILL(m2, LINEAR)", [{0: 20, 1: 20, 2: 20, 3: 12.5, 4: 5, 5: 4}]),
    ("FILL(m4, LINEAR)", [{1: 10, 2: 20, 3: 30, 4: 40}]),  # no ends to interpolate past
    ("FILL([m2, m4], 0)", [{s: M2.get(s, 0) for s in range(SLOTS)},
                           {s: M4.get(s, 0) for s in range(SLOTS)}]),
    # IF
    ("IF(m1 > 15, m1)", [{s: v for s, v in M1.items() if v > 15}]),
    ("IF(m1 > 15, 1, 0)", [{s: float(v > 15) for s, v in M1.items()}]),
    ("IF(m2 < 10, 10, m2)", [{s: (10 if v < 10 else v) for s, v in M2.items()}]),
    ("IF(1, m1, m2)", [M1]),
    ("IF(0, m1, m2)", [M2]),
    ("IF(0, m1)", [{}]),
    ("IF(METRICS('m') > 15, 1, 0)",
     [{s: float(v > 15) for s, v in p.items()} for p in (M1, M2, {}, M4)]),
    # TIME_SERIES and calendar functions (UTC)
    ("TIME_SERIES(5)", [{s: 5 for s in range(SLOTS)}]),
    ("TIME_SERIES(MAX(m1))", [{s: max(M1.values()) for s in range(SLOTS)}]),
    ("MINUTE(m1)", [calendar(lambda d: d.minute)]),
    ("HOUR(m1)", [calendar(lambda d: d.hour)]),
    ("DAY(m1)", [calendar(lambda d: d.isoweekday())]),
    ("DATE(m1)", [calendar(lambda d: d.day)]),
    ("MONTH(m1)", [calendar(lambda d: d.month)]),
    ("YEAR(m1)", [calendar(lambda d: d.year)]),
    ("EPOCH(m1)", [calendar(lambda d: d.timestamp())]),
    ("IF(DAY(m1) == 4, m1)", [{s: v for s, v in M1.items() if s < 3}]),  # Thursday slots only
    # arrays of series
    ("METRICS()", [ERRORS_A, M1, M2, {}, M4]),
    ("METRICS('m')", [M1, M2, {}, M4]),
    ("METRICS('rors')", [ERRORS_A]),
    ("METRICS() * 2", [each(lambda a: a * 2, p) for p in (ERRORS_A, M1, M2, {}, M4)]),
    ("[METRICS('m1'), m2]", [M1, M2]),
    ("e2 * 2", [{0: 2, 1: 4}, {1: 10}]),
    ("e1 + 1", [{0: 101}]),
    ("SORT(METRICS('m'), AVG, DESC)", [M4, M2, M1, {}]),  # no data sorts last
    ("SORT(METRICS('m'), AVG, ASC)", [M1, M2, M4, {}]),
    ("SORT(METRICS('m'), MAX, ASC, 2)", [M2, M1]),
    ("SLICE(SORT(METRICS('m'), SUM, DESC), 1, 3)", [M4, M2]),
    ("SLICE(METRICS('m'), 2)", [{}, M4]),
    ("FIRST(SORT(METRICS('m'), MIN, DESC))", [M4]),
    ("LAST(SORT(METRICS('m'), MIN, DESC))", [{}]),
    ("REMOVE_EMPTY(METRICS('m'))", [M1, M2, M4]),
    ("SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"', 'Average', 300)",
     [{0: 1, 1: 2}, {0: 3}]),
    ("SUM(SEARCH('{NS} x', 'Sum', 60))", [{0: 4, 1: 2}]),
]


def as_points(result):
    if isinstance(result, float):
        return result
    out = []
    for s in result:
        assert s.timestamps.dtype == np.int64 and s.values.dtype == np.float64
        assert list(s.timestamps) == sorted(set(s.timestamps.tolist()))
        assert np.isfinite(s.values).all()
        assert all((t - T0) % P == 0 for t in s.timestamps.tolist())
        out.append({(int(t) - T0) // P: float(v) for t, v in zip(s.timestamps, s.values)})
    return out


def assert_same(actual, expected):
    if isinstance(expected, (int, float)):
        assert isinstance(actual, float)
        assert actual == pytest.approx(expected, nan_ok=True)
        return
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got == pytest.approx({s: float(v) for s, v in want.items()})


@pytest.mark.parametrize("text, expected", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_evaluate(text, expected):
    assert_same(as_points(evaluate(text, make_ctx())), expected)


@pytest.mark.parametrize("text, expected", DOC_CASES, ids=[c[0] for c in DOC_CASES])
def test_aws_documentation_examples(text, expected):
    assert_same(as_points(evaluate(text, DOC_CTX)), expected)


def test_evaluate_accepts_a_parsed_expression():
    assert_same(as_points(evaluate(parse("m1 + m2"), make_ctx())),
                [pointwise(lambda a, b: a + b, M1, M2)])


def test_search_is_delegated_with_its_arguments():
    SEARCH_CALLS.clear()
    evaluate("SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPU\"', 'Average', 300)", make_ctx())
    assert SEARCH_CALLS == [('{AWS/EC2,InstanceId} MetricName="CPU"', "Average", 300)]


def test_labels_and_metadata_follow_the_input_series():
    doubled = evaluate("METRICS('m') * 2", make_ctx())
    assert [s.label for s in doubled] == ["M1", "M2", "M3", "M4"]
    assert doubled[0].meta["metric_name"] == "CPU"
    searched = evaluate("FILL(SEARCH('x', 'Sum', 60), 0)", make_ctx())
    assert [(s.id, s.meta["metric_name"]) for s in searched] == [("search_0", "A"), ("search_1", "B")]
    [average] = evaluate("AVG([m1, m2])", make_ctx())
    assert average.meta == {}


def test_inputs_are_not_modified():
    ctx = make_ctx()
    before = ctx.series["m2"].values.copy()
    evaluate("FILL(m2, LINEAR) + RUNNING_SUM(m2) - m2", ctx)
    assert (ctx.series["m2"].values == before).all()


# (text, error class, part of the message, column)
EVAL_ERROR_CASES = [
    ("m9 + 1", UnknownIdError, "unknown id m9", 1),
    ("m1 + mm2", UnknownIdError, "did you mean m2?", 6),
    ("[m1, m2] + METRICS()", EvaluationError, "two arrays", 1),
    ("SORT(m1, AVG, ASC)", EvaluationError, "must be an array of time series, got a time series", 6),
    ("TIME_SERIES(m1)", EvaluationError, "must be a scalar number", 13),
    ("AVG(5)", EvaluationError, "must be a time series or an array of time series", 5),
    ("METRIC_COUNT(m1)", EvaluationError, "must be an array of time series", 14),
    ("SLICE(METRICS(), 1.5)", EvaluationError, "whole number", 18),
    ("SORT(METRICS(), AVG, ASC, -1)", EvaluationError, "whole number", 27),
    ("FIRST(METRICS('nothing'))", EvaluationError, "empty array", 7),
    ("IF(m1, [m1, m2])", EvaluationError, "the condition is a single time series", 8),
    ("IF(METRICS('m'), [m1, m2])", EvaluationError, "has 2 time series but the condition has 4", 18),
    ("[m1, 1]", EvaluationError, "an array holds time series", 6),
    ("SEARCH('x', 'Sum', 0)", EvaluationError, "the period of SEARCH", 20),
    ("INSIGHT_RULE_METRIC('rule', 'Sum')", UnsupportedError, "not supported", 1),
    ("ANOMALY_DETECTION_BAND(m1, 2)", UnsupportedError, "not supported", 1),
]


@pytest.mark.parametrize("text, error, message, column", EVAL_ERROR_CASES,
                         ids=[c[0] for c in EVAL_ERROR_CASES])
def test_evaluation_error(text, error, message, column):
    with pytest.raises(error) as info:
        evaluate(text, make_ctx())
    assert message in info.value.message
    assert (info.value.line, info.value.column) == (1, column)


def test_unknown_id_is_both_an_evaluation_and_a_field_error():
    with pytest.raises(EvaluationError):
        evaluate("nope", make_ctx())
    with pytest.raises(UnknownFieldError):
        evaluate("nope", make_ctx())


def test_search_without_a_search_function_is_unsupported():
    with pytest.raises(UnsupportedError, match="SEARCH"):
        evaluate("SEARCH('x', 'Sum', 60)", make_ctx(search=None))


def test_error_from_a_parsed_expression_gets_position_when_text_is_given():
    text = "m1 +\n  nope"
    with pytest.raises(UnknownIdError) as info:
        evaluate(parse(text), make_ctx(), text=text)
    assert (info.value.line, info.value.column) == (2, 3)


# AWS accepts expressions of up to 2,048 characters; each of these is about that long.
@pytest.mark.parametrize("text, expected", [
    ("m1" + " + m1" * 408, [{s: v * 409 for s, v in M1.items()}]),
    ("-" * 2046 + "m1", [M1]),
    ("ABS(" * 409 + "m1" + ")" * 409, [M1]),
    ("(" * 1000 + "m1" + ")" * 1000, [M1]),
], ids=["long sum", "many signs", "nested calls", "parentheses"])
def test_long_expressions_within_the_aws_limit(text, expected):
    tree = parse(text)
    assert_same(as_points(evaluate(tree, make_ctx())), expected)
    assert without_spans(parse(render(tree))) == without_spans(tree)


def test_nesting_beyond_the_limit_is_a_syntax_error():
    with pytest.raises(QuerySyntaxError, match="nested more than"):
        parse("-" * 6000 + "m1")



# --------------------------------------------------------------------------------------------
# Fuzzing: anything either parses (and evaluates) or raises QueryError, nothing else
# --------------------------------------------------------------------------------------------

TOKENS = ["m1", "m2", "m3", "e2", "zz", "1", "0", "2.5", "-", "+", "*", "/", "^", "(", ")", "[", "]",
          ",", "<", ">=", "==", "!=", "AND", "OR", "NOT", "&&", "'m'", '"x"', "AVG", "SUM", "MIN",
          "MAX", "STDDEV", "FILL", "REPEAT", "LINEAR", "IF", "METRICS", "SORT", "ASC", "DESC",
          "SLICE", "FIRST", "LAST", "DIFF", "RATE", "RUNNING_SUM", "TIME_SERIES", "LOG", "PERIOD",
          "DATAPOINT_COUNT", "REMOVE_EMPTY", "SEARCH", "DAY", "ABS", "METRIC_COUNT", "DIFF_TIME",
          "INSIGHT_RULE_METRIC", "avg", " ", "\n"]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join)

# Mostly well-formed expressions, so the evaluator sees many shapes, not only syntax errors.
_leaf = st.sampled_from(["m1", "m2", "m3", "m4", "e2", "METRICS()", "METRICS('m')", "0", "2", "-1.5",
                         "TIME_SERIES(3)", "[m1, m2]", "[]"])
well_formed = st.recursive(_leaf, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^", ">", "==", "AND", "OR"]), inner)
      .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["ABS", "AVG", "SUM", "MIN", "MAX", "STDDEV", "DIFF", "RATE", "LOG",
                               "RUNNING_SUM", "FIRST", "LAST", "REMOVE_EMPTY", "DATAPOINT_COUNT",
                               "METRIC_COUNT", "TIME_SERIES", "PERIOD", "DAY", "SQRT", "NOT "]), inner)
      .map(lambda t: f"{t[0]}({t[1]})"),
    st.tuples(inner, st.sampled_from(["0", "REPEAT", "LINEAR", "m2", "AVG(m1)"]))
      .map(lambda t: f"FILL({t[0]}, {t[1]})"),
    st.tuples(inner, inner, inner).map(lambda t: f"IF({t[0]}, {t[1]}, {t[2]})"),
    st.tuples(inner, st.sampled_from(["AVG", "MAX"]), st.sampled_from(["ASC", "DESC"]), inner)
      .map(lambda t: f"SORT({t[0]}, {t[1]}, {t[2]}, {t[3]})"),
    st.tuples(inner, inner).map(lambda t: f"SLICE({t[0]}, {t[1]})"),
    st.lists(inner, min_size=1, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
), max_leaves=12)


def check_anything(text):
    try:
        tree = parse(text)
    except QueryError as error:
        assert error.span is not None
        error.render()
        return
    assert without_spans(parse(render(tree))) == without_spans(tree)
    try:
        result = evaluate(tree, make_ctx(), text=text)
    except QueryError as error:
        error.render()
        return
    if isinstance(result, float):
        return
    for s in result:
        assert isinstance(s, Series)
        assert np.isfinite(s.values).all()
        assert (np.diff(s.timestamps) > 0).all()


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=40))
def test_fuzz_random_text(text):
    check_anything(text)


@FUZZ
@given(token_soup)
def test_fuzz_token_soup(text):
    check_anything(text)


@settings(FUZZ, max_examples=100)
@given(well_formed)
def test_fuzz_well_formed(text):
    check_anything(text)
