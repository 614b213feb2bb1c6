"""Logs Insights through boto3 and the aws CLI: StartQuery → GetQueryResults, and friends."""
from __future__ import annotations

import json
import time
import uuid

import botocore.exceptions
import pytest

from conftest import assert_aws_error, make_client, run_aws


@pytest.fixture
def logs(server):
    return make_client("logs", server.url)


def wait(logs, qid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = logs.get_query_results(queryId=qid)
        if r["status"] not in ("Scheduled", "Running"):
            return r
        time.sleep(0.05)
    raise AssertionError("query did not finish")


@pytest.fixture
def group(logs):
    g = f"/aws/lambda/fn-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName="s1")
    now = int(time.time() * 1000) - 60_000
    events = []
    for i in range(40):
        if i % 2:
            events.append({"timestamp": now + i, "message": json.dumps(
                {"level": "ERROR" if i % 5 == 0 else "INFO", "latency": i * 10, "path": f"/p{i % 3}"})})
        else:
            events.append({"timestamp": now + i, "message": f"{'ERROR' if i % 4 == 0 else 'INFO'} line {i}"})
    logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=events)
    return g, now, events


def run(logs, g, q, start=None, end=None):
    now = int(time.time())
    qid = logs.start_query(logGroupName=g, startTime=start or now - 3600, endTime=end or now + 60,
                           queryString=q)["queryId"]
    return wait(logs, qid)


def as_dicts(results):
    return [{f["field"]: f["value"] for f in row} for row in results]


def test_seed_query(logs, group):
    g, now, events = group
    r = run(logs, g, "fields @timestamp, @message | filter @message like /ERROR/ "
                     "| sort @timestamp desc | limit 100")
    assert r["status"] == "Complete"
    rows = as_dicts(r["results"])
    expected = [e for e in events if "ERROR" in e["message"]]
    expected.sort(key=lambda e: e["timestamp"], reverse=True)
    assert [x["@message"] for x in rows] == [e["message"] for e in expected]
    assert all("@ptr" in x for x in rows)
    assert r["statistics"]["recordsScanned"] == 40.0
    assert r["statistics"]["recordsMatched"] == float(len(expected))
    # @timestamp rendered as AWS does
    assert len(rows[0]["@timestamp"]) == len("2026-11-26 12:00:00.000")
    rec = logs.get_log_record(logRecordPointer=rows[0]["@ptr"])["logRecord"]
    assert rec["@message"] == expected[0]["message"]


def test_stats_over_json_fields(logs, group):
    g, now, events = group
    r = run(logs, g, "filter ispresent(latency) | stats avg(latency) as a, count(*) as n by path "
                     "| sort path")
    rows = as_dicts(r["results"])
    by_path = {}
    for e in events:
        try:
            d = json.loads(e["message"])
        except ValueError:
            continue
        by_path.setdefault(d["path"], []).append(d["latency"])
    assert [x["path"] for x in rows] == sorted(by_path)
    for x in rows:
        vals = by_path[x["path"]]
        assert float(x["a"]) == pytest.approx(sum(vals) / len(vals))
        assert x["n"] == str(len(vals))


def test_malformed_query(logs, group):
    g, *_ = group
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.start_query(logGroupName=g, startTime=0, endTime=10, queryString="fields @message | filtr x")
    err = assert_aws_error(e, "MalformedQueryException", 400)
    assert "line 1" in err["Error"]["Message"]
    assert "queryCompileError" in err


def test_missing_group_and_stop_and_describe(logs, group):
    g, *_ = group
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.start_query(logGroupName="/nope", startTime=0, endTime=10, queryString="fields @message")
    err = assert_aws_error(e, "ResourceNotFoundException", 400)
    assert "Log group '/nope' does not exist for account ID '000000000000'" in err["Error"]["Message"]
    r = run(logs, g, "stats count(*)")
    assert as_dicts(r["results"]) == [{"count(*)": "40"}]
    qs = logs.describe_queries(logGroupName=g)["queries"]
    assert qs and all(q["logGroupName"] == g for q in qs)
    assert qs[0]["status"] == "Complete"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.stop_query(queryId=qs[0]["queryId"])
    assert_aws_error(e, "InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.get_query_results(queryId="nope")
    assert_aws_error(e, "ResourceNotFoundException", 400)


def test_query_definitions(logs):
    qdid = logs.put_query_definition(name=f"errors-{uuid.uuid4().hex[:6]}",
                                     queryString="filter @message like /ERROR/",
                                     logGroupNames=["/a"])["queryDefinitionId"]
    defs = logs.describe_query_definitions()["queryDefinitions"]
    mine = [d for d in defs if d["queryDefinitionId"] == qdid]
    assert mine and mine[0]["logGroupNames"] == ["/a"]
    assert logs.delete_query_definition(queryDefinitionId=qdid)["success"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.delete_query_definition(queryDefinitionId=qdid)
    assert_aws_error(e, "ResourceNotFoundException", 400)


def test_cli_start_query_seed_command(server, logs, group):
    g, *_ = group
    now = int(time.time())
    _, out, _ = run_aws(server.url, "logs", "start-query", "--log-group-name", g,
                        "--start-time", str(now - 3600), "--end-time", str(now + 60),
                        "--query-string",
                        "fields @timestamp, @message | filter @message like /ERROR/ | limit 100")
    qid = json.loads(out)["queryId"]
    r = wait(logs, qid)
    _, out, _ = run_aws(server.url, "logs", "get-query-results", "--query-id", qid)
    doc = json.loads(out)
    assert doc["status"] == "Complete"
    assert len(doc["results"]) == len(r["results"]) > 0
