"""Metrics from logs through boto3 against a live server: metric filters (PutMetricFilter,
DescribeMetricFilters, DeleteMetricFilter, TestMetricFilter) and the Embedded Metric Format.

Each test writes into a namespace and log group of its own, so they share the session server.
Examples come from the AWS documentation (FilterAndPatternSyntaxForMetricFilters.html,
ExtractBytesExample, the EMF specification).
"""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import botocore.exceptions
import pytest

from conftest import LiveServer, assert_aws_error, make_client

UTC = dt.timezone.utc
APACHE = [  # the Apache access lines of AWS's ExtractBytesExample
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324',
    '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355',
]
APACHE_PATTERN = "[ip, id, user, timestamp, request, status_code, size]"


@pytest.fixture(scope="module")
def logs(server):
    return make_client("logs", server.url)


@pytest.fixture(scope="module")
def cw(server):
    return make_client("cloudwatch", server.url)


@pytest.fixture
def group(logs):
    g = f"/lm/{uuid.uuid4().hex[:10]}"
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName="s")
    return g


def ns() -> str:
    return f"LM/{uuid.uuid4().hex[:8]}"


def minute_ago() -> int:
    """A minute-aligned epoch ms, safely in the past: datapoints land in that minute."""
    return (int(time.time()) // 60 - 2) * 60_000


def put(logs, g, t, *messages):
    return logs.put_log_events(logGroupName=g, logStreamName="s", logEvents=[
        {"timestamp": t + i, "message": m} for i, m in enumerate(messages)])


def stats(cw, namespace, name, t, dims=(), period=60, unit=None):
    """Datapoints of the 10 minutes around ``t``, sorted by time, as plain dicts."""
    kw = {"Unit": unit} if unit else {}
    r = cw.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v}
                                                          for k, v in dims],
        StartTime=dt.datetime.fromtimestamp(t / 1000 - 300, UTC),
        EndTime=dt.datetime.fromtimestamp(t / 1000 + 300, UTC), Period=period,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"], **kw)
    return sorted(r["Datapoints"], key=lambda p: p["Timestamp"])


def error(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    return e


# ---------------------------------------------------------------------------------------------
# metric filters → datapoints
# ---------------------------------------------------------------------------------------------

def test_json_metric_value_and_default_value(logs, cw, group):
    n = ns()
    # the documented latency example: { $.latency = * } with metricValue $.latency
    logs.put_metric_filter(logGroupName=group, filterName="latency",
                           filterPattern="{ $.latency = * }", metricTransformations=[{
                               "metricName": "Latency", "metricNamespace": n,
                               "metricValue": "$.latency", "unit": "Milliseconds"}])
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR",
                           metricTransformations=[{"metricName": "Errors", "metricNamespace": n,
                                                   "metricValue": "1", "defaultValue": 0}])
    t = minute_ago()
    put(logs, group, t,
        '{"latency": 120, "path": "/a"}',
        '{"latency": 30.5}',
        '{"latency": "slow"}',            # matches the pattern, but no number to publish
        "ERROR disk full",
        "INFO ok",
        '{"level": "ERROR", "latency": 7}')
    lat = stats(cw, n, "Latency", t)
    assert [(p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"], p["Unit"]) for p in lat] == [
        (3, 157.5, 7, 120, "Milliseconds")]
    assert lat[0]["Timestamp"].timestamp() * 1000 == t
    # Errors: 1 per matching event, the default value 0 for each of the 4 others
    err = stats(cw, n, "Errors", t)
    assert [(p["SampleCount"], p["Sum"], p["Maximum"]) for p in err] == [(6, 2, 1)]
    # a later batch in another minute adds datapoints there, the filters apply to every call
    put(logs, group, t + 60_000, "ERROR again")
    err = stats(cw, n, "Errors", t)
    assert [(p["SampleCount"], p["Sum"]) for p in err] == [(6, 2), (1, 1)]
    # events before the filter existed are not counted: only later PutLogEvents calls


def test_space_delimited_size_and_dimensions(logs, cw, group):
    n = ns()
    logs.put_metric_filter(logGroupName=group, filterName="bytes", filterPattern=APACHE_PATTERN,
                           metricTransformations=[{
                               "metricName": "BytesTransferred", "metricNamespace": n,
                               "metricValue": "$size", "unit": "Bytes",
                               "dimensions": {"StatusCode": "$status_code"}}])
    # $7: the 7th field of the line, as in the ExtractBytesExample
    logs.put_metric_filter(logGroupName=group, filterName="bytes7", filterPattern=APACHE_PATTERN,
                           metricTransformations=[{
                               "metricName": "Bytes7", "metricNamespace": n,
                               "metricValue": "$7"}])
    t = minute_ago()
    put(logs, group, t, *APACHE, "not an access line")
    ok = stats(cw, n, "BytesTransferred", t, dims=[("StatusCode", "200")])
    assert [(p["SampleCount"], p["Sum"], p["Unit"]) for p in ok] == [(2, 1534 + 4355, "Bytes")]
    failed = stats(cw, n, "BytesTransferred", t, dims=[("StatusCode", "500")])
    assert [(p["SampleCount"], p["Sum"]) for p in failed] == [(1, 5324)]
    assert stats(cw, n, "BytesTransferred", t) == []          # no series without the dimension
    assert [p["Sum"] for p in stats(cw, n, "Bytes7", t)] == [1534 + 5324 + 4355]
    listed = cw.list_metrics(Namespace=n, MetricName="BytesTransferred")["Metrics"]
    assert sorted(m["Dimensions"][0]["Value"] for m in listed) == ["200", "500"]


def test_json_dimensions_and_system_fields(logs, cw, group):
    n = ns()
    logs.put_metric_filter(
        logGroupName=group, filterName="by-type",
        filterPattern='{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }',
        metricTransformations=[{"metricName": "Events", "metricNamespace": n,
                                "metricValue": "1", "dimensions": {"Type": "$.eventType"}}],
        emitSystemFieldDimensions=["@aws.region"])
    t = minute_ago()
    put(logs, group, t,
        '{"eventType": "UpdateTrail", "sourceIPAddress": "10.0.0.1"}',
        '{"eventType": "UpdateTrail", "sourceIPAddress": "10.0.0.2"}',
        '{"eventType": "DeleteTrail", "sourceIPAddress": "123.123.0.1"}',   # excluded
        '{"eventType": "", "sourceIPAddress": "10.0.0.3"}')                 # empty dimension
    got = stats(cw, n, "Events", t, dims=[("Type", "UpdateTrail"), ("@aws.region", "us-east-1")])
    assert [p["Sum"] for p in got] == [2]
    assert [m["Dimensions"] for m in cw.list_metrics(Namespace=n)["Metrics"]] == [
        [{"Name": "@aws.region", "Value": "us-east-1"}, {"Name": "Type", "Value": "UpdateTrail"}]]
    f = logs.describe_metric_filters(logGroupName=group)["metricFilters"][0]
    assert f["emitSystemFieldDimensions"] == ["@aws.region"]


# ---------------------------------------------------------------------------------------------
# PutMetricFilter validation
# ---------------------------------------------------------------------------------------------

def test_put_metric_filter_errors(logs, server, group):
    def bad(code, message=None, pattern="ERROR", **t):
        tr = {"metricName": "M", "metricNamespace": "N", "metricValue": "1", **t}
        e = error(logs.put_metric_filter, logGroupName=group, filterName="f",
                  filterPattern=pattern, metricTransformations=[tr])
        return assert_aws_error(e, code, 400, message)["Error"]["Message"]

    bad("InvalidParameterException", "Invalid metric transformation: dimensions and default "
        "value are mutually exclusive properties", pattern="[a, b]", metricValue="$b",
        defaultValue=0, dimensions={"A": "$a"})
    bad("InvalidParameterException", "The specified filter pattern does not support dimensions",
        dimensions={"A": "$.a"})
    bad("InvalidParameterException", "Invalid metric transformation: dimension value must be "
        "valid selector", pattern="{ $.a = * }", dimensions={"A": "constant"})
    assert "at most 3 dimensions" in bad(
        "InvalidParameterException", pattern="[a, b, c, d]",
        dimensions={"A": "$a", "B": "$b", "C": "$c", "D": "$d"})
    msg = bad("InvalidParameterException", metricValue="$.latency")
    assert msg.startswith("Invalid metric transformation: metric value $.latency")
    assert "$nope" in bad("InvalidParameterException", pattern="[a, b]", metricValue="$nope")
    msg = bad("InvalidParameterException", pattern="{ $.a = ")
    assert msg.startswith("Invalid metric filter pattern") and "column" in msg
    e = error(logs.put_metric_filter, logGroupName=group + "-missing", filterName="f",
              filterPattern="", metricTransformations=[
                  {"metricName": "M", "metricNamespace": "N", "metricValue": "1"}])
    assert_aws_error(e, "ResourceNotFoundException", 400, "The specified log group does not exist.")
    # exactly one transformation (the model's list bounds, also when the client does not check)
    raw = make_client("logs", server.url, validate=False)
    tr = {"metricName": "M", "metricNamespace": "N", "metricValue": "1"}
    for transformations in ([], [tr, tr]):
        e = error(raw.put_metric_filter, logGroupName=group, filterName="f", filterPattern="",
                  metricTransformations=transformations)
        assert e.value.response["Error"]["Code"] in ("InvalidParameterException",
                                                     "ValidationException")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert logs.describe_metric_filters(logGroupName=group)["metricFilters"] == []


def test_filter_quotas(logs, group):
    tr = [{"metricName": "M", "metricNamespace": "N", "metricValue": "1"}]
    for i in range(5):
        logs.put_metric_filter(logGroupName=group, filterName=f"re{i}",
                               filterPattern=f"%ERROR{i}%", metricTransformations=tr)
    e = error(logs.put_metric_filter, logGroupName=group, filterName="re5",
              filterPattern="{ $.a = %x% }", metricTransformations=tr)
    assert_aws_error(e, "LimitExceededException", 400)
    # replacing one of the five regex filters is not a sixth
    logs.put_metric_filter(logGroupName=group, filterName="re0", filterPattern="%WARN%",
                           metricTransformations=tr)
    for i in range(5, 100):
        logs.put_metric_filter(logGroupName=group, filterName=f"f{i:03d}",
                               filterPattern=f"T{i}", metricTransformations=tr)
    e = error(logs.put_metric_filter, logGroupName=group, filterName="one-too-many",
              filterPattern="X", metricTransformations=tr)
    assert_aws_error(e, "LimitExceededException", 400, "Resource limit exceeded.")
    logs.put_metric_filter(logGroupName=group, filterName="f099", filterPattern="Y",
                           metricTransformations=tr)          # an update is always allowed
    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert g["metricFilterCount"] == 100


# ---------------------------------------------------------------------------------------------
# Describe / Delete
# ---------------------------------------------------------------------------------------------

def test_describe_and_delete_metric_filters(logs, cw, group):
    n = ns()
    other = group + "-b"
    logs.create_log_group(logGroupName=other)
    for g, name, metric in ((group, "b-errors", "Errors"), (group, "a-latency", "Latency"),
                            (group, "a-bytes", "Bytes"), (other, "a-other", "Errors")):
        logs.put_metric_filter(logGroupName=g, filterName=name, filterPattern="ERROR",
                               metricTransformations=[{"metricName": metric,
                                                       "metricNamespace": n,
                                                       "metricValue": "1", "unit": "Count"}])
    got = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    assert [f["filterName"] for f in got] == ["a-bytes", "a-latency", "b-errors"]
    assert got[0]["metricTransformations"] == [{"metricName": "Bytes", "metricNamespace": n,
                                                "metricValue": "1", "unit": "Count"}]
    assert got[0]["logGroupName"] == group and got[0]["filterPattern"] == "ERROR"
    assert abs(got[0]["creationTime"] - time.time() * 1000) < 60_000
    assert [f["filterName"] for f in logs.describe_metric_filters(
        logGroupName=group, filterNamePrefix="a-")["metricFilters"]] == ["a-bytes", "a-latency"]
    by_metric = logs.describe_metric_filters(metricName="Errors", metricNamespace=n)
    assert sorted((f["logGroupName"], f["filterName"]) for f in by_metric["metricFilters"]) == [
        (group, "b-errors"), (other, "a-other")]
    pages = list(logs.get_paginator("describe_metric_filters").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 2}))
    assert [[f["filterName"] for f in p["metricFilters"]] for p in pages] == [
        ["a-bytes", "a-latency"], ["b-errors"]]
    e = error(logs.describe_metric_filters, filterNamePrefix="a-")
    assert_aws_error(e, "InvalidParameterException", 400)
    e = error(logs.describe_metric_filters, metricName="Errors")
    assert_aws_error(e, "InvalidParameterException", 400)
    e = error(logs.describe_metric_filters, logGroupName=group, nextToken="garbage")
    assert_aws_error(e, "InvalidParameterException", 400, "The specified nextToken is invalid.")
    e = error(logs.describe_metric_filters, logGroupName=group + "-missing")
    assert_aws_error(e, "ResourceNotFoundException", 400)

    logs.delete_metric_filter(logGroupName=group, filterName="b-errors")
    e = error(logs.delete_metric_filter, logGroupName=group, filterName="b-errors")
    assert_aws_error(e, "ResourceNotFoundException", 400,
                     "The specified metric filter does not exist.")
    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [x["metricFilterCount"] for x in g] == [2, 1]
    # a deleted filter produces nothing; the remaining ones still do
    t = minute_ago()
    put(logs, group, t, "ERROR one")
    assert stats(cw, n, "Errors", t) == []
    assert [p["Sum"] for p in stats(cw, n, "Latency", t)] == [1]
    # storedBytes: the UTF-8 bytes of the group's events (the sum over its streams)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0][
        "storedBytes"] == len("ERROR one")
    # deleting the group deletes its filters
    logs.delete_log_group(logGroupName=other)
    assert logs.describe_metric_filters(metricName="Errors",
                                        metricNamespace=n)["metricFilters"] == []


# ---------------------------------------------------------------------------------------------
# TestMetricFilter
# ---------------------------------------------------------------------------------------------

def test_test_metric_filter_doc_examples(logs):
    # ExtractBytesExample: every named field is extracted, delimiters stripped
    r = logs.test_metric_filter(filterPattern=APACHE_PATTERN, logEventMessages=APACHE[:1])
    assert r["matches"] == [{"eventNumber": 1, "eventMessage": APACHE[0], "extractedValues": {
        "$ip": "127.0.0.1", "$id": "-", "$user": "frank",
        "$timestamp": "10/Oct/2000:13:25:15 -0700", "$request": "GET /apache_pb.gif HTTP/1.0",
        "$status_code": "200", "$size": "1534"}}]
    # status_code = 4* || = 5*: only the 500 line
    r = logs.test_metric_filter(
        filterPattern="[ip, id, user, timestamp, request, status_code=5*, size]",
        logEventMessages=APACHE)
    assert [m["eventNumber"] for m in r["matches"]] == [2]
    # the JSON example of the metric filter page
    events = ['{"eventType": "UpdateTrail", "sourceIPAddress": "111.111.111.111"}',
              '{"eventType": "UpdateTrail", "sourceIPAddress": "123.123.1.1"}',
              '{"sourceIPAddress": "111.111.111.111"}']
    r = logs.test_metric_filter(
        filterPattern='{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }',
        logEventMessages=events)
    assert [(m["eventNumber"], m["extractedValues"]) for m in r["matches"]] == [(1, {})]
    e = error(logs.test_metric_filter, filterPattern="{ $.a = ", logEventMessages=["x"])
    assert_aws_error(e, "InvalidParameterException", 400)


# ---------------------------------------------------------------------------------------------
# Embedded Metric Format
# ---------------------------------------------------------------------------------------------

def emf_doc(namespace, t, **extra):
    doc = {"_aws": {"Timestamp": t, "CloudWatchMetrics": [{
        "Namespace": namespace, "Dimensions": [["functionVersion"], []],
        "Metrics": [{"Name": "time", "Unit": "Milliseconds"},
                    {"Name": "hits", "Unit": "Count", "StorageResolution": 1}]}]},
        "functionVersion": "$LATEST", "time": 100, "hits": [1, 2, 3],
        "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"}
    doc.update(extra)
    return json.dumps(doc)


def test_emf_produces_metrics(logs, cw, group):
    n = ns()
    t = minute_ago()
    doc = emf_doc(n, t + 5_000)
    put(logs, group, t, "plain line", doc, emf_doc(n, t + 6_000, time=50))
    # the events are stored as they came
    got = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    assert [e["message"] for e in got["events"]][:2] == ["plain line", doc]
    v = [("functionVersion", "$LATEST")]
    assert [(p["SampleCount"], p["Sum"], p["Unit"]) for p in stats(cw, n, "time", t, v)] == [
        (2, 150, "Milliseconds")]
    # every DimensionSet is a metric of its own; [] is the metric without dimensions
    assert [p["Sum"] for p in stats(cw, n, "time", t)] == [150]
    # an array of values is one sample per value; StorageResolution 1 is high resolution
    hits = stats(cw, n, "hits", t, v, period=1)
    assert [(p["Timestamp"].timestamp() * 1000 - t, p["SampleCount"], p["Sum"])
            for p in hits] == [(5000, 3, 6), (6000, 3, 6)]
    names = {(m["MetricName"], tuple(d["Value"] for d in m["Dimensions"]))
             for m in cw.list_metrics(Namespace=n)["Metrics"]}
    assert names == {("time", ("$LATEST",)), ("time", ()), ("hits", ("$LATEST",)), ("hits", ())}


def test_malformed_emf_is_stored_and_produces_nothing(logs, cw, group):
    n = ns()
    t = minute_ago()

    def directive(**kw):
        d = {"Namespace": n, "Dimensions": [["svc"]], "Metrics": [{"Name": "m"}]}
        d.update(kw)
        return d

    def doc(directives, **root):
        return json.dumps({"_aws": {"Timestamp": t, "CloudWatchMetrics": directives},
                           "svc": "api", "m": 1, **root})

    bad = [
        '{"_aws": {"CloudWatchMetrics": [',                       # not JSON
        "START RequestId: 1 " + doc([directive()]),               # text before the object
        doc("not a list"),
        doc([directive(Namespace="")]),
        doc([directive(Dimensions=[["missing"]])]),                # dimension target absent
        doc([directive()], svc=7),                                 # dimension target not a string
        doc([directive()], m="12"),                                # metric target not a number
        doc([directive()], m=list(range(101))),                    # more than 100 values
        doc([directive(Metrics=[{"Name": "m", "Unit": "Parsecs"}])]),
        doc([directive(Metrics=[{"Name": "m", "StorageResolution": 30}])]),
        doc([directive(Dimensions=[[f"d{i}" for i in range(31)]])],
            **{f"d{i}": "x" for i in range(31)}),
        doc([directive(Metrics=[{"Name": "m"}] * 101)]),
        json.dumps({"_aws": {"Timestamp": t - 15 * 86400_000, "CloudWatchMetrics": [
            directive()]}, "svc": "api", "m": 1}),                  # older than two weeks
        doc([directive(), directive(Namespace="AWS/Lambda")]),     # one bad directive spoils all
    ]
    r = put(logs, group, t, *bad)
    assert "rejectedLogEventsInfo" not in r
    got = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    assert [e["message"] for e in got["events"]] == bad
    assert cw.list_metrics(Namespace=n)["Metrics"] == []
    # the same document, valid, does produce its metric
    put(logs, group, t + 100, doc([directive()]))
    assert [p["Sum"] for p in stats(cw, n, "m", t, [("svc", "api")])] == [1]


# ---------------------------------------------------------------------------------------------
# Restart
# ---------------------------------------------------------------------------------------------

def test_restart_keeps_filters(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    n = ns()
    fast = ["--ingest-workers", "0"]
    srv = LiveServer(data, extra_args=fast).start()
    try:
        logs = make_client("logs", srv.url)
        logs.create_log_group(logGroupName="/restart")
        logs.create_log_stream(logGroupName="/restart", logStreamName="s")
        logs.put_metric_filter(logGroupName="/restart", filterName="lat",
                               filterPattern="{ $.ms > 10 }", metricTransformations=[{
                                   "metricName": "Slow", "metricNamespace": n,
                                   "metricValue": "$.ms", "unit": "Milliseconds"}])
        before = logs.describe_metric_filters(logGroupName="/restart")["metricFilters"]
    finally:
        srv.stop()
    srv = LiveServer(data, extra_args=fast).start()
    try:
        logs = make_client("logs", srv.url)
        cw = make_client("cloudwatch", srv.url)
        assert logs.describe_metric_filters(logGroupName="/restart")["metricFilters"] == before
        t = minute_ago()
        put(logs, "/restart", t, '{"ms": 5}', '{"ms": 25}', '{"ms": 40}')
        assert [(p["SampleCount"], p["Sum"]) for p in stats(cw, n, "Slow", t)] == [(2, 65)]
    finally:
        srv.stop()
    assert "Traceback" not in srv.log()
