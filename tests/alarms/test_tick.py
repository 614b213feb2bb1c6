"""The evaluation tick in process: the batches it keeps from one tick to the next must not
change what it decides.

The tick caches, per set of due alarms, which are single-metric and which metric math and
how to read them; these tests change what the cache could get wrong: a series that appears
after its alarm, a mix of single-metric and metric-math alarms (results are mapped back by
position), and due sets that differ from tick to tick.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from alarms.model import ALARM, INSUFFICIENT_DATA, OK
from alarms.scheduler import METRIC
from metricstore import stats
from metricstore.operations.metrics import UNIT_CODE
from metricstore.store.metrics import MetricBatch

NOW = 1_795_000_020.0 + 3      # three seconds into a minute
ACCOUNT, REGION = "000000000000", "us-east-1"


def put_samples(server, host: str, points: list[tuple[float, float]]) -> None:
    """(ts seconds, value) samples of metric T/m with dimension H=host."""
    b = MetricBatch(keys=[("T", "m", json.dumps([["H", host]], separators=(",", ":")))])
    for ts, value in points:
        b.s_key.append(0), b.s_ts.append(int(ts * 1000)), b.s_value.append(value)
        b.s_weight.append(1.0), b.s_unit.append(UNIT_CODE["None"]), b.s_hires.append(False)
    b.finalize()
    server.store.write_sync(lambda w: server.metrics.insert(w, ACCOUNT, REGION, b, 0))


def stat_config(host: str, period: int = 60, statistic: str = "Maximum",
                threshold: float = 50.0) -> dict:
    return {"Namespace": "T", "MetricName": "m", "Dimensions": [{"Name": "H", "Value": host}],
            "Period": period, "EvaluationPeriods": 1, "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing",
            ("ExtendedStatistic" if statistic.startswith("p") else "Statistic"): statistic,
            "ActionsEnabled": True}


def math_config(host: str) -> dict:
    stat = {"Metric": {"Namespace": "T", "MetricName": "m",
                       "Dimensions": [{"Name": "H", "Value": host}]},
            "Period": 60, "Stat": "Maximum"}
    return {"Metrics": [{"Id": "e1", "Expression": "m1 * 2", "ReturnData": True},
                        {"Id": "m1", "MetricStat": stat, "ReturnData": False}],
            "EvaluationPeriods": 1, "Threshold": 50.0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing",
            "ActionsEnabled": True}


@pytest.fixture
def server(open_server):
    return open_server(NOW)


def put_alarms(server, configs: dict[str, dict]) -> None:
    service = server.alarms

    async def put():
        for name, config in configs.items():
            entry = service.build(ACCOUNT, REGION, name, METRIC, config, server.clock.now())
            async with service.lock:
                await service.put(entry, service.get(ACCOUNT, REGION, name), None)
    asyncio.run(put())


def tick(server) -> dict[str, str]:
    asyncio.run(server.alarms.tick())
    return {e.name: e.state_value for e in server.alarms.metric_alarms()}


def last_minute(server) -> float:
    """Start of the newest completed minute."""
    now = server.clock.now()
    return now - now % 60 - 60


def test_alarm_whose_series_appears_later(server):
    put_samples(server, "h1", [(last_minute(server) + 5, 10.0)])
    put_alarms(server, {"late": stat_config("h0"), "early": stat_config("h1")})
    assert tick(server) == {"late": INSUFFICIENT_DATA, "early": OK}

    server.clock.advance(60)
    put_samples(server, "h0", [(last_minute(server) + 5, 80.0)])   # the series is new
    put_samples(server, "h1", [(last_minute(server) + 5, 20.0)])
    assert tick(server) == {"late": ALARM, "early": OK}
    late = server.alarms.get(ACCOUNT, REGION, "late")
    assert json.loads(late.state_reason_data)["recentDatapoints"] == [80.0]


def test_math_and_single_metric_alarms_keep_their_own_results(server):
    # metric math first: the single-metric alarms sit at other positions of the due list
    # than in their plan
    put_alarms(server, {"math-0": math_config("h0"), "low": stat_config("h0"),
                        "math-1": math_config("h1"), "high": stat_config("h1"),
                        "p90": stat_config("h2", statistic="p90")})
    minute = last_minute(server)
    put_samples(server, "h0", [(minute + 5, 30.0)])                 # 60 doubled: ALARM
    put_samples(server, "h1", [(minute + 5, 70.0)])
    put_samples(server, "h2", [(minute + s, float(s)) for s in range(60)])
    states = tick(server)
    assert states == {"math-0": ALARM, "low": OK, "math-1": ALARM, "high": ALARM, "p90": ALARM}
    data = {e.name: json.loads(e.state_reason_data)["recentDatapoints"]
            for e in server.alarms.metric_alarms()}
    p90 = stats.compute(stats.parse_extended_statistic("p90"), [float(s) for s in range(60)])
    assert data == {"math-0": [60.0], "low": [30.0], "math-1": [140.0], "high": [70.0],
                    "p90": [p90]}


def test_due_sets_that_change_from_tick_to_tick(server):
    # 10-second alarms are due at every tick, the minute ones at every sixth
    put_alarms(server, {"fast-a": stat_config("h0", period=10), "slow": stat_config("h0"),
                        "fast-b": stat_config("h1", period=10, threshold=5.0)})
    service = server.alarms
    seen = []
    evaluate = service.evaluate_sync

    def recording(cur, due, previous, now):
        seen.append(sorted(e.name for e in due))
        return evaluate(cur, due, previous, now)

    service.evaluate_sync = recording
    start = server.clock.now() - server.clock.now() % 60
    put_samples(server, "h0", [(start - 60 + s, 90.0) for s in range(0, 60, 5)])
    put_samples(server, "h1", [(start - 60 + s, 1.0) for s in range(0, 60, 5)])
    assert tick(server) == {"fast-a": ALARM, "slow": ALARM, "fast-b": OK}
    for step in range(1, 7):
        server.clock.advance(10)
        ten = server.clock.now() - server.clock.now() % 10 - 10    # the newest 10 s period
        put_samples(server, "h0", [(ten + 1, 10.0)])
        put_samples(server, "h1", [(ten + 1, 10.0)])
        states = tick(server)
        assert states["fast-a"] == OK and states["fast-b"] == ALARM
        # the minute alarm is evaluated at the next minute only, where it sees only 10.0
        assert states["slow"] == (OK if step == 6 else ALARM)
    assert seen[1:6] == [["fast-a", "fast-b"]] * 5
    assert seen[6] == ["fast-a", "fast-b", "slow"]
