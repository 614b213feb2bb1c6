"""Metric alarm evaluation: AWS's TreatMissingData tables, M of N, reasons and reason data.

Sources are in /work/shared/reference/alarms.md (R-numbers below).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from alarms.evaluate import (evaluate_metric_alarm, evaluation_interval, evaluation_range,
                             is_low_sample, minimum_samples, period_starts, range_length)
from alarms.model import (ALARM, INITIAL_REASON, INSUFFICIENT_DATA, OK, Datapoint, MetricAlarm,
                          format_long_date, initial_evaluation, java_double, to_json)

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 12, 5, 30, tzinfo=UTC)
RETAIN = "retain"


def alarm(**overrides) -> MetricAlarm:
    config = dict(name="cpu-high", arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu-high",
                  namespace="AWS/EC2", metric_name="CPUUtilization", statistic="Average",
                  period=60, evaluation_periods=3, threshold=1.0,
                  comparison_operator="GreaterThanThreshold")
    config.update(overrides)
    return MetricAlarm(**config)


def points(a: MetricAlarm, pattern: str, now: datetime = NOW, breach=2.0, ok=0.0) -> list[Datapoint]:
    """``0 - X - X`` over the newest slots of the evaluation range: X breaches, 0 does not,
    - is missing; the rightmost symbol is the newest completed period."""
    symbols = pattern.split()
    starts = period_starts(a, now)[-len(symbols):]
    return [Datapoint(start, breach if s == "X" else ok)
            for start, s in zip(starts, symbols) if s != "-"]


# ---- R2.4: the two documented tables, verbatim -----------------------------------------------
# (pattern, datapoints to alarm, {TreatMissingData: expected}); evaluation range 5, N = 3.
TABLES = [
    # Table 1: DatapointsToAlarm = EvaluationPeriods = 3
    ("0 - X - X", 3, dict(missing=OK, ignore=OK, breaching=OK, notBreaching=OK)),
    ("0 - - - -", 3, dict(missing=OK, ignore=OK, breaching=OK, notBreaching=OK)),
    ("- - - - -", 3, dict(missing=INSUFFICIENT_DATA, ignore=RETAIN, breaching=ALARM, notBreaching=OK)),
    ("0 X X - X", 3, dict(missing=ALARM, ignore=ALARM, breaching=ALARM, notBreaching=ALARM)),
    ("- - X - -", 3, dict(missing=ALARM, ignore=RETAIN, breaching=ALARM, notBreaching=OK)),
    # Table 2: DatapointsToAlarm = 2, EvaluationPeriods = 3
    ("0 - X - X", 2, dict(missing=ALARM, ignore=ALARM, breaching=ALARM, notBreaching=ALARM)),
    ("0 0 X 0 X", 2, dict(missing=ALARM, ignore=ALARM, breaching=ALARM, notBreaching=ALARM)),
    ("0 - X - -", 2, dict(missing=OK, ignore=OK, breaching=ALARM, notBreaching=OK)),
    ("- - - - 0", 2, dict(missing=OK, ignore=OK, breaching=ALARM, notBreaching=OK)),
    ("- - - X -", 2, dict(missing=ALARM, ignore=RETAIN, breaching=ALARM, notBreaching=OK)),
]
TABLE_CASES = [(pattern, m, treat, expected)
               for pattern, m, row in TABLES for treat, expected in row.items()]


@pytest.mark.parametrize("pattern,m,treat,expected", TABLE_CASES,
                         ids=[f"{p}|M={m}|{t}" for p, m, t, _ in TABLE_CASES])
@pytest.mark.parametrize("previous", [OK, ALARM, INSUFFICIENT_DATA])
def test_documented_missing_data_tables(pattern, m, treat, expected, previous):
    a = alarm(datapoints_to_alarm=m, treat_missing_data=treat)
    assert range_length(a.evaluation_periods) == 5
    result = evaluate_metric_alarm(a, points(a, pattern), previous, NOW)
    if expected == RETAIN:
        assert result.retained and result.state == previous
    else:
        assert not result.retained
        assert result.state == expected
        assert result.reason.startswith(("Threshold Crossed: ", "Insufficient Data: "))


# ---- R2.1 / R2.5: M of N and premature alarms --------------------------------------------------
M_OF_N = [
    # (N, M, treat, pattern over the newest slots, expected)
    (3, 3, "missing", "X X X", ALARM),
    (3, 3, "missing", "X 0 X", OK),
    (3, 2, "missing", "X 0 X", ALARM),
    (3, 2, "missing", "X 0 0", OK),
    (3, 1, "missing", "0 0 X", ALARM),
    (1, 1, "missing", "X", ALARM),
    (1, 1, "missing", "X 0", OK),
    (5, 3, "missing", "X 0 X 0 X", ALARM),
    (5, 3, "missing", "X X 0 0 0", OK),
    # only the N most recent real datapoints count when the range has enough of them
    (3, 3, "breaching", "X 0 X X X", ALARM),
    (3, 3, "breaching", "X X 0 X X", OK),
    (3, 3, "notBreaching", "0 X - X X", ALARM),  # reaches back over the gap
    # premature alarm (prose of "Avoiding premature transitions"): M = N = 3
    (3, 3, "missing", "- - - - X", OK),
    (3, 3, "missing", "- - - X -", OK),
    (3, 3, "missing", "- - X - -", ALARM),
    (3, 3, "missing", "- - X X -", ALARM),
    (3, 3, "missing", "- - X 0 -", OK),
    (3, 2, "missing", "- - - X X", ALARM),
]


@pytest.mark.parametrize("n,m,treat,pattern,expected", M_OF_N,
                         ids=[f"{m}of{n}|{t}|{p}" for n, m, t, p, _ in M_OF_N])
def test_m_of_n(n, m, treat, pattern, expected):
    a = alarm(evaluation_periods=n, datapoints_to_alarm=m, treat_missing_data=treat)
    assert evaluate_metric_alarm(a, points(a, pattern), OK, NOW).state == expected


def test_dynamodb_alarms_always_ignore_missing_data():
    a = alarm(namespace="AWS/DynamoDB", treat_missing_data="breaching")
    result = evaluate_metric_alarm(a, [], OK, NOW)
    assert result.retained and result.state == OK
    # with enough real data TreatMissingData plays no part
    assert evaluate_metric_alarm(a, points(a, "X X X"), OK, NOW).state == ALARM


@pytest.mark.parametrize("op,value,expected", [
    ("GreaterThanThreshold", 1.0, OK), ("GreaterThanThreshold", 1.5, ALARM),
    ("GreaterThanOrEqualToThreshold", 1.0, ALARM), ("GreaterThanOrEqualToThreshold", 0.5, OK),
    ("LessThanThreshold", 1.0, OK), ("LessThanThreshold", 0.5, ALARM),
    ("LessThanOrEqualToThreshold", 1.0, ALARM), ("LessThanOrEqualToThreshold", 1.5, OK),
])
def test_static_operators(op, value, expected):
    a = alarm(evaluation_periods=1, comparison_operator=op)
    start = period_starts(a, NOW)[-1]
    assert evaluate_metric_alarm(a, [Datapoint(start, value)], OK, NOW).state == expected


def test_new_alarm_starts_insufficient_data():
    first = initial_evaluation(NOW)
    assert (first.state, first.reason, first.reason_data) == (INSUFFICIENT_DATA, INITIAL_REASON, None)
    assert MetricAlarm(name="x").state_value == INSUFFICIENT_DATA


# ---- the evaluation range -----------------------------------------------------------------------

def test_evaluation_range_covers_completed_periods_only():
    a = alarm(period=300, evaluation_periods=3)
    start, end = evaluation_range(a, datetime(2026, 11, 26, 12, 4, 59, tzinfo=UTC))
    assert end == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)       # 12:00-12:05 is in progress
    assert start == end - timedelta(minutes=25)                     # 5 periods for N = 3
    start, end = evaluation_range(a, datetime(2026, 11, 26, 12, 5, tzinfo=UTC))
    assert end == datetime(2026, 11, 26, 12, 5, tzinfo=UTC)
    assert period_starts(a, datetime(2026, 11, 26, 12, 5, tzinfo=UTC))[-1] == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("n,length", [(1, 3), (2, 4), (3, 5), (5, 7), (6, 8), (9, 12), (30, 40)])
def test_range_length(n, length):
    assert range_length(n) == length


def test_datapoints_outside_the_range_are_ignored():
    a = alarm(evaluation_periods=1)
    start, end = evaluation_range(a, NOW)
    stale = [Datapoint(start - timedelta(minutes=1), 9.0), Datapoint(end, 9.0)]
    assert evaluate_metric_alarm(a, stale, OK, NOW).state == INSUFFICIENT_DATA


def test_nan_counts_as_missing():
    a = alarm(evaluation_periods=1)
    start = period_starts(a, NOW)[-1]
    assert evaluate_metric_alarm(a, [Datapoint(start, float("nan"))], OK, NOW).state == INSUFFICIENT_DATA


def test_two_datapoints_for_one_period_is_a_caller_bug():
    a = alarm(evaluation_periods=1)
    start = period_starts(a, NOW)[-1]
    with pytest.raises(ValueError):
        evaluate_metric_alarm(a, [Datapoint(start, 1.0), Datapoint(start + timedelta(seconds=5), 2.0)], OK, NOW)


@pytest.mark.parametrize("period,n,seconds", [(10, 3, 10), (30, 100, 10), (60, 5, 60),
                                              (3600, 24, 60), (3600, 25, 3600), (86400, 7, 3600)])
def test_evaluation_interval(period, n, seconds):
    assert evaluation_interval(alarm(period=period, evaluation_periods=n)) == seconds


# ---- R2.8: percentiles with low sample counts --------------------------------------------------

@pytest.mark.parametrize("stat,needed", [("p99", 1000), ("p50", 20), ("p90", 100), ("p10", 100),
                                         ("p99.9", 10000), ("p25", 40), ("p100", None),
                                         ("p0", None), ("tm99", None), (None, None)])
def test_minimum_samples(stat, needed):
    result = minimum_samples(stat)
    assert (result if result is None else float(result)) == needed


def test_low_sample_percentile_ignore_keeps_state():
    a = alarm(statistic=None, extended_statistic="p99", evaluation_periods=1,
              evaluate_low_sample_count_percentile="ignore")
    start = period_starts(a, NOW)[-1]
    low, enough = Datapoint(start, 5.0, sample_count=999), Datapoint(start, 5.0, sample_count=1000)
    assert is_low_sample(a, low) and not is_low_sample(a, enough)
    assert evaluate_metric_alarm(a, [low], OK, NOW).retained
    assert evaluate_metric_alarm(a, [enough], OK, NOW).state == ALARM
    evaluate = alarm(statistic=None, extended_statistic="p99", evaluation_periods=1,
                     evaluate_low_sample_count_percentile="evaluate")
    assert evaluate_metric_alarm(evaluate, [low], OK, NOW).state == ALARM
    unset = alarm(statistic=None, extended_statistic="p99", evaluation_periods=1)
    assert evaluate_metric_alarm(unset, [low], OK, NOW).state == ALARM


def test_extended_statistic_in_reason_data():
    a = alarm(statistic=None, extended_statistic="p90", evaluation_periods=1)
    start = period_starts(a, NOW)[-1]
    data = evaluate_metric_alarm(a, [Datapoint(start, 5.0, 100)], OK, NOW).reason_data
    assert data["extendedStatistic"] == "p90" and "statistic" not in data


# ---- R3: StateReason texts, reproducing real AWS messages ---------------------------------------

def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def series(start: datetime, step: int, values) -> list[Datapoint]:
    return [Datapoint(start + timedelta(seconds=step * i), v)
            for i, v in enumerate(values) if v is not None]


REASONS = [
    pytest.param(
        alarm(period=10, evaluation_periods=1, threshold=21.0, unit="Seconds"),
        [Datapoint(at(2026, 2, 26, 10, 13, 50), 21.5, 2)], at(2026, 2, 26, 10, 14, 3, 518000),
        ALARM, "Threshold Crossed: 1 datapoint [21.5 (26/02/26 10:13:50)] was greater than the "
               "threshold (21.0).", id="aws-rec-1-datapoint"),
    pytest.param(
        alarm(period=600, evaluation_periods=4, datapoints_to_alarm=2, threshold=10.7),
        series(at(2022, 11, 8, 2, 10), 600, [1.0, 2.0, 10.791661891275925, 10.708333333333332]),
        at(2022, 11, 8, 2, 50, 5), ALARM,
        "Threshold Crossed: 2 out of the last 4 datapoints [10.708333333333332 (08/11/22 02:40:00), "
        "10.791661891275925 (08/11/22 02:30:00)] were greater than the threshold (10.7) "
        "(minimum 2 datapoints for OK -> ALARM transition).", id="2-of-4"),
    pytest.param(
        alarm(period=300, evaluation_periods=2, datapoints_to_alarm=2, threshold=30.0,
              comparison_operator="GreaterThanOrEqualToThreshold"),
        series(at(2020, 10, 5, 6, 35), 300, [10.0, 10.0]), at(2020, 10, 5, 6, 45, 1), OK,
        "Threshold Crossed: 2 out of the last 2 datapoints [10.0 (05/10/20 06:40:00), "
        "10.0 (05/10/20 06:35:00)] were not greater than or equal to the threshold (30.0) "
        "(minimum 1 datapoint for ALARM -> OK transition).", id="ok-2-of-2"),
    pytest.param(
        alarm(period=60, evaluation_periods=5, datapoints_to_alarm=3, threshold=0.0),
        series(at(2021, 12, 21, 6, 41), 60, [5.0, 0.0, 7.0, 0.0, 0.0]),
        at(2021, 12, 21, 6, 46, 30), OK,
        "Threshold Crossed: 3 out of the last 5 datapoints [0.0 (21/12/21 06:45:00), "
        "0.0 (21/12/21 06:44:00), 0.0 (21/12/21 06:42:00)] were not greater than the threshold "
        "(0.0) (minimum 3 datapoints for ALARM -> OK transition).", id="ok-3-of-5"),
    pytest.param(
        alarm(period=60, evaluation_periods=20, datapoints_to_alarm=1, threshold=1.0,
              comparison_operator="GreaterThanOrEqualToThreshold", treat_missing_data="notBreaching"),
        [Datapoint(at(2024, 3, 16, 12, 15), 613.0)], at(2024, 3, 16, 12, 16, 45, 770000), ALARM,
        "Threshold Crossed: 1 out of the last 20 datapoints [613.0 (16/03/24 12:15:00)] was greater "
        "than or equal to the threshold (1.0) and 19 missing datapoints were treated as "
        "[NonBreaching] (minimum 1 datapoint for OK -> ALARM transition).", id="filled-nonbreaching"),
    pytest.param(
        alarm(period=60, evaluation_periods=30, datapoints_to_alarm=30, threshold=20.0),
        series(at(2024, 12, 6, 5, 5), 60, [59.0] * 28 + [60.0, 60.0]), at(2024, 12, 6, 5, 35, 10),
        ALARM,
        "Threshold Crossed: 30 out of the last 30 datapoints were greater than the threshold (20.0). "
        "The most recent datapoints which crossed the threshold: [60.0 (06/12/24 05:34:00), "
        "60.0 (06/12/24 05:33:00), 59.0 (06/12/24 05:32:00), 59.0 (06/12/24 05:31:00), "
        "59.0 (06/12/24 05:30:00)] (minimum 30 datapoints for OK -> ALARM transition).",
        id="30-of-30"),
    pytest.param(
        alarm(period=300, evaluation_periods=6, threshold=0.0,
              comparison_operator="LessThanOrEqualToThreshold"),
        series(at(2022, 9, 29, 21, 40), 300, [0.0] * 6), at(2022, 9, 29, 22, 10, 20), ALARM,
        "Threshold Crossed: 6 datapoints were less than or equal to the threshold (0.0). The most "
        "recent datapoints which crossed the threshold: [0.0 (29/09/22 22:05:00), "
        "0.0 (29/09/22 22:00:00), 0.0 (29/09/22 21:55:00), 0.0 (29/09/22 21:50:00), "
        "0.0 (29/09/22 21:45:00)].", id="6-datapoints-unset"),
    pytest.param(
        alarm(evaluation_periods=2, treat_missing_data="breaching"), [], NOW, ALARM,
        "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were "
        "treated as [Breaching].", id="all-missing-breaching"),
    pytest.param(
        alarm(evaluation_periods=1, treat_missing_data="notBreaching"), [], NOW, OK,
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was "
        "treated as [NonBreaching].", id="all-missing-notbreaching"),
    pytest.param(
        alarm(evaluation_periods=1), [], NOW, INSUFFICIENT_DATA,
        "Insufficient Data: 1 datapoint was unknown.", id="insufficient-1"),
    pytest.param(
        alarm(evaluation_periods=3), [], NOW, INSUFFICIENT_DATA,
        "Insufficient Data: 3 datapoints were unknown.", id="insufficient-3"),
    pytest.param(
        alarm(period=60, evaluation_periods=2, threshold=42.0, statistic="Sum"),
        [Datapoint(at(2023, 1, 9, 14, 1), 1.0, 1.0), Datapoint(at(2023, 1, 9, 14, 2), 0.0, 1.0)],
        at(2023, 1, 9, 14, 3, 25, 504000), OK,
        "Threshold Crossed: 2 datapoints [0.0 (09/01/23 14:02:00), 1.0 (09/01/23 14:01:00)] were "
        "not greater than the threshold (42.0).", id="ok-unset-2"),
    # [inf] forms: only filled datapoints decided, and an OK with only breaching real points
    pytest.param(
        alarm(evaluation_periods=3, datapoints_to_alarm=2, treat_missing_data="breaching"),
        [Datapoint(period_starts(alarm(), NOW)[-1], 0.0)], NOW, ALARM,
        "Threshold Crossed: 1 datapoint was received for 3 periods and 2 missing datapoints were "
        "treated as [Breaching].", id="received-and-filled"),
    pytest.param(
        alarm(evaluation_periods=3, datapoints_to_alarm=2, treat_missing_data="breaching"),
        [Datapoint(period_starts(alarm(), NOW)[-2], 5.0)], NOW, ALARM,
        "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (26/11/26 12:03:00)] was greater "
        "than the threshold (1.0) and 2 missing datapoints were treated as [Breaching] "
        "(minimum 2 datapoints for OK -> ALARM transition).", id="filled-breaching"),
    pytest.param(
        alarm(evaluation_periods=3), [Datapoint(period_starts(alarm(), NOW)[-1], 5.0)], NOW, OK,
        "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (26/11/26 12:04:00)] was greater "
        "than the threshold (1.0) (minimum 3 datapoints for OK -> ALARM transition).",
        id="ok-too-few-breaching"),
    pytest.param(
        alarm(evaluation_periods=3, datapoints_to_alarm=2, threshold=4.0),
        series(at(2026, 11, 26, 12, 0), 60, [1.0, 5.0, 6.0]), at(2026, 11, 26, 12, 3), ALARM,
        "Threshold Crossed: 2 out of the last 3 datapoints [6.0 (26/11/26 12:02:00), "
        "5.0 (26/11/26 12:01:00)] were greater than the threshold (4.0) "
        "(minimum 2 datapoints for OK -> ALARM transition).", id="brief-example"),
]


@pytest.mark.parametrize("a,datapoints,now,state,reason", REASONS)
def test_state_reason(a, datapoints, now, state, reason):
    result = evaluate_metric_alarm(a, datapoints, OK if state != OK else ALARM, now)
    assert (result.state, result.reason) == (state, reason)


# ---- R4: StateReasonData --------------------------------------------------------------------------

def test_reason_data_matches_aws_recording():
    a = alarm(period=10, evaluation_periods=1, threshold=21.0, unit="Seconds")
    result = evaluate_metric_alarm(a, [Datapoint(at(2026, 2, 26, 10, 13, 50), 21.5, 2)],
                                   INSUFFICIENT_DATA, at(2026, 2, 26, 10, 14, 3, 518000))
    assert result.reason_data_json == (
        '{"version":"1.0","queryDate":"2026-02-26T10:14:03.518+0000",'
        '"startDate":"2026-02-26T10:13:50.000+0000","unit":"Seconds","statistic":"Average",'
        '"period":10,"recentDatapoints":[21.5],"threshold":21.0,"evaluatedDatapoints":'
        '[{"timestamp":"2026-02-26T10:13:50.000+0000","sampleCount":2.0,"value":21.5}]}')


def test_reason_data_ok_lists_only_the_justifying_datapoints():
    # Real AWS: N = 2, M = 2, OK -> evaluatedDatapoints has N - M + 1 = 1 entry, the newest.
    a = alarm(period=60, evaluation_periods=2, threshold=42.0, statistic="Sum")
    result = evaluate_metric_alarm(
        a, [Datapoint(at(2023, 1, 9, 14, 1), 1.0, 1.0), Datapoint(at(2023, 1, 9, 14, 2), 0.0, 1.0)],
        ALARM, at(2023, 1, 9, 14, 3, 25, 504000))
    assert result.reason_data_json == (
        '{"version":"1.0","queryDate":"2023-01-09T14:03:25.504+0000",'
        '"startDate":"2023-01-09T14:01:00.000+0000","statistic":"Sum","period":60,'
        '"recentDatapoints":[1.0,0.0],"threshold":42.0,"evaluatedDatapoints":'
        '[{"timestamp":"2023-01-09T14:02:00.000+0000","sampleCount":1.0,"value":0.0}]}')


def test_reason_data_math_alarm_has_no_statistic():
    # Real AWS (Metrics Insights alarm): M = 1 -> only the newest breaching datapoint is evaluated.
    a = alarm(statistic=None, metrics=({"Id": "m2", "Expression": "SELECT SUM(x) FROM y",
                                        "ReturnData": True, "Period": 60},),
              evaluation_periods=3, datapoints_to_alarm=1, threshold=0.0)
    result = evaluate_metric_alarm(a, series(at(2022, 11, 8, 11, 23), 60, [20000.0] * 3), INSUFFICIENT_DATA,
                                   at(2022, 11, 8, 11, 26, 5, 399000))
    assert result.reason == (
        "Threshold Crossed: 3 out of the last 3 datapoints [20000.0 (08/11/22 11:25:00), 20000.0 "
        "(08/11/22 11:24:00), 20000.0 (08/11/22 11:23:00)] were greater than the threshold (0.0) "
        "(minimum 1 datapoint for OK -> ALARM transition).")
    assert result.reason_data_json == (
        '{"version":"1.0","queryDate":"2022-11-08T11:26:05.399+0000",'
        '"startDate":"2022-11-08T11:23:00.000+0000","period":60,'
        '"recentDatapoints":[20000.0,20000.0,20000.0],"threshold":0.0,'
        '"evaluatedDatapoints":[{"timestamp":"2022-11-08T11:25:00.000+0000","value":20000.0}]}')


def test_reason_data_all_missing_breaching_lists_filled_timestamps():
    a = alarm(evaluation_periods=2, datapoints_to_alarm=2, treat_missing_data="breaching")
    data = json.loads(evaluate_metric_alarm(a, [], OK, NOW).reason_data_json)
    assert data["recentDatapoints"] == [] and "startDate" not in data
    assert data["evaluatedDatapoints"] == [{"timestamp": "2026-11-26T12:04:00.000+0000"},
                                           {"timestamp": "2026-11-26T12:03:00.000+0000"}]


def test_reason_data_insufficient():
    data = evaluate_metric_alarm(alarm(unit="Percent"), [], OK, NOW).reason_data
    assert to_json(data) == ('{"version":"1.0","queryDate":"2026-11-26T12:05:30.000+0000",'
                             '"unit":"Percent","statistic":"Average","period":60,'
                             '"recentDatapoints":[],"threshold":1.0}')


# ---- anomaly-detection bands ------------------------------------------------------------------------

def band_alarm(**overrides):
    config = dict(statistic=None, threshold=None, threshold_metric_id="ad1",
                  comparison_operator="LessThanLowerOrGreaterThanUpperThreshold",
                  metrics=({"Id": "m1"}, {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"}))
    config.update(overrides)
    return alarm(**config)


def test_band_alarm_reason_matches_aws_example():
    a = band_alarm(evaluation_periods=1, datapoints_to_alarm=1)
    now = at(2019, 10, 3, 16, 0, 4, 650000)
    dp = Datapoint(at(2019, 10, 3, 15, 59), 0.0, lower=0.020599444741798756, upper=0.3006915352732461)
    result = evaluate_metric_alarm(a, [dp], OK, now)
    assert result.state == ALARM
    assert result.reason == (
        "Thresholds Crossed: 1 out of the last 1 datapoints [0.0 (03/10/19 15:59:00)] was less than "
        "the lower thresholds [0.020599444741798756] or greater than the upper thresholds "
        "[0.3006915352732461] (minimum 1 datapoint for OK -> ALARM transition).")
    assert result.reason_data["recentLowerThresholds"] == [0.020599444741798756]
    assert "threshold" not in result.reason_data
    ok = evaluate_metric_alarm(a, [Datapoint(dp.timestamp, 0.166666666664241, lower=0.0206719426210418,
                                             upper=0.30076870222143803)], ALARM, now)
    assert ok.reason == (
        "Thresholds Crossed: 1 out of the last 1 datapoints [0.166666666664241 (03/10/19 15:59:00)] "
        "was not less than the lower thresholds [0.0206719426210418] or not greater than the upper "
        "thresholds [0.30076870222143803] (minimum 1 datapoint for ALARM -> OK transition).")


@pytest.mark.parametrize("op,value,expected", [
    ("LessThanLowerThreshold", 0.5, ALARM), ("LessThanLowerThreshold", 5.0, OK),
    ("GreaterThanUpperThreshold", 5.0, ALARM), ("GreaterThanUpperThreshold", 0.5, OK),
    ("LessThanLowerOrGreaterThanUpperThreshold", 2.0, OK),
])
def test_band_operators(op, value, expected):
    a = band_alarm(evaluation_periods=1, comparison_operator=op)
    start = period_starts(a, NOW)[-1]
    assert evaluate_metric_alarm(a, [Datapoint(start, value, lower=1.0, upper=3.0)], OK, NOW).state == expected


def test_band_datapoint_without_band_counts_as_missing():
    a = band_alarm(evaluation_periods=1)
    start = period_starts(a, NOW)[-1]
    assert evaluate_metric_alarm(a, [Datapoint(start, 9.0)], OK, NOW).state == INSUFFICIENT_DATA


def test_static_operator_without_threshold_is_rejected():
    with pytest.raises(ValueError):
        evaluate_metric_alarm(alarm(threshold=None), [], OK, NOW)


# ---- formats ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,text", [
    (80.0, "80.0"), (10.25, "10.25"), (8.891518474692088, "8.891518474692088"), (1141.0, "1141.0"),
    (0.001, "0.001"), (9999999.0, "9999999.0"), (1e7, "1.0E7"), (12345678.9, "1.23456789E7"),
    (0.0001, "1.0E-4"), (-2.5e-5, "-2.5E-5"), (0.0, "0.0"), (-0.0, "-0.0"), (-3.0, "-3.0"),
    (float("inf"), "Infinity"), (float("nan"), "NaN"),
])
def test_java_double(value, text):
    assert java_double(value) == text


def test_long_date():
    assert format_long_date(at(2022, 7, 22, 15, 57, 45, 394000)) == "Friday 22 July, 2022 15:57:45 UTC"
    assert format_long_date(at(2021, 11, 1, 2, 3, 4)) == "Monday 01 November, 2021 02:03:04 UTC"
