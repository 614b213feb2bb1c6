"""The one place where the wire meets the operations.

request → pick_codec → Call (service, operation) → validated params → OPERATIONS[...] →
encode_result / encode_error in the same protocol.  Unexpected exceptions become
InternalFailure (500) with a logged traceback: they are bugs.
"""
from __future__ import annotations

import logging

from aiohttp import web
from multidict import CIMultiDict

from . import auth, services
from .codecs import MAX_BODY, Reply, RequestInfo, decompress, pick_codec, request_too_large
from .codecs.json import JSON
from .codecs.query_xml import QUERY
from .errors import ServiceError, internal_failure, invalid_action
from .ingest import OFFLOAD_MIN_BYTES
from .operations import OPERATIONS, PREPARE, Context
from .store.db import ADMISSION, Admission, QueryBusy, QueryTimeout, WriteQueueFull

log = logging.getLogger("metricstore.dispatch")

SERVER = web.AppKey("server", object)

MB = 1_048_576

# AWS's request size limits, (service, operation) -> bytes of the HTTP body as sent.  A
# compressed body is measured as sent, then its decompressed size against DECODED_LIMITS
# (default: the same number, AWS's "uncompressed payload" limits).
BODY_LIMITS = {
    # API_PutMetricData: "limited to 1 MB in size for HTTP POST requests", gzip allowed
    ("cloudwatch", "PutMetricData"): MB,
    # what CloudWatch answers a big GetMetricData: "Request size N exceeded 614400 bytes"
    ("cloudwatch", "GetMetricData"): 614_400,
    # API_PutMetricAlarm: "a maximum uncompressed payload of 120 KB"
    ("cloudwatch", "PutMetricAlarm"): 120 * 1024,
    # API_PutLogEvents counts 1,048,576 bytes of messages (+ 26 an event) and says so with
    # InvalidParameterException "Upload too large" (operations/logs.py); the wire bound only
    # keeps memory finite and admits every valid batch: JSON escapes (\u0000: 6 bytes a byte)
    # and 10,000 events' framing
    ("logs", "PutLogEvents"): 6 * MB + 10_000 * 64 + 65_536,
}
DEFAULT_BODY_LIMIT = MB           # every other operation of every service
# a gzip PutMetricData body may expand this far (1,000 datums with 30 long dimensions each
# compress well); gzip bombs stop here, streaming (codecs.decompress)
DECODED_LIMITS = {("cloudwatch", "PutMetricData"): MAX_BODY}

MAX_WIRE_BODY = max(max(BODY_LIMITS.values()), DEFAULT_BODY_LIMIT)
# query protocol: the operation is in the body, so the body is read against the largest
# limit of a query-protocol operation, then checked against its own
_QUERY_WIRE = max([DEFAULT_BODY_LIMIT] + [v for (svc, _), v in BODY_LIMITS.items()
                                          if svc in ("cloudwatch", "sns")])
_QUERY_DECODED = max([_QUERY_WIRE] + [v for (svc, _), v in DECODED_LIMITS.items()
                                      if svc in ("cloudwatch", "sns")])
# refused before their (CPU-heavy) decoding when the write queue is full
_WRITE_HEAVY = {("cloudwatch", "PutMetricData"), ("logs", "PutLogEvents")}


def body_limits(service: str, operation: str) -> tuple[int, int]:
    """(bytes as sent, bytes decompressed) an operation's request body may have."""
    wire = BODY_LIMITS.get((service, operation), DEFAULT_BODY_LIMIT)
    return wire, DECODED_LIMITS.get((service, operation), wire)


def _reply(r: Reply) -> web.Response:
    return web.Response(status=r.status, headers=r.headers, body=r.body)


async def read_body(request: web.Request, limit: int, spec=None) -> bytes:
    """The body as sent, refused (413) without being read when ``Content-Length`` says it is
    over ``limit``, and as soon as ``limit`` is passed when it is chunked.  aiohttp then
    drains (and drops) the rest for a while so the client reads the answer."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise request_too_large(declared, limit, spec)
    buf = bytearray()
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise request_too_large(declared, limit, spec)


def _info(request: web.Request, body: bytes) -> RequestInfo:
    """The request as sent: aiohttp's automatic decompression is off (see app.make_app), so
    ``body`` is still the wire bytes here.  :func:`decode_body` then undoes Content-Encoding
    for the codecs, while ``raw_body``/``raw_headers`` keep what SigV4 signed (the
    compressed bytes, with their Content-Encoding header) for :func:`auth.identify`."""
    return RequestInfo(request.method, request.path, request.headers, body, dict(request.query),
                       raw_body=body, raw_path=request.raw_path, raw_headers=request.headers)


def decode_body(req: RequestInfo, limit: int = MAX_BODY, spec=None) -> None:
    """Undo ``Content-Encoding`` (bounded: gzip bombs) so codecs see the plain body."""
    enc = (req.headers.get("Content-Encoding") or "").strip()
    if enc:
        req.body = decompress(req.raw_body, enc, limit, spec)
        headers = CIMultiDict(req.headers)
        del headers["Content-Encoding"]
        req.headers = headers


def throttled(spec) -> ServiceError:
    """AWS's throttling answer in the service's own words: CloudWatch ``Throttling`` (400,
    ``ThrottlingException`` in JSON/CBOR ``__type``), CloudWatch Logs
    ``ThrottlingException`` (400), SNS ``Throttled`` (429); message ``Rate exceeded``."""
    if spec is not None and spec.error_info("ThrottlingException") is not None:
        return ServiceError("ThrottlingException", "Rate exceeded")
    if spec is not None and spec.error_info("ThrottledException") is not None:
        return ServiceError("ThrottledException", "Rate exceeded")
    return ServiceError("ThrottlingException", "Rate exceeded", status=400,
                        query_code="Throttling")


def query_timed_out(seconds: float) -> ServiceError:
    """A metric query past its deadline: CloudWatch's modeled ``LimitExceeded`` (400), a code
    the SDKs do not retry (``LimitExceededException`` they would, and the retry would run
    into the same deadline)."""
    return ServiceError("LimitExceededFault",
                        f"The query did not finish within {seconds:g} seconds and was stopped. "
                        f"Request fewer metrics, a shorter time range or a longer period.")


async def handle(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    ticket = Admission()
    token = ADMISSION.set(ticket)
    try:
        return await _handle(request, server, ticket)
    finally:
        ticket.active = False        # background work the request started is never refused
        ADMISSION.reset(token)


async def _handle(request: web.Request, server, ticket: Admission) -> web.Response:
    req = _info(request, b"")
    codec = pick_codec(req)
    if codec is None:
        return _reply(JSON.encode_error(None, None, ServiceError(
            "UnknownOperationException", "The request does not name a known operation: send "
            "X-Amz-Target, a smithy rpc-v2-cbor path, or a form body with Action.", status=400)))
    spec = None
    call = None
    try:
        if codec is QUERY:
            # the operation is in the body; the credential scope names the service for errors
            scope = auth.credential_scope(req)
            spec = services.by_query_version(None, scope.service if scope else None)
            wire, decoded = _QUERY_WIRE, _QUERY_DECODED
        else:
            call = codec.decode(req)          # X-Amz-Target or the CBOR path: no body needed
            spec = call.service
            wire, decoded = body_limits(spec.name, call.operation)
        req = _info(request, await read_body(request, wire, spec))
        decode_body(req, decoded, spec)
        if call is None:
            call = codec.decode(req)
            spec = call.service
            wire, decoded = body_limits(spec.name, call.operation)
            if len(req.raw_body) > wire:
                raise request_too_large(len(req.raw_body), wire, spec)
            if len(req.body) > decoded:
                raise request_too_large(len(req.body), decoded, spec, decompressed=True)
        ticket.weight = len(req.body)
        call.account, call.region, call.access_key = auth.identify(req, server.config,
                                                                   server.clock)
        key = (spec.name, call.operation)
        if key in _WRITE_HEAVY:
            server.store.admit(ticket.weight)
        fn = OPERATIONS.get(key)
        ctx = Context(call.account, call.region, server)
        if fn is not None and key in PREPARE and server.ingest is not None \
                and len(req.body) >= OFFLOAD_MIN_BYTES:
            # CPU-heavy decode and validation on a worker core (metricstore/ingest.py)
            prepared = await server.ingest.prepare(codec.name, req, spec.name, call.operation,
                                                   ctx.prepare_env())
            result = await fn(ctx, prepared=prepared)
            return _reply(codec.encode_result(call, result))
        params = codec.read_params(call, req)
        if fn is None:
            raise invalid_action(f"The operation {call.operation} is not implemented by "
                                 f"metricstore yet.")
        call.params = params
        result = await fn(ctx, **params)
        return _reply(codec.encode_result(call, result))
    except ServiceError as e:
        return _reply(codec.encode_error(spec, call, e))
    except (WriteQueueFull, QueryBusy) as e:
        log.debug("throttled %s: %s", call.operation if call else "request", e)
        return _reply(codec.encode_error(spec, call, throttled(spec)))
    except QueryTimeout as e:
        return _reply(codec.encode_error(spec, call, query_timed_out(e.seconds)))
    except Exception:  # noqa: BLE001 - a bug: log it, answer InternalFailure
        log.exception("internal error in %s", call.operation if call else "request")
        return _reply(codec.encode_error(spec, call, internal_failure()))
