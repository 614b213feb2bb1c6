"""The bulk evaluator gives exactly what evaluate_metric_alarm gives, alarm by alarm."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alarms import engine
from alarms.evaluate import evaluate_metric_alarm, period_starts
from alarms.model import ALARM, INSUFFICIENT_DATA, OK, STATIC_OPERATORS, Datapoint, MetricAlarm

NOW = datetime(2026, 11, 26, 12, 7, 42, tzinfo=timezone.utc)

alarm_configs = st.builds(
    lambda n, m, op, thr, treat, period, pct, low: MetricAlarm(
        name="a", period=period, evaluation_periods=n, datapoints_to_alarm=min(m, n) if m else None,
        comparison_operator=op, threshold=thr, treat_missing_data=treat,
        statistic=None if pct else "Average", extended_statistic="p90" if pct else None,
        evaluate_low_sample_count_percentile=low, namespace="Test", metric_name="m"),
    st.integers(1, 6), st.one_of(st.none(), st.integers(1, 6)), st.sampled_from(STATIC_OPERATORS),
    st.sampled_from([0.0, 1.0, 2.5]), st.sampled_from([None, "missing", "ignore", "breaching",
                                                       "notBreaching"]),
    st.sampled_from([10, 60, 300]), st.booleans(), st.sampled_from([None, "evaluate", "ignore"]))

slot = st.one_of(st.none(), st.tuples(st.sampled_from([0.0, 1.0, 2.5, 3.0, float("nan")]),
                                      st.sampled_from([1.0, 50.0, 500.0])))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(alarm_configs, st.lists(slot, min_size=8, max_size=8),
                          st.sampled_from([OK, ALARM, INSUFFICIENT_DATA])), min_size=1, max_size=6))
def test_bulk_matches_single_evaluation(cases):
    alarms = [c[0] for c in cases]
    width = engine.width(alarms)
    values = np.full((len(cases), width), np.nan)
    counts = np.full((len(cases), width), np.nan)
    expected = []
    for i, (alarm, slots, previous) in enumerate(cases):
        starts = period_starts(alarm, NOW)
        points = []
        for j, start in enumerate(starts):
            s = slots[j]
            if s is None:
                continue
            col = width - len(starts) + j
            values[i, col], counts[i, col] = s
            points.append(Datapoint(start, s[0], s[1]))
        result = evaluate_metric_alarm(alarm, points, previous, NOW)
        if not result.retained and result.state != previous:
            expected.append((i, result))
    got = engine.evaluate_bulk(alarms, [c[2] for c in cases], values, counts, NOW)
    assert [(i, e.state, e.reason, e.reason_data) for i, e in got] == \
        [(i, e.state, e.reason, e.reason_data) for i, e in expected]


def test_right_alignment_and_row_datapoints():
    short = MetricAlarm(name="s", period=60, evaluation_periods=1, threshold=1.0,
                        statistic="Average", namespace="T", metric_name="m")
    long = MetricAlarm(name="l", period=60, evaluation_periods=6, threshold=1.0,
                       statistic="Average", namespace="T", metric_name="m")
    assert engine.width([short, long]) == 8
    values = np.full((1, 8), np.nan)
    values[0, 7] = 5.0
    points = engine.row_datapoints(short, values[0], np.full(8, np.nan), NOW)
    assert points == [Datapoint(datetime(2026, 11, 26, 12, 6, tzinfo=timezone.utc), 5.0, None)]
    assert engine.evaluate_bulk([short], [INSUFFICIENT_DATA], values, np.full((1, 8), np.nan),
                                NOW)[0][1].state == ALARM
    assert points[0].timestamp + timedelta(minutes=1) <= NOW


def test_wide_ranges_match_single_evaluation():
    """Patterns too long to key by an integer (two bits a period, with the rule number, in 63
    bits) are keyed by their bytes: same results."""
    rng = np.random.default_rng(4)
    alarms, previous = [], []
    for i in range(60):
        n = [40, 3, 31][i % 3]
        alarms.append(MetricAlarm(
            name=f"a{i}", period=60, evaluation_periods=n,
            datapoints_to_alarm=max(1, n // (1 + i % 4)),
            comparison_operator=STATIC_OPERATORS[i % 4], threshold=1.0,
            treat_missing_data=["missing", "ignore", "breaching", "notBreaching"][i // 3 % 4],
            statistic="Average", namespace="T", metric_name="m"))
        previous.append([OK, ALARM, INSUFFICIENT_DATA][i % 3])
    width = engine.width(alarms)
    plan = engine.Plan(alarms)
    values = np.where(rng.random((len(alarms), width)) < 0.3, np.nan,
                      rng.choice([0.0, 1.0, 2.0], size=(len(alarms), width)))
    values[1::6] = values[0::6]        # repeated patterns share one decision
    counts = np.where(np.isnan(values), np.nan, 1.0)
    codes = np.zeros((len(alarms), width), dtype=np.uint8)
    assert engine._pattern_keys(plan.rule_ids, codes).dtype.kind == "V"
    assert engine._pattern_keys(plan.rule_ids, codes[:, :20]).dtype == np.int64
    expected = []
    for i, alarm in enumerate(alarms):
        points = engine.row_datapoints(alarm, values[i], counts[i], NOW)
        result = evaluate_metric_alarm(alarm, points, previous[i], NOW)
        if not result.retained and result.state != previous[i]:
            expected.append((i, result))
    got = engine.evaluate_bulk(plan, previous, values, counts, NOW)
    assert len(got) > 10
    assert [(i, e.state, e.reason, e.reason_data) for i, e in got] == \
        [(i, e.state, e.reason, e.reason_data) for i, e in expected]
