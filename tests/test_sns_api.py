"""The SNS API over the query protocol with boto3: topics, attributes, subscriptions, Publish
validation, tags, paging, and SNS's error codes.  Delivery is tested in test_alarms_live.py.
"""
from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import assert_aws_error, make_client


@pytest.fixture(scope="module")
def sns(server):
    return make_client("sns", server.url)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_topic_lifecycle(sns):
    name = uid("topic")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "Ops"},
                           Tags=[{"Key": "team", "Value": "core"}])["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:{name}"
    assert sns.create_topic(Name=name)["TopicArn"] == arn            # idempotent
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["DisplayName"] == "Ops"
    assert attributes["Owner"] == "000000000000"
    assert attributes["SubscriptionsConfirmed"] == "0"
    policy = json.loads(attributes["EffectiveDeliveryPolicy"])
    assert policy["http"]["defaultHealthyRetryPolicy"] == {
        "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3, "numMaxDelayRetries": 0,
        "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear"}
    assert json.loads(attributes["Policy"])["Statement"][0]["Resource"] == arn
    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
        {"http": {"defaultHealthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 1,
                                                "maxDelayTarget": 30}}}))
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["SignatureVersion"] == "2"
    assert json.loads(attributes["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"][
        "numRetries"] == 5
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "core"}]
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)                                   # idempotent
    with pytest.raises(ClientError) as e:
        sns.get_topic_attributes(TopicArn=arn)
    assert_aws_error(e, "NotFound", 404, "Topic does not exist")


# (call, kwargs, code, status, message)
def _errors(topic):
    missing = "arn:aws:sns:us-east-1:000000000000:does-not-exist"
    return [
        ("create_topic", dict(Name="bad name!"), "InvalidParameter", 400, "Invalid parameter: Topic Name"),
        ("create_topic", dict(Name=topic.rsplit(":", 1)[1], Attributes={"DisplayName": "other"}),
         "InvalidParameter", 400,
         "Invalid parameter: Attributes Reason: Topic already exists with different attributes"),
        ("get_topic_attributes", dict(TopicArn="not-an-arn"), "InvalidParameter", 400,
         "Invalid parameter: TopicArn"),
        ("get_topic_attributes", dict(TopicArn=missing), "NotFound", 404, "Topic does not exist"),
        ("set_topic_attributes", dict(TopicArn=topic, AttributeName="Color", AttributeValue="red"),
         "InvalidParameter", 400, "Invalid parameter: AttributeName"),
        ("set_topic_attributes", dict(TopicArn=topic, AttributeName="SignatureVersion",
                                      AttributeValue="3"), "InvalidParameter", 400, None),
        ("set_topic_attributes", dict(TopicArn=topic, AttributeName="DeliveryPolicy",
                                      AttributeValue='{"http": {"defaultHealthyRetryPolicy": '
                                                     '{"numRetries": 101}}}'),
         "InvalidParameter", 400, None),
        ("subscribe", dict(TopicArn=topic, Protocol="carrier-pigeon", Endpoint="x"),
         "InvalidParameter", 400,
         "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"),
        ("subscribe", dict(TopicArn=topic, Protocol="https", Endpoint="http://example.com/"),
         "InvalidParameter", 400, "Invalid parameter: Endpoint must match the specified protocol"),
        # webhook destinations refused by default (alarm actions must not reach the metadata
        # service): AWS's error, the reason after "Endpoint: "
        ("subscribe", dict(TopicArn=topic, Protocol="http",
                           Endpoint="http://169.254.169.254/latest/meta-data/"),
         "InvalidParameter", 400,
         "Invalid parameter: Endpoint: destination 169.254.169.254 is refused by --webhook-deny"),
        ("subscribe", dict(TopicArn=topic, Protocol="https", Endpoint="https://[fd00:ec2::254]/"),
         "InvalidParameter", 400,
         "Invalid parameter: Endpoint: destination fd00:ec2::254 is refused by --webhook-deny"),
        ("subscribe", dict(TopicArn=topic, Protocol="http", Endpoint="http://0.0.0.0:4566/"),
         "InvalidParameter", 400,
         "Invalid parameter: Endpoint: destination 0.0.0.0 is refused by --webhook-deny"),
        ("subscribe", dict(TopicArn=missing, Protocol="http", Endpoint="http://example.com/"),
         "NotFound", 404, "Topic does not exist"),
        ("confirm_subscription", dict(TopicArn=topic, Token="nope"), "InvalidParameter", 400,
         "Invalid parameter: Token"),
        ("publish", dict(TopicArn=topic, Message=""), "InvalidParameter", 400,
         "Invalid parameter: Empty message"),
        ("publish", dict(TopicArn=missing, Message="x"), "NotFound", 404, "Topic does not exist"),
        ("publish", dict(TopicArn=topic, Message='{"http": "x"}', MessageStructure="json"),
         "InvalidParameter", 400,
         "Invalid parameter: Message Structure - No default entry in JSON message body"),
        ("publish", dict(TopicArn=topic, Message="{", MessageStructure="json"), "InvalidParameter",
         400, "Invalid parameter: Message Structure - JSON message body failed to parse"),
        ("publish", dict(TopicArn=topic, Message="x", Subject="line\nbreak"), "InvalidParameter",
         400, "Invalid parameter: Subject"),
        ("unsubscribe", dict(SubscriptionArn="garbage"), "InvalidParameter", 400,
         "Invalid parameter: SubscriptionArn"),
        ("get_subscription_attributes", dict(SubscriptionArn=topic + ":" + str(uuid.uuid4())),
         "NotFound", 404, "Subscription does not exist"),
        ("list_tags_for_resource", dict(ResourceArn=missing), "ResourceNotFound", 404,
         "Resource does not exist"),
    ]


def test_errors(sns):
    topic = sns.create_topic(Name=uid("errors"))["TopicArn"]
    for call, kwargs, code, status, message in _errors(topic):
        with pytest.raises(ClientError) as e:
            getattr(sns, call)(**kwargs)
        assert_aws_error(e, code, status, message)


def test_subscriptions_are_pending_until_confirmed(sns):
    topic = sns.create_topic(Name=uid("subs"))["TopicArn"]
    # nobody listens at this endpoint: the subscription stays pending
    endpoint = "http://127.0.0.1:9/hook"
    assert sns.subscribe(TopicArn=topic, Protocol="http",
                         Endpoint=endpoint)["SubscriptionArn"] == "pending confirmation"
    arn = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint,
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    assert arn.startswith(topic + ":")
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed == [{"SubscriptionArn": "PendingConfirmation", "Owner": "000000000000",
                       "Protocol": "http", "Endpoint": endpoint, "TopicArn": topic}]
    assert listed[0] in sns.list_subscriptions()["Subscriptions"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "true"
    assert attributes["TopicArn"] == topic
    sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"][
        "RawMessageDelivery"] == "true"
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsPending"] == "1"
    sns.unsubscribe(SubscriptionArn=arn)
    sns.unsubscribe(SubscriptionArn=arn)                             # idempotent
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_list_topics_pages(sns):
    prefix = uid("many")
    created = {sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(105)}
    seen, token = [], None
    while True:
        page = sns.list_topics(**({"NextToken": token} if token else {}))
        assert len(page["Topics"]) <= 100
        seen += [t["TopicArn"] for t in page["Topics"]]
        token = page.get("NextToken")
        if not token:
            break
    assert created <= set(seen) and len(seen) == len(set(seen))


def test_confirmation_link_errors_in_sns_shape(server):
    import urllib.error
    import urllib.request

    url = (server.url + "/?Action=ConfirmSubscription&TopicArn="
           "arn:aws:sns:us-east-1:000000000000:nope&Token=x")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert e.value.code == 404
    body = e.value.read().decode()
    assert "<Code>NotFound</Code>" in body and "<Message>Topic does not exist</Message>" in body
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server.url + "/SimpleNotificationService-0000.pem", timeout=10)
    assert e.value.code == 404
