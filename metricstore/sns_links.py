"""The URLs SNS puts in its messages, served by us: SubscribeURL, UnsubscribeURL, SigningCertURL.

``GET /?Action=ConfirmSubscription&TopicArn=…&Token=…`` and ``GET /?Action=Unsubscribe&
SubscriptionArn=…`` are unsigned, as a webhook receiver follows them; they answer with the
same XML as the SNS API.  Every other request to ``/`` goes on to :func:`dispatch.handle`.
``GET /SimpleNotificationService-<hash>.pem`` returns the certificate that verifies message
signatures.
"""
from __future__ import annotations

from aiohttp import web

from . import dispatch, services
from .codecs import Call, new_request_id
from .codecs.query_xml import QUERY
from .errors import ServiceError, internal_failure
from .operations import Context, sns

_LINKS = ("ConfirmSubscription", "Unsubscribe")


def _region(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else default


async def root(request: web.Request) -> web.Response:
    query = request.query
    action = query.get("Action")
    if (action not in _LINKS or "Version" in query or "X-Amz-Signature" in query
            or "Authorization" in request.headers):
        return await dispatch.handle(request)
    server = request.app[dispatch.SERVER]
    spec = services.service("sns")
    call = Call(spec, action, {}, "query", new_request_id())
    try:
        if action == "ConfirmSubscription":
            topic_arn, token = query.get("TopicArn", ""), query.get("Token", "")
            if not topic_arn or not token:
                raise sns.invalid("TopicArn" if not topic_arn else "Token")
            ctx = Context(server.config.account_id, _region(topic_arn, server.config.region), server)
            result = {"SubscriptionArn": await sns.confirm(ctx, topic_arn, token, False)}
        else:
            arn = query.get("SubscriptionArn", "")
            ctx = Context(server.config.account_id, _region(arn, server.config.region), server)
            await sns.unsubscribe_arn(ctx, arn, authenticated=False)
            result = {}
        reply = QUERY.encode_result(call, result)
    except ServiceError as e:
        reply = QUERY.encode_error(spec, call, e)
    except Exception:  # noqa: BLE001 - a bug: logged by dispatch's logger
        dispatch.log.exception("internal error in %s link", action)
        reply = QUERY.encode_error(spec, call, internal_failure())
    return web.Response(status=reply.status, headers=reply.headers, body=reply.body)


async def certificate(request: web.Request) -> web.Response:
    server = request.app[dispatch.SERVER]
    signer = server.alarms.signer
    if request.match_info.get("name") != signer.cert_name:
        raise web.HTTPNotFound()
    return web.Response(body=signer.cert_pem, content_type="application/x-pem-file")


def setup_routes(app: web.Application) -> None:
    """Add the routes (before the catch-all that dispatches AWS requests)."""
    app.router.add_get("/", root)
    app.router.add_get(r"/{name:SimpleNotificationService-[0-9a-f]+\.pem}", certificate)
