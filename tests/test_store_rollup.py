"""Retention tiers and compaction of the metric store (in-process, table-driven)."""
from __future__ import annotations

import numpy as np
import pytest

from metricstore.store.db import Store
from metricstore.store.metrics import DAY_MS, HOUR_MS, MetricBatch, MetricsStore

NOW = 1_800_000_000_000   # a fixed "now" (epoch ms), minute-aligned
assert NOW % 3_600_000 == 0


def batch(points):
    """points: [(ts_ms, value, weight)] for one series."""
    b = MetricBatch(keys=[("NS", "M", "[]")])
    for ts, v, w in points:
        b.s_key.append(0)
        b.s_ts.append(ts)
        b.s_value.append(v)
        b.s_weight.append(w)
        b.s_unit.append(0)
        b.s_hires.append(True)
    return b.finalize()


@pytest.fixture
def ms():
    store = Store(":memory:")
    yield store, MetricsStore(store)
    store.close()


def rows(store):
    return store.read_sync(lambda c: c.execute(
        "SELECT ts, value, weight FROM (SELECT * FROM samples UNION ALL SELECT * FROM samples_hot)"
        " ORDER BY ts, value").fetchall())


@pytest.mark.parametrize("age_ms, granularity_ms", [
    (2 * HOUR_MS, 1),              # younger than 3 h: full resolution kept
    (4 * HOUR_MS, 60_000),         # 3 h .. 15 d: 1-minute
    (20 * DAY_MS, 300_000),        # 15 d .. 63 d: 5-minute
    (100 * DAY_MS, 3_600_000),     # 63 d .. 455 d: 1-hour
])
def test_rollup_truncates_to_the_tier_and_keeps_weights(ms, age_ms, granularity_ms):
    store, metrics = ms
    base = NOW - age_ms
    pts = [(base + 7_000, 5.0, 1.0), (base + 13_000, 5.0, 2.0), (base + 29_000, 9.0, 1.0)]
    store.write_sync(lambda w: metrics.insert(w, "a", "r", batch(pts), NOW))
    store.write_sync(lambda w: metrics.rollup(w, NOW))
    got = rows(store)
    expected = {}
    for ts, v, w in pts:
        key = (ts - ts % granularity_ms, v)
        expected[key] = expected.get(key, 0.0) + w
    assert sorted((ts, v, w) for (ts, v), w in expected.items()) == got
    # the total weight (sample count) never changes
    assert sum(w for _, _, w in got) == 4.0


def test_data_older_than_455_days_is_deleted(ms):
    store, metrics = ms
    store.write_sync(lambda w: metrics.insert(w, "a", "r", batch([
        (NOW - 456 * DAY_MS, 1.0, 1.0), (NOW - 454 * DAY_MS, 2.0, 1.0)]), NOW))
    store.write_sync(lambda w: metrics.rollup(w, NOW))
    assert [v for _, v, _ in rows(store)] == [2.0]


def test_compaction_moves_hot_rows_sorted_by_series(ms):
    store, metrics = ms
    b = MetricBatch(keys=[("NS", "B", "[]"), ("NS", "A", "[]")])
    for i in range(10):
        b.s_key.append(i % 2)
        b.s_ts.append(NOW - i * 1000)
        b.s_value.append(float(i))
        b.s_weight.append(1.0)
        b.s_unit.append(0)
        b.s_hires.append(False)
    store.write_sync(lambda w: metrics.insert(w, "a", "r", b.finalize(), NOW))
    assert store.write_sync(metrics.compact) == 10
    hot, cold = store.read_sync(lambda c: c.execute(
        "SELECT (SELECT count(*) FROM samples_hot), (SELECT count(*) FROM samples)").fetchone())
    assert (hot, cold) == (0, 10)
    order = store.read_sync(lambda c: c.execute("SELECT series_id, ts FROM samples").fetchall())
    assert order == sorted(order)


def test_failed_write_in_a_batch_rolls_back_only_itself(ms):
    """Group commit: one failing writer must not lose the others' data."""
    import asyncio
    store, metrics = ms

    async def main():
        good = store.write(lambda w: metrics.insert(w, "a", "r", batch([(NOW, 1.0, 1.0)]), NOW))

        def bad(w):
            metrics.insert(w, "a", "r", batch([(NOW, 2.0, 1.0)]), NOW)
            raise RuntimeError("boom")
        bad_f = store.write(bad)
        res = await asyncio.gather(good, bad_f, return_exceptions=True)
        return res
    res = asyncio.run(main())
    assert res[0] == 1 and isinstance(res[1], RuntimeError)
    assert [v for _, v, _ in rows(store)] == [1.0]


def test_closed_spans_are_reclustered_into_one_sorted_run(ms):
    """Several compaction runs over one closed 3-hour span become one run sorted by series."""
    from metricstore.store.metrics import SPAN_MS
    store, metrics = ms
    span_start = NOW - 2 * SPAN_MS           # closed: ended SPAN_MS ago
    for run in range(3):                      # three compactions, each with all series
        b = MetricBatch(keys=[("NS", f"M{k}", "[]") for k in range(4)])
        for k in range(4):
            b.s_key.append(k)
            b.s_ts.append(span_start + run * 60_000)
            b.s_value.append(float(run))
            b.s_weight.append(1.0)
            b.s_unit.append(0)
            b.s_hires.append(False)
        store.write_sync(lambda w, b=b: metrics.insert(w, "a", "r", b.finalize(), NOW))
        store.write_sync(metrics.compact)
    before = store.read_sync(lambda c: c.execute("SELECT series_id FROM samples").fetchall())
    assert before != sorted(before)          # three runs, each sorted on its own
    assert store.write_sync(lambda w: metrics.recluster(w, NOW)) == 1
    after = store.read_sync(lambda c: c.execute("SELECT series_id, ts FROM samples").fetchall())
    assert after == sorted(after) and len(after) == 12
    assert store.write_sync(lambda w: metrics.recluster(w, NOW)) == 0   # nothing dirty left
