"""smithy-rpc-v2-cbor (what the Java SDK v2 sends to CloudWatch since 2.40.6).

``POST /service/<ServiceName>/operation/<Op>`` with ``smithy-protocol: rpc-v2-cbor``;
responses must carry the ``smithy-protocol`` header, timestamps are CBOR tag 1.
"""
from __future__ import annotations

import cbor2

from .. import services
from ..errors import ServiceError
from . import _CBOR_PATH, Call, Reply, RequestInfo, decompress, new_request_id
from ._wire import convert, epoch, resolve_error

_CT = "application/cbor"


def _ts(value):
    return cbor2.CBORTag(1, epoch(value))


def _service_for(name: str):
    # Accept "GraniteServiceVersion20100801" and the absolute
    # "com.amazonaws.cloudwatch#GraniteServiceVersion20100801" forms.
    short = name.rsplit("#", 1)[-1].rsplit(".", 1)[-1]
    return services.by_target_prefix(short)


class CborCodec:
    name = "cbor"

    def decode(self, req: RequestInfo) -> Call:
        m = _CBOR_PATH.search(req.path)
        spec = _service_for(m.group(1)) if m else None
        if spec is None:
            raise ServiceError("UnknownOperationException",
                               f"No service is served at {req.path}.", status=404)
        if req.headers.get("X-Amz-Target"):
            raise ServiceError("SerializationException",
                               "An rpc-v2-cbor request must not carry X-Amz-Target.", status=400,
                               query_code="MalformedInput")
        call = Call(spec, m.group(2), {}, self.name, new_request_id(),
                    query_mode=req.headers.get("x-amzn-query-mode", "").lower() == "true")
        return call

    def read_params(self, call: Call, req: RequestInfo) -> dict:
        from .shapes import read_input
        if call.service.operation(call.operation) is None:
            raise ServiceError("UnknownOperationException",
                               f"Operation {call.operation} is not a {call.service.model.service_name}"
                               f" operation.", status=404, query_code="InvalidAction")
        proto = req.headers.get("smithy-protocol")
        if proto is not None and proto != "rpc-v2-cbor":
            raise ServiceError("SerializationException",
                               f"Unsupported smithy-protocol {proto!r}.", status=400)
        body = decompress(req.body, req.headers.get("Content-Encoding"))
        if body:
            try:
                value = cbor2.loads(body)
            except Exception:   # cbor2 raises many types on bad input
                raise ServiceError("SerializationException", "The request body is not valid CBOR.",
                                   status=400, query_code="MalformedInput") from None
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ServiceError("SerializationException",
                                   "The request body must be a CBOR map.", status=400,
                                   query_code="MalformedInput")
        else:
            value = {}
        return read_input(call.service, call.operation, value, strings=False)

    def _headers(self, call_id: str) -> dict:
        return {"Content-Type": _CT, "smithy-protocol": "rpc-v2-cbor", "x-amzn-RequestId": call_id}

    def encode_result(self, call: Call, result: dict | None) -> Reply:
        op = call.service.operation(call.operation)
        headers = self._headers(call.request_id)
        if op.output_shape is None:
            return Reply(200, headers, b"")
        out = convert(op.output_shape, result or {}, _ts, blob=bytes)
        return Reply(200, headers, cbor2.dumps(out))

    def encode_error(self, spec, call: Call | None, err: ServiceError) -> Reply:
        shape, qcode, status, sender = resolve_error(spec, err)
        headers = self._headers(call.request_id if call else new_request_id())
        headers.update(err.headers)
        ns = err.namespace or (spec.service_namespace if spec else "com.amazonaws")
        if spec is not None and spec.query_compatible:
            headers["x-amzn-query-error"] = f"{qcode};{'Sender' if sender else 'Receiver'}"
            # 413 comes from AWS's HTTP front end (size limits), before any query-mode
            # mapping: it stays 413 in every protocol
            if 400 <= status < 500 and status != 413 and not (call and call.query_mode):
                status = 400
        body = {"__type": f"{ns}#{shape}"}
        if err.message:
            body["message"] = err.message
        body.update(err.extra)
        return Reply(status, headers, cbor2.dumps(body))


CBOR = CborCodec()
