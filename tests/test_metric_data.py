"""GetMetricData through boto3 in every protocol: MetricStat, metric math, labels, paging."""
from __future__ import annotations

import datetime as dt
import time
import uuid

import botocore.exceptions
import pytest

from conftest import assert_aws_error

UTC = dt.timezone.utc


@pytest.fixture
def loaded(cw):
    """Two series over 10 minutes: a = 1..10, b = 10 × a, one point per minute."""
    n = f"Test/{uuid.uuid4().hex[:10]}"
    t0 = dt.datetime.fromtimestamp(int(time.time()) // 60 * 60 - 20 * 60, UTC)
    data = []
    for i in range(10):
        for host, mult in (("a", 1.0), ("b", 10.0)):
            data.append({"MetricName": "Req", "Dimensions": [{"Name": "Host", "Value": host}],
                         "Timestamp": t0 + dt.timedelta(minutes=i), "Value": (i + 1) * mult})
    cw.put_metric_data(Namespace=n, MetricData=data)
    return n, t0


def stat(n, host, qid, stat="Sum", **kw):
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": n, "MetricName": "Req",
                                                  "Dimensions": [{"Name": "Host", "Value": host}]},
                                       "Period": 60, "Stat": stat}, **kw}


def test_metric_stat_and_math(cw, loaded):
    n, t0 = loaded
    r = cw.get_metric_data(
        MetricDataQueries=[stat(n, "a", "m1"), stat(n, "b", "m2", ReturnData=False),
                           {"Id": "e1", "Expression": "m1 + m2", "Label": "total"},
                           {"Id": "e2", "Expression": "SUM(METRICS())"},
                           {"Id": "e3", "Expression": "RATE(m1)"}],
        StartTime=t0, EndTime=t0 + dt.timedelta(minutes=10), ScanBy="TimestampAscending")
    res = {x["Id"]: x for x in r["MetricDataResults"]}
    assert set(res) == {"m1", "e1", "e2", "e3"}
    assert r["Messages"] == []
    assert res["m1"]["Label"] == "Req"
    assert res["m1"]["Values"] == [float(i + 1) for i in range(10)]
    assert res["m1"]["Timestamps"] == [t0 + dt.timedelta(minutes=i) for i in range(10)]
    assert res["e1"]["Label"] == "total"
    assert res["e1"]["Values"] == [11.0 * (i + 1) for i in range(10)]
    assert res["e2"]["Values"] == [11.0 * (i + 1) for i in range(10)]
    # RATE: change per second between consecutive points (1 per 60 s)
    assert res["e3"]["Values"] == pytest.approx([1 / 60] * 9)
    assert all(x["StatusCode"] == "Complete" for x in r["MetricDataResults"])


def test_default_scan_is_newest_first(cw, loaded):
    n, t0 = loaded
    r = cw.get_metric_data(MetricDataQueries=[stat(n, "a", "m1")], StartTime=t0,
                           EndTime=t0 + dt.timedelta(minutes=10))
    assert r["MetricDataResults"][0]["Values"] == [float(10 - i) for i in range(10)]


def test_dynamic_labels(cw, loaded):
    n, t0 = loaded
    r = cw.get_metric_data(
        MetricDataQueries=[stat(n, "a", "m1", Label="${PROP('Dim.Host')} max=${MAX} n=${DATAPOINT_COUNT}")],
        StartTime=t0, EndTime=t0 + dt.timedelta(minutes=10))
    assert r["MetricDataResults"][0]["Label"] == "a max=10 n=10"


def test_pagination_with_max_datapoints(cw, loaded):
    n, t0 = loaded
    kw = dict(MetricDataQueries=[stat(n, "a", "m1"), stat(n, "b", "m2")], StartTime=t0,
              EndTime=t0 + dt.timedelta(minutes=10), MaxDatapoints=7,
              ScanBy="TimestampAscending")
    got = {"m1": [], "m2": []}
    token = None
    pages = 0
    while True:
        r = cw.get_metric_data(**kw, **({"NextToken": token} if token else {}))
        pages += 1
        for x in r["MetricDataResults"]:
            got[x["Id"]].extend(x["Values"])
        token = r.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert got["m1"] == [float(i + 1) for i in range(10)]
    assert got["m2"] == [10.0 * (i + 1) for i in range(10)]


def test_search_expression(cw, loaded):
    n, t0 = loaded
    r = cw.get_metric_data(
        MetricDataQueries=[{"Id": "s", "Expression": f"SEARCH('{{{n},Host}} MetricName=\"Req\"', 'Sum', 60)"}],
        StartTime=t0, EndTime=t0 + dt.timedelta(minutes=10), ScanBy="TimestampAscending")
    res = r["MetricDataResults"]
    assert len(res) == 2
    sums = sorted(sum(x["Values"]) for x in res)
    assert sums == [55.0, 550.0]


def test_percentile_stat(cw):
    n = f"Test/{uuid.uuid4().hex[:10]}"
    t0 = dt.datetime.fromtimestamp(int(time.time()) // 60 * 60 - 5 * 60, UTC)
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": "Lat", "Timestamp": t0, "Values": [float(v) for v in range(1, 101)]}])
    r = cw.get_metric_data(MetricDataQueries=[{
        "Id": "p", "MetricStat": {"Metric": {"Namespace": n, "MetricName": "Lat"}, "Period": 60,
                                  "Stat": "p90"}}],
        StartTime=t0, EndTime=t0 + dt.timedelta(minutes=1))
    assert r["MetricDataResults"][0]["Values"] == [90.0]


@pytest.mark.parametrize("queries, fragment", [
    ([{"Id": "e1", "Expression": "m9 * 2"}], "m9"),
    ([{"Id": "e1", "Expression": "AVG(("}], "e1"),
    ([{"Id": "e1", "Expression": "FOO(1)"}], "FOO"),
    ([{"Id": "e1", "Expression": "e2"}, {"Id": "e2", "Expression": "e1"}], "circular"),
    ([{"Id": "Bad", "Expression": "1"}], "Bad"),
    ([{"Id": "a", "Expression": "1"}, {"Id": "a", "Expression": "2"}], "not unique"),
])
def test_invalid_queries(cw, queries, fragment):
    t = dt.datetime.now(UTC)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_data(MetricDataQueries=queries, StartTime=t - dt.timedelta(hours=1), EndTime=t)
    err = assert_aws_error(e, "ValidationError", 400)
    assert fragment in err["Error"]["Message"]
