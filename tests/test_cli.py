"""The real ``aws`` CLI against the live server, running the seed commands verbatim.

seed-commands.md: users bring ``aws cloudwatch put-metric-data --namespace Test --metric-name
TestMetric --value 1`` and friends; each must work unchanged with only ``--endpoint-url``
added (``run_aws`` adds it, plus ``--output json``).  The main flow runs in the three wire
protocols the CLI can speak: json (its default today), query and cbor (forced through
AWS_DATA_PATH, see conftest.model_dirs).  The CLI is slow to start (~1 s a call), so every
call here is chosen to cover something the boto3 tests in test_metrics_api.py do not: the
CLI's own argument parsing (shorthand, JSON arguments, timestamps) and its output/errors.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import PROTOCOLS, make_client, run_aws

UTC = dt.timezone.utc
NO_RETRY = {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}


def aws(server, *args, protocol="json", model_dirs=None):
    """Run ``aws cloudwatch …`` and return its parsed JSON output ({} when it prints none)."""
    _, out, _ = run_aws(server.url, "cloudwatch", *args, protocol=protocol,
                        model_dirs=model_dirs, env=NO_RETRY)
    return json.loads(out) if out.strip() else {}


def aws_fail(server, *args, protocol="json", model_dirs=None):
    rc, out, err = run_aws(server.url, "cloudwatch", *args, protocol=protocol,
                           model_dirs=model_dirs, check=False, env=NO_RETRY)
    assert rc != 0, out
    return rc, err


def assert_cli_error(stderr: str, code: str, operation: str, message: str) -> None:
    """The CLI's error line: ``An error occurred (Code) when calling the Op operation[ (reached
    max retries: N)]: message``."""
    m = re.search(r"An error occurred \((\w+)\) when calling the (\w+) operation"
                  r"(?: \(reached max retries: \d+\))?: (.*)", stderr)
    assert m, stderr
    assert (m.group(1), m.group(2), m.group(3).strip()) == (code, operation, message.strip()), stderr


def iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(v) -> float:
    """A timestamp as the CLI prints it (ISO string, or epoch number) → epoch seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    s = v.replace("Z", "+00:00")
    d = dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def flow_seed_metrics(server, model_dirs, protocol):
    kw = {"protocol": protocol, "model_dirs": model_dirs}
    started = time.time()

    # 1. the seed command, verbatim (namespace Test, no timestamp: "now")
    assert aws(server, "put-metric-data", "--namespace", "Test", "--metric-name", "TestMetric",
               "--value", "1", **kw) == {}

    # 2. a metric with dimensions, in the CLI's --metric-data JSON (Value, Values/Counts and
    #    StatisticValues, one minute each) in a namespace of this test only
    n = f"CLI/{protocol}/{uuid.uuid4().hex[:8]}"
    t0 = dt.datetime.fromtimestamp(int(time.time()) // 60 * 60 - 600, UTC)
    dims = [{"Name": "Host", "Value": "web-1"}, {"Name": "Env", "Value": "prod"}]
    data = [
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": iso(t0), "Value": 12.5,
         "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": iso(t0 + dt.timedelta(minutes=1)),
         "Values": [1.0, 2.0, 3.5], "Counts": [1, 2, 1], "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": dims,
         "Timestamp": iso(t0 + dt.timedelta(minutes=2, seconds=30)),
         "StatisticValues": {"SampleCount": 4, "Sum": 20, "Minimum": 2, "Maximum": 8},
         "Unit": "Milliseconds"},
    ]
    aws(server, "put-metric-data", "--namespace", n, "--metric-data", json.dumps(data), **kw)

    # 3. get-metric-statistics with --start-time/--end-time/--period/--statistics
    r = aws(server, "get-metric-statistics", "--namespace", n, "--metric-name", "Latency",
            "--dimensions", "Name=Host,Value=web-1", "Name=Env,Value=prod",
            "--start-time", iso(t0), "--end-time", iso(t0 + dt.timedelta(minutes=3)),
            "--period", "60", "--statistics", "Sum", "SampleCount", "Average", "Minimum",
            "Maximum", **kw)
    assert r["Label"] == "Latency"
    pts = sorted(r["Datapoints"], key=lambda p: epoch(p["Timestamp"]))
    assert [epoch(p["Timestamp"]) for p in pts] == [t0.timestamp() + 60 * k for k in range(3)]
    assert [(p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"]) for p in pts] == [
        (1, 12.5, 12.5, 12.5), (4, 8.5, 1.0, 3.5), (4, 20, 2, 8)]
    assert [p["Average"] for p in pts] == pytest.approx([12.5, 8.5 / 4, 5.0])
    assert {p["Unit"] for p in pts} == {"Milliseconds"}

    # 4. get-metric-data: one MetricStat and one Expression (m1 * 2)
    queries = [
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": n, "MetricName": "Latency",
                                               "Dimensions": dims},
                                    "Period": 60, "Stat": "Sum"}},
        {"Id": "e1", "Expression": "m1 * 2", "Label": "Doubled"},
    ]
    r = aws(server, "get-metric-data", "--metric-data-queries", json.dumps(queries),
            "--start-time", iso(t0), "--end-time", iso(t0 + dt.timedelta(minutes=3)), **kw)
    res = {x["Id"]: x for x in r["MetricDataResults"]}
    assert set(res) == {"m1", "e1"}
    series = {i: dict(zip(map(epoch, res[i]["Timestamps"]), res[i]["Values"])) for i in res}
    expect = {t0.timestamp(): 12.5, t0.timestamp() + 60: 8.5, t0.timestamp() + 120: 20.0}
    assert series["m1"] == expect
    assert series["e1"] == {k: 2 * v for k, v in expect.items()}
    assert res["e1"]["Label"] == "Doubled"
    assert {x["StatusCode"] for x in r["MetricDataResults"]} == {"Complete"}

    # 5. list-metrics --namespace Test (verbatim): the seed metric is there, without dimensions
    r = aws(server, "list-metrics", "--namespace", "Test", **kw)
    assert {"Namespace": "Test", "MetricName": "TestMetric", "Dimensions": []} in r["Metrics"]

    # the seed datapoint itself, read back in-process (json): at least the one just sent
    cw = make_client("cloudwatch", server.url)
    s = cw.get_metric_statistics(
        Namespace="Test", MetricName="TestMetric", Period=60, Statistics=["SampleCount", "Sum"],
        StartTime=dt.datetime.fromtimestamp(started - 120, UTC),
        EndTime=dt.datetime.fromtimestamp(time.time() + 120, UTC))
    assert s["Datapoints"], s
    assert sum(p["SampleCount"] for p in s["Datapoints"]) >= 1
    assert all(p["Sum"] == p["SampleCount"] for p in s["Datapoints"])   # every value is 1
    listed = cw.list_metrics(Namespace=n)["Metrics"]
    assert len(listed) == 1 and listed[0]["MetricName"] == "Latency"
    assert sorted(listed[0]["Dimensions"], key=lambda d: d["Name"]) == sorted(
        dims, key=lambda d: d["Name"])


def flow_dashboards(server, model_dirs):
    name = f"cli-dash-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
                                    "properties": {"metrics": [["Test", "TestMetric"]],
                                                   "region": "us-east-1", "stat": "Sum"}}]})
    r = aws(server, "put-dashboard", "--dashboard-name", name, "--dashboard-body", body)
    assert r == {"DashboardValidationMessages": []}
    r = aws(server, "get-dashboard", "--dashboard-name", name)
    assert r["DashboardName"] == name
    assert json.loads(r["DashboardBody"]) == json.loads(body)
    assert r["DashboardArn"].endswith(f":dashboard/{name}")
    r = aws(server, "list-dashboards", "--dashboard-name-prefix", name)
    assert [(d["DashboardName"], d["Size"]) for d in r["DashboardEntries"]] == [(name, len(body))]
    assert abs(epoch(r["DashboardEntries"][0]["LastModified"]) - time.time()) < 300
    assert aws(server, "delete-dashboards", "--dashboard-names", name) == {}
    # the error case: the CLI prints AWS's code and message on stderr, exit status 255
    rc, err = aws_fail(server, "get-dashboard", "--dashboard-name", name)
    assert rc == 255
    assert_cli_error(err, "ResourceNotFound", "GetDashboard", f"Dashboard {name} does not exist")


def flow_error_code_on_stderr(server, model_dirs, protocol):
    """A server-side validation error reaches the CLI user with its AWS code in every protocol."""
    rc, err = aws_fail(server, "put-metric-data", "--namespace", f"CLI/err/{protocol}",
                       "--metric-data",
                       '[{"MetricName": "M", "Value": 1, "Values": [1, 2]}]',
                       protocol=protocol, model_dirs=model_dirs)
    assert rc == 255
    assert_cli_error(err, "InvalidParameterCombination", "PutMetricData",
                     "The parameters MetricData.member.1.Value and MetricData.member.1.Values "
                     "are mutually exclusive and you have specified both.")


# -- the flows run concurrently (the CLI costs ~1 s of CPU a call; 2 cores) ---------------

FLOWS = {
    **{f"seed-{p}": (flow_seed_metrics, p) for p in PROTOCOLS},
    # the CLI prints errors the same way whatever the protocol (botocore parses them, and
    # test_metrics_api checks that per protocol): json is covered by test_dashboards, query
    # (XML errors) here
    "error-query": (flow_error_code_on_stderr, "query"),
    "dashboards": (flow_dashboards, None),
}


@pytest.fixture(scope="module")
def flows(server, model_dirs):
    """Start every flow at once on a small thread pool; each test waits for its own."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="aws-cli") as pool:
        futures = {}
        for key, (fn, protocol) in FLOWS.items():
            args = (server, model_dirs) + ((protocol,) if protocol else ())
            futures[key] = pool.submit(fn, *args)
        yield futures


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_seed_metrics_flow(flows, protocol):
    """put-metric-data (seed, verbatim + --metric-data), get-metric-statistics,
    get-metric-data (MetricStat + ``m1 * 2``), list-metrics --namespace Test."""
    flows[f"seed-{protocol}"].result(timeout=300)


def test_error_code_on_stderr_query(flows):
    """A validation error of the server reaches the CLI user with its AWS code and message."""
    flows["error-query"].result(timeout=300)


def test_dashboards(flows):
    """put-dashboard, get-dashboard, list-dashboards, delete-dashboards, and the error a
    get-dashboard of a deleted dashboard prints."""
    flows["dashboards"].result(timeout=300)
