"""SNS message pieces: retry schedule, delivery policies, signatures, alarm messages."""
from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from alarms import messages, notify

DEFAULT = notify.DEFAULT_RETRY_POLICY


@pytest.mark.parametrize("policy,delays", [
    (DEFAULT, [20, 20, 20, None]),                              # SNS's default: 3 retries, 20 s apart
    (dict(DEFAULT, numRetries=6, numNoDelayRetries=1, numMinDelayRetries=1, numMaxDelayRetries=1,
          minDelayTarget=2, maxDelayTarget=10), [0, 2, 2 + 8 / 3, 2 + 16 / 3, 10, 10, None]),
    (dict(DEFAULT, numRetries=3, minDelayTarget=1, maxDelayTarget=8, backoffFunction="geometric"),
     [2, 4, 8, None]),
    (dict(DEFAULT, numRetries=3, minDelayTarget=1, maxDelayTarget=8, backoffFunction="exponential"),
     [2, 4, 8, None]),
    (dict(DEFAULT, numRetries=0), [None]),
])
def test_retry_schedule(policy, delays):
    got = [notify.retry_delay(policy, k) for k in range(1, len(delays) + 1)]
    assert [g is None for g in got] == [d is None for d in delays]
    assert [g for g in got if g is not None] == pytest.approx([d for d in delays if d is not None])


@pytest.mark.parametrize("text,error", [
    ('{"healthyRetryPolicy": {"numRetries": 101}}', "numRetries must be at most 100"),
    ('{"healthyRetryPolicy": {"minDelayTarget": 0}}', "minDelayTarget must be at least 1"),
    ('{"healthyRetryPolicy": {"maxDelayTarget": 3601}}', "maxDelayTarget must be at most 3600"),
    ('{"healthyRetryPolicy": {"numRetries": 100, "minDelayTarget": 60, "maxDelayTarget": 60}}',
     "the policy may not take longer than 3600 seconds"),
    ('{"healthyRetryPolicy": {"backoffFunction": "cubic"}}', "backoffFunction must be one of"),
    ("[", "not valid JSON"),
])
def test_delivery_policy_limits(text, error):
    with pytest.raises(ValueError, match=error):
        notify.parse_delivery_policy(text, "subscription")


def test_effective_policy_honours_disable_overrides():
    topic = {"DeliveryPolicy": json.dumps({"http": {
        "defaultHealthyRetryPolicy": {"numRetries": 5}, "disableSubscriptionOverrides": True}})}
    sub = {"DeliveryPolicy": json.dumps({"healthyRetryPolicy": {"numRetries": 1},
                                         "requestPolicy": {"headerContentType": "application/json"}})}
    policy = notify.effective_policy(topic, sub)
    assert policy["healthyRetryPolicy"]["numRetries"] == 5
    assert policy["headerContentType"] == "text/plain; charset=UTF-8"
    topic_open = {"DeliveryPolicy": json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 5}}})}
    policy = notify.effective_policy(topic_open, sub)
    assert policy["healthyRetryPolicy"]["numRetries"] == 1
    assert policy["headerContentType"] == "application/json"


def test_string_to_sign_and_signature(tmp_path):
    doc = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
           "Message": "a\nb", "Timestamp": "2026-11-26T12:00:00.000Z", "SignatureVersion": "1"}
    assert notify.string_to_sign(doc) == ("Message\na\nb\nMessageId\nm-1\nTimestamp\n"
                                          "2026-11-26T12:00:00.000Z\nTopicArn\n"
                                          "arn:aws:sns:us-east-1:1:t\nType\nNotification\n")
    signer = notify.Signer(str(tmp_path))
    again = notify.Signer(str(tmp_path))                  # kept in the data directory
    assert again.cert_pem == signer.cert_pem and again.cert_name == signer.cert_name
    cert = x509.load_pem_x509_certificate(signer.cert_pem)
    for version, algorithm in (("1", hashes.SHA1()), ("2", hashes.SHA256())):
        signature = base64.b64decode(again.sign(doc, version))
        cert.public_key().verify(signature, notify.string_to_sign(doc).encode(),
                                 padding.PKCS1v15(), algorithm)
    assert notify.render({"Type": "x", "N": 1}) == '{\n  "Type" : "x",\n  "N" : 1\n}'
    assert notify.sns_timestamp(1_795_000_000_123) == "2026-11-18T11:06:40.123Z"


def test_subject_is_cut_to_100_characters():
    assert messages.subject("ALARM", "test", "us-west-2") == 'ALARM: "test" in US West (Oregon)'
    long = "SharedInfra-Alpha-Database-DatabaseInstanceObservabilityHighDatabaseConnections-1234567890"
    subject = messages.subject("ALARM", long, "eu-south-1")
    assert len(subject) == 100
    assert subject == ('ALARM: "SharedInfra-Alpha-Database-DatabaseInstanceObservabilityHighDatabase'
                       'Connec..." in EU (Milan)')


def test_metric_alarm_message_shape():
    alarm = {"AlarmName": "n", "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:n",
             "AlarmConfigurationUpdatedTimestamp": 1677154058.685, "ActionsEnabled": True,
             "OKActions": [], "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:aws-alerts"],
             "InsufficientDataActions": [], "StateValue": "ALARM",
             "MetricName": "BlockedRequests", "Namespace": "AWS/WAFV2", "Statistic": "Sum",
             "Dimensions": [{"Name": "WebACL", "Value": "acl"}], "Period": 60,
             "EvaluationPeriods": 20, "DatapointsToAlarm": 1,
             "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 1.0,
             "TreatMissingData": "notBreaching"}
    text = messages.alarm_message(alarm, account="123456789012", region="eu-west-1",
                                  old_state="OK", new_state="ALARM", reason="r",
                                  changed_at=1710591405.770)
    # the key order and value forms of the real message in reference R7.2
    assert text == (
        '{"AlarmName":"n","AlarmDescription":null,"AWSAccountId":"123456789012",'
        '"AlarmConfigurationUpdatedTimestamp":"2023-02-23T12:07:38.685+0000",'
        '"NewStateValue":"ALARM","NewStateReason":"r","StateChangeTime":"2024-03-16T12:16:45.770+0000",'
        '"Region":"EU (Ireland)","AlarmArn":"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:n",'
        '"OldStateValue":"OK","OKActions":[],"AlarmActions":["arn:aws:sns:eu-west-1:123456789012:'
        'aws-alerts"],"InsufficientDataActions":[],"Trigger":{"MetricName":"BlockedRequests",'
        '"Namespace":"AWS/WAFV2","StatisticType":"Statistic","Statistic":"SUM","Unit":null,'
        '"Dimensions":[{"value":"acl","name":"WebACL"}],"Period":60,"EvaluationPeriods":20,'
        '"DatapointsToAlarm":1,"ComparisonOperator":"GreaterThanOrEqualToThreshold",'
        '"Threshold":1.0,"TreatMissingData":"notBreaching","EvaluateLowSampleCountPercentile":""}}')


def test_action_items_of_delivery_outcomes():
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    published = json.dumps({"default": '{"AlarmName":"cpu"}'})
    action = notify.alarm_action("123456789012", "us-east-1", "cpu", "MetricAlarm",
                                 1534368002381, topic, published)
    row = {"endpoint": "http://hooks.example/x", "alarm_action": json.dumps(action)}
    ok = notify.action_item(row, None)
    assert ok[:7] == ("123456789012", "us-east-1", "cpu", "MetricAlarm", 1534368002381, "Action",
                      f"Successfully executed action {topic}")
    assert json.loads(ok[7]) == {"error": None, "actionState": "Succeeded",
                                 "notificationResource": topic,
                                 "stateUpdateTimestamp": 1534368002381,
                                 "publishedMessage": published}
    (failed,) = notify.abandoned_items([row, {"endpoint": "x", "alarm_action": None}],
                                       "the topic was deleted")
    assert failed[6] == (f'Failed to execute action {topic}. Received error: "Delivery to '
                         f'http://hooks.example/x abandoned: the topic was deleted"')
    assert json.loads(failed[7])["actionState"] == "Failed"
    assert json.loads(failed[7])["publishedMessage"] is None
    assert notify.action_item({"endpoint": "x", "alarm_action": None}, None) is None
