"""SNS delivery to HTTP/S subscriptions: messages, signatures, the durable outbox, retries.

The only module that makes outbound HTTP requests.  Publishing (an alarm action or the SNS
Publish API) runs inside a store write transaction: :class:`Publisher` signs the message
once and adds one outbox row per confirmed subscription, so a message is either committed
with all its deliveries or not at all.  :class:`Deliverer` is one asyncio task that takes
due rows from the outbox and POSTs them as SNS does (reference alarms.md §10):

* headers ``x-amz-sns-message-type``, ``-message-id``, ``-topic-arn``,
  ``-subscription-arn`` (not on SubscriptionConfirmation), ``Content-Type: text/plain;
  charset=UTF-8``, ``User-Agent: Amazon Simple Notification Service Agent``;
* the pretty-printed JSON document, signed with RSA (SignatureVersion 1: SHA1, 2: SHA256)
  by a key generated at first start and kept in the data directory; the certificate is
  served at ``SigningCertURL``;
* a response 200-499 within 15 s is a delivery; anything else is retried following the
  subscription's (or topic's) delivery policy, by default 3 retries 20 s apart; after the
  last one the message goes to the dead-letter table;
* at most ``per_endpoint`` requests in flight per endpoint host, so one slow receiver
  holds back neither evaluation nor other receivers.

Retries reuse the stored document (same MessageId and signature).  Rows leave the outbox only
after the outcome is committed, so deliveries interrupted by a shutdown or a ``kill -9``
resume after a restart (at least once, as SNS).  The deliveries of an alarm action carry the
alarm: the commit that removes such a row also writes the alarm's Action history item, so
each delivery has exactly one.  Destinations go through :mod:`alarms.webhooks` (the
resolver of the HTTP session refuses addresses the policy denies); a refused destination is
dead-lettered at once.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import os
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit

from alarms import messages, webhooks
from alarms.webhooks import WebhookPolicy
from metricstore.store import alarms as sql

log = logging.getLogger("metricstore.notify")

USER_AGENT = "Amazon Simple Notification Service Agent"
DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"
REQUEST_TIMEOUT = 15.0          # SNS: no response within 15 s is a failure

# SNS's default HTTP/S delivery policy (reference R10.5).
DEFAULT_RETRY_POLICY = {"minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
                        "numMaxDelayRetries": 0, "numNoDelayRetries": 0,
                        "numMinDelayRetries": 0, "backoffFunction": "linear"}
BACKOFF_FUNCTIONS = ("linear", "arithmetic", "geometric", "exponential")

SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}


# ---- documents and signatures ---------------------------------------------------------------

def sns_timestamp(epoch_ms: int) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``."""
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=epoch_ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def string_to_sign(doc: Mapping[str, Any]) -> str:
    """``name\\nvalue\\n`` for each signed field present, in byte order (R10.4)."""
    return "".join(f"{k}\n{doc[k]}\n" for k in SIGNED_FIELDS[doc["Type"]] if k in doc)


def render(doc: Mapping[str, Any]) -> str:
    """SNS's pretty-printed JSON: two-space indent, ``"Key" : "value"``."""
    return json.dumps(doc, indent=2, separators=(",", " : "), ensure_ascii=False)


class Signer:
    """The RSA key and X.509 certificate messages are signed with.

    Generated at first start and kept in ``data_dir`` (``sns-signing-key.pem``,
    ``sns-signing-cert.pem``); with no data directory (``:memory:``) they live as long as the
    process.
    """

    def __init__(self, data_dir: str | None):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        self._hashes, self._padding = hashes, padding
        key_path = cert_path = None
        if data_dir and data_dir != ":memory:":
            os.makedirs(data_dir, exist_ok=True)
            key_path = os.path.join(data_dir, "sns-signing-key.pem")
            cert_path = os.path.join(data_dir, "sns-signing-cert.pem")
        if key_path and os.path.exists(key_path) and os.path.exists(cert_path):
            with open(key_path, "rb") as f:
                self._key = serialization.load_pem_private_key(f.read(), password=None)
            with open(cert_path, "rb") as f:
                self.cert_pem = f.read()
        else:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                                 "sns.metricstore.local")])
            now = datetime.now(timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - timedelta(days=1))
                    .not_valid_after(now + timedelta(days=3650))
                    .sign(self._key, hashes.SHA256()))
            self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
            if key_path:
                key_pem = self._key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption())
                _write_private(key_path, key_pem)
                with open(cert_path, "wb") as f:
                    f.write(self.cert_pem)
        digest = hashlib.sha256(self.cert_pem).hexdigest()[:32]
        self.cert_name = f"SimpleNotificationService-{digest}.pem"

    def sign(self, doc: Mapping[str, Any], version: str) -> str:
        algorithm = self._hashes.SHA1() if version == "1" else self._hashes.SHA256()
        signature = self._key.sign(string_to_sign(doc).encode("utf-8"), self._padding.PKCS1v15(),
                                   algorithm)
        return base64.b64encode(signature).decode("ascii")


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# ---- delivery policies --------------------------------------------------------------------------

def _invalid_policy(reason: str) -> ValueError:
    return ValueError(f"DeliveryPolicy: {reason}")


def check_retry_policy(policy: Any) -> dict:
    """A healthyRetryPolicy within SNS's limits, completed with the defaults."""
    if not isinstance(policy, dict):
        raise _invalid_policy("healthyRetryPolicy must be an object")
    out = dict(DEFAULT_RETRY_POLICY)
    for key, value in policy.items():
        if key not in DEFAULT_RETRY_POLICY:
            raise _invalid_policy(f"unknown key {key}")
        if key == "backoffFunction":
            if value not in BACKOFF_FUNCTIONS:
                raise _invalid_policy(f"backoffFunction must be one of {', '.join(BACKOFF_FUNCTIONS)}")
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _invalid_policy(f"{key} must be a non-negative integer")
        out[key] = value
    if out["numRetries"] > 100:
        raise _invalid_policy("numRetries must be at most 100")
    if out["minDelayTarget"] < 1:
        raise _invalid_policy("minDelayTarget must be at least 1")
    if out["maxDelayTarget"] > 3600:
        raise _invalid_policy("maxDelayTarget must be at most 3600")
    if out["minDelayTarget"] > out["maxDelayTarget"]:
        raise _invalid_policy("minDelayTarget must be less than or equal to maxDelayTarget")
    if (out["numNoDelayRetries"] + out["numMinDelayRetries"] + out["numMaxDelayRetries"]
            > out["numRetries"]):
        raise _invalid_policy("the phase counts exceed numRetries")
    total = sum(retry_delay(out, k) or 0 for k in range(1, out["numRetries"] + 1))
    if total > 3600:
        raise _invalid_policy("the policy may not take longer than 3600 seconds")
    return out


def parse_delivery_policy(text: str, level: str) -> dict:
    """Validate a DeliveryPolicy attribute (``level``: topic or subscription); ValueError
    with SNS-style wording otherwise."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _invalid_policy("not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid_policy("must be a JSON object")
    if level == "topic":
        for protocol, part in doc.items():
            if not isinstance(part, dict):
                raise _invalid_policy(f"{protocol} must be an object")
            if "defaultHealthyRetryPolicy" in part:
                check_retry_policy(part["defaultHealthyRetryPolicy"])
    elif "healthyRetryPolicy" in doc:
        check_retry_policy(doc["healthyRetryPolicy"])
    return doc


def _json_attr(attributes: Mapping[str, str], name: str) -> dict:
    try:
        doc = json.loads(attributes.get(name) or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def effective_policy(topic_attributes: Mapping[str, str],
                     subscription_attributes: Mapping[str, str]) -> dict:
    """``{"healthyRetryPolicy": …, "headerContentType": …}`` for one subscription."""
    topic = _json_attr(topic_attributes, "DeliveryPolicy").get("http") or {}
    sub = _json_attr(subscription_attributes, "DeliveryPolicy")
    retry = dict(DEFAULT_RETRY_POLICY)
    retry.update(topic.get("defaultHealthyRetryPolicy") or {})
    content_type = (topic.get("defaultRequestPolicy") or {}).get("headerContentType")
    if not topic.get("disableSubscriptionOverrides"):
        retry.update(sub.get("healthyRetryPolicy") or {})
        content_type = (sub.get("requestPolicy") or {}).get("headerContentType") or content_type
    return {"healthyRetryPolicy": retry, "headerContentType": content_type or DEFAULT_CONTENT_TYPE}


def retry_delay(policy: Mapping[str, Any], failures: int) -> float | None:
    """Seconds to wait before retry number ``failures`` (1 = after the first failed
    attempt), or None when the policy has no retries left.

    Phases (R10.5): immediate, pre-backoff at minDelayTarget, backoff from min to max by
    ``backoffFunction``, post-backoff at maxDelayTarget.  AWS publishes the curves only as a
    graph (§12.10): ours are linear, quadratic (arithmetic), geometric and 2^j - 1
    (exponential) between the two targets.  No jitter, so retries are predictable.
    """
    total = policy["numRetries"]
    if failures > total:
        return None
    lo, hi = float(policy["minDelayTarget"]), float(policy["maxDelayTarget"])
    no_delay, at_min, at_max = (policy["numNoDelayRetries"], policy["numMinDelayRetries"],
                                policy["numMaxDelayRetries"])
    backoff = max(total - no_delay - at_min - at_max, 0)
    j = failures
    if j <= no_delay:
        return 0.0
    j -= no_delay
    if j <= at_min:
        return lo
    j -= at_min
    if j <= backoff:
        fraction = j / backoff
        fn = policy.get("backoffFunction", "linear")
        if fn == "arithmetic":
            fraction = j * (j + 1) / (backoff * (backoff + 1))
        elif fn == "geometric":
            return lo * (hi / lo) ** fraction
        elif fn == "exponential":
            fraction = (2 ** j - 1) / (2 ** backoff - 1)
        return lo + (hi - lo) * fraction
    return hi


# ---- publishing (inside a write transaction) ------------------------------------------------------

class Publisher:
    """Builds, signs and enqueues SNS messages.  Methods take the write context ``w`` of the
    transaction the message belongs to."""

    def __init__(self, signer: Signer, base_url: str):
        self.signer = signer
        self.base_url = base_url.rstrip("/")

    @property
    def signing_cert_url(self) -> str:
        return f"{self.base_url}/{self.signer.cert_name}"

    def subscribe_url(self, topic_arn: str, token: str) -> str:
        return f"{self.base_url}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}"

    def unsubscribe_url(self, subscription_arn: str) -> str:
        return f"{self.base_url}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"

    def publish(self, w, topic: Mapping[str, Any], message: str | Mapping[str, str],
                subject: str | None, now_ms: int,
                message_attributes: Mapping[str, Any] | None = None,
                alarm_action: Mapping[str, Any] | None = None) -> tuple[str, int]:
        """Publish to every confirmed subscription of ``topic`` (a sns_topics row).
        ``message`` is the text, or a per-protocol dict with a ``default`` entry
        (MessageStructure=json).  ``alarm_action`` (see :func:`alarm_action`) marks the
        deliveries of an alarm action: each one's outcome becomes an Action history item.
        Returns (MessageId, deliveries enqueued)."""
        attributes = json.loads(topic["attributes"])
        version = attributes.get("SignatureVersion") or "1"
        message_id = str(uuid.uuid4())
        subscriptions = sql.find_subscriptions(w, topic_arn=topic["arn"], statuses=("confirmed",))
        signed: dict[str, dict] = {}
        rows = []
        for sub in subscriptions:
            text = message if isinstance(message, str) else (
                message.get(sub["protocol"]) or message["default"])
            sub_attributes = json.loads(sub["attributes"])
            raw = sub_attributes.get("RawMessageDelivery") == "true"
            if raw:
                body = text
            else:
                doc = signed.get(text)
                if doc is None:
                    doc = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic["arn"]}
                    if subject is not None:
                        doc["Subject"] = subject
                    doc["Message"] = text
                    doc["Timestamp"] = sns_timestamp(now_ms)
                    doc["SignatureVersion"] = version
                    doc["Signature"] = self.signer.sign(doc, version)
                    doc["SigningCertURL"] = self.signing_cert_url
                    signed[text] = doc
                doc = dict(doc, UnsubscribeURL=self.unsubscribe_url(sub["arn"]))
                if message_attributes:
                    doc["MessageAttributes"] = {
                        name: {"Type": a["DataType"],
                               "Value": a.get("StringValue") if "StringValue" in a
                               else base64.b64encode(a.get("BinaryValue") or b"").decode()}
                        for name, a in message_attributes.items()}
                body = render(doc)
            row = self._row(sub, topic, attributes, sub_attributes, "Notification",
                            message_id, body, raw, now_ms)
            if alarm_action is not None:
                row["alarm_action"] = json.dumps(alarm_action)
            rows.append(row)
        sql.enqueue(w, rows)
        return message_id, len(rows)

    def confirmation(self, w, topic: Mapping[str, Any], sub: Mapping[str, Any], now_ms: int,
                     kind: str = "SubscriptionConfirmation") -> str:
        """Enqueue a SubscriptionConfirmation (or UnsubscribeConfirmation) for ``sub``."""
        attributes = json.loads(topic["attributes"])
        version = attributes.get("SignatureVersion") or "1"
        message_id = str(uuid.uuid4())
        if kind == "SubscriptionConfirmation":
            text = (f"You have chosen to subscribe to the topic {topic['arn']}.\nTo confirm the "
                    f"subscription, visit the SubscribeURL included in this message.")
        else:
            text = (f"You have chosen to deactivate subscription {sub['arn']}.\nTo cancel this "
                    f"operation and restore the subscription, visit the SubscribeURL included "
                    f"in this message.")
        doc = {"Type": kind, "MessageId": message_id, "Token": sub["token"],
               "TopicArn": topic["arn"], "Message": text,
               "SubscribeURL": self.subscribe_url(topic["arn"], sub["token"]),
               "Timestamp": sns_timestamp(now_ms), "SignatureVersion": version}
        doc["Signature"] = self.signer.sign(doc, version)
        doc["SigningCertURL"] = self.signing_cert_url
        row = self._row(sub, topic, attributes, json.loads(sub["attributes"]), kind, message_id,
                        render(doc), False, now_ms)
        sql.enqueue(w, [row])
        return message_id

    @staticmethod
    def _row(sub, topic, topic_attributes, sub_attributes, kind, message_id, body, raw, now_ms):
        return {"subscription_arn": sub["arn"], "topic_arn": topic["arn"],
                "endpoint": sub["endpoint"], "message_type": kind, "message_id": message_id,
                "body": body, "raw": raw,
                "policy": json.dumps(effective_policy(topic_attributes, sub_attributes)),
                "next_attempt": now_ms, "created": now_ms}


def new_token() -> str:
    return secrets.token_hex(64)


# ---- Action history of alarm deliveries ------------------------------------------------------------

def alarm_action(account: str, region: str, alarm_name: str, alarm_type: str, at_ms: int,
                 action_arn: str, published: str) -> dict:
    """What an alarm's outbox row remembers to write its Action history item later:
    the alarm, the transition time (the item's timestamp, next to its StateUpdate: R8.4),
    the topic and the published message structure."""
    return {"account": account, "region": region, "alarm": alarm_name, "type": alarm_type,
            "ts": at_ms, "action": action_arn, "published": published}


def action_item(row: Mapping[str, Any], error: str | None) -> tuple | None:
    """The Action history item (alarm_history tuple) for the final outcome of an outbox
    row: ``Successfully executed action <topic>`` once delivered, ``Failed to execute action
    <topic>. Received error: "…"`` once given up; None for deliveries of no alarm."""
    if not row.get("alarm_action"):
        return None
    a = json.loads(row["alarm_action"])
    summary, data = messages.action(a["action"], a["ts"], None if error else a["published"],
                                    error)
    return (a["account"], a["region"], a["alarm"], a["type"], a["ts"], "Action", summary, data)


def abandoned_items(rows, reason: str) -> list[tuple]:
    """Failed Action items for alarm deliveries dropped before their outcome was known
    (the subscription or its topic was deleted)."""
    items = []
    for row in rows:
        item = action_item(row, f"Delivery to {row['endpoint']} abandoned: {reason}")
        if item is not None:
            items.append(item)
    return items


# ---- delivering --------------------------------------------------------------------------------

class Deliverer:
    """The outbox worker: one asyncio task, started and stopped with the server."""

    def __init__(self, store, clock, *, per_endpoint: int = 4, max_in_flight: int = 64,
                 timeout: float = REQUEST_TIMEOUT, poll: float = 1.0,
                 policy: WebhookPolicy | None = None):
        self.store, self.clock = store, clock
        self.policy = policy if policy is not None else WebhookPolicy()
        self.per_endpoint, self.max_in_flight = per_endpoint, max_in_flight
        self.timeout, self.poll = timeout, poll
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._session = None
        self._runner: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        import aiohttp
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self.max_in_flight,
                                           resolver=webhooks.resolver(self.policy)))
        self._runner = asyncio.create_task(self._run(), name="sns-deliverer")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._dispatch()
                wait = await self._until_next()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - logged, retried at the next poll
                log.exception("outbox poll failed")
                wait = self.poll
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _dispatch(self) -> None:
        room = self.max_in_flight - len(self._in_flight)
        if room <= 0:
            return
        now_ms = self.clock.now_ms()
        busy = list(self._in_flight)
        rows = await self.store.read(lambda cur: sql.due_deliveries(cur, now_ms, busy, room))
        for row in rows:
            if row["id"] in self._in_flight:
                continue
            self._in_flight.add(row["id"])
            task = asyncio.create_task(self._deliver(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _until_next(self) -> float:
        busy = list(self._in_flight)
        due = await self.store.read(lambda cur: cur.execute(
            "SELECT min(next_attempt) FROM sns_outbox WHERE id NOT IN (SELECT unnest(?))",
            [busy]).fetchone()[0])
        if due is None:
            return self.poll
        return min(max((due - self.clock.now_ms()) / 1000.0, 0.0), self.poll)

    async def _deliver(self, row: dict) -> None:
        try:
            host = urlsplit(row["endpoint"]).netloc
            limit = self._limits.setdefault(host, asyncio.Semaphore(self.per_endpoint))
            async with limit:
                error, final = await self._post(row)
            await self._record(row, error, final)
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - the row stays due and is retried
            log.exception("delivery %s failed", row["id"])
        finally:
            self._in_flight.discard(row["id"])
            self._wake.set()

    async def _post(self, row: dict) -> tuple[str | None, bool]:
        """POST one delivery: (None when delivered, else the error; whether the error is
        final).  A destination the webhook policy refuses is final: retrying cannot help."""
        import aiohttp
        refused = self.policy.check_url(row["endpoint"])
        if refused is not None:
            return f"endpoint refused: {refused}", True
        policy = json.loads(row["policy"])
        headers = {"x-amz-sns-message-type": row["message_type"],
                   "x-amz-sns-message-id": row["message_id"],
                   "x-amz-sns-topic-arn": row["topic_arn"],
                   "Content-Type": policy.get("headerContentType") or DEFAULT_CONTENT_TYPE,
                   "User-Agent": USER_AGENT}
        if row["message_type"] != "SubscriptionConfirmation":
            headers["x-amz-sns-subscription-arn"] = row["subscription_arn"]
        if row["raw"]:
            headers["x-amz-sns-rawdelivery"] = "true"
        try:
            async with self._session.post(row["endpoint"], data=row["body"].encode("utf-8"),
                                          headers=headers, allow_redirects=False) as resp:
                await resp.read()
                if 200 <= resp.status < 500:
                    return None, False
                return f"HTTP status {resp.status}", False
        except webhooks.EndpointRefused as exc:
            return f"endpoint refused: {exc}", True
        except asyncio.TimeoutError:
            return f"no response within {self.timeout:g} seconds", False
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}", False
        except ValueError as exc:   # malformed endpoint URL
            return f"invalid endpoint: {exc}", False

    async def _record(self, row: dict, error: str | None, final: bool = False) -> None:
        now_ms = self.clock.now_ms()
        if error is None:
            log.debug("delivered %s %s to %s", row["message_type"], row["message_id"],
                      row["endpoint"])
            item = action_item(row, None)

            def done(w):
                sql.delivered(w, row["id"])
                if item is not None:
                    sql.add_history(w, [item])

            await self.store.write(done)
            return
        failures = row["attempts"] + 1
        delay = None if final else retry_delay(json.loads(row["policy"])["healthyRetryPolicy"],
                                               failures)
        if delay is None:
            log.warning("giving up on %s %s to %s after %d attempts: %s", row["message_type"],
                        row["message_id"], row["endpoint"], failures, error)
            item = action_item(row, f"Delivery to {row['endpoint']} failed after {failures} "
                                    f"attempt{'s' if failures != 1 else ''}: {error}")

            def give_up(w):
                sql.dead_letter(w, row, failures, now_ms, error)
                if item is not None:
                    sql.add_history(w, [item])

            await self.store.write(give_up)
        else:
            log.info("delivery of %s to %s failed (%s); retry in %gs", row["message_id"],
                     row["endpoint"], error, delay)
            next_attempt = now_ms + int(math.ceil(delay * 1000))
            await self.store.write(
                lambda w: sql.retry_later(w, row["id"], failures, next_attempt, error))


__all__ = ["Signer", "Publisher", "Deliverer", "string_to_sign", "render", "sns_timestamp",
           "parse_delivery_policy", "check_retry_policy", "effective_policy", "retry_delay",
           "new_token", "alarm_action", "action_item", "abandoned_items", "DEFAULT_RETRY_POLICY",
           "USER_AGENT"]
