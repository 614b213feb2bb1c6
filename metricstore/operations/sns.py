"""Amazon SNS over the query protocol: topics, HTTP/S subscriptions, Publish, tags.

AWS references: the SNS API reference (CreateTopic … Publish), "Using Amazon SNS with HTTP/S
endpoints" and reference/alarms.md §10.  Delivery itself (outbox, signatures, retries) is in
:mod:`alarms.notify`; these functions validate, store, and enqueue inside one write.
Error wording follows SNS: ``Invalid parameter: <what>`` (InvalidParameter, 400),
``Topic does not exist`` (NotFound, 404).
"""
from __future__ import annotations

import base64
import json
import re
import uuid

from alarms import notify
from metricstore.store import alarms as sql

from ..errors import ServiceError
from . import Context, operation

PAGE = 100
MAX_MESSAGE_BYTES = 262144
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_.-]+)(?::([0-9a-f-]{36}))?$")

TOPIC_ATTRIBUTES = ("DisplayName", "Policy", "DeliveryPolicy", "SignatureVersion", "TracingConfig",
                    "KmsMasterKeyId", "ArchivePolicy", "DataProtectionPolicy",
                    "HTTPSuccessFeedbackRoleArn", "HTTPSuccessFeedbackSampleRate",
                    "HTTPFailureFeedbackRoleArn")
SUBSCRIPTION_ATTRIBUTES = ("DeliveryPolicy", "RawMessageDelivery", "RedrivePolicy",
                           "SubscriptionRoleArn")
KNOWN_PROTOCOLS = ("http", "https", "email", "email-json", "sms", "sqs", "application", "lambda",
                   "firehose")


def invalid(what: str) -> ServiceError:
    return ServiceError("InvalidParameterException", f"Invalid parameter: {what}")


def _topic_missing() -> ServiceError:
    return ServiceError("NotFoundException", "Topic does not exist")


def _subscription_missing() -> ServiceError:
    return ServiceError("NotFoundException", "Subscription does not exist")


def _parse_arn(arn: str, what: str) -> re.Match:
    m = _ARN.match(arn or "")
    if not m:
        raise invalid(what)
    return m


def _default_policy(arn: str, account: str) -> str:
    return json.dumps({"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [{
        "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                   "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                   "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
        "Resource": arn, "Condition": {"StringEquals": {"AWS:SourceOwner": account}}}]},
        separators=(",", ":"))


def _effective_topic_policy(attributes: dict) -> str:
    doc = {}
    try:
        doc = json.loads(attributes.get("DeliveryPolicy") or "{}")
    except ValueError:
        pass
    http = dict(doc.get("http") or {})
    retry = dict(notify.DEFAULT_RETRY_POLICY)
    retry.update(http.get("defaultHealthyRetryPolicy") or {})
    http["defaultHealthyRetryPolicy"] = retry
    http.setdefault("disableSubscriptionOverrides", False)
    http.setdefault("defaultRequestPolicy", {"headerContentType": notify.DEFAULT_CONTENT_TYPE})
    doc["http"] = http
    return json.dumps(doc, separators=(",", ":"))


def _check_topic_attribute(name: str, value: str) -> None:
    if name not in TOPIC_ATTRIBUTES:
        raise invalid("AttributeName")
    if name == "SignatureVersion" and value not in ("1", "2"):
        raise invalid("SignatureVersion: must be 1 or 2")
    if name == "DeliveryPolicy" and value:
        try:
            notify.parse_delivery_policy(value, "topic")
        except ValueError as e:
            raise invalid(str(e)) from None
    if name == "Policy" and value:
        try:
            json.loads(value)
        except ValueError:
            raise invalid("Policy: Invalid JSON") from None
    if name == "DisplayName" and len(value) > 100:
        raise invalid("DisplayName")


def _check_subscription_attribute(name: str, value: str) -> None:
    if name in ("FilterPolicy", "FilterPolicyScope", "ReplayPolicy"):
        raise invalid(f"{name}: not supported by metricstore")
    if name not in SUBSCRIPTION_ATTRIBUTES:
        raise invalid("AttributeName")
    if name == "RawMessageDelivery" and value.lower() not in ("true", "false"):
        raise invalid("RawMessageDelivery: Invalid value [" + value + "]. Must be true or false.")
    if name == "DeliveryPolicy" and value:
        try:
            notify.parse_delivery_policy(value, "subscription")
        except ValueError as e:
            raise invalid(str(e)) from None


async def _topic(ctx: Context, arn: str) -> dict:
    _parse_arn(arn, "TopicArn")
    topic = await ctx.store.read(lambda cur: sql.get_topic(cur, arn))
    if topic is None or topic["account"] != ctx.account:
        raise _topic_missing()
    return topic


def _page_token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _page_after(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid("NextToken") from None


def _service(ctx: Context):
    return ctx.server.alarms


# ---- topics -------------------------------------------------------------------------------------

@operation("sns", "CreateTopic")
async def create_topic(ctx: Context, Name: str, Attributes=None, Tags=None,
                       DataProtectionPolicy=None):
    attributes = dict(Attributes or {})
    if DataProtectionPolicy is not None:
        attributes["DataProtectionPolicy"] = DataProtectionPolicy
    if Name.endswith(".fifo") or attributes.get("FifoTopic", "false").lower() == "true":
        raise invalid("FifoTopic: FIFO topics are not supported by metricstore")
    attributes.pop("FifoTopic", None)
    if not _TOPIC_NAME.match(Name):
        raise invalid("Topic Name")
    for key, value in attributes.items():
        _check_topic_attribute(key, value)
    _check_tags(Tags)
    arn = ctx.arn("sns", Name)
    now_ms = ctx.server.clock.now_ms()

    def write(w):
        existing = sql.get_topic(w, arn)
        if existing is not None:
            if attributes and json.loads(existing["attributes"]) != {
                    **json.loads(existing["attributes"]), **attributes}:
                raise invalid("Attributes Reason: Topic already exists with different attributes")
            return
        sql.save_topic(w, {"arn": arn, "account": ctx.account, "region": ctx.region, "name": Name,
                           "attributes": json.dumps(attributes), "created": now_ms})
        for tag in Tags or []:
            w.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [arn, tag["Key"], tag["Value"]])

    await ctx.store.write(write)
    return {"TopicArn": arn}


@operation("sns", "DeleteTopic")
async def delete_topic(ctx: Context, TopicArn: str):
    _parse_arn(TopicArn, "TopicArn")
    def write(w):   # idempotent, as SNS
        dropped = sql.delete_topic(w, TopicArn)
        sql.add_history(w, notify.abandoned_items(dropped, "the topic was deleted"))

    await ctx.store.write(write)
    return {}


@operation("sns", "ListTopics")
async def list_topics(ctx: Context, NextToken=None):
    after = _page_after(NextToken)
    arns = await ctx.store.read(lambda cur: sql.list_topics(cur, ctx.account, ctx.region, after,
                                                            PAGE + 1))
    out = {"Topics": [{"TopicArn": a} for a in arns[:PAGE]]}
    if len(arns) > PAGE:
        out["NextToken"] = _page_token(arns[PAGE - 1])
    return out


@operation("sns", "GetTopicAttributes")
async def get_topic_attributes(ctx: Context, TopicArn: str):
    topic = await _topic(ctx, TopicArn)
    counts = await ctx.store.read(lambda cur: sql.subscription_counts(cur, TopicArn))
    stored = json.loads(topic["attributes"])
    attributes = {"Policy": _default_policy(TopicArn, topic["account"]),
                  "Owner": topic["account"],
                  "SubscriptionsPending": str(counts.get("pending", 0)),
                  "TopicArn": TopicArn,
                  "EffectiveDeliveryPolicy": _effective_topic_policy(stored),
                  "SubscriptionsConfirmed": str(counts.get("confirmed", 0)),
                  "DisplayName": "",
                  "SubscriptionsDeleted": str(counts.get("deleted", 0))}
    attributes.update(stored)
    return {"Attributes": attributes}


@operation("sns", "SetTopicAttributes")
async def set_topic_attributes(ctx: Context, TopicArn: str, AttributeName: str,
                               AttributeValue=None):
    await _topic(ctx, TopicArn)
    value = AttributeValue if AttributeValue is not None else ""
    _check_topic_attribute(AttributeName, value)

    def write(w):
        topic = sql.get_topic(w, TopicArn)
        if topic is None:
            raise _topic_missing()
        attributes = json.loads(topic["attributes"])
        if value == "" and AttributeName != "DisplayName":
            attributes.pop(AttributeName, None)
        else:
            attributes[AttributeName] = value
        topic["attributes"] = json.dumps(attributes)
        sql.save_topic(w, topic)

    await ctx.store.write(write)
    return {}


# ---- subscriptions ---------------------------------------------------------------------------------

def _list_item(sub: dict) -> dict:
    return {"SubscriptionArn": sub["arn"] if sub["status"] == "confirmed" else "PendingConfirmation",
            "Owner": sub["account"], "Protocol": sub["protocol"], "Endpoint": sub["endpoint"],
            "TopicArn": sub["topic_arn"]}


@operation("sns", "Subscribe")
async def subscribe(ctx: Context, TopicArn: str, Protocol: str, Endpoint=None, Attributes=None,
                    ReturnSubscriptionArn=None):
    topic = await _topic(ctx, TopicArn)
    protocol = Protocol.lower()
    if protocol not in KNOWN_PROTOCOLS:
        raise invalid(f"Amazon SNS does not support this protocol string: {Protocol}")
    if protocol not in ("http", "https"):
        raise invalid(f"Protocol: metricstore delivers to http and https endpoints only, not "
                      f"{Protocol}")
    if not Endpoint:
        raise invalid("Endpoint")
    if not Endpoint.lower().startswith(protocol + "://"):
        raise invalid("Endpoint must match the specified protocol")
    refused = _service(ctx).webhook_policy.check_url(Endpoint)
    if refused is not None:     # alarm actions must not reach the metadata service & co
        raise invalid(f"Endpoint: {refused}")
    attributes = dict(Attributes or {})
    for key, value in attributes.items():
        _check_subscription_attribute(key, value)
    service = _service(ctx)
    now_ms = ctx.server.clock.now_ms()

    def write(w):
        existing = sql.find_subscriptions(w, topic_arn=TopicArn, endpoint=Endpoint,
                                          protocol=protocol)
        if existing:
            sub = existing[0]
            if sub["status"] == "confirmed":
                return sub["arn"], True
            service.publisher.confirmation(w, topic, sub, now_ms)
            return sub["arn"], False
        sub = {"arn": f"{TopicArn}:{uuid.uuid4()}", "topic_arn": TopicArn,
               "account": ctx.account, "region": ctx.region, "protocol": protocol,
               "endpoint": Endpoint, "status": "pending", "token": notify.new_token(),
               "attributes": json.dumps(attributes), "authenticated": False, "created": now_ms}
        sql.save_subscription(w, sub)
        service.publisher.confirmation(w, topic, sub, now_ms)
        return sub["arn"], False

    arn, confirmed = await ctx.store.write(write)
    service.wake_deliverer()
    if confirmed or ReturnSubscriptionArn:
        return {"SubscriptionArn": arn}
    return {"SubscriptionArn": "pending confirmation"}


async def confirm(ctx: Context, topic_arn: str, token: str, authenticate: bool) -> str:
    """ConfirmSubscription, also reached through the SubscribeURL."""
    await _topic(ctx, topic_arn)

    def write(w):
        found = sql.find_subscriptions(w, topic_arn=topic_arn, token=token,
                                       statuses=("pending", "confirmed", "deleted"))
        if not found:
            raise invalid("Token")
        sub = found[0]
        sub["status"] = "confirmed"
        sub["authenticated"] = bool(sub["authenticated"] or authenticate)
        sql.save_subscription(w, sub)
        return sub["arn"]

    return await ctx.store.write(write)


@operation("sns", "ConfirmSubscription")
async def confirm_subscription(ctx: Context, TopicArn: str, Token: str,
                               AuthenticateOnUnsubscribe=None):
    authenticate = str(AuthenticateOnUnsubscribe or "").lower() == "true"
    return {"SubscriptionArn": await confirm(ctx, TopicArn, Token, authenticate)}


async def unsubscribe_arn(ctx: Context, arn: str, authenticated: bool = True) -> None:
    """Unsubscribe, also reached through the UnsubscribeURL (then unauthenticated)."""
    m = _parse_arn(arn, "SubscriptionArn")
    if m.group(4) is None:
        raise invalid("SubscriptionArn")
    service = _service(ctx)
    now_ms = ctx.server.clock.now_ms()

    def write(w):
        sub = sql.get_subscription(w, arn)
        if sub is None or sub["status"] == "deleted":
            return False    # idempotent, as SNS
        if not authenticated and sub["authenticated"]:
            raise ServiceError("AuthorizationErrorException",
                               "Unsubscribe requires authentication for this subscription")
        was_confirmed = sub["status"] == "confirmed"
        sub["status"] = "deleted"
        sql.save_subscription(w, sub)
        dropped = sql.take_deliveries(w, subscription_arn=arn)
        sql.add_history(w, notify.abandoned_items(dropped, "the subscription was deleted"))
        topic = sql.get_topic(w, sub["topic_arn"])
        if was_confirmed and topic is not None:
            service.publisher.confirmation(w, topic, sub, now_ms, kind="UnsubscribeConfirmation")
            return True
        return False

    if await ctx.store.write(write):
        service.wake_deliverer()


@operation("sns", "Unsubscribe")
async def unsubscribe(ctx: Context, SubscriptionArn: str):
    await unsubscribe_arn(ctx, SubscriptionArn)
    return {}


@operation("sns", "ListSubscriptions")
async def list_subscriptions(ctx: Context, NextToken=None):
    after = _page_after(NextToken)
    subs = await ctx.store.read(lambda cur: sql.find_subscriptions(
        cur, account=ctx.account, region=ctx.region, after=after, limit=PAGE + 1))
    out = {"Subscriptions": [_list_item(s) for s in subs[:PAGE]]}
    if len(subs) > PAGE:
        out["NextToken"] = _page_token(subs[PAGE - 1]["arn"])
    return out


@operation("sns", "ListSubscriptionsByTopic")
async def list_subscriptions_by_topic(ctx: Context, TopicArn: str, NextToken=None):
    await _topic(ctx, TopicArn)
    after = _page_after(NextToken)
    subs = await ctx.store.read(lambda cur: sql.find_subscriptions(
        cur, topic_arn=TopicArn, after=after, limit=PAGE + 1))
    out = {"Subscriptions": [_list_item(s) for s in subs[:PAGE]]}
    if len(subs) > PAGE:
        out["NextToken"] = _page_token(subs[PAGE - 1]["arn"])
    return out


async def _subscription(ctx: Context, arn: str) -> dict:
    m = _parse_arn(arn, "SubscriptionArn")
    if m.group(4) is None:
        raise invalid("SubscriptionArn")
    sub = await ctx.store.read(lambda cur: sql.get_subscription(cur, arn))
    if sub is None or sub["status"] == "deleted" or sub["account"] != ctx.account:
        raise _subscription_missing()
    return sub


@operation("sns", "GetSubscriptionAttributes")
async def get_subscription_attributes(ctx: Context, SubscriptionArn: str):
    sub = await _subscription(ctx, SubscriptionArn)
    topic = await ctx.store.read(lambda cur: sql.get_topic(cur, sub["topic_arn"]))
    stored = json.loads(sub["attributes"])
    policy = notify.effective_policy(json.loads(topic["attributes"]) if topic else {}, stored)
    attributes = {"SubscriptionArn": sub["arn"], "TopicArn": sub["topic_arn"],
                  "Owner": sub["account"], "Protocol": sub["protocol"],
                  "Endpoint": sub["endpoint"],
                  "ConfirmationWasAuthenticated": "true" if sub["authenticated"] else "false",
                  "PendingConfirmation": "false" if sub["status"] == "confirmed" else "true",
                  "RawMessageDelivery": "false",
                  "EffectiveDeliveryPolicy": json.dumps(
                      {"healthyRetryPolicy": policy["healthyRetryPolicy"]}, separators=(",", ":")),
                  "SubscriptionPrincipal": f"arn:aws:iam::{sub['account']}:root"}
    attributes.update(stored)
    return {"Attributes": attributes}


@operation("sns", "SetSubscriptionAttributes")
async def set_subscription_attributes(ctx: Context, SubscriptionArn: str, AttributeName: str,
                                      AttributeValue=None):
    await _subscription(ctx, SubscriptionArn)
    value = AttributeValue if AttributeValue is not None else ""
    _check_subscription_attribute(AttributeName, value)

    def write(w):
        sub = sql.get_subscription(w, SubscriptionArn)
        attributes = json.loads(sub["attributes"])
        if value == "":
            attributes.pop(AttributeName, None)
        else:
            attributes[AttributeName] = value.lower() if AttributeName == "RawMessageDelivery" else value
        sub["attributes"] = json.dumps(attributes)
        sql.save_subscription(w, sub)

    await ctx.store.write(write)
    return {}


# ---- Publish ----------------------------------------------------------------------------------------

def _check_subject(subject: str) -> None:
    if not subject or len(subject) > 100 or any(ord(ch) < 32 or ord(ch) > 126 for ch in subject):
        raise invalid("Subject")


def _message_attributes(attributes) -> dict | None:
    if not attributes:
        return None
    for name, a in attributes.items():
        data_type = a.get("DataType") or ""
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary", "String.Array"):
            raise invalid(f"The message attribute '{name}' has an invalid message attribute type, "
                          f"the set of supported type prefixes is Binary, Number, and String.")
        if base == "Binary":
            if a.get("BinaryValue") is None:
                raise invalid(f"The message attribute '{name}' must contain non-empty message "
                              f"attribute value for message attribute type 'Binary'.")
        elif a.get("StringValue") is None:
            raise invalid(f"The message attribute '{name}' must contain non-empty message "
                          f"attribute value for message attribute type '{base}'.")
    return attributes


@operation("sns", "Publish")
async def publish(ctx: Context, Message: str, TopicArn=None, TargetArn=None, PhoneNumber=None,
                  Subject=None, MessageStructure=None, MessageAttributes=None,
                  MessageDeduplicationId=None, MessageGroupId=None):
    if PhoneNumber is not None:
        raise invalid("PhoneNumber: SMS is not supported by metricstore")
    arn = TopicArn or TargetArn
    if not arn:
        raise invalid("TopicArn or TargetArn Reason: no value for required parameter")
    if TopicArn and TargetArn:
        raise invalid("TopicArn or TargetArn Reason: both are specified")
    topic = await _topic(ctx, arn)
    if not Message:
        raise invalid("Empty message")
    if len(Message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise invalid("Message too long")
    if Subject is not None:
        _check_subject(Subject)
    message: str | dict = Message
    if MessageStructure is not None:
        if MessageStructure != "json":
            raise invalid("MessageStructure")
        try:
            message = json.loads(Message)
        except ValueError:
            raise invalid("Message Structure - JSON message body failed to parse") from None
        if not isinstance(message, dict) or "default" not in message:
            raise invalid("Message Structure - No default entry in JSON message body")
        if not all(isinstance(v, str) for v in message.values()):
            raise invalid("Message Structure - JSON message body failed to parse")
    attributes = _message_attributes(MessageAttributes)
    service = _service(ctx)
    now_ms = ctx.server.clock.now_ms()
    message_id, _ = await ctx.store.write(
        lambda w: service.publisher.publish(w, topic, message, Subject, now_ms, attributes))
    service.wake_deliverer()
    return {"MessageId": message_id}


# ---- tags ---------------------------------------------------------------------------------------------

def _check_tags(tags) -> None:
    if tags and len(tags) > 50:
        raise ServiceError("TagLimitExceededException",
                           "Could not complete request: tag quota of per resource exceeded")


async def _tagged_topic(ctx: Context, arn: str) -> None:
    if not _ARN.match(arn or ""):
        raise invalid("ResourceArn")
    topic = await ctx.store.read(lambda cur: sql.get_topic(cur, arn))
    if topic is None or topic["account"] != ctx.account:
        raise ServiceError("ResourceNotFoundException", "Resource does not exist")


@operation("sns", "TagResource")
async def tag_resource(ctx: Context, ResourceArn: str, Tags):
    await _tagged_topic(ctx, ResourceArn)

    def write(w):
        for tag in Tags:
            w.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                      [ResourceArn, tag["Key"], tag["Value"]])
        n = w.execute("SELECT count(*) FROM tags WHERE arn = ?", [ResourceArn]).fetchone()[0]
        if n > 50:
            raise ServiceError("TagLimitExceededException",
                               "Could not complete request: tag quota of per resource exceeded")

    await ctx.store.write(write)
    return {}


@operation("sns", "UntagResource")
async def untag_resource(ctx: Context, ResourceArn: str, TagKeys):
    await _tagged_topic(ctx, ResourceArn)
    await ctx.store.write(lambda w: w.execute(
        "DELETE FROM tags WHERE arn = ? AND key IN (SELECT unnest(?))", [ResourceArn, list(TagKeys)]))
    return {}


@operation("sns", "ListTagsForResource")
async def list_tags_for_resource(ctx: Context, ResourceArn: str):
    await _tagged_topic(ctx, ResourceArn)
    rows = await ctx.store.read(lambda cur: cur.execute(
        "SELECT key, value FROM tags WHERE arn = ? ORDER BY key", [ResourceArn]).fetchall())
    return {"Tags": [{"Key": k, "Value": v} for k, v in rows]}
