"""The real ``aws logs`` CLI against the live server.

The CLI costs about a second a call, so one flow covers the commands users type (the seed
list of issue #3) with the CLI's own argument forms: shorthand and JSON ``--log-events``,
``--metric-transformations`` JSON, ``--log-event-messages`` lists, and its error line.
Independent calls run in parallel.  Behaviour in depth is tested through boto3 in
test_logs_api.py and test_logs_metrics.py.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import make_client, run_aws

UTC = dt.timezone.utc
NO_RETRY = {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}


def aws(server, *args):
    """``aws logs …`` → its parsed JSON output ({} when it prints nothing)."""
    _, out, _ = run_aws(server.url, "logs", *args, env=NO_RETRY)
    return json.loads(out) if out.strip() else {}


def aws_error(server, *args) -> tuple[str, str, str]:
    """(code, operation, message) of the CLI's error line for a failing command."""
    rc, out, err = run_aws(server.url, "logs", *args, check=False, env=NO_RETRY)
    assert rc != 0, out
    m = re.search(r"An error occurred \((\w+)\) when calling the (\w+) operation"
                  r"(?: \(reached max retries: \d+\))?: (.*)", err)
    assert m, err
    return m.group(1), m.group(2), m.group(3).strip()


def test_logs_cli_flow(server):
    g = f"/cli/{uuid.uuid4().hex[:8]}"
    n = f"CLI/Logs/{uuid.uuid4().hex[:8]}"
    t = (int(time.time()) // 60 - 2) * 60_000
    assert aws(server, "create-log-group", "--log-group-name", g) == {}
    assert aws(server, "create-log-stream", "--log-group-name", g,
               "--log-stream-name", "app") == {}
    # a metric filter first, so the events below feed it
    assert aws(server, "put-metric-filter", "--log-group-name", g, "--filter-name", "latency",
               "--filter-pattern", "{ $.latency > 0 }", "--metric-transformations",
               json.dumps([{"metricName": "Latency", "metricNamespace": n,
                            "metricValue": "$.latency", "unit": "Milliseconds"}])) == {}
    # --log-events in shorthand, then in JSON (messages with commas and quotes)
    r = aws(server, "put-log-events", "--log-group-name", g, "--log-stream-name", "app",
            "--log-events", f"timestamp={t},message=ERROR disk full",
            f"timestamp={t + 1},message=INFO started")
    assert len(r["nextSequenceToken"]) > 0 and "rejectedLogEventsInfo" not in r
    events = [{"timestamp": t + 2, "message": '{"level": "error", "latency": 120}'},
              {"timestamp": t + 3, "message": '{"level": "info", "latency": 30}'}]
    aws(server, "put-log-events", "--log-group-name", g, "--log-stream-name", "app",
        "--log-events", json.dumps(events))

    calls = {
        "get": ("get-log-events", "--log-group-name", g, "--log-stream-name", "app",
                "--start-from-head"),
        "terms": ("filter-log-events", "--log-group-name", g, "--filter-pattern", "ERROR"),
        "json": ("filter-log-events", "--log-group-name", g, "--filter-pattern",
                 "{ $.latency > 100 }"),
        # the aws-cli documentation example, verbatim
        "test": ("test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages",
                 "[ERROR] 400 BAD REQUEST", "[ERROR] 400 BAD REQUEST", "[INFO] 200 OK"),
        "filters": ("describe-metric-filters", "--log-group-name", g),
    }
    with ThreadPoolExecutor(4) as pool:
        futures = {k: pool.submit(aws, server, *v) for k, v in calls.items()}
        bad_retention = pool.submit(aws_error, server, "put-retention-policy",
                                    "--log-group-name", g, "--retention-in-days", "2")
        bad_pattern = pool.submit(aws_error, server, "filter-log-events", "--log-group-name", g,
                                  "--filter-pattern", "{ $.latency > }")
        out = {k: f.result() for k, f in futures.items()}

    assert [(e["timestamp"], e["message"]) for e in out["get"]["events"]] == [
        (t, "ERROR disk full"), (t + 1, "INFO started"),
        (t + 2, events[0]["message"]), (t + 3, events[1]["message"])]
    assert out["get"]["nextForwardToken"].startswith("f/")
    assert [e["message"] for e in out["terms"]["events"]] == ["ERROR disk full"]
    assert out["terms"]["events"][0]["logStreamName"] == "app"
    assert [e["message"] for e in out["json"]["events"]] == [events[0]["message"]]
    assert out["test"] == {"matches": [
        {"eventNumber": 1, "eventMessage": "[ERROR] 400 BAD REQUEST", "extractedValues": {}},
        {"eventNumber": 2, "eventMessage": "[ERROR] 400 BAD REQUEST", "extractedValues": {}}]}
    assert [f["filterName"] for f in out["filters"]["metricFilters"]] == ["latency"]
    code, op, msg = bad_retention.result()
    assert (code, op) == ("InvalidParameterException", "PutRetentionPolicy")
    assert "Value '2' at 'retentionInDays'" in msg
    code, op, msg = bad_pattern.result()
    assert (code, op) == ("InvalidParameterException", "FilterLogEvents")

    assert aws(server, "put-retention-policy", "--log-group-name", g,
               "--retention-in-days", "30") == {}
    d = aws(server, "describe-log-groups", "--log-group-name-prefix", g)["logGroups"]
    assert [(x["logGroupName"], x["retentionInDays"], x["metricFilterCount"]) for x in d] == [
        (g, 30, 1)]

    # the metric filter's datapoints, read back through the CloudWatch API
    cw = make_client("cloudwatch", server.url)
    s = cw.get_metric_statistics(Namespace=n, MetricName="Latency", Period=60,
                                 Statistics=["Sum", "SampleCount"],
                                 StartTime=dt.datetime.fromtimestamp(t / 1000 - 60, UTC),
                                 EndTime=dt.datetime.fromtimestamp(t / 1000 + 120, UTC))
    assert [(p["SampleCount"], p["Sum"], p["Unit"]) for p in s["Datapoints"]] == [
        (2, 150, "Milliseconds")]
