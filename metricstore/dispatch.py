"""The one place where the wire meets the operations.

request → pick_codec → Call (service, operation) → validated params → OPERATIONS[...] →
encode_result / encode_error in the same protocol.  Unexpected exceptions become
InternalFailure (500) with a logged traceback: they are bugs.
"""
from __future__ import annotations

import logging

from aiohttp import web
from multidict import CIMultiDict

from . import auth
from .codecs import Reply, RequestInfo, decompress, pick_codec
from .codecs.json import JSON
from .codecs.query_xml import QUERY
from .errors import ServiceError, internal_failure, invalid_action
from .ingest import OFFLOAD_MIN_BYTES
from .operations import OPERATIONS, PREPARE, Context

log = logging.getLogger("metricstore.dispatch")

SERVER = web.AppKey("server", object)

# AWS's request size limits per operation (bytes on the wire).
BODY_LIMITS = {"PutMetricData": 1_048_576, "PutLogEvents": 1_048_576 + 10_000 * 26 + 65_536}
DEFAULT_BODY_LIMIT = 8 * 1024 * 1024


def _reply(r: Reply) -> web.Response:
    return web.Response(status=r.status, headers=r.headers, body=r.body)


async def request_info(request: web.Request) -> RequestInfo:
    """The request as sent: aiohttp's automatic decompression is off (see app.make_app), so
    ``body`` is still the wire bytes here.  :func:`decode_body` then undoes Content-Encoding
    for the codecs, while ``raw_body``/``raw_headers`` keep what SigV4 signed (the
    compressed bytes, with their Content-Encoding header) for :func:`auth.identify`."""
    body = await request.read()
    return RequestInfo(request.method, request.path, request.headers, body, dict(request.query),
                       raw_body=body, raw_path=request.raw_path,
                       raw_headers=request.headers)


def decode_body(req: RequestInfo) -> None:
    """Undo ``Content-Encoding`` (bounded: gzip bombs) so codecs see the plain body."""
    enc = (req.headers.get("Content-Encoding") or "").strip()
    if enc:
        req.body = decompress(req.raw_body, enc)
        headers = CIMultiDict(req.headers)
        del headers["Content-Encoding"]
        req.headers = headers


async def handle(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        req = await request_info(request)
    except web.HTTPException:
        raise
    codec = pick_codec(req)
    if codec is None:
        return _reply(JSON.encode_error(None, None, ServiceError(
            "UnknownOperationException", "The request does not name a known operation: send "
            "X-Amz-Target, a smithy rpc-v2-cbor path, or a form body with Action.", status=400)))
    spec = None
    call = None
    try:
        decode_body(req)
        call = codec.decode(req)
        spec = call.service
        call.account, call.region, call.access_key = auth.identify(req, server.config,
                                                                   server.clock)
        limit = BODY_LIMITS.get(call.operation, DEFAULT_BODY_LIMIT)
        if len(req.body) > limit:
            raise ServiceError("RequestEntityTooLarge",
                               f"Request size {len(req.body)} exceeded {limit} bytes",
                               status=413, query_code="RequestEntityTooLarge")
        key = (spec.name, call.operation)
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
    except Exception:  # noqa: BLE001 - a bug: log it, answer InternalFailure
        log.exception("internal error in %s", call.operation if call else "request")
        return _reply(codec.encode_error(spec, call, internal_failure()))
