"""Codec round trips with botocore as the oracle, in-process (no server).

Requests: botocore's own serializer for each protocol (json, query, smithy-rpc-v2-cbor)
writes the exact wire request a client would send; our codec must read back exactly the
parameters botocore was given (timestamps as epoch floats).

Responses: our ``encode_result`` / ``encode_error`` write the wire answer; botocore's parser
for that protocol must read back the result we encoded, and for errors the Code, Message,
Type and HTTP status a client sees (query-compatible ``x-amzn-query-error`` header included).

Captures: every real client request under /work/shared/reference/captures must decode to the
operation it was captured for.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from urllib.parse import urlsplit

import botocore.model
import botocore.session
import cbor2
import pytest
from botocore.awsrequest import HeadersDict, create_request_object, prepare_request_dict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from multidict import CIMultiDict

from metricstore import services
from metricstore.codecs import Call, RequestInfo, decompress, pick_codec
from metricstore.codecs.cbor import CBOR
from metricstore.codecs.json import JSON
from metricstore.codecs.query_xml import QUERY
from metricstore.errors import (ServiceError, internal_failure, invalid_action,
                                invalid_parameter_value, validation_error)

UTC = dt.timezone.utc
CAPTURES = Path("/work/shared/reference/captures")

# our codec name -> botocore protocol name
PROTOCOLS = {"json": "json", "query": "query", "cbor": "smithy-rpc-v2-cbor"}
CODECS = {"json": JSON, "query": QUERY, "cbor": CBOR}

_RAW = botocore.session.get_session().get_component("data_loader").load_service_model(
    "cloudwatch", "service-2")
MODEL = botocore.model.ServiceModel(_RAW, "cloudwatch")
SPEC = services.service("cloudwatch")


def ts(*args, us=0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC).replace(microsecond=us)


T0 = ts(2026, 11, 26, 12, 0, 0)
T1 = ts(2026, 11, 26, 12, 5, 30, us=250000)        # exactly representable fraction
T2 = ts(2026, 11, 26, 13, 0, 0, us=123456)         # microseconds: approximate compare


# -- requests ----------------------------------------------------------------------------

DIMS = [{"Name": "Host", "Value": "web-1"}, {"Name": "Größe", "Value": "a&b=c+d %2F/? ✓ 🚀"}]

REQUESTS = {
    "PutMetricData-value-values-statset": ("PutMetricData", {
        "Namespace": "MyApp/Production",
        "MetricData": [
            {"MetricName": "OrdersProcessed", "Dimensions": DIMS, "Timestamp": T0,
             "Value": 150.0, "Unit": "Count", "StorageResolution": 1},
            {"MetricName": "Latency", "Timestamp": T1, "Values": [1.0, 2.5, 1e-300, 2.0 ** 300],
             "Counts": [1.0, 2.0, 3.0, 4.0], "Unit": "Milliseconds"},
            {"MetricName": "Requests", "Timestamp": T2, "Dimensions": [],
             "StatisticValues": {"SampleCount": 3.0, "Sum": 6.0, "Minimum": -1.5,
                                 "Maximum": 1.7976931348623157e308},
             "Unit": "Bytes/Second"},
            {"MetricName": "Tiny", "Value": 0.1},
        ],
        "StrictEntityValidation": False,
    }),
    "PutMetricData-entity-maps": ("PutMetricData", {
        "Namespace": "Svc",
        "EntityMetricData": [{
            "Entity": {"KeyAttributes": {"Type": "Service", "Name": "orders",
                                         "Environment": "prod"},
                       "Attributes": {"PlatformType": "AWS::EC2", "EC2.InstanceId": "i-1"}},
            "MetricData": [{"MetricName": "M", "Value": 1.0}],
        }],
    }),
    "GetMetricData": ("GetMetricData", {
        "MetricDataQueries": [
            {"Id": "m1", "MetricStat": {
                "Metric": {"Namespace": "MyApp/Production", "MetricName": "OrdersProcessed",
                           "Dimensions": DIMS},
                "Period": 60, "Stat": "p99.9", "Unit": "Count"},
             "ReturnData": False, "Label": "orders"},
            {"Id": "e1", "Expression": "m1 * 2", "Label": "Doubled ${SUM}", "Period": 300},
            {"Id": "q1", "Expression": 'SELECT AVG(CPUUtilization) FROM "AWS/EC2"',
             "AccountId": "123456789012", "ReturnData": True},
        ],
        "StartTime": T0, "EndTime": T2, "NextToken": "tok/+=", "ScanBy": "TimestampAscending",
        "MaxDatapoints": 100800, "LabelOptions": {"Timezone": "-0130"},
    }),
    "GetMetricStatistics": ("GetMetricStatistics", {
        "Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "InstanceId", "Value": "i-0123"}],
        "StartTime": T0, "EndTime": T1, "Period": 3600,
        "Statistics": ["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
        "ExtendedStatistics": ["p99", "tm90"], "Unit": "Percent",
    }),
    "PutMetricAlarm-metrics": ("PutMetricAlarm", {
        "AlarmName": "high-cpu-alarm", "AlarmDescription": "Alert when CPU exceeds 80% <&>",
        "ActionsEnabled": True, "OKActions": [],
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:alerts",
                         "arn:aws:sns:us-east-1:123456789012:pager"],
        "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 80.5,
        "ComparisonOperator": "GreaterThanUpperThreshold", "TreatMissingData": "notBreaching",
        "Metrics": [
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/EC2",
                                                   "MetricName": "CPUUtilization",
                                                   "Dimensions": [{"Name": "InstanceId",
                                                                   "Value": "i-1"}]},
                                        "Period": 300, "Stat": "Average"}, "ReturnData": True},
            {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "band",
             "ReturnData": True},
        ],
        "ThresholdMetricId": "ad1",
        "Tags": [{"Key": "team", "Value": "ops"}, {"Key": "empty", "Value": ""}],
    }),
    "PutMetricAlarm-seed": ("PutMetricAlarm", {
        "AlarmName": "high-cpu-alarm", "AlarmDescription": "Alert when CPU exceeds 80%",
        "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average",
        "Period": 300, "Threshold": 80, "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 2, "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:alerts"],
    }),
    "DescribeAlarms": ("DescribeAlarms", {
        "AlarmNames": ["high-cpu-alarm", "critical-system-alarm"],
        "AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "StateValue": "ALARM",
        "ActionPrefix": "arn:aws:sns:", "MaxRecords": 100, "NextToken": "abc",
    }),
    "DescribeAlarms-empty": ("DescribeAlarms", {}),
    "ListMetrics": ("ListMetrics", {
        "Namespace": "MyApp/Production", "MetricName": "OrdersProcessed",
        "Dimensions": [{"Name": "Environment", "Value": "production"}, {"Name": "Service"}],
        "RecentlyActive": "PT3H", "IncludeLinkedAccounts": True, "OwningAccount": "123456789012",
    }),
    "PutDashboard": ("PutDashboard", {
        "DashboardName": "ops-dash_1",
        "DashboardBody": json.dumps({"widgets": [{"type": "text", "properties": {
            "markdown": "# Ops <b>&amp;</b> \"quotes\" 'single'\nline2\ttab ✓"}}]}),
    }),
    "TagResource": ("TagResource", {
        "ResourceARN": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-cpu-alarm",
        "Tags": [{"Key": "team", "Value": "ops"}, {"Key": "cost-center", "Value": "42"}],
    }),
    "DeleteDashboards": ("DeleteDashboards", {"DashboardNames": ["a", "b", "c"]}),
    "SetAlarmState": ("SetAlarmState", {
        "AlarmName": "a", "StateValue": "INSUFFICIENT_DATA", "StateReason": "manual",
        "StateReasonData": '{"version":"1.0"}'}),
}


def botocore_request(protocol: str, op: str, params: dict, gzip_body: bool = False) -> RequestInfo:
    """The HTTP request botocore sends for ``op``, as our server would see it."""
    serializer = create_serializer(PROTOCOLS[protocol])
    request_dict = serializer.serialize_to_request(params, MODEL.operation_model(op))
    prepare_request_dict(request_dict, endpoint_url="http://127.0.0.1:4566")
    prepared = create_request_object(request_dict).prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = CIMultiDict((k, v.decode() if isinstance(v, bytes) else v)
                          for k, v in prepared.headers.items())
    if gzip_body:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return RequestInfo(prepared.method, urlsplit(prepared.url).path, headers, body)


def expected_params(value, approx_us=True):
    """botocore's input as our codecs must hand it on: datetimes become epoch floats."""
    if isinstance(value, dt.datetime):
        t = value.timestamp()
        return pytest.approx(t, abs=1e-6) if value.microsecond else t
    if isinstance(value, dict):
        return {k: expected_params(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expected_params(v) for v in value]
    return value


def assert_types(value, shape, path="") -> None:
    """The types operations are promised (codecs/shapes.py docstring)."""
    t = shape.type_name
    if t == "structure":
        for k, v in value.items():
            assert_types(v, shape.members[k], f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), path
        for i, v in enumerate(value):
            assert_types(v, shape.member, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert type(k) is str, path
            assert_types(v, shape.value, f"{path}.{k}")
    elif t == "string":
        assert type(value) is str, path
    elif t in ("integer", "long"):
        assert type(value) is int, path
    elif t == "boolean":
        assert type(value) is bool, path
    elif t in ("double", "float"):
        assert type(value) in (float, int), path
    elif t == "timestamp":
        # epoch seconds; the typed protocols' fast path (shapes.fast_reader) hands integral
        # JSON/CBOR timestamps on as int, the full reader as float: both are numbers
        assert type(value) in (float, int), (path, value)


def decode(req: RequestInfo):
    codec = pick_codec(req)
    assert codec is not None, req
    call = codec.decode(req)
    return codec, call, codec.read_params(call, req)


@pytest.mark.parametrize("case", list(REQUESTS))
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_botocore_request_decodes_to_its_params(protocol, case):
    op, params = REQUESTS[case]
    codec, call, got = decode(botocore_request(protocol, op, params))
    assert codec is CODECS[protocol]
    assert (call.service.name, call.operation, call.protocol) == ("cloudwatch", op, protocol)
    assert call.query_mode is (protocol != "query")
    assert got == expected_params(params)
    assert_types(got, SPEC.operation(op).input_shape)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_gzip_request_body(protocol):
    """Content-Encoding: gzip (PutMetricData's requestcompression trait) is undone by the codec
    too, not only by aiohttp in front of it."""
    op, params = REQUESTS["PutMetricData-value-values-statset"]
    big = dict(params, MetricData=params["MetricData"] * 60)     # > 10 KiB, like botocore
    _, call, got = decode(botocore_request(protocol, op, big, gzip_body=True))
    assert call.operation == op
    assert got == expected_params(big)


def test_millisecond_and_integer_timestamps():
    """JSON: ints (botocore) and floats with ms (JS); CBOR: tag 1 + uint or float64; query:
    ISO-8601 with µs (botocore) or ms (JS)."""
    def params(got):
        return got["StartTime"], got["EndTime"]

    base = {"Namespace": "N", "MetricName": "M", "Period": 60, "Statistics": ["Sum"]}
    j = RequestInfo("POST", "/", CIMultiDict({
        "X-Amz-Target": "GraniteServiceVersion20100801.GetMetricStatistics",
        "Content-Type": "application/x-amz-json-1.0"}),
        json.dumps(dict(base, StartTime=1795696357, EndTime=1795696357.123)).encode())
    assert params(decode(j)[2]) == (1795696357.0, pytest.approx(1795696357.123, abs=1e-9))
    c = RequestInfo("POST", "/service/GraniteServiceVersion20100801/operation/GetMetricStatistics",
                    CIMultiDict({"Content-Type": "application/cbor",
                                 "smithy-protocol": "rpc-v2-cbor"}),
                    cbor2.dumps(dict(base, StartTime=cbor2.CBORTag(1, 1795696357),
                                     EndTime=cbor2.CBORTag(1, 1795696357.123))))
    assert params(decode(c)[2]) == (1795696357.0, pytest.approx(1795696357.123, abs=1e-6))
    q = RequestInfo("POST", "/", CIMultiDict({"Content-Type": "application/x-www-form-urlencoded"}),
                    b"Action=GetMetricStatistics&Version=2010-08-01&Namespace=N&MetricName=M"
                    b"&Period=60&Statistics.member.1=Sum&StartTime=2026-11-26T12%3A32%3A37.123Z"
                    b"&EndTime=2026-11-26T12%3A32%3A37.123456%2B00%3A00")
    got = params(decode(q)[2])
    assert got == (pytest.approx(1795696357.123, abs=1e-6),
                   pytest.approx(1795696357.123456, abs=1e-6))


# -- responses ---------------------------------------------------------------------------

RESULTS = {
    "GetMetricStatistics": ("GetMetricStatistics", {
        "Label": "CPUUtilization",
        "Datapoints": [
            {"Timestamp": 1795694400.0, "SampleCount": 5.0, "Average": 4.2, "Sum": 21.0,
             "Minimum": 0.1, "Maximum": 1.7976931348623157e308, "Unit": "Percent",
             "ExtendedStatistics": {"p99": 9.5, "p50": 4.0}},
            {"Timestamp": 1795694460.5, "SampleCount": 1.0, "Sum": -0.0, "Unit": "Percent"},
            {"Timestamp": T2, "SampleCount": 2, "Sum": 1e-300, "Unit": "None"},
        ],
    }),
    "GetMetricData": ("GetMetricData", {
        "MetricDataResults": [
            {"Id": "m1", "Label": "orders <&> \"q\"", "Timestamps": [1795694520.0, 1795694460.0],
             "Values": [150.0, 3.25], "StatusCode": "Complete", "Messages": []},
            {"Id": "e1", "Label": "Doubled", "Timestamps": [1795694520.0], "Values": [300.0],
             "StatusCode": "PartialData",
             "Messages": [{"Code": "MaxDatapointsExceeded", "Value": "too many"}]},
            {"Id": "empty", "Label": "nothing", "Timestamps": [], "Values": [],
             "StatusCode": "Complete"},
        ],
        "NextToken": "next/+=",
        "Messages": [],
    }),
    "DescribeAlarms": ("DescribeAlarms", {
        "MetricAlarms": [{
            "AlarmName": "high-cpu-alarm",
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-cpu-alarm",
            "AlarmDescription": "Alert when CPU exceeds 80% & <more>",
            "AlarmConfigurationUpdatedTimestamp": 1795694400.123,
            "ActionsEnabled": True, "OKActions": [],
            "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:alerts"],
            "InsufficientDataActions": [],
            "StateValue": "ALARM", "StateReason": "Threshold Crossed: 2 datapoints [91.0, 85.5]",
            "StateReasonData": '{"version":"1.0","queryDate":"2026-11-26T12:00:00.000+0000"}',
            "StateUpdatedTimestamp": 1795694400.5, "StateTransitionedTimestamp": 1795694400.5,
            "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average",
            "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}], "Period": 300,
            "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": 80.0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing",
        }, {
            "AlarmName": "math", "ActionsEnabled": False, "StateValue": "OK",
            "EvaluationPeriods": 1, "Threshold": 1.5, "ComparisonOperator": "LessThanThreshold",
            "Metrics": [
                {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "M",
                                                       "Dimensions": []},
                                            "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                {"Id": "e1", "Expression": "m1 / 60", "Label": "rate", "ReturnData": True},
            ],
        }],
        "CompositeAlarms": [{
            "AlarmName": "critical-system-alarm",
            "AlarmRule": "ALARM(high-cpu-alarm) OR ALARM(high-memory-alarm)",
            "ActionsEnabled": True,
            "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:critical-alerts"],
            "StateValue": "INSUFFICIENT_DATA", "StateUpdatedTimestamp": 1795694400.0,
            "ActionsSuppressorWaitPeriod": 60,
        }],
        "NextToken": "n",
    }),
    "ListMetrics": ("ListMetrics", {
        "Metrics": [
            {"Namespace": "Test", "MetricName": "TestMetric", "Dimensions": []},
            {"Namespace": "MyApp/Production", "MetricName": "OrdersProcessed",
             "Dimensions": [{"Name": "Environment", "Value": "production"},
                            {"Name": "Service", "Value": "api ✓"}]},
        ],
        "NextToken": "tok",
        "OwningAccounts": ["123456789012"],
    }),
    "ListMetrics-empty": ("ListMetrics", {"Metrics": []}),
    "GetDashboard": ("GetDashboard", {
        "DashboardArn": "arn:aws:cloudwatch::123456789012:dashboard/ops",
        "DashboardBody": '{"widgets":[{"type":"text","properties":{"markdown":"<b>&amp;</b> '
                         '\\"x\\" \\n ✓ 🚀"}}]}',
        "DashboardName": "ops",
    }),
    "ListDashboards": ("ListDashboards", {
        "DashboardEntries": [{"DashboardName": "ops",
                              "DashboardArn": "arn:aws:cloudwatch::123456789012:dashboard/ops",
                              "LastModified": 1795694400.25, "Size": 2 ** 40}],
    }),
    "PutDashboard": ("PutDashboard", {"DashboardValidationMessages": [
        {"DataPath": "/widgets/0/properties", "Message": "Should have required property 'metrics'"}]}),
    "ListTagsForResource": ("ListTagsForResource", {"Tags": [{"Key": "team", "Value": "ops"}]}),
    "PutMetricData": ("PutMetricData", None),
    "TagResource": ("TagResource", {}),
}


def to_plain(value):
    """botocore's parsed output, comparable: datetimes → epoch, ResponseMetadata dropped."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def expected_result(value, protocol):
    """What a client must read back: timestamps to the millisecond (query writes ms), no
    None members, doubles as floats."""
    if isinstance(value, dt.datetime):
        value = value.timestamp()
    if isinstance(value, dict):
        return {k: expected_result(v, protocol) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [expected_result(v, protocol) for v in value]
    if isinstance(value, float) and value > 1e9 and value < 4e9:        # a timestamp
        return pytest.approx(value, abs=5e-4 if protocol == "query" else 1e-6)
    return value


def parse(protocol: str, reply, shape):
    return create_parser(PROTOCOLS[protocol]).parse(
        {"status_code": reply.status, "headers": HeadersDict(reply.headers), "body": reply.body},
        shape)


@pytest.mark.parametrize("case", list(RESULTS))
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_encoded_result_parses_back(protocol, case):
    op, result = RESULTS[case]
    codec = CODECS[protocol]
    call = Call(SPEC, op, {}, protocol, "req-id-1", query_mode=protocol != "query")
    reply = codec.encode_result(call, result)
    assert reply.status == 200
    headers = HeadersDict(reply.headers)
    assert headers["x-amzn-RequestId"] == "req-id-1"
    assert headers["Content-Type"] == {"json": "application/x-amz-json-1.0", "query": "text/xml",
                                       "cbor": "application/cbor"}[protocol]
    if protocol == "cbor":
        assert headers["smithy-protocol"] == "rpc-v2-cbor"
    shape = SPEC.operation(op).output_shape
    parsed = parse(protocol, reply, shape)
    if shape is not None:
        assert parsed["ResponseMetadata"]["RequestId"] == "req-id-1"
    assert to_plain(parsed) == expected_result(result or {}, protocol)


# -- errors ------------------------------------------------------------------------------

ERRORS = {
    # name: (error, query code, status in query mode, sender?, message)
    "ResourceNotFound": (ServiceError("ResourceNotFound", "Alarm nope does not exist"),
                         "ResourceNotFound", 404, True, "Alarm nope does not exist"),
    "DashboardNotFoundError": (ServiceError("DashboardNotFoundError",
                                            "Dashboard does-not-exist does not exist"),
                               "ResourceNotFound", 404, True,
                               "Dashboard does-not-exist does not exist"),
    "InvalidParameterValue": (invalid_parameter_value("The value <&> \"x\" is invalid."),
                              "InvalidParameterValue", 400, True,
                              "The value <&> \"x\" is invalid."),
    "LimitExceededFault": (ServiceError("LimitExceededFault", "too many alarms"),
                           "LimitExceeded", 400, True, "too many alarms"),
    "InternalServiceFault": (ServiceError("InternalServiceFault", "boom"),
                             "InternalServiceError", 500, False, "boom"),
    "ConcurrentModification": (ServiceError("ConcurrentModificationException", "busy"),
                               "ConcurrentModificationException", 429, True, "busy"),
    "no-message": (ServiceError("ResourceNotFound"), "ResourceNotFound", 404, True, None),
    # not in the model
    "ValidationError": (validation_error(["Value 'INVALID' at 'stateValue' failed to satisfy "
                                          "constraint: Member must satisfy enum value set: "
                                          "[INSUFFICIENT_DATA, ALARM, OK]"]),
                        "ValidationError", 400, True,
                        "1 validation error detected: Value 'INVALID' at 'stateValue' failed to "
                        "satisfy constraint: Member must satisfy enum value set: "
                        "[INSUFFICIENT_DATA, ALARM, OK]"),
    "InvalidAction": (invalid_action("The operation X is not implemented by metricstore yet."),
                      "InvalidAction", 400, True,
                      "The operation X is not implemented by metricstore yet."),
    "InternalFailure": (internal_failure(), "InternalFailure", 500, False,
                        internal_failure().message),
    "Serialization": (ServiceError("SerializationException", "bad body", status=400,
                                   query_code="MalformedInput"), "MalformedInput", 400, True,
                      "bad body"),
}


@pytest.mark.parametrize("case", list(ERRORS))
@pytest.mark.parametrize("protocol,query_mode", [("json", True), ("json", False), ("cbor", True),
                                                 ("cbor", False), ("query", False)],
                         ids=["json", "json-no-query-mode", "cbor", "cbor-no-query-mode", "query"])
def test_encoded_error_parses_back(protocol, case, query_mode):
    err, qcode, status, sender, message = ERRORS[case]
    codec = CODECS[protocol]
    call = Call(SPEC, "SetAlarmState", {}, protocol, "req-id-2", query_mode=query_mode)
    reply = codec.encode_error(SPEC, call, err)
    # AWS: 4xx errors of query-compatible JSON/CBOR are 400 unless the client sent
    # x-amzn-query-mode: true (wire-protocols.md §1.4)
    want_status = status if (query_mode or protocol == "query" or status >= 500) else 400
    assert reply.status == want_status
    headers = HeadersDict(reply.headers)
    assert headers["x-amzn-RequestId"] == "req-id-2"
    fault = "Sender" if sender else "Receiver"
    if protocol != "query":
        assert headers["x-amzn-query-error"] == f"{qcode};{fault}"
        assert "X-Amzn-ErrorType" not in headers
    parsed = parse(protocol, reply, SPEC.operation("SetAlarmState").output_shape)
    e = parsed["Error"]
    assert e["Code"] == qcode
    assert e["Type"] == fault
    assert (e.get("Message") or None) == message
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == want_status
    assert parsed["ResponseMetadata"]["RequestId"] == "req-id-2"
    if protocol != "query":
        # the __type names the model's shape (botocore keeps it as QueryErrorCode)
        assert e["QueryErrorCode"] == err.code
        raw = json.loads(reply.body) if protocol == "json" else cbor2.loads(reply.body)
        assert raw["__type"].rsplit("#", 1)[1] == err.code
        assert "#" in raw["__type"]


def test_query_xml_survives_characters_xml_cannot_carry():
    """Control characters and lone surrogates can reach a reply (a namespace stored through
    JSON, a bad value echoed in an error message); XML 1.0 cannot carry them even escaped, so
    the XML stays well-formed with U+FFFD in their place, and tab/LF/CR stay as they are (CR
    as ``&#xD;``, as AWS writes it, since XML parsers turn a literal CR into LF)."""
    call = Call(SPEC, "ListMetrics", {}, "query", "rid")
    reply = QUERY.encode_result(call, {"Metrics": [
        {"Namespace": "ctl\x01\x00\x1f", "MetricName": "tab\tlf\ncr\r",
         "Dimensions": [{"Name": "s", "Value": "x\ud800y\ufffe"}]}]})
    parsed = parse("query", reply, SPEC.operation("ListMetrics").output_shape)
    m = parsed["Metrics"][0]
    assert m["Namespace"] == "ctl\ufffd\ufffd\ufffd"
    assert m["MetricName"] == "tab\tlf\ncr\r"
    assert m["Dimensions"] == [{"Name": "s", "Value": "x\ufffdy\ufffd"}]
    reply = QUERY.encode_error(SPEC, call, ServiceError(
        "InvalidParameterValueException", "Value (\x01) for parameter Namespace is invalid."))
    e = parse("query", reply, None)["Error"]
    assert (e["Code"], e["Message"]) == ("InvalidParameterValue",
                                         "Value (\ufffd) for parameter Namespace is invalid.")


def test_error_without_service_is_still_parseable():
    """Requests naming no known service get an error in JSON (dispatch uses JSON for them)."""
    reply = JSON.encode_error(None, None, ServiceError("UnknownOperationException", "what?",
                                                       status=400))
    parsed = create_parser("json").parse(
        {"status_code": reply.status, "headers": HeadersDict(reply.headers), "body": reply.body},
        None)
    assert parsed["Error"]["Code"] == "UnknownOperationException"
    assert parsed["Error"]["Message"] == "what?"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- real client captures ------------------------------------------------------------------

def _captures():
    if not CAPTURES.is_dir():
        return []
    out = []
    for meta in sorted(CAPTURES.glob("[0-9][0-9][0-9]-*.json")):
        if not meta.with_suffix(".req.bin").exists():
            continue
        out.append(pytest.param(meta, id=meta.stem))
    return out


CAPTURE_FILES = _captures()


def _normalize_cbor(value):
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _normalize_cbor(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_cbor(v) for v in value]
    return value


@pytest.mark.skipif(not CAPTURE_FILES, reason=f"no captures under {CAPTURES}")
@pytest.mark.parametrize("meta", CAPTURE_FILES)
def test_capture_decodes(meta: Path):
    info = json.loads(meta.read_text())["request"]
    op = meta.stem.rsplit("-", 1)[1]
    body = meta.with_suffix(".req.bin").read_bytes()
    headers = CIMultiDict(info["headers"])
    enc = headers.get("Content-Encoding")
    if enc:                                   # aiohttp decodes before the codec sees it
        body = decompress(body, enc)
        del headers["Content-Encoding"]
    req = RequestInfo(info["method"], info["path"], headers, body)
    codec, call, params = decode(req)
    target = headers.get("X-Amz-Target") or ""
    service = "logs" if target.startswith("Logs_") else "cloudwatch"
    assert (call.service.name, call.operation) == (service, op)
    assert codec.name == {"json": "json", "query": "query", "cbor": "cbor"}[info["body_kind"]]
    assert_types(params, call.service.operation(op).input_shape)
    # JSON and CBOR carry the same tree: the decoded params are exactly the body
    if codec is JSON:
        assert params == json.loads(body)
    elif codec is CBOR:
        assert params == _normalize_cbor(cbor2.loads(body))
    else:
        # query: every leaf of the form survives (count leaves: "X=" empty lists aside)
        leaves = [kv for kv in body.split(b"&") if kv and not kv.startswith((b"Action=", b"Version="))]
        assert _count_leaves(params) == len([kv for kv in leaves if not kv.endswith(b"=")])


def _count_leaves(value) -> int:
    if isinstance(value, dict):
        return sum(_count_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_leaves(v) for v in value)
    return 1


def test_captures_cover_every_cloudwatch_protocol_and_client():
    if not CAPTURE_FILES:
        pytest.skip(f"no captures under {CAPTURES}")
    labels = {json.loads(p.values[0].read_text())["label"] for p in CAPTURE_FILES}
    for needed in ("cw-json-default", "cw-query-forced", "cw-cbor-forced", "js-default",
                   "js-cbor-forced", "js-query-forced", "awscli-v1"):
        assert needed in labels
