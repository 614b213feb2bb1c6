"""CloudWatch metrics through real boto3 clients, in all three protocols (json, query, cbor)."""
from __future__ import annotations

import datetime as dt
import math
import time
import uuid

import botocore.exceptions
import pytest

from conftest import assert_aws_error

UTC = dt.timezone.utc


def ns() -> str:
    return f"Test/{uuid.uuid4().hex[:10]}"


def minute(offset_min: int = 0) -> dt.datetime:
    now = int(time.time()) // 60 * 60
    return dt.datetime.fromtimestamp(now + offset_min * 60, UTC)


def stats_of(values_weights):
    """SampleCount, Sum, Average, Minimum, Maximum computed independently of the server."""
    n = sum(w for _, w in values_weights)
    s = sum(v * w for v, w in values_weights)
    return {"SampleCount": n, "Sum": s, "Average": s / n,
            "Minimum": min(v for v, _ in values_weights),
            "Maximum": max(v for v, _ in values_weights)}


def test_put_and_get_statistics_value_values_statset(cw):
    n = ns()
    t = minute(-10)
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "Timestamp": t, "Value": 12.5, "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "Timestamp": t + dt.timedelta(seconds=5), "Values": [1.0, 2.0, 3.5],
         "Counts": [1, 2, 1], "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "Timestamp": t + dt.timedelta(seconds=10),
         "StatisticValues": {"SampleCount": 3, "Sum": 6, "Minimum": 1, "Maximum": 3},
         "Unit": "Milliseconds"},
    ])
    r = cw.get_metric_statistics(
        Namespace=n, MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}],
        StartTime=t - dt.timedelta(minutes=1), EndTime=t + dt.timedelta(minutes=2), Period=60,
        Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"])
    assert r["Label"] == "Latency"
    assert len(r["Datapoints"]) == 1
    p = r["Datapoints"][0]
    expected = stats_of([(12.5, 1), (1.0, 1), (2.0, 2), (3.5, 1)])
    expected["SampleCount"] += 3
    expected["Sum"] += 6
    expected["Average"] = expected["Sum"] / expected["SampleCount"]
    for k, v in expected.items():
        assert p[k] == pytest.approx(v), k
    assert p["Unit"] == "Milliseconds"
    assert p["Timestamp"] == t


def test_exact_dimension_match(cw):
    n = ns()
    t = minute(-5)
    for inst, v in (("i-1", 1.0), ("i-12", 100.0)):
        cw.put_metric_data(Namespace=n, MetricData=[{
            "MetricName": "CPU", "Dimensions": [{"Name": "InstanceId", "Value": inst}],
            "Timestamp": t, "Value": v}])
    cw.put_metric_data(Namespace=n, MetricData=[{"MetricName": "CPU", "Timestamp": t, "Value": 7.0}])
    cw.put_metric_data(Namespace=n, MetricData=[{
        "MetricName": "CPU", "Timestamp": t, "Value": 9.0,
        "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}, {"Name": "Az", "Value": "a"}]}])

    def total(dims):
        r = cw.get_metric_statistics(Namespace=n, MetricName="CPU", Dimensions=dims,
                                     StartTime=t, EndTime=t + dt.timedelta(minutes=1),
                                     Period=60, Statistics=["Sum"])
        return [p["Sum"] for p in r["Datapoints"]]

    assert total([{"Name": "InstanceId", "Value": "i-1"}]) == [1.0]
    assert total([{"Name": "InstanceId", "Value": "i-12"}]) == [100.0]
    assert total([]) == [7.0]
    # dimension order does not matter, the set does
    assert total([{"Name": "Az", "Value": "a"}, {"Name": "InstanceId", "Value": "i-1"}]) == [9.0]


def test_period_buckets_and_order(cw):
    n = ns()
    t0 = minute(-30)
    data = [{"MetricName": "M", "Timestamp": t0 + dt.timedelta(seconds=20 * i), "Value": float(i)}
            for i in range(30)]   # 10 minutes, 3 points per minute
    cw.put_metric_data(Namespace=n, MetricData=data)
    r = cw.get_metric_statistics(Namespace=n, MetricName="M", StartTime=t0,
                                 EndTime=t0 + dt.timedelta(minutes=10), Period=120,
                                 Statistics=["Sum", "SampleCount"])
    pts = sorted(r["Datapoints"], key=lambda p: p["Timestamp"])
    assert [p["Timestamp"] for p in pts] == [t0 + dt.timedelta(minutes=2 * k) for k in range(5)]
    assert [p["SampleCount"] for p in pts] == [6.0] * 5
    assert [p["Sum"] for p in pts] == [float(sum(range(6 * k, 6 * k + 6))) for k in range(5)]


def test_unit_filter(cw):
    n = ns()
    t = minute(-3)
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": "M", "Timestamp": t, "Value": 1.0, "Unit": "Seconds"},
        {"MetricName": "M", "Timestamp": t, "Value": 1000.0, "Unit": "Milliseconds"}])
    r = cw.get_metric_statistics(Namespace=n, MetricName="M", StartTime=t,
                                 EndTime=t + dt.timedelta(minutes=1), Period=60,
                                 Statistics=["Sum"], Unit="Seconds")
    assert [(p["Sum"], p["Unit"]) for p in r["Datapoints"]] == [(1.0, "Seconds")]
    r = cw.get_metric_statistics(Namespace=n, MetricName="M", StartTime=t,
                                 EndTime=t + dt.timedelta(minutes=1), Period=60,
                                 Statistics=["Sum"], Unit="Bytes")
    assert r["Datapoints"] == []


def test_high_resolution_period(cw):
    n = ns()
    base = int(time.time()) // 60 * 60 - 120
    t = dt.datetime.fromtimestamp(base, UTC)
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": "Hi", "Timestamp": t + dt.timedelta(seconds=s), "Value": float(s),
         "StorageResolution": 1} for s in range(0, 60, 5)])
    r = cw.get_metric_statistics(Namespace=n, MetricName="Hi", StartTime=t,
                                 EndTime=t + dt.timedelta(seconds=60), Period=10,
                                 Statistics=["Sum"])
    pts = sorted(r["Datapoints"], key=lambda p: p["Timestamp"])
    assert [p["Sum"] for p in pts] == [5.0, 25.0, 45.0, 65.0, 85.0, 105.0]


# -- errors ------------------------------------------------------------------------------

def test_value_and_values_are_exclusive(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[
            {"MetricName": "M", "Value": 1.0, "Values": [1.0]}])
    assert_aws_error(e, "InvalidParameterCombination", 400,
                     "The parameters MetricData.member.1.Value and MetricData.member.1.Values "
                     "are mutually exclusive and you have specified both.")


def test_value_and_statistic_values_are_exclusive(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[
            {"MetricName": "M", "Value": 1.0,
             "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert_aws_error(e, "InvalidParameterCombination", 400,
                     "The parameters MetricData.member.1.Value and "
                     "MetricData.member.1.StatisticValues are mutually exclusive and you have "
                     "specified both.")


def test_values_counts_size_mismatch(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[
            {"MetricName": "M", "Values": [1.0, 2.0], "Counts": [1.0]}])
    assert_aws_error(e, "InvalidParameterValue", 400,
                     "The parameters MetricData.member.1.Values and MetricData.member.1.Counts "
                     "must be of the same size.")


def test_timestamp_too_old_and_all_or_nothing(cw):
    n = ns()
    old = dt.datetime.now(UTC) - dt.timedelta(days=15)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=n, MetricData=[
            {"MetricName": "Good", "Value": 1.0},
            {"MetricName": "M", "Value": 1.0, "Timestamp": old}])
    assert_aws_error(e, "InvalidParameterValue", 400,
                     "The parameter MetricData.member.2.Timestamp must specify a time within the "
                     "past two weeks.")
    # nothing of the failed call was written
    assert cw.list_metrics(Namespace=n)["Metrics"] == []


def test_timestamp_too_far_in_future(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[
            {"MetricName": "M", "Value": 1.0,
             "Timestamp": dt.datetime.now(UTC) + dt.timedelta(hours=3)}])
    assert_aws_error(e, "InvalidParameterValue", 400)


def test_too_many_values(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[
            {"MetricName": "M", "Values": [1.0] * 151}])
    assert_aws_error(e, "InvalidParameterValue", 400)


def test_too_many_dimensions_is_a_validation_error(cw):
    dims = [{"Name": f"d{i}", "Value": "v"} for i in range(31)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[
            {"MetricName": "M", "Value": 1.0, "Dimensions": dims}])
    err = assert_aws_error(e, "ValidationError", 400)
    assert "metricData.1.member.dimensions" in err["Error"]["Message"]
    assert "Member must have length less than or equal to 30" in err["Error"]["Message"]


def test_value_out_of_range(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace=ns(), MetricData=[{"MetricName": "M", "Value": 2.0 ** 361}])
    assert_aws_error(e, "InvalidParameterValue", 400)


def test_missing_namespace(cw_raw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw_raw.put_metric_data(MetricData=[{"MetricName": "M", "Value": 1.0}])
    assert_aws_error(e, "MissingParameter", 400, "The parameter Namespace is required.")


def test_enum_validation_message(cw_raw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw_raw.set_alarm_state(AlarmName="nope", StateValue="INVALID", StateReason="x")
    assert_aws_error(e, "ValidationError", 400,
                     "1 validation error detected: Value 'INVALID' at 'stateValue' failed to "
                     "satisfy constraint: Member must satisfy enum value set: "
                     "[INSUFFICIENT_DATA, ALARM, OK]")


def test_start_after_end(cw):
    t = minute()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_statistics(Namespace="X", MetricName="M", StartTime=t, EndTime=t,
                                 Period=60, Statistics=["Sum"])
    assert_aws_error(e, "InvalidParameterValue", 400,
                     "The parameter StartTime must be less than the parameter EndTime.")


def test_too_many_datapoints(cw):
    t = minute()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_statistics(Namespace="X", MetricName="M", StartTime=t - dt.timedelta(days=1),
                                 EndTime=t, Period=1, Statistics=["Sum"])
    assert_aws_error(e, "InvalidParameterCombination", 400,
                     "You have requested up to 86400 datapoints, which exceeds the limit of 1440. "
                     "You may reduce the datapoints requested by increasing Period, or decreasing "
                     "the time range.")


def test_statistics_or_extended_required(cw):
    t = minute()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_statistics(Namespace="X", MetricName="M", StartTime=t - dt.timedelta(hours=1),
                                 EndTime=t, Period=60)
    assert_aws_error(e, "InvalidParameterCombination", 400)


def test_invalid_period(cw):
    t = minute()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_statistics(Namespace="X", MetricName="M", StartTime=t - dt.timedelta(hours=1),
                                 EndTime=t, Period=61, Statistics=["Sum"])
    assert_aws_error(e, "InvalidParameterValue", 400)


def test_not_yet_implemented_operation_is_a_clear_4xx(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.list_metric_streams()
    err = e.value.response
    assert 400 <= err["ResponseMetadata"]["HTTPStatusCode"] < 500
    assert "ListMetricStreams" in err["Error"]["Message"]


def test_gzip_request_body(cw):
    """botocore gzips PutMetricData bodies over 10 KiB in every protocol."""
    n = ns()
    t = minute(-2)
    events = []

    def capture(request, **kw):
        events.append(request.headers.get("Content-Encoding"))
    cw.meta.events.register("before-send.cloudwatch.PutMetricData", capture)
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": f"Metric{i:03d}", "Dimensions": [{"Name": "Host", "Value": "h" * 50}],
         "Timestamp": t, "Value": float(i)} for i in range(200)])
    assert events == [b"gzip"] or events == ["gzip"]
    r = cw.list_metrics(Namespace=n)
    assert len(r["Metrics"]) == 200


# -- ListMetrics -------------------------------------------------------------------------

def test_list_metrics_filters(cw):
    n = ns()
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": "A", "Dimensions": [{"Name": "Host", "Value": "h1"}], "Value": 1.0},
        {"MetricName": "A", "Dimensions": [{"Name": "Host", "Value": "h2"}], "Value": 1.0},
        {"MetricName": "A", "Dimensions": [{"Name": "Host", "Value": "h1"}], "Value": 2.0},
        {"MetricName": "B", "Value": 1.0},
    ])
    all_ = cw.list_metrics(Namespace=n)["Metrics"]
    assert len(all_) == 3      # no duplicates
    assert {m["MetricName"] for m in all_} == {"A", "B"}
    by_name = cw.list_metrics(Namespace=n, MetricName="A")["Metrics"]
    assert len(by_name) == 2
    by_dim = cw.list_metrics(Namespace=n, Dimensions=[{"Name": "Host", "Value": "h2"}])["Metrics"]
    assert by_dim == [{"Namespace": n, "MetricName": "A",
                       "Dimensions": [{"Name": "Host", "Value": "h2"}]}]
    by_dim_name = cw.list_metrics(Namespace=n, Dimensions=[{"Name": "Host"}])["Metrics"]
    assert len(by_dim_name) == 2
    recent = cw.list_metrics(Namespace=n, RecentlyActive="PT3H")["Metrics"]
    assert len(recent) == 3


def test_list_metrics_pagination(cw):
    n = ns()
    data = [{"MetricName": f"M{i:04d}", "Value": 1.0} for i in range(1000)]
    cw.put_metric_data(Namespace=n, MetricData=data[:600])
    cw.put_metric_data(Namespace=n, MetricData=data[600:])
    pages = list(cw.get_paginator("list_metrics").paginate(Namespace=n))
    assert [len(p["Metrics"]) for p in pages] == [500, 500]
    names = [m["MetricName"] for p in pages for m in p["Metrics"]]
    assert sorted(names) == [f"M{i:04d}" for i in range(1000)]
    assert len(set(names)) == 1000
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.list_metrics(Namespace=n, NextToken="garbage!")
    assert_aws_error(e, "InvalidNextToken", 400)


# -- dashboards and tags ---------------------------------------------------------------

BODY = ('{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":'
        '{"metrics":[["AWS/EC2","CPUUtilization"]],"region":"us-east-1"}}]}')


def test_dashboards_lifecycle(cw):
    name = f"dash-{cw.protocol}-{uuid.uuid4().hex[:6]}"
    r = cw.put_dashboard(DashboardName=name, DashboardBody=BODY)
    assert r["DashboardValidationMessages"] == []
    got = cw.get_dashboard(DashboardName=name)
    assert got["DashboardBody"] == BODY
    assert got["DashboardArn"] == f"arn:aws:cloudwatch::000000000000:dashboard/{name}"
    listed = cw.list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
    assert [d["DashboardName"] for d in listed] == [name]
    assert listed[0]["Size"] == len(BODY)
    cw.tag_resource(ResourceARN=got["DashboardArn"], Tags=[{"Key": "team", "Value": "ops"}])
    assert cw.list_tags_for_resource(ResourceARN=got["DashboardArn"])["Tags"] == [
        {"Key": "team", "Value": "ops"}]
    cw.untag_resource(ResourceARN=got["DashboardArn"], TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=got["DashboardArn"])["Tags"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.delete_dashboards(DashboardNames=[name, "does-not-exist"])
    assert_aws_error(e, "ResourceNotFound", 404, "Dashboard does-not-exist does not exist")
    cw.delete_dashboards(DashboardNames=[name])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_dashboard(DashboardName=name)
    assert_aws_error(e, "ResourceNotFound", 404, f"Dashboard {name} does not exist")


def test_dashboard_invalid_name_and_body(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_dashboard(DashboardName="bad name!", DashboardBody=BODY)
    assert_aws_error(e, "InvalidParameterValue", 400,
                     "The value for field DashboardName contains invalid characters. It can only "
                     "contain alphanumerics, dash (-) and underscore (_).\n")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_dashboard(DashboardName="ok", DashboardBody="{not json")
    assert_aws_error(e, "InvalidParameterInput", 400)


def test_tags_on_missing_resource(cw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.list_tags_for_resource(ResourceARN="arn:aws:cloudwatch::000000000000:dashboard/nope")
    assert_aws_error(e, "ResourceNotFoundException", 404)
