"""Alarm evaluation tick: 10,000 metric alarms over 10,000 series.

Builds a store in a temporary directory (10,000 series, 30 samples each over the last six
minutes, in the clustered and in the hot table), 10,000 alarms with mixed statistics
(Average, Sum, Minimum, Maximum, SampleCount, and p90/p99 for one alarm in ten), periods of
60 and 300 s and 1 to 5 evaluation periods, then times

* ``tick``: :meth:`AlarmService.tick` when every alarm is due and none changes state (the
  steady state): picking the due alarms, the batched SQL, the bulk evaluation, the commit;
* ``fetch+evaluate``: the part of it on the read thread;
* ``first tick``: the tick right after creation, when most alarms leave INSUFFICIENT_DATA
  (state rows, history items);
* ``hand SQL``: one hand-written query that fetches the same datapoints (per series and
  minute: count, sum, min, max over the longest evaluation range), the floor for any
  implementation that reads the data.

Run: ``.venv/bin/python bench/alarms.py [--alarms N] [--repeat R]``.  Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metricstore.app import Server  # noqa: E402
from metricstore.clock import FixedClock  # noqa: E402
from metricstore.config import Config  # noqa: E402
from metricstore.store import alarms as sql  # noqa: E402
from metricstore.store.metrics import MetricBatch  # noqa: E402

STATS = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"]


def build(server: Server, count: int, now: float, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    ms = int(now * 1000)
    batch = MetricBatch()
    batch.keys = [("Bench", "load", json.dumps([["Host", f"h{i:05d}"]], separators=(",", ":")))
                  for i in range(count)]
    per_series = 30
    keys = np.repeat(np.arange(count), per_series)
    offsets = np.tile(np.arange(per_series) * 12_000, count)        # one every 12 s, 6 minutes
    batch.s_key = keys
    batch.s_ts = ms - 360_000 + offsets
    batch.s_value = rng.gamma(2.0, 20.0, size=len(keys))
    batch.s_weight = np.ones(len(keys))
    batch.s_unit = np.zeros(len(keys), dtype=np.uint8)
    batch.s_hires = np.zeros(len(keys), dtype=bool)
    batch.finalize()
    half = len(keys) // 2
    first, second = MetricBatch(keys=batch.keys), MetricBatch(keys=batch.keys)
    for name in ("s_key", "s_ts", "s_value", "s_weight", "s_unit", "s_hires"):
        column = getattr(batch, name)
        setattr(first, name, column[:half])
        setattr(second, name, column[half:])
    for name in ("t_key", "t_ts", "t_n", "t_sum", "t_min", "t_max", "t_unit", "t_hires"):
        setattr(first, name, np.empty(0))
        setattr(second, name, np.empty(0))
    store = server.store
    store.write_sync(lambda w: server.metrics.insert(w, "000000000000", "us-east-1", first, ms))
    store.write_sync(lambda w: server.metrics.compact(w))           # half clustered, half hot
    store.write_sync(lambda w: server.metrics.insert(w, "000000000000", "us-east-1", second, ms))

    rows = []
    for i in range(count):
        config = {"Namespace": "Bench", "MetricName": "load",
                  "Dimensions": [{"Name": "Host", "Value": f"h{i:05d}"}],
                  "Period": 60 if i % 4 else 300, "EvaluationPeriods": int(rng.integers(1, 6)),
                  "Threshold": float(rng.choice([30.0, 60.0, 1e9])),
                  "ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": True,
                  "TreatMissingData": ["missing", "notBreaching", "breaching", "ignore"][i % 4]}
        if i % 10 == 0:
            config["ExtendedStatistic"] = "p99" if i % 20 else "p90"
        else:
            config["Statistic"] = STATS[i % len(STATS)]
        if config["Period"] == 300:
            config["EvaluationPeriods"] = 1
        rows.append({"account": "000000000000", "region": "us-east-1", "name": f"alarm-{i:05d}",
                     "alarm_type": "MetricAlarm", "config": json.dumps(config),
                     "config_updated": ms, "actions_enabled": True,
                     "state_value": "INSUFFICIENT_DATA",
                     "state_reason": "Unchecked: Initial alarm creation",
                     "state_reason_data": None, "state_updated": ms, "state_transitioned": ms,
                     "suppressed_by": None, "suppressed_until": None, "suppress_pending": None})

    def save(w):
        for row in rows:
            sql.save_alarm(w, row)
    store.write_sync(save)
    server.alarms.reload()


def hand_sql(cur, count: int, now: float) -> int:
    """The datapoints of all alarms in one statement: per series and minute over the longest
    range (7 minutes), count, sum, minimum and maximum."""
    end = int(now) - int(now) % 60
    rows = cur.execute(
        "SELECT series_id, ts // 60000 AS minute, count(*), sum(value), min(value), max(value) "
        "FROM (SELECT series_id, ts, value FROM samples WHERE ts >= $lo AND ts < $hi "
        "UNION ALL SELECT series_id, ts, value FROM samples_hot WHERE ts >= $lo AND ts < $hi) "
        "GROUP BY ALL", {"lo": (end - 7 * 60) * 1000, "hi": end * 1000}).fetchnumpy()
    return len(rows["series_id"])


async def run(count: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=tmp, ingest_workers=0, alarm_interval=60)
        # A fixed clock: every tick sees the same periods, so the steady state has no
        # transitions (with the wall clock, a minute boundary would move every alarm's range).
        server = Server(config, FixedClock(time.time()))
        server.open()
        service = server.alarms
        now = server.clock.now()
        t = time.perf_counter()
        build(server, count, now)
        setup = time.perf_counter() - t

        t = time.perf_counter()
        changed_first = await service.tick()
        first = time.perf_counter() - t

        ticks, evaluations, hands, cpu = [], [], [], []
        now = server.clock.now()
        for _ in range(repeat):
            for entry in service.entries.values():
                entry.due_at = 0.0
            due = service.metric_alarms()
            previous = [e.state_value for e in due]
            t = time.perf_counter()
            await server.store.read(lambda cur: service.evaluate_sync(cur, due, previous, now))
            evaluations.append(time.perf_counter() - t)
            for entry in service.entries.values():
                entry.due_at = 0.0
            t, c = time.perf_counter(), time.process_time()
            changed = await service.tick()
            ticks.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            t = time.perf_counter()
            await server.store.read(lambda cur: hand_sql(cur, count, now))
            hands.append(time.perf_counter() - t)
        states = {}
        for entry in service.entries.values():
            states[entry.state_value] = states.get(entry.state_value, 0) + 1
        server.close()
    return {"alarms": count, "setup_s": setup, "first_tick_s": first, "first_changes": changed_first,
            "tick_s": statistics.median(ticks), "tick_max_s": max(ticks),
            "tick_cpu_s": statistics.median(cpu),
            "evaluate_s": statistics.median(evaluations), "hand_sql_s": statistics.median(hands),
            "last_changes": changed, "states": states}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    r = asyncio.run(run(args.alarms, args.repeat))
    print(f"## Alarm evaluation tick ({r['alarms']:,} metric alarms over {r['alarms']:,} series)\n")
    load = os.getloadavg()[0]
    print(f"Machine: {os.cpu_count()} cores, load average {load:.1f} while running; median of "
          f"{args.repeat} ticks; states after the first tick: {r['states']}.\n")
    print("| measure | time | note |")
    print("| --- | ---: | --- |")
    print(f"| tick (steady state, all due) | {r['tick_s'] * 1000:.1f} ms | max {r['tick_max_s'] * 1000:.1f} ms, "
          f"{r['last_changes']} state changes |")
    print(f"| tick CPU time (all threads) | {r['tick_cpu_s'] * 1000:.1f} ms | process CPU seconds "
          f"per tick: less sensitive to other load than wall time |")
    print(f"| fetch + evaluate (read thread) | {r['evaluate_s'] * 1000:.1f} ms | batched SQL + bulk evaluation |")
    print(f"| hand-written batched SQL | {r['hand_sql_s'] * 1000:.1f} ms | same datapoints, one statement |")
    print(f"| ratio tick / hand SQL | {r['tick_s'] / r['hand_sql_s']:.1f}x | |")
    print(f"| first tick | {r['first_tick_s'] * 1000:.0f} ms | {r['first_changes']:,} transitions "
          f"written (state, history) |")


if __name__ == "__main__":
    main()
