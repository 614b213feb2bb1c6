"""Alarms that really fire, end to end: a live server ticking every second, the aws CLI with
the seed commands verbatim, boto3 in the three CloudWatch protocols, SNS HTTP delivery to a
real webhook that verifies signatures, retries across a receiver outage and a restart.

Time is moved through the server's clock (``POST /_metricstore/clock``) where SNS would make
us wait (its 20 s retry delay); nothing here sleeps for long.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request

import pytest

from tests.conftest import LiveServer, make_client, run_aws
from tests.sns_receiver import Receiver

ACCOUNT = "123456789012"
REGION_NAME = "US East (N. Virginia)"
EXTRA = ["--alarm-interval", "1", "--account-id", ACCOUNT, "--allow-aws-namespaces",
         "--ingest-workers", "0"]
UTC = dt.timezone.utc


def wait_until(fn, timeout: float = 15.0, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")


def advance(server: LiveServer, seconds: float) -> None:
    req = urllib.request.Request(server.url + "/_metricstore/clock", method="POST",
                                 data=json.dumps({"advance": seconds}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def server_now(server: LiveServer) -> float:
    req = urllib.request.Request(server.url + "/_metricstore/clock", method="POST",
                                 data=b'{"advance": 0}', headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["now"]


def period_start(now: float, period: int, back: int) -> dt.datetime:
    """A time inside the ``back``-th completed period before the current one."""
    start = now - now % period - back * period
    return dt.datetime.fromtimestamp(start + period / 2, UTC)


def state(cw, name: str) -> dict:
    got = cw.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    alarms = got["MetricAlarms"] + got["CompositeAlarms"]
    assert len(alarms) == 1, got
    return alarms[0]


def wait_state(cw, name: str, value: str, timeout: float = 15.0) -> dict:
    return wait_until(lambda: (lambda a: a if a["StateValue"] == value else None)(state(cw, name)),
                      timeout, f"{name} in {value}")


def subscribe(sns, topic_arn: str, receiver: Receiver) -> str:
    """Subscribe and wait until the receiver has confirmed; the subscription ARN."""
    assert sns.subscribe(TopicArn=topic_arn, Protocol="http",
                         Endpoint=receiver.url)["SubscriptionArn"] == "pending confirmation"
    return wait_confirmed(sns, topic_arn, receiver)


def wait_confirmed(sns, topic_arn: str, receiver: Receiver) -> str:
    def confirmed():
        subs = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        return next((s["SubscriptionArn"] for s in subs
                     if s["Endpoint"] == receiver.url and s["SubscriptionArn"] != "PendingConfirmation"),
                    None)
    return wait_until(confirmed, what="a confirmed subscription")


def notification(receiver: Receiver, subject: str, topic_arn: str, timeout: float = 20.0) -> dict:
    item = receiver.wait_for(lambda m: m.get("Type") == "Notification" and m.get("Subject") == subject
                             and m.get("TopicArn") == topic_arn, timeout, f"notification {subject!r}")
    assert item["verified"], receiver.errors
    return item


@pytest.fixture(scope="module")
def live(tmp_path_factory, model_dirs):
    srv = LiveServer(tmp_path_factory.mktemp("alarms-live"), extra_args=EXTRA).start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-5000:]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
    assert not r.errors, r.errors


# ---- the seed commands, verbatim, with the aws CLI -----------------------------------------------

SEED_ALARM = ["cloudwatch", "put-metric-alarm",
              "--alarm-name", "high-cpu-alarm",
              "--alarm-description", "Alert when CPU exceeds 80%",
              "--metric-name", "CPUUtilization",
              "--namespace", "AWS/EC2",
              "--statistic", "Average",
              "--period", "300",
              "--threshold", "80",
              "--comparison-operator", "GreaterThanThreshold",
              "--evaluation-periods", "2",
              "--alarm-actions", "arn:aws:sns:us-east-1:123456789012:alerts"]
SEED_COMPOSITE = ["cloudwatch", "put-composite-alarm",
                  "--alarm-name", "critical-system-alarm",
                  "--alarm-rule", "ALARM(high-cpu-alarm) OR ALARM(high-memory-alarm)",
                  "--alarm-actions", "arn:aws:sns:us-east-1:123456789012:critical-alerts"]
MEMORY_ALARM = ["cloudwatch", "put-metric-alarm", "--alarm-name", "high-memory-alarm",
                "--metric-name", "MemoryUtilization", "--namespace", "AWS/EC2",
                "--statistic", "Average", "--period", "300", "--threshold", "80",
                "--comparison-operator", "GreaterThanThreshold", "--evaluation-periods", "2"]


def test_seed_commands_fire_and_notify(live, receiver):
    sns = make_client("sns", live.url)
    cw = make_client("cloudwatch", live.url)
    alerts = sns.create_topic(Name="alerts")["TopicArn"]
    critical = sns.create_topic(Name="critical-alerts")["TopicArn"]
    assert alerts == "arn:aws:sns:us-east-1:123456789012:alerts"
    for topic in (alerts, critical):
        _, out, _ = run_aws(live.url, "sns", "subscribe", "--topic-arn", topic, "--protocol", "http",
                            "--notification-endpoint", receiver.url)
        assert json.loads(out) == {"SubscriptionArn": "pending confirmation"}
        wait_confirmed(sns, topic, receiver)
    confirmation = receiver.of_type("SubscriptionConfirmation")[0]
    assert confirmation["verified"]
    assert "x-amz-sns-subscription-arn" not in {k.lower() for k in confirmation["headers"]}
    assert confirmation["headers"]["User-Agent"] == "Amazon Simple Notification Service Agent"

    run_aws(live.url, *SEED_ALARM)
    run_aws(live.url, *MEMORY_ALARM)
    run_aws(live.url, *SEED_COMPOSITE)
    created = state(cw, "high-cpu-alarm")
    assert created["AlarmDescription"] == "Alert when CPU exceeds 80%"
    assert created["AlarmActions"] == [alerts]
    # the composite is evaluated right after creation: no child is in ALARM
    composite = wait_state(cw, "critical-system-alarm", "OK")
    assert composite["StateReason"] == ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
                                        "critical-system-alarm was created and its alarm rule "
                                        "evaluates to OK")

    now = server_now(live)
    data = [{"MetricName": "CPUUtilization", "Value": 90.0, "Timestamp": period_start(now, 300, back)}
            for back in (1, 2)]
    cw.put_metric_data(Namespace="AWS/EC2", MetricData=data)
    alarm = wait_state(cw, "high-cpu-alarm", "ALARM")
    assert alarm["StateReason"].startswith("Threshold Crossed: 2 datapoints [90.0 (")
    assert alarm["StateReason"].endswith(")] were greater than the threshold (80.0).")
    reason_data = json.loads(alarm["StateReasonData"])
    assert reason_data["recentDatapoints"] == [90.0, 90.0] and reason_data["period"] == 300

    item = notification(receiver, f'ALARM: "high-cpu-alarm" in {REGION_NAME}', alerts)
    headers = {k.lower(): v for k, v in item["headers"].items()}
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-topic-arn"] == alerts
    assert headers["x-amz-sns-subscription-arn"].startswith(alerts + ":")
    assert headers["x-amz-sns-message-id"] == item["message"]["MessageId"]
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert item["body"].startswith('{\n  "Type" : "Notification",\n  "MessageId" : ')
    message = json.loads(item["message"]["Message"])
    assert list(message)[:4] == ["AlarmName", "AlarmDescription", "AWSAccountId",
                                 "AlarmConfigurationUpdatedTimestamp"]
    assert message["NewStateValue"] == "ALARM" and message["OldStateValue"] == "INSUFFICIENT_DATA"
    assert message["NewStateReason"] == alarm["StateReason"]
    assert message["Region"] == REGION_NAME and message["AWSAccountId"] == ACCOUNT
    assert message["Trigger"] == {
        "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "StatisticType": "Statistic",
        "Statistic": "AVERAGE", "Unit": None, "Dimensions": [], "Period": 300,
        "EvaluationPeriods": 2, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 80.0,
        "TreatMissingData": "", "EvaluateLowSampleCountPercentile": ""}

    # the composite follows its child, and notifies its own topic
    composite = wait_state(cw, "critical-system-alarm", "ALARM")
    assert composite["StateReason"].startswith(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-cpu-alarm transitioned to ALARM at ")
    item = notification(receiver, f'ALARM: "critical-system-alarm" in {REGION_NAME}', critical)
    message = json.loads(item["message"]["Message"])
    assert message["AlarmRule"] == "ALARM(high-cpu-alarm) OR ALARM(high-memory-alarm)"
    assert message["TriggeringChildren"][0]["Arn"].endswith(":alarm:high-cpu-alarm")
    assert "Trigger" not in message

    # CPU recovers: both alarms go back to OK
    cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Values": [10.0], "Counts": [3.0],
         "Timestamp": period_start(now, 300, back)} for back in (1, 2)])
    alarm = wait_state(cw, "high-cpu-alarm", "OK")
    assert alarm["StateReason"].endswith(")] were not greater than the threshold (80.0).")
    wait_state(cw, "critical-system-alarm", "OK")
    history = cw.describe_alarm_history(AlarmName="high-cpu-alarm", HistoryItemType="StateUpdate",
                                        ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK"]
    # one Action item per delivery, written once the receiver answered
    actions = wait_until(lambda: cw.describe_alarm_history(
        AlarmName="high-cpu-alarm", HistoryItemType="Action")["AlarmHistoryItems"],
        what="the Action item")
    assert [a["HistorySummary"] for a in actions] == [f"Successfully executed action {alerts}"]


# ---- data → ALARM → OK with notifications, in each CloudWatch protocol ---------------------------------

@pytest.mark.parametrize("protocol", ["json", "query", "cbor"])
def test_alarm_and_recovery_notify(live, receiver, model_dirs, protocol):
    sns = make_client("sns", live.url)
    cw = make_client("cloudwatch", live.url, protocol, model_dirs)
    topic = sns.create_topic(Name=f"ops-{protocol}")["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="SignatureVersion", AttributeValue="2")
    subscribe(sns, topic, receiver)
    name = f"latency-{protocol}"
    cw.put_metric_alarm(AlarmName=name, Namespace="App", MetricName=name, Statistic="Maximum",
                        Period=60, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=100.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold",
                        Dimensions=[{"Name": "Service", "Value": "api"}],
                        AlarmActions=[topic], OKActions=[topic], TreatMissingData="notBreaching")
    now = server_now(live)
    dims = [{"Name": "Service", "Value": "api"}]
    # notBreaching with no data: OK first
    wait_state(cw, name, "OK")
    ok_first = notification(receiver, f'OK: "{name}" in {REGION_NAME}', topic)
    assert ok_first["message"]["SignatureVersion"] == "2"
    cw.put_metric_data(Namespace="App", MetricData=[
        {"MetricName": name, "Dimensions": dims, "Values": [50.0, 120.0],
         "Timestamp": period_start(now, 60, 1)}])
    alarm = wait_state(cw, name, "ALARM")
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 2 datapoints [120.0 (")
    assert alarm["StateReason"].endswith(
        "was greater than or equal to the threshold (100.0) and 1 missing datapoint was treated as "
        "[NonBreaching] (minimum 1 datapoint for OK -> ALARM transition).")
    item = notification(receiver, f'ALARM: "{name}" in {REGION_NAME}', topic)
    assert json.loads(item["message"]["Message"])["Trigger"]["Dimensions"] == [
        {"value": "api", "name": "Service"}]
    # SetAlarmState holds only until the next evaluation
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="checking the pager")
    wait_until(lambda: any(json.loads(r["message"]["Message"])["NewStateReason"] == "checking the pager"
                           for r in receiver.of_type("Notification")), what="the SetAlarmState OK")
    wait_state(cw, name, "ALARM")
    # recovery: two newer, low datapoints push the 120 out of the last 2
    cw.put_metric_data(Namespace="App", MetricData=[
        {"MetricName": name, "Dimensions": dims, "Value": 20.0, "Timestamp": period_start(now, 60, back)}
        for back in (0, -1)])
    advance(live, 120)    # both periods complete
    alarm = wait_state(cw, name, "OK")
    assert alarm["StateReason"].startswith("Threshold Crossed: 2 out of the last 2 datapoints [20.0 (")
    assert alarm["StateReason"].endswith(
        "were not greater than or equal to the threshold (100.0) (minimum 2 datapoints for "
        "ALARM -> OK transition).")
    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                        ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [h["HistorySummary"].rsplit(" ", 1)[1] for h in history] == [
        "OK", "ALARM", "OK", "ALARM", "OK"]
    wait_until(lambda: len([r for r in receiver.of_type("Notification")
                            if r["message"]["Subject"].startswith("OK:")]) == 3,
               what="three OK notifications")


# ---- delivery: a receiver that is down, retries, other receivers unaffected ----------------------------

def test_receiver_down_then_up(live):
    sns = make_client("sns", live.url)
    cw = make_client("cloudwatch", live.url)
    topic = sns.create_topic(Name="pager")["TopicArn"]
    flaky, steady = Receiver(), Receiver()
    try:
        subscribe(sns, topic, flaky)
        subscribe(sns, topic, steady)
        cw.put_metric_alarm(AlarmName="disk-full", Namespace="App", MetricName="disk",
                            Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=90.0,
                            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                            TreatMissingData="ignore")
        flaky.down()
        cw.set_alarm_state(AlarmName="disk-full", StateValue="ALARM", StateReason="disk at 95%")
        subject = f'ALARM: "disk-full" in {REGION_NAME}'
        first = notification(steady, subject, topic)      # not held back by the dead receiver
        time.sleep(0.5)                                    # the first try at the flaky one fails
        assert not flaky.of_type("Notification")
        flaky.up()
        advance(live, 21)                                  # SNS retries after 20 s
        retried = notification(flaky, subject, topic)
        assert retried["message"]["MessageId"] == first["message"]["MessageId"]
        assert retried["message"]["Signature"] == first["message"]["Signature"]
    finally:
        flaky.close()
        steady.close()
    assert not flaky.errors and not steady.errors


def test_each_delivery_is_an_action_history_item(live):
    """One Action item per delivery to a subscriber, with the delivery's outcome; a topic
    without subscribers is one immediate success, a missing topic one immediate failure."""
    sns = make_client("sns", live.url)
    cw = make_client("cloudwatch", live.url)
    topic = sns.create_topic(Name="two-hooks")["TopicArn"]
    lonely = sns.create_topic(Name="no-hooks")["TopicArn"]
    missing = topic.rsplit(":", 1)[0] + ":never-created"
    good, bad = Receiver(), Receiver()
    try:
        subscribe(sns, topic, good)
        bad_sub = subscribe(sns, topic, bad)
        sns.set_subscription_attributes(SubscriptionArn=bad_sub, AttributeName="DeliveryPolicy",
                                        AttributeValue='{"healthyRetryPolicy": {"numRetries": 1}}')
        bad.down()
        cw.put_metric_alarm(AlarmName="per-delivery", Namespace="App", MetricName="errors",
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore",
                            AlarmActions=[topic, lonely, missing])
        cw.set_alarm_state(AlarmName="per-delivery", StateValue="ALARM", StateReason="test")
        transition = cw.describe_alarm_history(AlarmName="per-delivery",
                                               HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        notification(good, f'ALARM: "per-delivery" in {REGION_NAME}', topic)

        def actions(n):
            got = cw.describe_alarm_history(AlarmName="per-delivery",
                                            HistoryItemType="Action")["AlarmHistoryItems"]
            return got if len(got) == n else None

        # the delivered one, the empty topic and the missing topic; the bad one still retries
        items = wait_until(lambda: actions(3), what="three Action items")
        advance(live, 21)
        items = wait_until(lambda: actions(4), what="the dead-lettered delivery's Action item")
    finally:
        good.close()
        bad.close()
    summaries = sorted(i["HistorySummary"] for i in items)
    failed_delivery = next(s for s in summaries if s.startswith(f"Failed to execute action {topic}."))
    assert failed_delivery.startswith(f'Failed to execute action {topic}. Received error: '
                                      f'"Delivery to {bad.url} failed after 2 attempts: ')
    assert sorted(s for s in summaries if s != failed_delivery) == sorted([
        f"Successfully executed action {topic}", f"Successfully executed action {lonely}",
        f'Failed to execute action {missing}. Received error: "Resource not found"'])
    for item in items:
        assert item["Timestamp"] == transition[0]["Timestamp"]
        data = json.loads(item["HistoryData"])
        assert list(data) == ["error", "actionState", "notificationResource",
                              "stateUpdateTimestamp", "publishedMessage"]
        assert data["stateUpdateTimestamp"] == int(transition[0]["Timestamp"].timestamp() * 1000)
        if data["actionState"] == "Succeeded":
            assert data["error"] is None
            message = json.loads(json.loads(data["publishedMessage"])["default"])
            assert (message["AlarmName"], message["NewStateValue"]) == ("per-delivery", "ALARM")
        else:
            assert data["publishedMessage"] is None and data["error"]
    assert [d["Type"] for d in (r["message"] for r in bad.received)] == ["SubscriptionConfirmation"]


def test_deliveries_dropped_with_their_topic_fail_the_action(live):
    sns = make_client("sns", live.url)
    cw = make_client("cloudwatch", live.url)
    topic = sns.create_topic(Name="short-lived")["TopicArn"]
    hook = Receiver()
    try:
        subscribe(sns, topic, hook)
        hook.down()
        cw.put_metric_alarm(AlarmName="orphaned", Namespace="App", MetricName="x", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1.0, TreatMissingData="ignore",
                            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
        cw.set_alarm_state(AlarmName="orphaned", StateValue="ALARM", StateReason="test")
        assert cw.describe_alarm_history(AlarmName="orphaned",
                                         HistoryItemType="Action")["AlarmHistoryItems"] == []
        sns.delete_topic(TopicArn=topic)
    finally:
        hook.close()
    (item,) = cw.describe_alarm_history(AlarmName="orphaned",
                                        HistoryItemType="Action")["AlarmHistoryItems"]
    assert item["HistorySummary"] == (f'Failed to execute action {topic}. Received error: '
                                      f'"Delivery to {hook.url} abandoned: the topic was deleted"')


def test_publish_and_unsubscribe(live, receiver):
    sns = make_client("sns", live.url)
    topic = sns.create_topic(Name="plain")["TopicArn"]
    sub = subscribe(sns, topic, receiver)
    message_id = sns.publish(TopicArn=topic, Message="hello\nworld", Subject="Greeting",
                             MessageAttributes={"kind": {"DataType": "String",
                                                         "StringValue": "test"}})["MessageId"]
    item = notification(receiver, "Greeting", topic)
    assert item["message"]["MessageId"] == message_id
    assert item["message"]["Message"] == "hello\nworld"
    assert item["message"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "test"}}
    assert item["message"]["UnsubscribeURL"].endswith(f"?Action=Unsubscribe&SubscriptionArn={sub}")
    # a subscriber may unsubscribe by following UnsubscribeURL
    with urllib.request.urlopen(item["message"]["UnsubscribeURL"], timeout=10) as r:
        assert b"<UnsubscribeResponse" in r.read()
    receiver.wait_for(lambda m: m["Type"] == "UnsubscribeConfirmation", what="UnsubscribeConfirmation")
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    sns.publish(TopicArn=topic, Message="nobody listens")
    time.sleep(0.3)
    assert [r["message"]["Message"] for r in receiver.of_type("Notification")] == ["hello\nworld"]


# ---- restart: alarms, history, tags and pending deliveries survive ---------------------------------------

def test_restart_keeps_alarms_history_and_pending_deliveries(tmp_path):
    srv = LiveServer(tmp_path / "data", extra_args=EXTRA).start()
    receiver = Receiver()
    try:
        sns = make_client("sns", srv.url)
        cw = make_client("cloudwatch", srv.url)
        topic = sns.create_topic(Name="oncall")["TopicArn"]
        subscribe(sns, topic, receiver)
        cert_url = receiver.of_type("SubscriptionConfirmation")[0]["message"]["SigningCertURL"]
        cw.put_metric_alarm(AlarmName="queue-depth", Namespace="App", MetricName="depth",
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1000.0,
                            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                            TreatMissingData="ignore", Tags=[{"Key": "team", "Value": "core"}])
        receiver.down()
        cw.set_alarm_state(AlarmName="queue-depth", StateValue="ALARM", StateReason="backlog")
        items = cw.describe_alarm_history(AlarmName="queue-depth")["AlarmHistoryItems"]
        # the delivery cannot succeed yet: its Action item comes with its outcome
        assert [i["HistoryItemType"] for i in items] == ["StateUpdate", "ConfigurationUpdate"]
        srv.stop()
        receiver.up()
        srv.start()
        alarm = state(cw, "queue-depth")
        assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "backlog")
        assert cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"] == [
            {"Key": "team", "Value": "core"}]
        advance(srv, 21)
        item = notification(receiver, f'ALARM: "queue-depth" in {REGION_NAME}', topic)
        assert item["message"]["SigningCertURL"] == cert_url    # the key survived too
        items = wait_until(lambda: (lambda got: got if len(got) == 3 else None)(
            cw.describe_alarm_history(AlarmName="queue-depth")["AlarmHistoryItems"]),
            what="the Action item")
        assert [i["HistoryItemType"] for i in items] == ["Action", "StateUpdate", "ConfigurationUpdate"]
        assert items[0]["Timestamp"] == items[1]["Timestamp"]    # stamped with the transition
    finally:
        receiver.close()
        srv.stop()
    assert not receiver.errors, receiver.errors
    assert "Traceback" not in srv.log(), srv.log()[-5000:]
