"""The scheduler's batched datapoint fetch agrees with the GetMetricData code path.

One store, many alarms over the same series (different periods, statistics, units, ranges),
samples and statistic sets, hot and compacted rows: every alarm's matrix row must hold what
``compute_series`` (GetMetricStatistics / GetMetricData) computes for that alarm's periods.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from alarms.evaluate import evaluation_range
from alarms.scheduler import METRIC, _utc
from metricstore.operations.metrics import UNIT_CODE, StatSpec, compute_series
from metricstore.store.metrics import MetricBatch

NOW = 1_795_000_000.0 + 37  # a few seconds into a minute


def batch(rows):
    """rows: (series key index, ts seconds, value, weight, unit) samples and
    (key, ts, n, sum, min, max, unit) statistic sets."""
    b = MetricBatch(keys=[("T", "m", json.dumps([["H", f"h{i}"]], separators=(",", ":")))
                          for i in range(3)])
    for r in rows:
        if len(r) == 5:
            k, ts, v, w, unit = r
            b.s_key.append(k), b.s_ts.append(int(ts * 1000)), b.s_value.append(v)
            b.s_weight.append(w), b.s_unit.append(UNIT_CODE[unit]), b.s_hires.append(False)
        else:
            k, ts, n, total, lo, hi, unit = r
            b.t_key.append(k), b.t_ts.append(int(ts * 1000)), b.t_n.append(n), b.t_sum.append(total)
            b.t_min.append(lo), b.t_max.append(hi), b.t_unit.append(UNIT_CODE[unit])
            b.t_hires.append(False)
    return b.finalize()


@pytest.fixture
def server(open_server):
    return open_server(NOW)


def test_batched_fetch_matches_get_metric_data(server):
    rng = np.random.default_rng(3)
    old = [(k, NOW - 1800 + i * 7, float(rng.integers(0, 100)), float(rng.integers(1, 3)),
            "Seconds" if i % 5 else "Count") for k in range(3) for i in range(200)]
    sets = [(1, NOW - 400 + 13, 4.0, 100.0, 5.0, 60.0, "Seconds"),
            (2, NOW - 200, 2.0, 10.0, 1.0, 9.0, "Seconds")]
    new = [(k, NOW - 100 + i * 3, float(rng.normal(50, 20)), 1.0, "Seconds")
           for k in range(3) for i in range(33)]
    store, metrics = server.store, server.metrics
    store.write_sync(lambda w: metrics.insert(w, "000000000000", "us-east-1", batch(old), 0))
    store.write_sync(lambda w: metrics.compact(w))
    store.write_sync(lambda w: metrics.insert(w, "000000000000", "us-east-1", batch(sets + new), 0))

    service = server.alarms
    entries = []
    for i, (period, n, stat, unit) in enumerate([
            (60, 3, "Average", None), (60, 1, "Maximum", "Seconds"), (300, 2, "Sum", None),
            (120, 4, "SampleCount", "Count"), (60, 6, "p90", None), (300, 1, "p50", "Seconds"),
            (60, 2, "Minimum", None), (600, 1, "TM(10%:90%)", None), (60, 5, "IQM", "Seconds")]):
        for host in range(3):
            config = {"Namespace": "T", "MetricName": "m", "Dimensions": [{"Name": "H", "Value": f"h{host}"}],
                      "Period": period, "EvaluationPeriods": n, "Threshold": 50.0,
                      "ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": True}
            config["Statistic" if stat[0].isupper() and "(" not in stat and stat not in ("IQM",)
                   else "ExtendedStatistic"] = stat
            if unit:
                config["Unit"] = unit
            entries.append(service.build("000000000000", "us-east-1", f"a{i}-{host}", METRIC,
                                         config, NOW))
    for e in entries:
        e.series_id = metrics.series_id(e.account, e.region, *e.series_key)
    plan = service._plan(entries)
    values, counts = store.read_sync(lambda cur: plan.datapoints(cur, NOW))
    checked = 0
    for i, e in enumerate(entries):
        start, end = evaluation_range(e.model, _utc(NOW))
        spec = StatSpec.parse(e.model.statistic or e.model.extended_statistic)
        got = store.read_sync(lambda cur: compute_series(
            cur, metrics, [e.series_id], int(start.timestamp() * 1000), int(end.timestamp() * 1000),
            e.model.period, [spec], e.unit_code if e.unit_code >= 0 else None))
        if len(got) > 1:
            continue  # GetMetricData splits by unit; alarms without a Unit read all units together
        expected = np.full(plan.length[i], np.nan)
        for res in got.values():
            for b, v in zip(res["b"], res[spec.name]):
                expected[int(b)] = v
        row = values[i, values.shape[1] - plan.length[i]:]
        np.testing.assert_allclose(row, expected, rtol=1e-12, err_msg=f"{e.name} {e.config}")
        checked += 1
    assert checked >= 15
    # a batch reading few of the series filters by series id: same rows
    few = [i for i, e in enumerate(entries) if e.name.endswith("-0")]
    small = service._plan([entries[i] for i in few])
    assert plan.every_series and not small.every_series
    few_values, _ = store.read_sync(lambda cur: small.datapoints(cur, NOW))
    np.testing.assert_array_equal(few_values[:, -small.width:], values[few][:, -small.width:])
    # one alarm per series (the usual batch takes a shorter path): the same rows
    for k in range(len(entries) // 3):
        rows = [k * 3 + host for host in range(3)]
        one = service._plan([entries[i] for i in rows])
        assert one.single and not plan.single
        one_values, one_counts = store.read_sync(lambda cur: one.datapoints(cur, NOW))
        np.testing.assert_allclose(one_values[:, -one.width:], values[rows][:, -one.width:],
                                   rtol=1e-12, err_msg=entries[rows[0]].name)
    # series ids too sparse for a lookup table: found by binary search, the same rows
    plan.position = None
    sparse_values, sparse_counts = store.read_sync(lambda cur: plan.datapoints(cur, NOW))
    np.testing.assert_allclose(sparse_values, values, rtol=1e-12)
    np.testing.assert_allclose(sparse_counts, counts, rtol=1e-12)
    # alarms reading several units: the aggregate over all of them (R1.7)
    mixed = [i for i, e in enumerate(entries) if e.name.startswith("a0-")]
    assert all(np.isfinite(values[i]).sum() >= 1 for i in mixed)


def test_math_alarms_batched_match_one_by_one(server):
    """Metric-math alarms sharing a run get the datapoints each would get alone; alarms whose
    expressions could see the other queries of a shared run (functions, constants) run alone."""
    rng = np.random.default_rng(11)
    rows = [(k, NOW - 600 + i * 5, float(rng.integers(0, 100)), 1.0, "Seconds")
            for k in range(3) for i in range(120)]
    server.store.write_sync(lambda w: server.metrics.insert(w, "000000000000", "us-east-1",
                                                            batch(rows), 0))
    service = server.alarms

    def stat(qid, host, s, period=60):
        return {"Id": qid, "ReturnData": False, "MetricStat": {"Period": period, "Stat": s, "Metric": {
            "Namespace": "T", "MetricName": "m", "Dimensions": [{"Name": "H", "Value": f"h{host}"}]}}}

    expressions = ["m1 * 2 + m2", "(m1 - m2) / m2 * 100", "-m1 > 3 OR m2 < 40", "m1 ^ 2",
                   "FILL(m1, 0) + m2", "METRICS()", "m1 + 1 - m1 + 5"]
    entries = []
    for i, expression in enumerate(expressions):
        for n in (1, 3):
            metrics = [{"Id": "e1", "Expression": expression, "ReturnData": True},
                       stat("m1", i % 3, "Average"), stat("m2", (i + 1) % 3, "Maximum")]
            if expression == "METRICS()":
                metrics[1]["ReturnData"] = metrics[0]["ReturnData"] = False
                metrics = [{"Id": "e1", "Expression": "m1 + m2", "ReturnData": False}, *metrics[1:]]
                metrics.append({"Id": "e2", "Expression": "MAX(METRICS())", "ReturnData": True})
            config = {"Metrics": metrics, "EvaluationPeriods": n, "Threshold": 50.0,
                      "ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": True}
            entries.append(service.build("000000000000", "us-east-1", f"math-{i}-{n}", METRIC,
                                         config, NOW))
    batched = server.store.read_sync(lambda cur: service._math_batches(cur, entries, NOW))
    assert [e.math_queries is False for e in entries] == [
        e.config["Metrics"][0]["Expression"].startswith(("FILL", "m1 + m2")) for e in entries]
    assert len(batched) == sum(e.math_queries is not False for e in entries)
    for e in entries:
        alone = server.store.read_sync(lambda cur: service._math_datapoints(cur, e, NOW))
        assert alone, e.name
        if id(e) in batched:
            assert batched[id(e)] == alone, e.name
