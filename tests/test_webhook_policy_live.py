"""The webhook destination policy on a live server: a host name that resolves to a refused
address passes Subscribe but is refused at delivery, once, without retries; the refusal is
the alarm action's Failed Action item."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer, assert_aws_error, make_client
from tests.sns_receiver import Receiver
from tests.test_alarms_live import EXTRA, REGION_NAME, notification, wait_until


def test_name_resolving_to_a_denied_address_is_refused_at_delivery(tmp_path):
    data = tmp_path / "data"
    receiver = Receiver()
    hook = f"http://localhost:{receiver.port}/hook"      # resolves to loopback
    srv = LiveServer(data, extra_args=EXTRA).start()
    try:
        sns = make_client("sns", srv.url)
        cw = make_client("cloudwatch", srv.url)
        topic = sns.create_topic(Name="pager")["TopicArn"]
        assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=hook)[
            "SubscriptionArn"] == "pending confirmation"
        wait_until(lambda: all(s["SubscriptionArn"] != "PendingConfirmation" for s in
                               sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]),
                   what="the confirmation over localhost (loopback is allowed by default)")
        cw.put_metric_alarm(AlarmName="refused", Namespace="App", MetricName="m", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1.0, TreatMissingData="ignore",
                            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                            OKActions=[topic])
        srv.stop()
        # now loopback is refused (through the environment variable)
        srv.env = {"METRICSTORE_WEBHOOK_DENY": "127.0.0.0/8, ::1"}
        srv.start()
        with pytest.raises(ClientError) as e:
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        assert_aws_error(e, "InvalidParameter", 400,
                         "Invalid parameter: Endpoint: destination 127.0.0.1 is refused by "
                         "--webhook-deny")
        cw.set_alarm_state(AlarmName="refused", StateValue="ALARM", StateReason="test")
        items = wait_until(lambda: cw.describe_alarm_history(
            AlarmName="refused", HistoryItemType="Action")["AlarmHistoryItems"],
            what="the Failed Action item")
        assert len(items) == 1
        assert items[0]["HistorySummary"].startswith(
            f'Failed to execute action {topic}. Received error: "Delivery to {hook} failed after '
            f'1 attempt: endpoint refused: localhost resolves to refused addresses: destination ')
        assert items[0]["HistorySummary"].endswith(' is refused by --webhook-deny"')
        assert not receiver.of_type("Notification")
        # with the default policy again, a new transition reaches the same subscriber
        srv.stop()
        srv.env = {}
        srv.start()
        cw.set_alarm_state(AlarmName="refused", StateValue="OK", StateReason="back")
        notification(receiver, f'OK: "refused" in {REGION_NAME}', topic)
    finally:
        receiver.close()
        srv.stop()
    assert not receiver.errors, receiver.errors
    assert "Traceback" not in srv.log(), srv.log()[-5000:]
