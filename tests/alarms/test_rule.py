"""Composite AlarmRule: parse table (trees and positioned errors), evaluation, composites."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarms.model import ALARM, INSUFFICIENT_DATA, OK, ChildState, CompositeAlarm
from alarms.rule import (MAX_CHILDREN, MAX_RULE_LENGTH, And, Constant, Not, Or, StateFunction,
                         alarm_name, aws_message, evaluate_composite, evaluate_rule, find_cycle,
                         parse_rule, referenced_alarms, referenced_in_order, render)
from query.errors import QueryError, QuerySyntaxError, Span

UTC = timezone.utc
A, B, C = StateFunction("ALARM", "a"), StateFunction("ALARM", "b"), StateFunction("ALARM", "c")


class Error:
    """Expected error: type, message and 0-based offset of the span start."""

    def __init__(self, message: str, at: int, kind: type = QuerySyntaxError):
        self.message, self.at, self.kind = message, at, kind


PARSE_CASES = [
    # documented examples
    ("ALARM(CPUUtilizationTooHigh) AND NOT ALARM(DeploymentInProgress)",
     And((StateFunction("ALARM", "CPUUtilizationTooHigh"),
          Not(StateFunction("ALARM", "DeploymentInProgress"))))),
    ('(ALARM("CPUUtilizationTooHigh") OR ALARM("DiskReadOpsTooHigh")) AND OK("NetworkOutTooHigh")',
     And((Or((StateFunction("ALARM", "CPUUtilizationTooHigh"),
              StateFunction("ALARM", "DiskReadOpsTooHigh"))),
          StateFunction("OK", "NetworkOutTooHigh")))),
    ("ALARM(a)", A),
    ("OK(a)", StateFunction("OK", "a")),
    ("INSUFFICIENT_DATA(a)", StateFunction("INSUFFICIENT_DATA", "a")),
    ("TRUE", Constant(True)),
    ("FALSE", Constant(False)),
    ("  ALARM ( a )  ", A),
    ("ALARM(a)AND(ALARM(b))", And((A, B))),
    # precedence NOT > AND > OR, flattening of chains
    ("ALARM(a) OR ALARM(b) AND ALARM(c)", Or((A, And((B, C))))),
    ("ALARM(a) AND ALARM(b) OR ALARM(c)", Or((And((A, B)), C))),
    ("ALARM(a) AND ALARM(b) AND ALARM(c)", And((A, B, C))),
    ("(ALARM(a) OR ALARM(b)) AND ALARM(c)", And((Or((A, B)), C))),
    ("NOT ALARM(a) AND ALARM(b)", And((Not(A), B))),
    ("NOT (ALARM(a) AND ALARM(b))", Not(And((A, B)))),
    ("NOT NOT TRUE", Not(Not(Constant(True)))),
    ("((((ALARM(a)))))", A),
    # names: ARNs, quoted names with spaces and specials, keyword-looking names
    ("ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high)",
     StateFunction("ALARM", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high")),
    ('ALARM("SampleQueue Oldest Age Alarm")', StateFunction("ALARM", "SampleQueue Oldest Age Alarm")),
    ('OK("a (b) AND c")', StateFunction("OK", "a (b) AND c")),
    ("ALARM(AND) OR ALARM(TRUE)", Or((StateFunction("ALARM", "AND"), StateFunction("ALARM", "TRUE")))),
    ("ALARM(my.alarm/with:odd_chars-1)", StateFunction("ALARM", "my.alarm/with:odd_chars-1")),
    ("ALARM(ÄÖÜ)", StateFunction("ALARM", "ÄÖÜ")),
    ("ALARM(a)\nOR\tOK(b)", Or((A, StateFunction("OK", "b")))),
    # errors, AWS wording, 0-based char offsets
    ("()", Error("Unsupported token ')' at char 1", 1)),
    # as CDK's AlarmRule.anyOf wrote it in aws/aws-cdk#13953, and AWS's answer
    ("(ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:SampleQueue Oldest Age Alarm) OR "
     "ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:SampleQueue Visible Messages Alarm))",
     Error("Unsupported token 'Oldest' at char 67, must be: ')'", 67)),
    ("ALARM(a b)", Error("Unsupported token 'b' at char 8, must be: ')'", 8)),
    ("ALARM(a) ALARM(b)", Error("Unsupported token 'ALARM' at char 9", 9)),
    ("ALARM(a) and ALARM(b)", Error("Unsupported token 'and' at char 9", 9)),
    ("alarm(a)", Error("Unsupported token 'alarm' at char 0", 0)),
    ("a OR b", Error("Unsupported token 'a' at char 0", 0)),
    ("ALARM(a) ANDROID", Error("Unsupported token 'ANDROID' at char 9", 9)),
    ("ALARM(a))", Error("Unsupported token ')' at char 8", 8)),
    ("ALARM()", Error("Unsupported token ')' at char 6, must be: an alarm name", 6)),
    ('ALARM("")', Error("Alarm name must not be empty", 6)),
    ('ALARM("a)', Error("Unsupported token '\"a)' at char 6, must be: an alarm name", 6)),
    ("NOT", Error("Unexpected end of AlarmRule at char 3", 3)),
    ("ALARM(a) OR", Error("Unexpected end of AlarmRule at char 11", 11)),
    ("(ALARM(a)", Error("Unexpected end of AlarmRule at char 9", 9)),
    ("", Error("Unexpected end of AlarmRule at char 0", 0)),
    ("   ", Error("Unexpected end of AlarmRule at char 3", 3)),
    ("ALARM(a) OR\n  OK(b) )", Error("Unsupported token ')' at char 20", 20)),
]


@pytest.mark.parametrize("text,expected", PARSE_CASES, ids=[c[0] or "<empty>" for c in PARSE_CASES])
def test_parse(text, expected):
    if isinstance(expected, Error):
        with pytest.raises(QueryError) as info:
            parse_rule(text)
        error = info.value
        assert type(error) is expected.kind
        assert (error.message, error.span.start) == (expected.message, expected.at)
        assert aws_message(error) == f"Error in AlarmRule [{expected.message}]"
        assert error.text == text
    else:
        rule = parse_rule(text)
        assert rule == expected
        assert parse_rule(render(rule)) == rule  # round trip


def test_error_rendering_points_at_the_token():
    with pytest.raises(QueryError) as info:
        parse_rule("ALARM(a) OR\n  OK(b) )")
    assert (info.value.line, info.value.column) == (2, 9)
    assert info.value.render() == ("line 2, column 9: Unsupported token ')' at char 20\n"
                                   "  OK(b) )\n        ^")


def test_spans():
    rule = parse_rule('(ALARM(a) OR OK("b c")) AND NOT TRUE')
    assert rule.span == Span(0, 36)
    group, negation = rule.operands
    assert group.span == Span(0, 23)
    assert group.operands[0].span == Span(1, 9)
    assert group.operands[1].span == Span(13, 22) and group.operands[1].quoted
    assert negation.span == Span(28, 36) and negation.operand.span == Span(32, 36)


def test_limits():
    many = " OR ".join(f"ALARM(a{i})" for i in range(MAX_CHILDREN + 1))
    with pytest.raises(QueryError, match="at most 100 alarms") as info:
        parse_rule(many)
    assert info.value.span.start == many.index(f"ALARM(a{MAX_CHILDREN})")
    same = " OR ".join("ALARM(a)" for _ in range(200))  # one child, 200 elements
    assert referenced_alarms(parse_rule(same)) == {"a"}
    with pytest.raises(QueryError, match="at most 500 elements"):
        parse_rule(" OR ".join(["(TRUE)"] * 251))  # 251 constants + 251 groups
    parse_rule(" OR ".join(["(TRUE)"] * 250))
    with pytest.raises(QueryError, match="at most 10240 characters"):
        parse_rule("TRUE" + " " * (MAX_RULE_LENGTH - 3))
    parse_rule("TRUE" + " " * (MAX_RULE_LENGTH - 4))
    parse_rule("NOT (" * 50 + "TRUE" + ")" * 50)  # 100 levels
    for deep in ("NOT " * 2500 + "TRUE", "(" * 3000 + "TRUE" + ")" * 3000, "NOT (" * 51 + "TRUE" + ")" * 51):
        with pytest.raises(QueryError, match="nested more than 100 levels"):
            parse_rule(deep)
    with pytest.raises(QueryError, match="longer than 255"):
        parse_rule(f'ALARM("{"x" * 256}")')


def test_referenced_alarms():
    rule = parse_rule('ALARM(b) OR (OK("a") AND NOT INSUFFICIENT_DATA(b)) OR ALARM(arn:aws:cloudwatch:r:1:alarm:c)')
    assert referenced_alarms(rule) == {"a", "b", "arn:aws:cloudwatch:r:1:alarm:c"}
    assert referenced_in_order(rule) == ["b", "a", "arn:aws:cloudwatch:r:1:alarm:c"]
    assert referenced_alarms(parse_rule("TRUE")) == set()


@pytest.mark.parametrize("reference,name", [
    ("cpu", "cpu"), ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu", "cpu"),
    ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:a:b", "a:b"), ("arn:aws:sns:x", "arn:aws:sns:x"),
])
def test_alarm_name(reference, name):
    assert alarm_name(reference) == name


EVAL_CASES = [
    # (rule, states, expected)
    ("ALARM(a)", {"a": ALARM}, True),
    ("ALARM(a)", {"a": OK}, False),
    ("NOT ALARM(a)", {"a": INSUFFICIENT_DATA}, True),
    ("NOT ALARM(a)", {"a": OK}, True),
    ("OK(a)", {"a": INSUFFICIENT_DATA}, False),
    ("INSUFFICIENT_DATA(a)", {"a": INSUFFICIENT_DATA}, True),
    ("ALARM(a) AND ALARM(b)", {"a": ALARM, "b": OK}, False),
    ("ALARM(a) OR ALARM(b)", {"a": OK, "b": ALARM}, True),
    ("ALARM(a) OR ALARM(b) AND ALARM(c)", {"a": ALARM, "b": OK, "c": OK}, True),
    ("(ALARM(a) OR ALARM(b)) AND ALARM(c)", {"a": ALARM, "b": OK, "c": OK}, False),
    ("ALARM(a) AND NOT ALARM(b)", {"a": ALARM, "b": INSUFFICIENT_DATA}, True),
    ("TRUE", {}, True),
    ("FALSE OR NOT TRUE", {}, False),
    ("ALARM(arn:aws:cloudwatch:us-east-1:1:alarm:a)", {"a": ALARM}, True),  # by name
    ("ALARM(arn:aws:cloudwatch:us-east-1:1:alarm:a)",
     {"arn:aws:cloudwatch:us-east-1:1:alarm:a": OK, "a": ALARM}, False),   # exact reference first
]


@pytest.mark.parametrize("text,states,expected", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_evaluate_rule(text, states, expected):
    assert evaluate_rule(parse_rule(text), states) is expected


def test_evaluate_rule_unknown_child():
    with pytest.raises(KeyError):
        evaluate_rule(parse_rule("ALARM(ghost)"), {})


# ---- composite alarms --------------------------------------------------------------------------

ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
T1 = datetime(2022, 7, 14, 16, 28, 57, 770000, tzinfo=UTC)
T2 = datetime(2022, 7, 22, 15, 57, 45, 394000, tzinfo=UTC)
NOW = datetime(2022, 7, 22, 15, 57, 46, tzinfo=UTC)


def composite(rule: str) -> CompositeAlarm:
    return CompositeAlarm(name="Main", arn=ARN + "Main", rule_text=rule)


def test_composite_created():
    children = {"Cpu": ChildState(ARN + "Cpu", OK, T1), "Net": ChildState(ARN + "Net", OK, T1)}
    result = evaluate_composite(composite("ALARM(Cpu) OR ALARM(Net)"), children, INSUFFICIENT_DATA, NOW)
    assert result.state == OK
    assert result.reason == f"{ARN}Main was created and its alarm rule evaluates to OK"
    assert result.reason_data_json == (
        '{"triggeringAlarms":[{"arn":"' + ARN + 'Cpu","state":{"value":"OK","timestamp":'
        '"2022-07-14T16:28:57.770+0000"}},{"arn":"' + ARN + 'Net","state":{"value":"OK",'
        '"timestamp":"2022-07-14T16:28:57.770+0000"}}]}')


def test_composite_child_transition():
    children = {"Cpu": ChildState(ARN + "Cpu", ALARM, T2), "Net": ChildState(ARN + "Net", OK, T1)}
    result = evaluate_composite(composite("ALARM(Cpu) OR ALARM(Net)"), children, OK, NOW, trigger="Cpu")
    assert result.state == ALARM
    assert result.reason == f"{ARN}Cpu transitioned to ALARM at Friday 22 July, 2022 15:57:45 UTC"
    assert json.loads(result.reason_data_json) == {"triggeringAlarms": [
        {"arn": ARN + "Cpu", "state": {"value": "ALARM", "timestamp": "2022-07-22T15:57:45.394+0000"}}]}


def test_composite_by_arn_and_constant_rules():
    children = {"Cpu": ChildState(ARN + "Cpu", ALARM, T2)}
    assert evaluate_composite(composite(f"ALARM({ARN}Cpu)"), children, OK, NOW).state == ALARM
    updated = evaluate_composite(composite("FALSE"), {}, ALARM, NOW, event="updated")
    assert (updated.state, updated.reason) == (OK, f"{ARN}Main was updated and its alarm rule evaluates to OK")
    assert updated.reason_data == {"triggeringAlarms": []}


CYCLES = [
    ({}, None),
    ({"a": ["b"], "b": ["c"], "c": []}, None),
    ({"a": ["b", "c"], "b": ["c"], "c": []}, None),  # diamond, no cycle
    ({"a": ["a"]}, ["a", "a"]),
    ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
    ({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
    ({"top": ["m1", "mid"], "mid": ["m2", "top"]}, ["mid", "top", "mid"]),
]


@pytest.mark.parametrize("graph,cycle", CYCLES)
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_find_cycle_deep_chain_is_iterative():
    graph = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    assert find_cycle(graph) is None
    graph["n5000"] = ["n0"]
    assert len(find_cycle(graph)) == 5002


# ---- fuzz: any text gives a Rule or a QueryError, nothing else -----------------------------------

_PIECES = st.sampled_from(["ALARM", "OK", "INSUFFICIENT_DATA", "TRUE", "FALSE", "AND", "OR", "NOT",
                           "(", ")", '"', " ", "a", "b c", "arn:aws:cloudwatch:r:1:alarm:x", "\n",
                           "ANDY", "é", "\t", '"q q"', "\x00", "\u00a0"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_PIECES, max_size=25).map("".join)))
def test_parse_rule_never_crashes(text):
    try:
        rule = parse_rule(text)
    except QueryError as error:
        assert error.text == text and error.message
        if error.span is not None:
            assert 0 <= error.span.start <= len(text)
        return
    assert parse_rule(render(rule)) == rule
    evaluate_rule(rule, {name: ALARM for name in referenced_alarms(rule)})
