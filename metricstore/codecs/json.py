"""AWS JSON 1.0 (CloudWatch, query-compatible) and JSON 1.1 (CloudWatch Logs)."""
from __future__ import annotations

import datetime as dt
import json

import orjson

from ..errors import ServiceError
from .. import services
from . import Call, Reply, RequestInfo, decompress, new_request_id
from ._wire import epoch, resolve_error
from .shapes import read_input


_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME


def _dumps(obj) -> bytes:
    """Outputs are already JSON-ready but for datetimes (→ epoch seconds) and blobs (→ base64),
    which orjson hands to ``_default``: no walk of the output shape is needed."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def _default(o):
    if isinstance(o, (bytes, bytearray)):
        import base64
        return base64.b64encode(o).decode()
    if isinstance(o, dt.datetime):
        return epoch(o)
    raise TypeError(type(o).__name__)


class JsonCodec:
    name = "json"

    def target(self, req: RequestInfo):
        target = req.headers.get("X-Amz-Target") or ""
        prefix, _, op = target.rpartition(".")
        spec = services.by_target_prefix(prefix)
        if spec is None or not op:
            raise ServiceError("UnknownOperationException",
                               f"The target {target!r} is not a known service operation.",
                               status=400)
        return spec, op

    def decode(self, req: RequestInfo) -> Call:
        spec, op = self.target(req)
        call = Call(spec, op, {}, self.name, new_request_id(),
                    query_mode=req.headers.get("x-amzn-query-mode", "").lower() == "true")
        return call

    def read_params(self, call: Call, req: RequestInfo) -> dict:
        if call.service.operation(call.operation) is None:
            raise ServiceError("UnknownOperationException",
                               f"Operation {call.operation} is not a {call.service.model.service_name}"
                               f" operation.", status=400, query_code="InvalidAction")
        body = decompress(req.body, req.headers.get("Content-Encoding"))
        if body.strip():
            try:
                try:
                    value = orjson.loads(body)
                except orjson.JSONDecodeError:
                    value = json.loads(body)   # NaN literals, integers beyond 64 bits
                    # ... but not lone surrogates ("\ud800"), which orjson rightly refuses:
                    # no store or encoder downstream can hold them
                    if b"\\u" in body:
                        json.dumps(value, ensure_ascii=False).encode("utf-8")
            except (ValueError, UnicodeError, RecursionError):
                raise ServiceError("SerializationException",
                                   "Start of structure or map found where not expected." if body[:1]
                                   not in (b"{", b"[") else "The request body is not valid JSON.",
                                   status=400, query_code="MalformedInput") from None
            if not isinstance(value, dict):
                raise ServiceError("SerializationException",
                                   "The request body must be a JSON object.", status=400,
                                   query_code="MalformedInput")
        else:
            value = {}
        return read_input(call.service, call.operation, value, strings=False)

    def _content_type(self, spec) -> str:
        return f"application/x-amz-json-{spec.json_version}"

    def encode_result(self, call: Call, result: dict | None) -> Reply:
        op = call.service.operation(call.operation)
        out = result if result and op.output_shape is not None else {}
        return Reply(200, {"Content-Type": self._content_type(call.service),
                           "x-amzn-RequestId": call.request_id}, _dumps(out))

    def encode_error(self, spec, call: Call | None, err: ServiceError) -> Reply:
        shape, qcode, status, sender = resolve_error(spec, err)
        headers = {"Content-Type": self._content_type(spec) if spec else "application/x-amz-json-1.1",
                   "x-amzn-RequestId": call.request_id if call else new_request_id()}
        headers.update(err.headers)
        if spec is not None and spec.query_compatible:
            headers["x-amzn-query-error"] = f"{qcode};{'Sender' if sender else 'Receiver'}"
            ns = err.namespace or spec.service_namespace
            type_name = f"{ns}#{shape}"
            # 413 comes from AWS's HTTP front end (size limits), before any query-mode
            # mapping: it stays 413 in every protocol
            if 400 <= status < 500 and status != 413 and not (call and call.query_mode):
                status = 400
        else:
            type_name = shape if not err.namespace else f"{err.namespace}#{shape}"
        body = {"__type": type_name}
        if err.message:
            body["message"] = err.message
        body.update(err.extra)
        return Reply(status, headers, _dumps(body))


JSON = JsonCodec()
