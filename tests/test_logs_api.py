"""CloudWatch Logs through boto3 (AWS JSON 1.1) against a live server."""
from __future__ import annotations

import time
import uuid

import botocore.exceptions
import pytest

from conftest import LiveServer, assert_aws_error, make_client


@pytest.fixture
def logs(server):
    return make_client("logs", server.url)


def gname() -> str:
    return f"/test/{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def stream(logs):
    g = gname()
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName="s1")
    return g, "s1"


def test_groups_lifecycle_and_errors(logs):
    g = gname()
    logs.create_log_group(logGroupName=g, tags={"team": "a"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName=g)
    assert_aws_error(e, "ResourceAlreadyExistsException", 400,
                     "The specified log group already exists")
    d = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"]
    assert [x["logGroupName"] for x in d] == [g]
    assert d[0]["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{g}:*"
    assert d[0]["logGroupArn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{g}"
    assert d[0]["metricFilterCount"] == 0 and "retentionInDays" not in d[0]
    assert logs.list_tags_log_group(logGroupName=g)["tags"] == {"team": "a"}
    assert logs.list_tags_for_resource(resourceArn=d[0]["logGroupArn"])["tags"] == {"team": "a"}
    logs.tag_resource(resourceArn=d[0]["logGroupArn"], tags={"env": "prod"})
    logs.untag_resource(resourceArn=d[0]["logGroupArn"], tagKeys=["team"])
    assert logs.list_tags_log_group(logGroupName=g)["tags"] == {"env": "prod"}
    by_pattern = logs.describe_log_groups(logGroupNamePattern=g[6:].upper())["logGroups"]
    assert [x["logGroupName"] for x in by_pattern] == [g]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_groups(logGroupNamePrefix="/x", logGroupNamePattern="x")
    assert_aws_error(e, "InvalidParameterException", 400,
                     "LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                     "parameters.")
    logs.delete_log_group(logGroupName=g)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_log_group(logGroupName=g)
    assert_aws_error(e, "ResourceNotFoundException", 400, "The specified log group does not exist.")


def test_describe_log_groups_pagination(logs):
    base = gname()
    for i in range(7):
        logs.create_log_group(logGroupName=f"{base}/{i}")
    pages = list(logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=base, PaginationConfig={"PageSize": 3}))
    assert [len(p["logGroups"]) for p in pages] == [3, 3, 1]
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == [
        f"{base}/{i}" for i in range(7)]


def test_streams(logs, stream):
    g, s = stream
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_stream(logGroupName=g, logStreamName=s)
    assert_aws_error(e, "ResourceAlreadyExistsException", 400,
                     "The specified log stream already exists")
    t = now_ms()
    logs.create_log_stream(logGroupName=g, logStreamName="s2")
    logs.put_log_events(logGroupName=g, logStreamName="s2",
                        logEvents=[{"timestamp": t - 1000, "message": "a"},
                                   {"timestamp": t, "message": "b"}])
    d = logs.describe_log_streams(logGroupName=g)["logStreams"]
    assert [x["logStreamName"] for x in d] == ["s1", "s2"]
    s2 = d[1]
    assert s2["firstEventTimestamp"] == t - 1000 and s2["lastEventTimestamp"] == t
    assert "firstEventTimestamp" not in d[0]
    by_time = logs.describe_log_streams(logGroupName=g, orderBy="LastEventTime",
                                        descending=True)["logStreams"]
    assert by_time[0]["logStreamName"] == "s2"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_streams(logGroupName=g, orderBy="LastEventTime", logStreamNamePrefix="s")
    assert_aws_error(e, "InvalidParameterException", 400)
    logs.delete_log_stream(logGroupName=g, logStreamName="s2")
    assert [x["logStreamName"] for x in logs.describe_log_streams(logGroupName=g)["logStreams"]] == ["s1"]


def test_put_log_events_rules(logs, stream):
    g, s = stream
    t = now_ms()
    r = logs.put_log_events(logGroupName=g, logStreamName=s, sequenceToken="ignored",
                            logEvents=[{"timestamp": t - 15 * 86400_000, "message": "too old"},
                                       {"timestamp": t - 1000, "message": "ok 1"},
                                       {"timestamp": t, "message": "ok 2"},
                                       {"timestamp": t + 3 * 3600_000, "message": "too new"}])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 3}
    assert r["nextSequenceToken"]
    got = logs.get_log_events(logGroupName=g, logStreamName=s, startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["ok 1", "ok 2"]
    assert all(e["ingestionTime"] >= t - 5000 for e in got)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=g, logStreamName=s,
                            logEvents=[{"timestamp": t, "message": "b"},
                                       {"timestamp": t - 1, "message": "a"}])
    assert_aws_error(e, "InvalidParameterException", 400,
                     "Log events in a single PutLogEvents request must be in chronological order.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=g, logStreamName=s,
                            logEvents=[{"timestamp": t - 25 * 3600_000, "message": "a"},
                                       {"timestamp": t, "message": "b"}])
    assert_aws_error(e, "InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=g, logStreamName=s,
                            logEvents=[{"timestamp": t, "message": "x" * 600_000},
                                       {"timestamp": t, "message": "y" * 600_000}])
    assert_aws_error(e, "InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName=g, logStreamName="nope",
                            logEvents=[{"timestamp": t, "message": "x"}])
    assert_aws_error(e, "ResourceNotFoundException", 400, "The specified log stream does not exist.")
    # nothing of the failed calls was stored
    got = logs.get_log_events(logGroupName=g, logStreamName=s, startFromHead=True)["events"]
    assert len(got) == 2


def test_limit_validation_message(logs, stream):
    g, s = stream
    raw = make_client("logs", logs.meta.endpoint_url, validate=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        raw.get_log_events(logGroupName=g, logStreamName=s, limit=10001)
    assert_aws_error(e, "InvalidParameterException", 400,
                     "1 validation error detected: Value '10001' at 'limit' failed to satisfy "
                     "constraint: Member must have value less than or equal to 10000")


def test_get_log_events_tokens(logs, stream):
    g, s = stream
    t = now_ms() - 60_000
    logs.put_log_events(logGroupName=g, logStreamName=s,
                        logEvents=[{"timestamp": t + i, "message": f"m{i}"} for i in range(25)])
    # from the head, forward pages of 10
    seen = []
    r = logs.get_log_events(logGroupName=g, logStreamName=s, startFromHead=True, limit=10)
    while r["events"]:
        seen.extend(e["message"] for e in r["events"])
        token = r["nextForwardToken"]
        r = logs.get_log_events(logGroupName=g, logStreamName=s, nextToken=token, limit=10)
    assert seen == [f"m{i}" for i in range(25)]
    assert r["nextForwardToken"] == token        # the end of the stream: same token again
    # default: the newest events, then backwards
    r = logs.get_log_events(logGroupName=g, logStreamName=s, limit=10)
    assert [e["message"] for e in r["events"]] == [f"m{i}" for i in range(15, 25)]
    r = logs.get_log_events(logGroupName=g, logStreamName=s, limit=10,
                            nextToken=r["nextBackwardToken"])
    assert [e["message"] for e in r["events"]] == [f"m{i}" for i in range(5, 15)]
    # time window: start inclusive, end exclusive
    r = logs.get_log_events(logGroupName=g, logStreamName=s, startTime=t + 3, endTime=t + 6,
                            startFromHead=True)
    assert [e["message"] for e in r["events"]] == ["m3", "m4", "m5"]


def test_filter_log_events(logs):
    g = gname()
    logs.create_log_group(logGroupName=g)
    t = now_ms() - 60_000
    for s in ("web-1", "web-2", "db"):
        logs.create_log_stream(logGroupName=g, logStreamName=s)
    logs.put_log_events(logGroupName=g, logStreamName="web-1", logEvents=[
        {"timestamp": t, "message": "ERROR disk full"},
        {"timestamp": t + 2, "message": '{"level": "error", "latency": 120}'}])
    logs.put_log_events(logGroupName=g, logStreamName="web-2", logEvents=[
        {"timestamp": t + 1, "message": "INFO all good"},
        {"timestamp": t + 3, "message": '{"level": "info", "latency": 30}'}])
    logs.put_log_events(logGroupName=g, logStreamName="db", logEvents=[
        {"timestamp": t + 4, "message": "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a\" 404 2326"}])

    def msgs(**kw):
        return [e["message"] for e in logs.filter_log_events(logGroupName=g, **kw)["events"]]

    assert len(msgs()) == 5
    assert msgs(filterPattern="ERROR") == ["ERROR disk full"]
    assert msgs(filterPattern="?ERROR ?INFO") == ["ERROR disk full", "INFO all good"]
    assert msgs(filterPattern="{ $.latency > 100 }") == ['{"level": "error", "latency": 120}']
    assert msgs(filterPattern="[ip, id, user, ts, req, status=404, size]") == [
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a\" 404 2326"]
    assert msgs(logStreamNamePrefix="web-", filterPattern="-ERROR") == [
        "INFO all good", '{"level": "error", "latency": 120}', '{"level": "info", "latency": 30}']
    assert msgs(logStreamNames=["db"]) == [
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a\" 404 2326"]
    assert msgs(startTime=t + 1, endTime=t + 2) == ["INFO all good",
                                                     '{"level": "error", "latency": 120}']
    r = logs.filter_log_events(logGroupName=g, filterPattern="ERROR")
    assert r["events"][0]["logStreamName"] == "web-1"
    assert r["events"][0]["eventId"]
    # pagination
    pages = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=g, PaginationConfig={"PageSize": 2}))
    assert [len(p["events"]) for p in pages] == [2, 2, 1]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName=g, filterPattern="{ $.a = ")
    err = assert_aws_error(e, "InvalidParameterException", 400)
    assert "column" in err["Error"]["Message"]


def test_retention_policy_values(logs, stream):
    g, _ = stream
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_retention_policy(logGroupName=g, retentionInDays=2)
    err = assert_aws_error(e, "InvalidParameterException", 400)
    assert "Value '2' at 'retentionInDays'" in err["Error"]["Message"]
    logs.put_retention_policy(logGroupName=g, retentionInDays=7)
    assert logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"][0]["retentionInDays"] == 7
    logs.delete_retention_policy(logGroupName=g)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"][0]


def test_retention_really_deletes_and_restart_keeps_the_rest(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    srv = LiveServer(data, extra_args=["--compact-interval", "0.5"]).start()
    try:
        logs = make_client("logs", srv.url)
        logs.create_log_group(logGroupName="/ret")
        logs.create_log_stream(logGroupName="/ret", logStreamName="s")
        t = now_ms()
        logs.put_log_events(logGroupName="/ret", logStreamName="s", logEvents=[
            {"timestamp": t - 10 * 86400_000 + i, "message": f"old{i}"} for i in range(3)])
        logs.put_log_events(logGroupName="/ret", logStreamName="s", logEvents=[
            {"timestamp": t, "message": "new"}])
        logs.put_retention_policy(logGroupName="/ret", retentionInDays=7)
        deadline = time.time() + 20
        while time.time() < deadline:
            got = logs.get_log_events(logGroupName="/ret", logStreamName="s",
                                      startFromHead=True)["events"]
            if len(got) == 1:
                break
            time.sleep(0.2)
        assert [e["message"] for e in got] == ["new"]
        # events older than the retention are now reported as expired, not stored
        r = logs.put_log_events(logGroupName="/ret", logStreamName="s", logEvents=[
            {"timestamp": t - 8 * 86400_000, "message": "expired"},
            {"timestamp": t - 8 * 86400_000 + 1, "message": "expired too"}])
        assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 2}
    finally:
        srv.stop()
    srv = LiveServer(data).start()
    try:
        logs = make_client("logs", srv.url)
        g = logs.describe_log_groups(logGroupNamePrefix="/ret")["logGroups"][0]
        assert g["retentionInDays"] == 7
        got = logs.get_log_events(logGroupName="/ret", logStreamName="s", startFromHead=True)
        assert [e["message"] for e in got["events"]] == ["new"]
    finally:
        srv.stop()
